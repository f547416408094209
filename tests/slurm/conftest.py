"""The single-node Slurm cluster of the tests in this folder (one per test module, so
no daemon outlives the module that needed it)."""

from __future__ import annotations

import fcntl
import os

import pytest
from cluster import SlurmCluster, SlurmUnavailable, ensure_installed


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running cluster; stopped (jobs cancelled, daemons ended) after the last test.

    One at a time: the clusters share /etc/slurm and their ports, and apt-get its lock,
    so under pytest-xdist a module on another worker waits for this one to finish.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    with open(root / "avtrust-slurm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            ensure_installed()
        except SlurmUnavailable as exc:
            pytest.skip(f"Slurm cannot be installed on this machine: {exc}")
        cluster = SlurmCluster(tmp_path_factory.mktemp("avtrust-slurm-test"))
        try:
            yield cluster.start()
        finally:
            cluster.stop()
