"""The console drawing a full ``/admin/status`` (contract shape): every section, and the budget."""

from __future__ import annotations

import time

import pytest
from contract_sample import ActionRecorder, StatusStandIn
from selenium.webdriver.common.by import By

from conftest import LAPTOP, PHONE, Console
from routeguard.resilience import BreakerState
from routeguard.simulator import FaultSpec


@pytest.fixture
def with_status(console: Console) -> StatusStandIn:
    """This test's router answers /admin/status with the contract sample (its own, if it has
    one, is what the other console tests exercise)."""
    return StatusStandIn(console.app)


def text(console: Console, selector: str) -> str:
    return console.js(
        "const el = document.querySelector(arguments[0]); return el ? el.textContent : '';",
        selector,
    )


@pytest.mark.parametrize("cooldown_s", [300])
def test_every_section_of_the_status_is_drawn(console: Console, with_status: StatusStandIn):
    console.sim.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=401))
    for _ in range(50):
        console.chat()
        if console.app.runtimes["dep-b"].breaker.state is BreakerState.OPEN:
            break
    console.signed_in()
    console.wait(lambda: console.visible("summary"), "status summary")
    assert not console.visible("legacy")
    assert text(console, "#class-badge") == "P1"
    # A hostile string in the data is shown as text, never run as markup.
    assert "<script>alert(1)</script>" in text(console, "#summary .reasons")
    assert console.js("return document.querySelectorAll('#summary script').length") == 0
    assert "Replica rg-0 on node-a" in text(console, "#summary .replica")
    assert console.breaker("dep-b") == "open"
    assert "half-open in" in (console.cell("dep-b", ".countdown") or "")
    assert console.cell("dep-a", "td[data-label='Share 5m']").endswith("70 %")
    assert console.cell("dep-a", "td[data-label='In flight']") == "0 / 32"
    assert "falls back to gpt-4o" in text(console, ".group[data-group='gpt-4-turbo'] .group-head")
    # Sparklines: two per provider, the openai error line broken where there was no traffic.
    assert console.js("return document.querySelectorAll('#providers svg.spark').length") == 4
    assert (
        console.js(
            "return document.querySelectorAll(\"[data-provider='openai'] svg.spark polyline\").length"
        )
        >= 2
    )
    assert "INC-20261204-1" in text(console, "#incident")
    assert "drained dep-b" in text(console, "#incident .timeline")
    assert "2 of 4" in text(console, "tr[data-rollout='ro-1']")
    assert "(differs)" in text(console, "tr[data-replica='rg-1']")
    # Buttons follow the endpoints this router has: no drain, probe or rollouts on main yet.
    for path, selector in (
        ("/admin/drain", "button[data-key='drain:dep-a']"),
        ("/admin/probe", "button[data-key='probe:dep-a']"),
        ("/admin/rollouts", "button[data-key='rollout-start']"),
        ("/admin/incidents/resolve", "button[data-key='incident-resolve']"),
    ):
        present = console.http.get(path).status_code != 404
        assert bool(console.driver.find_elements(By.CSS_SELECTOR, selector)) == present, path
    for name, size, mobile in (("laptop", LAPTOP, False), ("phone", PHONE, True)):
        for dark in (False, True):
            console.viewport(size, dark=dark, mobile=mobile)
            time.sleep(0.3)
            console.screenshot(f"status-{name}-{'dark' if dark else 'light'}")
            assert console.js(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1"
            )
    console.viewport((LAPTOP[0], 2200), dark=False)
    console.screenshot("status-laptop-light-full")
    assert console.browser_errors() == []


def test_an_open_page_polls_at_most_once_a_second(console: Console, with_status: StatusStandIn):
    console.signed_in()
    console.wait(lambda: console.visible("summary"), "status summary")
    console.js("performance.clearResourceTimings(); performance.setResourceTimingBufferSize(1000)")
    window_s = 12.0
    time.sleep(window_s)
    admin_calls = console.js(
        "return performance.getEntriesByType('resource').filter((e) => e.name.includes('/admin/')).length"
    )
    print(f"\none console page made {admin_calls} admin requests in {window_s:.0f} s")
    assert admin_calls >= 2  # it is live
    assert admin_calls <= window_s + 1  # at most one a second (one of slack for the window edge)


def test_action_buttons_send_the_contract_bodies(console: Console, with_status: StatusStandIn):
    recorder = ActionRecorder(console.app)
    console.signed_in()
    console.wait(lambda: console.visible("summary"), "status summary")
    driver = console.driver

    def click(key: str) -> None:
        console.wait(
            lambda: driver.find_elements(By.CSS_SELECTOR, f"button[data-key='{key}']"), key
        )
        button = driver.find_element(By.CSS_SELECTOR, f"button[data-key='{key}']")
        console.js("arguments[0].scrollIntoView({block: 'center'})", button)  # not under the header
        button.click()
        console.wait(lambda: console.visible("dialog"), f"dialog of {key}")

    def fill(field: str, value: str) -> None:
        element = driver.find_element(By.ID, f"field-{field}")
        element.clear()
        element.send_keys(value)

    def review_and_apply() -> str:
        driver.find_element(By.CSS_SELECTOR, "#dialog button[data-role='review']").click()
        console.wait(
            lambda: driver.find_elements(By.CSS_SELECTOR, "#dialog table.changes"), "confirm"
        )
        changes = driver.find_element(By.CSS_SELECTOR, "#dialog table.changes").text.replace(
            "\n", " "
        )
        driver.find_element(By.CSS_SELECTOR, "#dialog button[data-role='apply']").click()
        console.wait(lambda: not console.visible("dialog"), "dialog closed")
        return changes

    def last_call() -> tuple[str, str, str, dict[str, object]]:
        console.wait(lambda: [c for c in recorder.calls if c[0] != "GET"], "a recorded call")
        mutations = [c for c in recorder.calls if c[0] != "GET"]
        recorder.calls.clear()
        return mutations[-1]

    click("drain:dep-a")
    changes = driver.find_element(By.CSS_SELECTOR, "#dialog table.changes").text.replace("\n", " ")
    assert "gpt-4-turbo / dep-a weight 70 0" in changes
    assert "dep-a drained no yes" in changes
    driver.find_element(By.CSS_SELECTOR, "#dialog button[data-role='apply']").click()
    assert last_call() == ("POST", "/admin/drain", "oncall", {"target": "dep-a", "force": False})

    click("abort:ro-1")
    driver.find_element(By.CSS_SELECTOR, "#dialog button[data-role='apply']").click()
    assert last_call() == ("DELETE", "/admin/rollouts", "oncall", {"id": "ro-1"})

    click("rollout-start")
    fill("hold_s", "30")
    assert "hold_s 30" in review_and_apply()
    assert last_call() == (
        "POST",
        "/admin/rollouts",
        "oncall",
        {
            "kind": "restore",
            "deployment": "dep-a",
            "group": "gpt-4-turbo",
            "max_error_rate": 0.05,
            "max_p95_ms": 5000,
            "steps": [10, 25, 50, 100],
            "hold_s": 30,
        },
    )

    click("incident-resolve")
    fill("cause", "dep-b key rotated")
    fill("impact", "31% errors for 5 min")
    assert "incident INC-20261204-1 P1 open resolved" in review_and_apply()
    assert last_call() == (
        "POST",
        "/admin/incidents/resolve",
        "oncall",
        {"cause": "dep-b key rotated", "impact": "31% errors for 5 min"},
    )

    click("incident-note")
    fill("text", "rotated the key back")
    review_and_apply()
    assert last_call() == (
        "POST",
        "/admin/incidents/note",
        "oncall",
        {"text": "rotated the key back"},
    )

    driver.find_element(By.CSS_SELECTOR, "button[data-key='probe:dep-c']").click()
    console.wait(lambda: "dep-c: 200" in driver.find_element(By.ID, "toast").text, "probe result")
    assert last_call() == ("POST", "/admin/probe", "oncall", {"deployment": "dep-c"})
    assert console.browser_errors() == []
