"""The soak's short variant: 20,000 mixed requests through a real router process must not leak.

The bound is deliberately generous (a leak of even 1 KiB per request is 20 MiB here); the
million-request run (``python bench/soak.py``) is where the slope is measured and reported.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", REPO / "bench" / "soak.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_20000_requests_leak_neither_memory_nor_descriptors(tmp_path):
    soak = load_soak()
    result = soak.run_soak(20_000, concurrency=8, sample_s=2.0, out=tmp_path)
    summary = result["summary"]
    print(summary)
    assert result["requests"] == 20_000
    assert "500" not in result["by_status"]
    assert result["transport_errors"] == 0
    growth = summary["rss_after_warmup_max_mib"] - summary["rss_after_warmup_min_mib"]
    assert growth < 20, summary
    assert summary["fds_back_to_baseline"], summary
    assert (tmp_path / "soak.md").exists()
