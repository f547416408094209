"""The single-node Slurm cluster of the tests in this folder (one per test module, so
no daemon outlives the module that needed it)."""

from __future__ import annotations

import pytest
from cluster import SlurmCluster, SlurmUnavailable, ensure_installed
from session_lock import session_lock


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running cluster; stopped (jobs cancelled, daemons ended) after the last test.

    One at a time: the clusters share /etc/slurm and their ports, and apt-get its lock,
    so under pytest-xdist a module on another worker waits for this one to finish.
    """
    with session_lock(tmp_path_factory, "avtrust-slurm"):
        try:
            ensure_installed()
        except SlurmUnavailable as exc:
            pytest.skip(f"Slurm cannot be installed on this machine: {exc}")
        cluster = SlurmCluster(tmp_path_factory.mktemp("avtrust-slurm-test"))
        try:
            yield cluster.start()
        finally:
            cluster.stop()
