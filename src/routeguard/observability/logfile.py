"""A log file that survives ``logrotate``: reopened on SIGHUP or when its path changes identity.

``logrotate`` (``create`` mode, its default) renames the live file and expects the writer to
start a new one, signalled by SIGHUP (``postrotate kill -HUP``). A writer that never hears the
signal, or is rotated by another tool, would write into the renamed file forever; so the path
is also checked, at most once a second and only when there is something to write: if it names
a different file (or none), the file is reopened. Lines written between the rename and the
reopen land at the end of the rotated file: none is lost. Writes are ``O_APPEND`` and whole
(one ``write`` per flushed batch), so several processes may share one file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["ReopeningFile"]


class ReopeningFile:
    """The ``write``/``flush`` of a text stream over a path that may be rotated away."""

    def __init__(
        self,
        path: str | Path,
        *,
        check_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._check_s = check_s
        self._clock = clock
        self._lock = threading.Lock()
        self._fd = -1
        self._checked_at = 0.0
        self.reopened = 0
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._checked_at = self._clock()

    def reopen(self) -> None:
        """Close and open the path again (SIGHUP after a rotation)."""
        with self._lock:
            old, self._fd = self._fd, -1
            if old >= 0:
                os.close(old)
            self._open()
            self.reopened += 1

    def _rotated(self) -> bool:
        now = self._clock()
        if now - self._checked_at < self._check_s:
            return False
        self._checked_at = now
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return True
        held = os.fstat(self._fd)
        return (on_disk.st_dev, on_disk.st_ino) != (held.st_dev, held.st_ino)

    def write(self, text: str) -> int:
        if self._rotated():
            self.reopen()
        data = text.encode()
        with self._lock:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        return len(text)

    def flush(self) -> None:
        """Writes go straight to the file; nothing is buffered here."""

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
