"""The console on one replica of a real fleet (redis-server + two router processes)."""

from __future__ import annotations

import sys
from pathlib import Path

from consolekit import ARTIFACTS, WAIT_S
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).parent.parent / "fleet"))  # fleetkit
sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))  # processes, used by fleetkit
from fleetkit import TOKEN, fleet_config, redis_server, replicas


def test_fleet_members_are_listed(simulator, tmp_path, driver):
    with redis_server(tmp_path) as redis:
        configs = []
        for index in range(2):
            path = tmp_path / f"router-{index}.yaml"
            path.write_text(
                fleet_config(simulator.url, f'url: "{redis.url}"', tmp_path / f"D-{index}.log")
            )
            configs.append(path)
        with replicas(configs, tmp_path) as (a, _b):
            driver.get(f"http://127.0.0.1:{a.port}/console")
            driver.find_element(By.ID, "token").send_keys(TOKEN)
            driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
            members = "return document.querySelectorAll('#fleet tr[data-replica]').length"
            WebDriverWait(driver, WAIT_S * 2).until(lambda d: d.execute_script(members) == 2)
            text = driver.find_element(By.ID, "fleet").text
            ids = [m["id"] for m in a.admin("GET", "/admin/fleet").json()["members"]]
            assert len(ids) == 2
            assert all(member in text for member in ids)
            header = driver.find_element(By.CSS_SELECTOR, "#fleet thead").text.lower()
            assert "heartbeat" in header
            assert "config" in header
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "fleet-laptop-light.png"))
            driver.get("about:blank")
