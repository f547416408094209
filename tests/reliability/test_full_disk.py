"""A full disk: a small tmpfs mounted over an output folder (needs root; skipped otherwise).

The error must name the file that could not be written, nothing may be left under an
output's name, a full disk must never be recorded as a per-sample reject (a rerun would
then keep the sample out for good), and a rerun after space is freed completes the job.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from reliability_harness import SCRATCH, digests, run_snakemake

from avtrust.errors import StorageError
from avtrust.io import write_json_atomic, write_parquet_atomic
from avtrust.media.ffmpeg import encode_clip


@contextlib.contextmanager
def full_tmpfs(folder: Path, size: str = "256k"):
    """Mount a tmpfs of ``size`` on ``folder`` and fill it up; unmount on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        filler = folder / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield filler
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "filler")


def test_writers_name_the_file_and_leave_nothing(tmp_path):
    out = tmp_path / "results"
    with full_tmpfs(out):
        table = pa.table({"x": np.arange(20000)})
        with pytest.raises(StorageError, match=r"manifest.parquet: cannot write it: No space"):
            write_parquet_atomic(out / "manifest.parquet", table)
        with pytest.raises(StorageError, match=r"plan.json: cannot write it"):
            write_json_atomic(out / "plan.json", {"rows": list(range(20000))})
        frames = np.zeros((8, 48, 64, 3), np.uint8)
        with pytest.raises(StorageError, match=r"clip.mp4.*No space left on device"):
            encode_clip(
                out / "clip.mp4",
                frames,
                np.zeros(16000, np.float32),
                fps=8,
                sample_rate=16000,
                video_codec={"vcodec": "libx264", "threads": 1},
                audio_codec={"acodec": "aac"},
            )
        assert visible(out) == []  # no output, no scratch file


def test_manipulate_stage_on_a_full_disk_fails_then_resumes(tiny_run, tmp_path):
    """The stage stops with the error in its log instead of turning every sample into a
    reject; once space is freed the same command finishes with the reference's bytes."""
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    task = "results/media/avtrustbench/MAT"
    reference = digests(tiny_run, [task])
    target = f"{task}/shards/0.parquet"
    with full_tmpfs(work / task) as filler:  # hides the reference's media of MAT
        proc = run_snakemake(
            work, "--cores", "1", "--forcerun", "manipulate_shard", "--", target, check=False
        )
        assert proc.returncode != 0
        log = (work / "logs/manipulate/avtrustbench/MAT/0.log").read_text()
        assert "StorageError" in log and "No space left on device" in log
        assert "results/media/avtrustbench/MAT/MAT-0000" in log  # names the output file
        assert not (work / target).exists()
        assert [n for n in visible(work / task) if n != "shards"] == []
        assert not any(SCRATCH.match(p.name) for p in (work / task).rglob("*"))
        filler.unlink()
        run_snakemake(work, "--cores", "1", target)
        rerun = digests(work, [task])
        assert {k: v for k, v in rerun.items() if k in reference} == {
            k: v for k, v in reference.items() if k in rerun
        }
        assert f"{target}" in rerun and rerun[target] == reference[target]
