"""The ``/_sim`` control API over HTTP, as operators drive it during a drill."""

from __future__ import annotations

import httpx
import openai
import pytest

MESSAGES = [{"role": "user", "content": "hello"}]


def test_health(control: httpx.Client):
    body = control.get("/_sim/health").json()
    assert body["status"] == "ok"
    assert body["uptime_s"] >= 0


def test_put_list_and_delete_faults(control: httpx.Client, clients):
    put = control.put("/_sim/faults/c-one", json={"error_rate": 1, "error_status": 503})
    assert put.status_code == 200
    assert put.json() == {"target": "c-one", "fault": {"error_rate": 1.0, "error_status": 503}}
    assert control.get("/_sim/faults").json()["faults"]["c-one"]["error_status"] == 503

    with pytest.raises(openai.InternalServerError):
        clients.openai("c-one").chat.completions.create(model="m", messages=MESSAGES)

    deleted = control.delete("/_sim/faults/c-one").json()
    assert deleted == {"cleared": "c-one", "had_faults": True}
    clients.openai("c-one").chat.completions.create(model="m", messages=MESSAGES)


def test_star_and_delete_all(control: httpx.Client):
    assert control.put("/_sim/faults/*", json={"latency_ms": 5}).status_code == 200
    assert control.put("/_sim/faults/c-two", json={"hang": True}).status_code == 200
    assert set(control.get("/_sim/faults").json()["faults"]) == {"*", "c-two"}
    assert control.delete("/_sim/faults").json()["had_faults"] is True
    assert control.get("/_sim/faults").json()["faults"] == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{nope", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"error_rate": 2}', "error_rate"),
        (b'{"error_status": 200}', "error_status"),
        (b'{"latency_ms": -1}', "latency_ms"),
        (b'{"explode": true}', "explode"),
        (b'{"content_filter": "everything"}', "content_filter"),
    ],
)
def test_bad_fault_input_is_400_with_a_clear_message(control: httpx.Client, body, fragment):
    response = control.put("/_sim/faults/c-bad", content=body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert "c-bad" not in control.get("/_sim/faults").json()["faults"]


def test_unknown_control_endpoint(control: httpx.Client):
    response = control.post("/_sim/faults")
    assert response.status_code == 404
    assert "no control endpoint" in response.json()["error"]


def test_stats_and_reset(control: httpx.Client, clients):
    client = clients.openai("c-stats")
    client.chat.completions.create(model="m", messages=MESSAGES)
    list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    control.put("/_sim/faults/c-stats", json={"error_rate": 1, "error_status": 429})
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=MESSAGES)

    stats = control.get("/_sim/stats").json()["targets"]["c-stats"]
    assert stats["requests"] == 3
    assert stats["by_status"] == {"200": 2, "429": 1}
    assert stats["streams"] == 1
    assert stats["disconnects"] == 0

    assert control.post("/_sim/stats/reset").json() == {"reset": True}
    assert "c-stats" not in control.get("/_sim/stats").json()["targets"]
