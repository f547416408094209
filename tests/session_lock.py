"""One lock per test session, shared by the pytest-xdist workers.

Under pytest-xdist every worker has a temp root of its own inside the session's; what
the workers must share (the tiny build, the single Slurm cluster) lives in the
session's root, and a file lock there lets one worker at a time through.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def session_lock(tmp_path_factory, name: str) -> Iterator[Path]:
    """Hold the session-wide lock ``name``; yields the session's temp root."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' common parent
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root
