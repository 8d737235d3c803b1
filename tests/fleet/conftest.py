"""Fleet tests: real redis-server (and redis-sentinel) processes and real router processes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))  # processes.py

if shutil.which("redis-server") is None:  # pragma: no cover - the README installs it
    pytest.fail("redis-server is not on PATH (the README's test command installs it)")
