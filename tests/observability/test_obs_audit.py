"""The decisions log: runbook format, concurrent appends that never interleave, sanitising."""

from __future__ import annotations

import calendar
import multiprocessing
import re
import threading
from collections import Counter
from pathlib import Path

import pytest

from routeguard.observability.audit import LINE_PATTERN, AuditLog, parse_line

# The runbook's line, `$(date -u +%Y-%m-%dT%H:%M:%SZ) | OPERATOR=$USER | ... | KEY=VALUE`, as a
# regex: a UTC timestamp, then " | KEY=VALUE" fields, OPERATOR first.
RUNBOOK_LINE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z \| OPERATOR=[^|\n]+( \| [A-Z][A-Z0-9_]*=[^|\n]*)+$"
)
FIXED = float(calendar.timegm((2026, 11, 24, 14, 3, 11)))


def fixed_clock() -> float:
    return FIXED


def test_line_format_matches_the_runbook(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "DECISIONS.log", clock=fixed_clock)
    line = audit.append(
        "alice",
        "resolve_outage",
        chapter=38,
        incident="INC-42",
        cause="openai 5xx",
        mttr="17m",
        impact="12% of gpt-4 requests failed",
    )
    assert line == (
        "2026-11-24T14:03:11Z | OPERATOR=alice | ACTION=resolve_outage | CHAPTER=38"
        " | INCIDENT=INC-42 | CAUSE=openai 5xx | MTTR=17m | IMPACT=12% of gpt-4 requests failed"
    )
    assert (tmp_path / "DECISIONS.log").read_text() == line + "\n"
    assert RUNBOOK_LINE.fullmatch(line)
    assert LINE_PATTERN.fullmatch(line)


def test_default_path_is_decisions_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    AuditLog().append("bob", "drain", deployment="openai-gpt4")
    assert (tmp_path / "DECISIONS.log").exists()


def test_newline_and_pipe_injection_is_sanitised(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "d.log", clock=fixed_clock)
    line = audit.append(
        "eve\n2026-01-01T00:00:00Z | OPERATOR=mallory",
        "restore | ACTION=nothing",
        cause="line one\r\nline two | FORGED=1",
        note="tab\there\x00nul\u2028sep",
    )
    text = (tmp_path / "d.log").read_text()
    assert text.count("\n") == 1
    assert RUNBOOK_LINE.fullmatch(line)
    [entry] = audit.read()
    assert set(entry) == {"ts", "OPERATOR", "ACTION", "CAUSE", "NOTE"}
    assert entry["CAUSE"] == "line one line two / FORGED=1"
    assert entry["ACTION"] == "restore / ACTION=nothing"
    assert "\n" not in entry["OPERATOR"]


def test_secrets_are_masked(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "d.log", clock=fixed_clock)
    line = audit.append(
        "alice",
        "rotate_key",
        api_key="sk-proj-abcdefghijklmnop1234",
        note="new key is sk-ant-api03-ZYXWVUTSRQPONMLK",
        header="Authorization: Bearer abcdefghijklmnop",
    )
    assert "abcdefghijklmnop" not in line
    assert "ZYXWVUTSRQPONMLK" not in line
    assert "API_KEY=[REDACTED]" in line
    assert RUNBOOK_LINE.fullmatch(line)


@pytest.mark.parametrize("key", ["operator", "ACTION", "bad-key", "9lives", ""])
def test_invalid_field_names_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="field name"):
        AuditLog(tmp_path / "d.log").append("alice", "drain", **{key: "x"})


def test_operator_and_action_are_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="operator"):
        AuditLog(tmp_path / "d.log").append(" \n", "drain")


def test_long_values_are_cut(tmp_path: Path) -> None:
    line = AuditLog(tmp_path / "d.log").append("alice", "note", text="x" * 10_000)
    assert len(line) < 1200


def test_read_limit_and_hand_written_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.log"
    audit = AuditLog(path, clock=fixed_clock)
    assert audit.read() == []
    for i in range(5):
        audit.append("alice", "step", n=i)
    with path.open("a") as handle:  # what the runbook's echo writes, and some junk
        handle.write(
            "2026-11-24T15:00:00Z | OPERATOR=bob | CHAPTER=38 | ACTION=resolve_outage"
            " | INCIDENT=INC-7 | MTTR=42m\n"
        )
        handle.write("not a decision\n\n")
    entries = audit.read(limit=3)
    assert [e.get("N") for e in entries] == ["3", "4", None]
    assert entries[-1] == {
        "ts": "2026-11-24T15:00:00Z",
        "OPERATOR": "bob",
        "CHAPTER": "38",
        "ACTION": "resolve_outage",
        "INCIDENT": "INC-7",
        "MTTR": "42m",
    }
    assert len(audit.read()) == 6
    assert audit.read(0) == []
    assert parse_line("2026-11-24T15:00:00Z | no equals") is None


THREADS = 8
PER_THREAD = 200
PROCESSES = 2
PER_PROCESS = 1000
PAD = "p" * 600  # long lines: a non-atomic writer would interleave them visibly


def _process_writer(path: str, writer: str, start: threading.Barrier) -> None:
    audit = AuditLog(path)
    start.wait()
    for i in range(PER_PROCESS):
        audit.append("proc", "stress", writer=writer, seq=i, pad=PAD)


def test_concurrent_threads_and_processes_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "DECISIONS.log"
    audit = AuditLog(path)
    context = multiprocessing.get_context("spawn")  # fork in a threaded test runner is unsafe
    start = context.Barrier(PROCESSES + 1)
    processes = [
        context.Process(target=_process_writer, args=(str(path), f"proc{n}", start))
        for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()

    def thread_writer(n: int) -> None:
        for i in range(PER_THREAD):
            audit.append("thread", "stress", writer=f"thread{n}", seq=i, pad=PAD)

    threads = [threading.Thread(target=thread_writer, args=(n,)) for n in range(THREADS)]
    start.wait(timeout=60)  # every process is ready: all writers start together
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    lines = path.read_bytes().decode().split("\n")
    assert lines.pop() == ""  # the file ends with a newline
    assert len(lines) == THREADS * PER_THREAD + PROCESSES * PER_PROCESS
    seen: Counter[str] = Counter()
    for line in lines:
        assert RUNBOOK_LINE.fullmatch(line), line[:120]
        entry = parse_line(line)
        assert entry is not None
        assert entry["PAD"] == PAD
        seen[entry["WRITER"]] += 1
        assert 0 <= int(entry["SEQ"]) < PER_PROCESS
    assert seen == {
        **{f"thread{n}": PER_THREAD for n in range(THREADS)},
        **{f"proc{n}": PER_PROCESS for n in range(PROCESSES)},
    }
    assert len(set(lines)) == len(lines)
