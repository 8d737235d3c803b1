"""One PNG per run: latency distributions, streams, the memory curve and failover, side by side.

People read a plot faster than a table. Four panels, each drawn only when the run measured it:
non-streaming latency percentiles per gateway (static upstream, 64 connections), the stream
TTFB distribution (CDF) per gateway at each client count, RSS against streams held open, and
throughput per failover phase. matplotlib is a bench-only dependency (the ``bench`` extra); a
run without it writes no chart and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_chart"]


def write_chart(data: dict[str, Any], path: Path) -> Path | None:
    """Draw the run's ``to_json()`` into ``path``; None when matplotlib is missing."""
    try:
        import matplotlib  # noqa: PLC0415 - optional, bench-only

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    _latency(axes[0][0], data)
    _ttfb(axes[0][1], data)
    _memory(axes[1][0], data)
    _failover(axes[1][1], data)
    fig.suptitle(f"RouteGuard bench {data['meta']['started']} "
                 f"({data['meta'].get('routeguard_source', '?')}; shared 2-core machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _latency(ax: Any, data: dict[str, Any]) -> None:
    rows = [r for r in data["load"] if r["case"] == "static" and r["connections"] == 64]
    pcts = ("p50_ms", "p75_ms", "p90_ms", "p99_ms")
    for row in rows:
        ax.plot([50, 75, 90, 99], [row[p] for p in pcts], marker="o", label=row["gateway"])
    ax.set(title="Non-streaming latency, static upstream, 64 connections",
           xlabel="percentile", ylabel="ms", yscale="log")
    if rows:
        ax.legend()


def _ttfb(ax: Any, data: dict[str, Any]) -> None:
    rows = [r for r in data.get("concurrent_streams", {}).get("rows", []) if r["case"] == "gap"]
    for row in rows:
        sample = row.get("ttfb_ms_sample") or []
        if not sample:
            continue
        ys = [(i + 1) / len(sample) for i in range(len(sample))]
        ax.plot(sample, ys, label=f"{row['gateway']} x{row['clients']}")
    ax.set(title="Stream time to first event (20 ms gaps), CDF", xlabel="ms (log)",
           ylabel="fraction of streams", xscale="log")
    if rows:
        ax.legend(fontsize="small")


def _memory(ax: Any, data: dict[str, Any]) -> None:
    rows = [r for r in data.get("memory", {}).get("rows", []) if r["what"] == "open stream"]
    for gateway in dict.fromkeys(r["gateway"] for r in rows):
        mine = sorted((r for r in rows if r["gateway"] == gateway), key=lambda r: r["count"])
        xs = [0] + [r["count"] for r in mine]
        ys = [mine[0]["rss_before_kib"] / 1024] + [r["rss_open_kib"] / 1024 for r in mine]
        ax.plot(xs, ys, marker="o", label=f"{gateway}: streams open")
        ax.plot([r["count"] for r in mine], [r["rss_after_kib"] / 1024 for r in mine],
                marker="x", linestyle=":", label=f"{gateway}: after they ended")
    ax.set(title="RSS against concurrent open streams", xlabel="streams open at once",
           ylabel="RSS MiB")
    if rows:
        ax.legend(fontsize="small")


def _failover(ax: Any, data: dict[str, Any]) -> None:
    rows = data.get("failover", {}).get("rows", [])
    if rows:
        bars = ax.bar([r["phase"] for r in rows], [r["rps"] for r in rows])
        for bar, row in zip(bars, rows, strict=True):
            ax.annotate(f"{row['errors']} errors", (bar.get_x() + bar.get_width() / 2,
                                                    bar.get_height()), ha="center",
                        va="bottom", fontsize="small")
    ax.set(title="Failover under load (RouteGuard, 16 connections)", ylabel="requests/s")
    ax.tick_params(axis="x", labelrotation=15)


def main() -> None:  # pragma: no cover - redraw a stored run: python bench/chart.py run.json
    import json  # noqa: PLC0415
    import sys  # noqa: PLC0415

    source = Path(sys.argv[1])
    print(write_chart(json.loads(source.read_text()), source.with_suffix(".png")))


if __name__ == "__main__":
    main()
