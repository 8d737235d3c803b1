"""The Prometheus alert rules in ``deploy/prometheus`` are valid and behave as their unit tests say.

``promtool`` does the real work: ``check`` validates syntax and PromQL, ``test rules`` replays
the synthetic series in ``alerts_test.yml`` and compares which alerts fire when. A missing
``promtool`` is a failure, not a skip: CI installs it, and a silently skipped check would let a
broken rule file ship.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
SCRAPE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RUNBOOK = REPO / "docs" / "runbook.md"

SEVERITY_BY_PRIORITY = {"P0": "critical", "P1": "warning", "P2": "info"}
RUNBOOK_URL_PREFIX = "https://github.com/routeguard/routeguard/blob/main/docs/runbook.md#"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found on PATH. Install the Debian/Ubuntu package `prometheus` "
            "(apt-get install prometheus), which provides /usr/bin/promtool; CI installs it."
        )
    return path


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, (
        f"`{' '.join(args)}` exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def test_rules_are_valid(promtool: str) -> None:
    _run(promtool, "check", "rules", str(ALERTS))


def test_rule_unit_tests_pass(promtool: str) -> None:
    _run(promtool, "test", "rules", str(ALERTS_TEST))


def test_example_scrape_config_is_valid(promtool: str) -> None:
    # Also re-checks alerts.yml through rule_files, so the relative path must resolve.
    _run(promtool, "check", "config", str(SCRAPE_CONFIG))


def _alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_carries_class_labels_and_annotations() -> None:
    rules = _alerting_rules()
    assert rules
    for rule in rules:
        name = rule["alert"]
        labels = rule.get("labels", {})
        annotations = rule.get("annotations", {})
        assert labels.get("priority") in SEVERITY_BY_PRIORITY, name
        assert labels["severity"] == SEVERITY_BY_PRIORITY[labels["priority"]], name
        assert {"summary", "description", "runbook_url"} <= annotations.keys(), name
        assert annotations["runbook_url"].startswith(RUNBOOK_URL_PREFIX), name


def test_every_alert_has_a_unit_test() -> None:
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text()))
    untested = {rule["alert"] for rule in _alerting_rules()} - tested
    assert not untested, f"alerts without a case in alerts_test.yml: {sorted(untested)}"


def _github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower-cased, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_runbook_urls_point_at_runbook_headings() -> None:
    if not RUNBOOK.exists():
        pytest.skip("docs/runbook.md is not in the repository; the anchors cannot be checked")
    anchors = {
        _github_anchor(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in _alerting_rules():
        anchor = rule["annotations"]["runbook_url"].removeprefix(RUNBOOK_URL_PREFIX)
        assert anchor in anchors, f"{rule['alert']}: no heading in docs/runbook.md for #{anchor}"
