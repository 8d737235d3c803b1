"""The console in a real headless Chromium against a real router and the simulator."""

from __future__ import annotations

import logging
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import LAPTOP, PHONE, TOKEN, Console, Traffic
from routeguard.resilience import BreakerState
from routeguard.simulator import FaultSpec


def test_no_data_without_a_valid_token(console: Console, caplog):
    caplog.set_level(logging.DEBUG)
    console.open()
    assert console.visible("login")
    assert not console.visible("app")
    assert console.rows() == []
    # The page's own requests without the token are refused by the router.
    assert console.fetch("/admin/deployments", with_token=False) == 401
    assert console.fetch("/admin/weights", with_token=False) == 401

    console.login("not-the-token")
    console.wait(lambda: console.visible("login-error"), "refusal shown")
    assert "refused" in console.driver.find_element(By.ID, "login-error").text
    assert console.js("return sessionStorage.length") == 0
    assert console.rows() == []

    console.login(TOKEN)
    console.wait(lambda: console.visible("app") and len(console.rows()) == 3, "deployments")
    assert console.fetch("/admin/deployments", with_token=True) == 200
    # The token lives in this tab's sessionStorage only: not in the URL, nor in localStorage.
    assert TOKEN not in console.driver.current_url
    assert console.js("return localStorage.length") == 0
    assert console.js("return sessionStorage.getItem('routeguard.console.token')") == TOKEN

    # Asked once per tab: a reload keeps the session.
    console.driver.refresh()
    console.wait(lambda: console.visible("app") and len(console.rows()) == 3, "still signed in")
    assert not console.visible("login")

    console.driver.find_element(By.ID, "logout").click()
    console.wait(lambda: console.visible("login"), "signed out")
    assert console.js("return sessionStorage.length") == 0
    assert console.browser_errors() == []
    # The router logged the refused attempt, without the token it carried (or the right one).
    ours = [r for r in caplog.records if r.name.startswith("routeguard")]
    assert any("admin authentication failed" in r.getMessage() for r in ours)
    leaks = [
        r.__dict__ for r in ours if TOKEN in str(r.__dict__) or "not-the-token" in str(r.__dict__)
    ]
    assert leaks == []


def test_breaker_opens_and_closes_live_without_reload(console: Console):
    console.signed_in()
    console.js("window.__sameDocument = true")
    assert console.breaker("dep-b") == "closed"
    with Traffic(console) as traffic:
        console.sim.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=500))
        opened_s = console.wait(lambda: console.breaker("dep-b") == "open", "dep-b open")
        assert "half-open in" in (console.cell("dep-b", ".countdown") or "")
        assert console.cell("dep-b", "button[data-key='reset:dep-b']") == "Reset breaker"
        console.screenshot("breaker-open-laptop-light")
        console.sim.clear_faults("dep-b")
        closed_s = console.wait(lambda: console.breaker("dep-b") == "closed", "dep-b closed")
    assert console.js("return window.__sameDocument") is True  # no reload happened
    assert traffic.failures == []  # the router retried around dep-b throughout
    print(
        f"\nconsole saw dep-b open after {opened_s:.1f} s and closed {closed_s:.1f} s after recovery"
    )
    assert console.browser_errors() == []


def _set_weight_via_page(console: Console, group: str, name: str, weight: str) -> None:
    driver = console.driver
    driver.find_element(By.CSS_SELECTOR, f"button[data-key='weights:{group}']").click()
    console.wait(lambda: console.visible("dialog"), "weights dialog")
    field = driver.find_element(By.ID, f"field-w-{name}")
    field.clear()
    field.send_keys(weight)
    driver.find_element(By.CSS_SELECTOR, "#dialog button[data-role='review']").click()


def test_weight_zero_from_the_page_takes_the_share_to_zero(console: Console):
    console.signed_in()
    driver = console.driver
    drain_button = driver.find_elements(By.CSS_SELECTOR, "button[data-key='drain:dep-b']")
    if drain_button:  # /admin/drain is on this router
        drain_button[0].click()
    else:
        _set_weight_via_page(console, "gpt-4-turbo", "dep-b", "0")
    console.wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#dialog table.changes"), "confirm")
    changes = driver.find_element(By.CSS_SELECTOR, "#dialog table.changes").text
    assert "gpt-4-turbo / dep-b weight 30 0" in changes.replace("\n", " ")
    console.screenshot("confirm-weights-laptop-light")
    # Nothing changed before the confirmation.
    assert console.app.effective_weights()["gpt-4-turbo"]["dep-b"] == 30
    driver.find_element(By.CSS_SELECTOR, "#dialog button[data-role='apply']").click()
    console.wait(lambda: not console.visible("dialog"), "dialog closed")
    console.wait(
        lambda: (console.cell("dep-b", "td[data-label='Weight']") or "").startswith("0"),
        "dep-b weight 0 on the page",
    )

    before = console.metric("router_requests_total", deployment="dep-b")
    served = [console.chat() for _ in range(40)]
    assert set(served) == {"dep-a"}
    assert console.metric("router_requests_total", deployment="dep-b") == before
    assert (
        console.metric("router_effective_weight", model_group="gpt-4-turbo", deployment="dep-b")
        == 0
    )
    assert console.metric("router_requests_total", deployment="dep-a") >= 40
    audit = console.audit.read_text()
    assert "OPERATOR=oncall" in audit
    assert "ACTION=set_weights" in audit or "ACTION=drain" in audit
    assert TOKEN not in audit
    assert console.browser_errors() == []


def test_keyboard_only_dialog_traps_focus_and_returns_it(console: Console):
    console.signed_in()
    driver = console.driver
    opener = driver.find_element(By.CSS_SELECTOR, "button[data-key='weights:gpt-4-turbo']")
    opener.send_keys(Keys.ENTER)
    console.wait(lambda: console.visible("dialog"), "dialog open")
    focused = lambda: driver.switch_to.active_element  # noqa: E731
    assert focused().get_attribute("id") == "field-w-dep-a"
    inside = "return document.getElementById('dialog').contains(document.activeElement)"
    seen = set()
    for _ in range(8):
        focused().send_keys(Keys.TAB)
        assert console.js(inside)
        seen.add(focused().get_attribute("id") or focused().text)
    assert {"field-w-dep-a", "field-w-dep-b", "Cancel", "Review…"} <= seen
    focused().send_keys(Keys.SHIFT, Keys.TAB)
    assert console.js(inside)
    focused().send_keys(Keys.ESCAPE)
    console.wait(lambda: not console.visible("dialog"), "dialog closed")
    assert focused().get_attribute("data-key") == "weights:gpt-4-turbo"
    assert console.app.weight_overrides == {}
    # Focus styles are visible: the focused button draws an outline.
    outline = console.js("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


@pytest.mark.parametrize("cooldown_s", [300])
def test_layouts_light_and_dark(console: Console):
    console.sim.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=401))
    for _ in range(50):
        console.chat()
        if console.app.runtimes["dep-b"].breaker.state is BreakerState.OPEN:
            break
    console.signed_in()
    console.wait(lambda: console.breaker("dep-b") == "open", "dep-b open")
    backgrounds = {}
    for name, size, mobile in (("laptop", LAPTOP, False), ("phone", PHONE, True)):
        for dark in (False, True):
            console.viewport(size, dark=dark, mobile=mobile)
            time.sleep(0.3)  # let the layout settle before the picture
            shot = console.screenshot(f"{name}-{'dark' if dark else 'light'}")
            assert shot.stat().st_size > 5000
            backgrounds[(name, dark)] = console.js(
                "return getComputedStyle(document.body).backgroundColor"
            )
            # Nothing is wider than the screen: no sideways scrolling on a phone.
            assert console.js(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1"
            )
            assert console.js(
                "return document.querySelector(\"tr[data-deployment='dep-b']\").getClientRects().length > 0"
            )
    assert backgrounds[("laptop", False)] != backgrounds[("laptop", True)]
    # The confirmation dialog fits a phone too.
    console.driver.find_element(By.CSS_SELECTOR, "button[data-key='reset:dep-b']").click()
    console.wait(lambda: console.visible("dialog"), "dialog")
    console.screenshot("phone-dark-confirm-reset")
    assert console.js(
        "return document.getElementById('dialog').getBoundingClientRect().right <= window.innerWidth"
    )
    assert console.browser_errors() == []


def test_router_without_admin_tokens_says_so(start_router, simulator, driver):
    app = start_router(
        "deployments:\n"
        f'  dep-a: {{provider: openai, model: m, api_base: "{simulator.url("dep-a")}", api_key: sk-x}}\n'
        "weights:\n  gpt-4-turbo: {dep-a: 1}\n"
    )
    driver.get(f"http://127.0.0.1:{app.port}/console")
    driver.find_element(By.ID, "token").send_keys("anything")
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    error = driver.find_element(By.ID, "login-error")
    WebDriverWait(driver, 20).until(lambda _: error.is_displayed())
    assert "no admin.tokens configured" in error.text
    assert driver.find_elements(By.CSS_SELECTOR, "tr[data-deployment]") == []
    assert driver.execute_script("return sessionStorage.length") == 0


def _confirm(console: Console) -> str:
    """The confirmation's change table as text; then apply it and wait for the dialog to close."""
    driver = console.driver
    console.wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#dialog table.changes"), "confirm")
    changes = driver.find_element(By.CSS_SELECTOR, "#dialog table.changes").text.replace("\n", " ")
    driver.find_element(By.CSS_SELECTOR, "#dialog button[data-role='apply']").click()
    console.wait(lambda: not console.visible("dialog"), "dialog closed")
    return changes


@pytest.mark.parametrize("cooldown_s", [300])
def test_reset_breaker_and_clear_overrides_from_the_page(console: Console):
    console.sim.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=401))
    for _ in range(50):
        console.chat()
        if console.app.runtimes["dep-b"].breaker.state is BreakerState.OPEN:
            break
    console.sim.clear_faults()
    console.signed_in()
    console.wait(lambda: console.breaker("dep-b") == "open", "dep-b open")
    console.driver.find_element(By.CSS_SELECTOR, "button[data-key='reset:dep-b']").click()
    assert "dep-b breaker open closed" in _confirm(console)
    console.wait(lambda: console.breaker("dep-b") == "closed", "dep-b closed on the page")
    assert console.app.runtimes["dep-b"].breaker.state is BreakerState.CLOSED

    _set_weight_via_page(console, "gpt-4-turbo", "dep-a", "50")
    assert "gpt-4-turbo / dep-a weight 70 50" in _confirm(console)
    console.wait(
        lambda: "override" in (console.cell("dep-a", "td[data-label='Weight']") or ""), "override"
    )
    console.driver.find_element(By.CSS_SELECTOR, "button[data-key='weights-clear']").click()
    assert "gpt-4-turbo / dep-a weight 50 70 (file)" in _confirm(console)
    console.wait(
        lambda: console.cell("dep-a", "td[data-label='Weight']") == "70", "file weight again"
    )
    assert console.app.weight_overrides == {}
    actions = [
        line.split("ACTION=")[1].split(" ")[0] for line in console.audit.read_text().splitlines()
    ]
    assert actions == ["circuit_breaker_reset", "set_weights", "clear_weight_overrides"]
    assert console.browser_errors() == []
