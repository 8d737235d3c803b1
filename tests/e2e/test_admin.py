"""The admin API, health, metrics and hot reload, over real sockets."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from routeguard.config.loader import load_config
from routeguard.resilience import BreakerState
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import FaultSpec, Simulator

MESSAGES = [{"role": "user", "content": "Hello admin"}]
TOKEN = "rg-admin-token-SECRET"
AUDIT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \| OPERATOR=\S+ \| ACTION=\S+( \| [A-Z_]+=[^|]*)*$"
)


def config_text(
    sim: Simulator,
    audit: Path,
    *,
    weights: str = "{dep-a: 70, dep-b: 30, dep-c: 0}",
    tokens: bool = True,
    watch_s: float = 0.2,
) -> str:
    admin = f'admin:\n  audit_log: "{audit}"\n'
    if tokens:
        admin += f'  tokens:\n    oncall: "{TOKEN}"\n'
    return (
        f"server:\n  watch_config_s: {watch_s}\n"
        + admin
        + "routing:\n  num_retries: 2\n  retry_backoff_s: 0\n  circuit_breaker_min_requests: 3\n  cooldown_s: 600\n"
        "deployments:\n"
        + "".join(
            f'  {n}: {{provider: openai, model: m, api_base: "{sim.url(n)}", api_key: sk-upstream-SECRET}}\n'
            for n in ("dep-a", "dep-b", "dep-c")
        )
        + f"weights:\n  gpt-4-turbo: {weights}\n"
    )


@pytest.fixture
def routed(loop_thread, simulator, tmp_path, request):
    """A router started from a file; ``indirect`` parametrization sets its watch interval."""
    path = tmp_path / "router.yaml"
    audit = tmp_path / "DECISIONS.log"
    path.write_text(config_text(simulator, audit, watch_s=getattr(request, "param", 0.2)))
    app = RouteGuardApp(load_config(path), config_path=path, rng=random.Random(5))
    loop_thread.run(app.start("127.0.0.1", 0))
    base = f"http://127.0.0.1:{app.port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        yield app, client, path, audit
    loop_thread.run(app.close(drain_timeout_s=1))


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def chat(client: httpx.Client, **headers: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions", json={"model": "gpt-4-turbo", "messages": MESSAGES}, headers=headers
    )


def test_admin_needs_a_valid_token(routed):
    _, client, _, audit = routed
    assert client.get("/admin/deployments").status_code == 401
    response = client.get("/admin/deployments", headers=auth("wrong"))
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert client.get("/admin/deployments", headers={"authorization": TOKEN}).status_code == 401
    assert client.get("/admin/deployments", headers=auth()).status_code == 200
    assert not audit.exists()  # reads are not decisions


def test_admin_without_tokens_is_403(loop_thread, simulator, tmp_path, start_router):
    app = start_router(config_text(simulator, tmp_path / "d.log", tokens=False))
    response = httpx.post(
        f"http://127.0.0.1:{app.port}/admin/circuit-breaker/reset", headers=auth()
    )
    assert response.status_code == 403
    assert "no admin.tokens" in response.json()["error"]["message"]


def test_breaker_reset_all_and_one(routed, simulator):
    app, client, _, audit = routed
    simulator.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=401))
    for _ in range(10):
        assert chat(client).status_code == 200
    assert app.runtimes["dep-b"].breaker.state is BreakerState.OPEN
    simulator.clear_faults()
    response = client.post(
        "/admin/circuit-breaker/reset", json={"deployment": "dep-b"}, headers=auth()
    )
    assert response.status_code == 200
    assert response.json() == {"reset": ["dep-b"]}
    assert app.runtimes["dep-b"].breaker.state is BreakerState.CLOSED
    assert (
        client.post(
            "/admin/circuit-breaker/reset", json={"deployment": "nope"}, headers=auth()
        ).status_code
        == 404
    )
    # The runbook's exact call, with no body: every breaker.
    response = client.post("/admin/circuit-breaker/reset", headers=auth())
    assert sorted(response.json()["reset"]) == ["dep-a", "dep-b", "dep-c"]
    lines = audit.read_text().splitlines()
    assert len(lines) == 2
    assert all(AUDIT_LINE.match(line) for line in lines), lines
    assert "OPERATOR=oncall | ACTION=circuit_breaker_reset | DEPLOYMENT=dep-b" in lines[0]
    assert TOKEN not in audit.read_text()


def test_deployments_view(routed, simulator):
    _app, client, _, _ = routed
    for _ in range(5):
        chat(client)
    data = client.get("/admin/deployments", headers=auth()).json()["deployments"]
    by_name = {d["deployment"]: d for d in data}
    assert set(by_name) == {"dep-a", "dep-b", "dep-c"}
    assert by_name["dep-a"]["breaker"] == "closed"
    assert by_name["dep-a"]["weights"] == {"gpt-4-turbo": 70}
    assert by_name["dep-c"]["weights"] == {"gpt-4-turbo": 0}
    assert by_name["dep-a"]["provider"] == "openai"
    assert by_name["dep-a"]["in_flight"] == 0
    assert "SECRET" not in str(data)


def test_put_weights_shifts_traffic_and_is_audited(routed):
    _app, client, _, audit = routed
    # The runbook's "If OpenAI is failing" patch, applied live.
    body = {"weights": {"gpt-4-turbo": {"dep-a": 0, "dep-b": 60, "dep-c": 40}}}
    response = client.put("/admin/weights", json=body, headers=auth())
    assert response.status_code == 200, response.text
    assert response.json()["weights"]["gpt-4-turbo"] == {"dep-a": 0, "dep-b": 60, "dep-c": 40}
    served = {chat(client).headers["x-routeguard-deployment"] for _ in range(40)}
    assert "dep-a" not in served
    assert served == {"dep-b", "dep-c"}
    weights = client.get("/admin/weights", headers=auth()).json()
    assert weights["file"]["gpt-4-turbo"]["dep-a"] == 70
    assert weights["overrides"]["gpt-4-turbo"]["dep-a"] == 0
    line = audit.read_text().splitlines()[-1]
    assert "ACTION=set_weights | GROUP=gpt-4-turbo | WEIGHTS=dep-a=0,dep-b=60,dep-c=40" in line
    # Partial update keeps the other members' effective weights; DELETE restores the file's.
    client.put("/admin/weights", json={"gpt-4-turbo": {"dep-c": 5}}, headers=auth())
    assert client.get("/admin/weights", headers=auth()).json()["weights"]["gpt-4-turbo"] == {
        "dep-a": 0,
        "dep-b": 60,
        "dep-c": 5,
    }
    cleared = client.delete("/admin/weights", headers=auth()).json()
    assert cleared["weights"]["gpt-4-turbo"] == {"dep-a": 70, "dep-b": 30, "dep-c": 0}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"nope": {"dep-a": 1}}, "unknown model group"),
        ({"gpt-4-turbo": {"dep-x": 1}}, "not a deployment of this model group"),
        ({"gpt-4-turbo": {"dep-a": -1}}, "must be >= 0"),
        ({"gpt-4-turbo": {"dep-a": "ten"}}, "must be a number"),
        ({"gpt-4-turbo": {"dep-a": 0, "dep-b": 0}}, '"force": true'),
        ({}, "Body must map model groups"),
    ],
)
def test_bad_weights_are_rejected(routed, body, fragment):
    app, client, _, audit = routed
    response = client.put("/admin/weights", json=body, headers=auth())
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]
    assert app.effective_weights()["gpt-4-turbo"] == {"dep-a": 70, "dep-b": 30, "dep-c": 0}
    assert not audit.exists()


def test_force_allows_draining_a_group(routed):
    _, client, _, _ = routed
    body = {"weights": {"gpt-4-turbo": {"dep-a": 0, "dep-b": 0}}, "force": True}
    assert client.put("/admin/weights", json=body, headers=auth()).status_code == 200
    response = chat(client)
    assert response.status_code == 503
    assert "all weights are 0" in response.json()["error"]["message"]


def test_config_view_redacts_secrets(routed):
    _, client, _, _ = routed
    response = client.get("/admin/config", headers=auth())
    assert response.status_code == 200
    assert "SECRET" not in response.text
    data = response.json()
    assert data["config"]["deployments"]["dep-a"]["api_key"] == "**********"
    assert data["effective_weights"]["gpt-4-turbo"]["dep-a"] == 70


# The file watcher is off here: it would race the admin call to the same file change and count
# a second reload.
@pytest.mark.parametrize("routed", [0], indirect=True)
def test_reload_applies_good_and_rejects_bad_config(routed, simulator):
    app, client, path, audit = routed
    old_version = app.config_version
    text = config_text(simulator, audit, weights="{dep-a: 0, dep-b: 100, dep-c: 0}", watch_s=0)
    path.write_text(text)
    response = client.post("/admin/config/reload", headers=auth())
    assert response.status_code == 200, response.text
    assert response.json()["config_version"] != old_version
    assert {chat(client).headers["x-routeguard-deployment"] for _ in range(10)} == {"dep-b"}
    # A bad file is refused with the reason; the old config keeps serving.
    bad = config_text(simulator, audit, weights="{dep-a: 0, dep-b: 100, dep-zz: 1}", watch_s=0)
    path.write_text(bad)
    response = client.post("/admin/config/reload", headers=auth())
    assert response.status_code == 400
    assert "weights.gpt-4-turbo.dep-zz: names no deployment" in response.json()["error"]["message"]
    assert {chat(client).headers["x-routeguard-deployment"] for _ in range(10)} == {"dep-b"}
    metrics = client.get("/metrics").text
    assert 'router_config_reloads_total{result="success"} 1.0' in metrics
    assert 'router_config_reloads_total{result="failure"} 1.0' in metrics
    assert "RESULT=rejected" in audit.read_text()


def test_file_change_is_picked_up_and_breaker_state_survives(routed, simulator):
    app, client, path, audit = routed
    simulator.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=401))
    for _ in range(10):
        chat(client)
    assert app.runtimes["dep-b"].breaker.state is BreakerState.OPEN
    old_router = app.router
    # A ConfigMap update rewrites the file; the watcher reloads it.
    path.write_text(config_text(simulator, audit, weights="{dep-a: 50, dep-b: 50, dep-c: 0}"))
    deadline = time.monotonic() + 30
    while app.router is old_router and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.router is not old_router
    assert app.effective_weights()["gpt-4-turbo"]["dep-b"] == 50
    assert app.runtimes["dep-b"].breaker.state is BreakerState.OPEN  # survived the reload


def test_health_and_readiness(routed, simulator):
    app, client, _, _ = routed
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["config_version"] == app.config_version
    assert body["model_groups"]["gpt-4-turbo"]["routable"] == ["dep-a", "dep-b"]
    assert client.get("/health/ready").status_code == 200
    # Every deployment's breaker open: nothing routable, so curl -f fails.
    for runtime in app.runtimes.deployments.values():
        runtime.breaker.apply_remote(BreakerState.OPEN, None)
    assert client.get("/health").status_code == 503
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["reason"] == "no model group has a routable deployment"
    # ...but the process is alive: a liveness probe must not restart it for a provider outage.
    live = client.get("/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "alive"}


def test_metrics_carry_the_runbook_names(routed, simulator):
    _, client, _, _ = routed
    simulator.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=500))
    for _ in range(20):
        assert chat(client).status_code == 200
    text = client.get("/metrics").text
    assert re.search(r"(router_requests_total|router_errors_total)", text)  # the runbook's grep
    families = {f.name: f for f in text_string_to_metric_families(text)}
    errors = [s for s in families["router_errors"].samples if s.name == "router_errors_total"]
    assert any(
        s.labels["deployment"] == "dep-b" and s.labels["reason"] == "server_error" and s.value > 0
        for s in errors
    )
    clients = {
        s.labels["status"]: s.value
        for s in families["router_client_requests"].samples
        if s.name == "router_client_requests_total"
    }
    assert clients["200"] == 20.0
    assert sum(clients.values()) == 20.0  # retries hid every upstream failure from clients
    states = {
        s.labels["deployment"]: s.value for s in families["router_circuit_breaker_state"].samples
    }
    assert states["dep-b"] == 2.0
    assert states["dep-a"] == 0.0
    components = {s.labels["component"] for s in families["router_latency_seconds"].samples}
    assert {"total", "upstream", "overhead"} <= components
    retries = [s for s in families["router_retries"].samples if s.name == "router_retries_total"]
    assert sum(s.value for s in retries) > 0
    assert "SECRET" not in text


def test_request_id_is_honoured_and_returned(routed):
    _, client, _, _ = routed
    response = chat(client, **{"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = chat(client).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", generated)


def test_openai_sdk_sees_attempts_header(routed, simulator):
    app, _, _, _ = routed
    simulator.set_fault("dep-a", FaultSpec(error_rate=1.0, error_status=503))
    seen = []
    with openai.OpenAI(
        base_url=f"http://127.0.0.1:{app.port}/v1", api_key="k", max_retries=0
    ) as client:
        for _ in range(20):
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4-turbo", messages=MESSAGES
            )
            seen.append(
                (raw.headers["x-routeguard-deployment"], int(raw.headers["x-routeguard-attempts"]))
            )
    assert {name for name, _ in seen} == {"dep-b"}
    assert (("dep-b", 2)) in seen  # first tried dep-a (weight 70), retried on dep-b
    assert seen[-1] == ("dep-b", 1)  # dep-a's breaker is open by now: straight to dep-b
