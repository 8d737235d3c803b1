"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driving the console.

The browser is started once per module and talks to a real RouteGuard app and the simulator
over loopback sockets, as an operator's browser would.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator

import pytest
from consolekit import CHROMEDRIVER, CHROMIUM, LAPTOP, Console, router_yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from routeguard.config.loader import load_config
from routeguard.server.app import RouteGuardApp


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
