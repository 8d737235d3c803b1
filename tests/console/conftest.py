"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driving the console.

The browser is started once per module and talks to a real RouteGuard app and the simulator
over loopback sockets, as an operator's browser would. Screenshots go to ``test-artifacts/``
(git-ignored; ``ROUTEGUARD_TEST_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from routeguard.config.loader import load_config
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import Simulator

TOKEN = "rg-console-token-SECRET"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ROUTEGUARD_TEST_ARTIFACTS", REPO / "test-artifacts")) / "console"
WAIT_S = 20.0  # generous: the machine is shared; the measured figures are printed instead
LAPTOP = (1366, 900)
PHONE = (390, 844)


def router_yaml(sim: Simulator, audit: Path, *, cooldown_s: float = 3) -> str:
    deployments = "".join(
        f'  {n}: {{provider: {p}, model: m, api_base: "{sim.url(n, p)}", api_key: sk-upstream-SECRET}}\n'
        for n, p in (("dep-a", "openai"), ("dep-b", "openai"), ("dep-c", "anthropic"))
    )
    return (
        f'admin:\n  audit_log: "{audit}"\n  tokens:\n    oncall: "{TOKEN}"\n'
        "routing:\n  num_retries: 2\n  retry_backoff_s: 0\n"
        f"  circuit_breaker_min_requests: 3\n  cooldown_s: {cooldown_s}\n"
        f"deployments:\n{deployments}"
        "weights:\n  gpt-4-turbo: {dep-a: 70, dep-b: 30}\n  gpt-4o: {dep-c: 1}\n"
    )


class Console:
    """The router under test, its simulator, and a browser tab on its console."""

    def __init__(self, app: RouteGuardApp, sim: Simulator, driver: webdriver.Chrome, audit: Path):
        self.app = app
        self.sim = sim
        self.driver = driver
        self.audit = audit
        self.base = f"http://127.0.0.1:{app.port}"
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self.client = openai.OpenAI(
            base_url=f"{self.base}/v1", api_key="unused", max_retries=0, timeout=30
        )

    # -- page --------------------------------------------------------------------------------
    def open(self) -> None:
        self.driver.get(f"{self.base}/console")
        self.wait(lambda: self.visible("login") or self.visible("app"), "page loaded")

    def login(self, token: str = TOKEN) -> None:
        field = self.driver.find_element(By.ID, "token")
        field.clear()
        field.send_keys(token)
        self.driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()

    def signed_in(self) -> None:
        self.open()
        self.login()
        self.wait(lambda: self.visible("app") and self.rows(), "deployments shown")

    def visible(self, element_id: str) -> bool:
        found = self.driver.find_elements(By.ID, element_id)
        return bool(found) and found[0].is_displayed()

    def rows(self) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, "tr[data-deployment]")

    def row(self, name: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, f'tr[data-deployment="{name}"]')

    def cell(self, name: str, selector: str) -> str | None:
        """Text of a cell of a deployment's row, read in one step (rows are redrawn by polls)."""
        return self.js(
            "const el = document.querySelector(`tr[data-deployment='${arguments[0]}'] ${arguments[1]}`);"
            "return el ? el.textContent : null;",
            name,
            selector,
        )

    def breaker(self, name: str) -> str | None:
        return self.js(
            "const el = document.querySelector(`tr[data-deployment='${arguments[0]}'] .state`);"
            "return el ? el.dataset.state : null;",
            name,
        )

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT_S) -> float:
        """Wait until ``predicate()`` is truthy; returns the seconds it took."""
        started = time.monotonic()
        try:
            WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda _: predicate())
        except TimeoutException:
            self.screenshot(f"timeout-{what.replace(' ', '-')}")
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}") from None
        return time.monotonic() - started

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def fetch(self, path: str, *, with_token: bool) -> int:
        """Status of a fetch() made by the page itself, with or without the stored token."""
        return int(
            self.driver.execute_async_script(
                """
                const [path, withToken, done] = arguments;
                const headers = {};
                const token = sessionStorage.getItem("routeguard.console.token");
                if (withToken && token) headers.authorization = "Bearer " + token;
                fetch(path, {headers}).then((r) => done(r.status), () => done(-1));
                """,
                path,
                with_token,
            )
        )

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def viewport(self, size: tuple[int, int], *, dark: bool, mobile: bool = False) -> None:
        width, height = size
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]},
        )

    def browser_errors(self) -> list[str]:
        """Script errors and CSP violations the page logged (failed fetches are expected)."""
        entries = self.driver.get_log("browser")
        return [
            e["message"]
            for e in entries
            if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]
        ]

    # -- traffic -----------------------------------------------------------------------------
    def chat(self, model: str = "gpt-4-turbo") -> str:
        response = self.client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hello console"}]
        )
        return response.headers["x-routeguard-deployment"]

    def metric(self, name: str, **labels: str) -> float:
        text = self.http.get("/metrics").text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def close(self) -> None:
        self.http.close()
        self.client.close()


class Traffic:
    """Background chat requests at a steady pace until stopped (what keeps breakers moving)."""

    def __init__(self, console: Console, interval_s: float = 0.1) -> None:
        self.console = console
        self.interval_s = interval_s
        self.stopped = threading.Event()
        self.sent = 0
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.console.chat()
            except openai.APIError as exc:
                self.failures.append(repr(exc))
            self.sent += 1
            self.stopped.wait(self.interval_s)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(30)


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(
            "the console tests need Debian's chromium and chromium-driver (scripts/dev-setup)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def cooldown_s() -> float:
    """Breaker cooldown of the router under test; a test parametrizes it to hold a breaker open."""
    return 3.0


@pytest.fixture
def console(loop_thread, simulator, driver, tmp_path, cooldown_s) -> Iterator[Console]:
    path = tmp_path / "router.yaml"
    audit = tmp_path / "DECISIONS.log"
    path.write_text(router_yaml(simulator, audit, cooldown_s=cooldown_s))
    app = RouteGuardApp(load_config(path), config_path=path, rng=random.Random(3))
    loop_thread.run(app.start("127.0.0.1", 0))
    page = Console(app, simulator, driver, audit)
    page.viewport(LAPTOP, dark=False)
    driver.get_log("browser")  # start each test with an empty console log
    try:
        yield page
    finally:
        # Leave the tab signed out and off this router, so the next test starts clean.
        driver.get("about:blank")
        driver.execute_cdp_cmd(
            "Storage.clearDataForOrigin", {"origin": page.base, "storageTypes": "all"}
        )
        page.close()
        loop_thread.run(app.close(drain_timeout_s=1))
