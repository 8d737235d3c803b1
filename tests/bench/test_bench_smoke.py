"""The benchmark still runs: ``bench/run.py --tiny`` end to end, checked for sane numbers.

A smoke test, not a performance test: it runs every bench case at toy sizes (about half a
minute) and checks that each produced the numbers it should (requests answered, CPU counted,
streams relayed whole, memory read, no client errors) and wrote its JSON, Markdown and chart.
It never judges speed: on a shared machine a timing assertion would only measure the
neighbours, and the targets' verdicts are the full bench's business.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MISSING = [tool for tool in ("wrk", "nginx", "taskset") if shutil.which(tool) is None]

pytestmark = [
    pytest.mark.skipif(bool(MISSING), reason=f"bench tools not installed: {MISSING}"),
    pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the bench pins to 2 cores"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--tiny", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (json_path,) = results.glob("run-*.json")
    data: dict[str, Any] = json.loads(json_path.read_text())
    data["_files"] = sorted(p.name for p in results.iterdir())
    data["_stem"] = json_path.stem
    return data


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_writes_json_markdown_and_chart(run: dict[str, Any]) -> None:
    stem = run["_stem"]
    assert {f"{stem}.json", f"{stem}.md"} <= set(run["_files"])
    # The chart needs matplotlib, from the bench extra: without it the run says so and goes on.
    charted = importlib.util.find_spec("matplotlib") is not None
    assert (f"{stem}.png" in run["_files"]) is charted
    assert not [n for n in run["notes"] if n.startswith("RUN INCOMPLETE")]


def test_load_steps_answer_and_count_cpu(run: dict[str, Any]) -> None:
    rows = run["load"]
    assert {r["gateway"] for r in rows} >= {"direct", "nginx", "routeguard"}
    for row in rows:
        assert row["requests"] > 0, row
        assert row["errors"] == 0, row
        assert positive(row["p50_ms"]), row
        if row["gateway"] != "direct":
            assert positive(row["cpu_us_per_request"]), row
            assert positive(row["cpu_ratio_to_nginx"]), row


def test_concurrent_streams_relay_whole_streams(run: dict[str, Any]) -> None:
    rows = run["concurrent_streams"]["rows"]
    assert {(r["case"], r["gateway"]) for r in rows} >= {
        ("gap", "nginx"),
        ("gap", "routeguard"),
        ("sim", "routeguard"),
    }
    for row in rows:
        assert row["streams"] > 0, row
        assert row["errors"] == 0, row
        assert positive(row["streams_per_s"]), row
        # A stream's first event comes before its end.
        assert 0 < row["ttfb_p50_ms"] <= row["total_p50_ms"], row
    gapped = next(r for r in rows if r["case"] == "gap" and r["gateway"] == "routeguard")
    # 19 gaps of 20 ms between the 20 events: the answer cannot be faster than that.
    assert gapped["total_p50_ms"] >= 19 * 20


def test_memory_curve_and_idle_connections(run: dict[str, Any]) -> None:
    rows = run["memory"]["rows"]
    assert {(r["gateway"], r["what"]) for r in rows} == {
        (g, w)
        for g in ("nginx", "routeguard")
        for w in ("open stream", "open stream (again)", "idle keep-alive")
    }
    for row in rows:
        assert row["opened"] == row["count"], row
        assert row["errors"] == 0, row
        assert row["rss_open_kib"] > 0, row
        assert row["kb_each"] is not None, row
    streams = [r for r in rows if r["what"].startswith("open stream")]
    assert all(r["completed"] == r["count"] for r in streams)


def test_failover_phases_and_scaleout(run: dict[str, Any]) -> None:
    phases = [r["phase"] for r in run["failover"]["rows"]]
    assert phases == [
        "steady",
        "fo-b 100 % errors",
        "fo-b healed",
        "fo-b hangs",
        "fo-b healed again",
    ]
    for row in run["failover"]["rows"]:
        assert row["requests"] > 0, row
    scale = {r["gateway"]: r for r in run["scaleout"]["rows"]}
    assert set(scale) == {"workers=1", "workers=2"}
    assert all(positive(r["rps"]) and positive(r["cpu_us_per_request"]) for r in scale.values())
    assert all(r["errors"] == 0 for r in scale.values())


def test_every_case_has_a_verdict(run: dict[str, Any]) -> None:
    verdicts = {t["target"]: t["verdict"] for t in run["targets"]}
    assert len(verdicts) >= 10
    assert set(verdicts.values()) <= {"PASS", "MISS", "n/a"}
