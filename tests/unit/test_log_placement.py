"""Rule logs record where the job ran: host, Slurm job and the GPUs it was given."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from avtrust.logs import PLACEMENT_VARS, placement, rule_logging


def test_placement_lists_only_the_variables_that_are_set(monkeypatch):
    for name in PLACEMENT_VARS:
        monkeypatch.delenv(name, raising=False)
    assert placement() == {"host": socket.gethostname()}
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_GPUS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert placement() == {
        "host": socket.gethostname(),
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_GPUS": "1",
        "CUDA_VISIBLE_DEVICES": "0",
    }


def test_rule_log_starts_with_wildcards_and_placement(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    log_path = tmp_path / "demo.log"
    smk = SimpleNamespace(
        log=[str(log_path)], rule="demo", wildcards=SimpleNamespace(items=lambda: [("shard", "0")])
    )
    with rule_logging(smk) as log:
        log.info("work")
    lines = log_path.read_text().splitlines()
    assert lines[0].endswith("wildcards: {'shard': '0'}")
    assert "placement: {'host': " in lines[1]
    assert "'SLURM_JOB_ID': '42'" in lines[1] and "'CUDA_VISIBLE_DEVICES': '3'" in lines[1]
    assert lines[2].endswith("work")
