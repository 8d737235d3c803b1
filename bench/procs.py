"""Processes the bench starts: spawn pinned to a core, wait until ready, account, always stop.

Every process is started in its own session (its own process group), so stopping it also stops
whatever it forked (nginx workers, a multiprocess server), and a Ctrl-C in the terminal reaches
only the bench, which then stops each group it started, by id, in ``Supervisor.stop_all``.

CPU and memory come from ``/proc``: ``utime + stime`` of the process and of every live
descendant, plus ``cutime + cstime`` (reaped children), in clock ticks (usually 10 ms); the
scheduler's own nanosecond run time of the same threads as a cross-check; and the sum of
``VmHWM`` (peak resident set) over the same tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLOCK_TICKS",
    "Proc",
    "Supervisor",
    "free_port",
    "peak_rss_kib",
    "rss_kib",
    "tree_cpu_s",
    "tree_pids",
    "tree_sched_s",
    "wait_for_port",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Proc:
    """One started process: its name (for messages), ``Popen`` and log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Starts processes in their own groups and stops every one of them, whatever happens."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._procs: list[Proc] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        core: int | str | None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Proc:
        """Start ``argv`` (through ``taskset -c core`` when a core is given), output to a log."""
        full = ["taskset", "-c", str(core), *argv] if core is not None else list(argv)
        log = self._log_dir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self._procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout_s: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout_s``."""
        if proc.alive():
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout_s)
        # The leader may be gone while a forked child lingers: kill the group regardless.
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(2.0)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        """Stop every process still running, newest first (clients before servers)."""
        for proc in reversed(list(self._procs)):
            self.stop(proc)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_for_port(proc: Proc, port: int, timeout_s: float) -> None:
    """Return once ``127.0.0.1:port`` accepts connections; raise if the process dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout_s:.0f}s")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree_pids(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children = _children_map()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/pid/stat`` after the command name, numbered from ``state`` = 0."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root``'s process tree, reaped children too."""
    ticks = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # utime, stime, cutime, cstime are stat fields 14..17, i.e. 11..14 after the name.
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / CLOCK_TICKS


def tree_sched_s(root: int) -> float:
    """On-CPU seconds of every thread in ``root``'s live tree, from ``/proc/*/task/*/schedstat``.

    The scheduler's nanosecond count, not tick samples: a cross-check for ``tree_cpu_s``,
    whose 10 ms ticks over- or under-charge a process that wakes briefly and in step with
    the tick (a gateway waiting on a timer-driven upstream at one connection does).
    """
    total_ns = 0
    for pid in tree_pids(root):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                total_ns += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return total_ns / 1e9


def peak_rss_kib(root: int) -> int:
    """Sum of ``VmHWM`` over ``root``'s live process tree, in KiB."""
    return _status_kib(root, "VmHWM:")


def rss_kib(root: int) -> int:
    """Sum of ``VmRSS`` (resident now) over ``root``'s live process tree, in KiB."""
    return _status_kib(root, "VmRSS:")


def _status_kib(root: int, key: str) -> int:
    total = 0
    for pid in tree_pids(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(key):
                total += int(line.split()[1])
    return total
