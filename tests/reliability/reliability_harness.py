"""What the reliability tests share: the workflow runner of tests/workflow (loaded from its
conftest file, not copied), killing a run with SIGKILL, resuming it the way a user would,
and comparing folders byte for byte.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_WORKFLOW_CONFTEST = Path(__file__).resolve().parents[1] / "workflow" / "conftest.py"
_NAME = "avtrust_workflow_conftest"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, _WORKFLOW_CONFTEST)
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])
workflow = sys.modules[_NAME]

REPO: Path = workflow.REPO
TINY: Path = workflow.TINY
run_snakemake = workflow.run_snakemake
write_config = workflow.write_config

# Scratch names of avtrust.io / tempfile: ".<output name>.[<tag>.]<8 random>[.<suffix>]".
SCRATCH = re.compile(r"^\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]{1,8})?$")


def digests(workdir: Path, folders: list[str]) -> dict[str, str]:
    """sha256 of every file under ``folders`` of ``workdir`` (wall-clock fields aside)."""
    return workflow.result_digests(workdir, tuple(folders))


def newer_than(folder: Path, t0: float, suffix: str = "") -> list[Path]:
    """Entries under ``folder`` modified after ``t0`` (optionally only names ending in
    ``suffix``); an entry vanishing while we look is skipped."""
    found = []
    # os.walk, not Path.rglob: rglob raises when a folder is removed while it walks
    # (snakemake clears directory outputs of a --forcerun job), os.walk skips it.
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            path = Path(root) / name
            try:
                if path.stat().st_mtime > t0 and name.endswith(suffix):
                    found.append(path)
            except FileNotFoundError:
                continue
    return found


def kill_when(
    workdir: Path, args: list[str], ready: Callable[[float], bool], *, limit_s: float = 600
) -> int:
    """Start snakemake in its own process group and SIGKILL the whole group (snakemake,
    its job scripts, their ffmpeg children) as soon as ``ready(t0)`` is true; return the
    exit status (``-SIGKILL`` when killed, anything else: the run ended before ``ready``)."""
    cmd = [
        *workflow.SNAKEMAKE,
        "--directory",
        str(workdir),
        "--configfile",
        str(TINY),
        "--cores",
        "2",
        *args,
    ]
    t0 = time.time()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + limit_s
        while proc.poll() is None and time.monotonic() < deadline:
            if ready(t0):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _wait_group_gone(proc.pid)
    return proc.returncode


def _wait_group_gone(pgid: int, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@dataclass
class Resume:
    """How a killed run was resumed: the extra steps snakemake asked for, its output."""

    steps: list[str]
    output: str


def resume(workdir: Path, targets: list[str]) -> Resume:
    """Rerun ``targets`` as a user would after a kill: plain first, then ``--unlock`` when
    snakemake reports the stale lock and ``--rerun-incomplete`` once it reports incomplete
    outputs (each step at most once). Raises if the run still fails."""
    steps: list[str] = []
    while True:
        extra = ["--rerun-incomplete"] if "--rerun-incomplete" in steps else []
        proc = run_snakemake(workdir, "--cores", "2", *extra, *targets, check=False)
        if proc.returncode == 0:
            return Resume(steps, proc.stdout)
        if "LockException" in proc.stdout and "--unlock" not in steps:
            steps.append("--unlock")
            run_snakemake(workdir, "--unlock")
        elif "--rerun-incomplete" in proc.stdout and "--rerun-incomplete" not in steps:
            steps.append("--rerun-incomplete")
            run_snakemake(workdir, "--unlock")  # the refusing run may keep its lock
        else:
            raise AssertionError(f"resuming {targets} failed:\n{proc.stdout[-6000:]}")


def indexed_task(root: Path, raw: Path, task: str):
    """Index the clips of the ``folder`` dataset ``raw`` (none may be rejected), write its
    manifest under ``root`` and return (a TaskContext over it, the manifest table)."""
    from avtrust.bench.plan import read_manifest
    from avtrust.bench.samples import TaskContext
    from avtrust.datasets.index import index_dataset
    from avtrust.io import write_parquet_atomic

    manifest, rejects = index_dataset("clips", "folder", str(raw), decode_check=True)
    assert rejects.num_rows == 0, rejects.to_pylist()
    write_parquet_atomic(root / "manifest.parquet", manifest)
    ctx = TaskContext(
        bench="avtrustbench",
        task=task,
        samples=1,
        seed=0,
        clips=read_manifest(str(root / "manifest.parquet")),
        dataset="clips",
        wording={},
        media_root=str(root / "media"),
    )
    return ctx, manifest
