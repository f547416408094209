"""Training launch under Slurm: the GPUs a job was given and the multi-node layout.

One machine cannot host two nodes, so multi-node is tested with the environment Slurm
sets on the second node of a two-node job (SLURM_NNODES, SLURM_NODEID,
SLURM_JOB_NODELIST), and the single-node path inside a real job of the test cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from avtrust.train.launch import first_host, main_host, node_launcher_argv, topology

pytestmark = pytest.mark.slurm

NODE_ENV = {  # what Slurm sets for task 1 of `sbatch --nodes=2 --gpus-per-node=a800:4`
    "SLURM_JOB_ID": "77",
    "SLURM_NNODES": "2",
    "SLURM_NODEID": "1",
    "SLURM_JOB_NODELIST": "rack[1-2]-gpu[01-02]",
    "SLURM_GPUS_ON_NODE": "4",
    "CUDA_VISIBLE_DEVICES": "0,1,2,3",
}


def node_command(env: dict[str, str], *extra: str) -> list[str]:
    """The accelerate argv `python -m avtrust.train.launch --print` builds in ``env``."""
    proc = subprocess.run(
        [sys.executable, "-m", "avtrust.train.launch", "--print", *extra, "--", "--seed", "7"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
        check=True,
    )
    return json.loads(proc.stdout)


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_main_host_inside_a_job_is_expanded_by_scontrol(cluster):
    # Two bracket groups: beyond the regex fallback, read right by Slurm itself.
    env = {**cluster.env, "SLURM_JOB_ID": "77"}
    assert main_host("rack[1-2]-gpu[01-02]", env) == "rack1-gpu01"
    assert main_host("gpu[07-08],cpu1", env) == "gpu07"
    assert first_host("rack[1-2]-gpu[01-02]") == "rack1"
    assert main_host("gpu[07-08],cpu1", {"PATH": ""}) == "gpu07"  # no scontrol: fallback


def test_every_node_gets_its_rank_and_the_same_main_address(cluster):
    ranks = []
    for node in ("0", "1"):
        env = {**NODE_ENV, "SLURM_NODEID": node, "SLURM_CONF": str(cluster.conf)}
        argv = node_command(env, "--precision", "bf16")
        assert option(argv, "--num_machines") == "2"
        assert option(argv, "--num_processes") == "8"  # 4 GPUs per node x 2 nodes
        assert option(argv, "--main_process_port") == "29500"
        assert option(argv, "--main_process_ip") == "rack1-gpu01"
        assert argv[-3:] == ["avtrust.train.job", "--seed", "7"]
        ranks.append(option(argv, "--machine_rank"))
    assert ranks == ["0", "1"]
    explicit = node_command({**NODE_ENV, "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "31000"})
    assert option(explicit, "--main_process_ip") == "10.0.0.5"
    assert option(explicit, "--main_process_port") == "31000"


def test_multi_node_starts_one_launcher_per_node():
    argv = node_launcher_argv(["--seed", "7"], 2, precision="bf16")
    assert argv[:4] == ["srun", "--overlap", "--nodes=2", "--ntasks-per-node=1"]
    assert argv[argv.index("-m") + 1] == "avtrust.train.launch"
    assert argv[argv.index("--") :] == ["--", "--seed", "7"]
    assert topology(0, {"SLURM_NNODES": "1", "SLURM_GPUS_ON_NODE": "3"}).processes == 3


def test_launch_inside_a_slurm_job_uses_the_allocated_gpus(cluster, tmp_path):
    out = tmp_path / "argv.json"
    launcher = node_launcher_argv(["--seed", "7"], 1, precision="bf16")
    launcher.insert(launcher.index("--"), "--print")
    script = tmp_path / "job.sh"
    script.write_text(
        f"#!/bin/sh\n{' '.join(launcher)} > {out}\n"  # the arguments are plain words
    )
    proc = cluster.run(
        "sbatch",
        "--wait",
        f"--partition={cluster.gpu_partition}",
        f"--gpus={cluster.gpu_type}:2",
        f"--output={tmp_path / 'job.log'}",
        str(script),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + (tmp_path / "job.log").read_text()
    argv = json.loads(out.read_text())
    assert option(argv, "--num_processes") == "2"
    assert option(argv, "--num_machines") == "1"
    assert "--multi_gpu" in argv and "--main_process_ip" not in argv
