"""The ``accelerate launch`` command of a training run, as an argument list.

One training job = one node. The number of processes is ``training.processes`` or,
when that is 0, the GPUs the job was given: Slurm's ``SLURM_GPUS_ON_NODE`` (set with
``--gpus``/``--gres``), else ``CUDA_VISIBLE_DEVICES``, else 1. Mixed precision comes from
``training.precision`` (``bf16`` on A800/H100), DeepSpeed ZeRO from an accelerate
config file (``training.accelerate_config``, e.g. ``config/accelerate/zero2.yaml``).

Several nodes: start the same job step once per node (``srun --ntasks-per-node=1``);
each copy reads ``SLURM_NNODES`` (machines), ``SLURM_NODEID`` (its rank) and the main
node's address from ``MASTER_ADDR`` (or the first host of ``SLURM_JOB_NODELIST``), with
``MASTER_PORT`` (default 29500). Processes are then per node.

CPU runs with several processes (tests) use the gloo backend: accelerate's multi-process
launcher with ``ACCELERATE_USE_CPU=1`` in the environment.

Never a shell string: :func:`launch` runs the list with ``subprocess.run``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from avtrust.errors import ConfigError

PRECISIONS = ("no", "bf16", "fp16")


@dataclass(frozen=True)
class Topology:
    processes: int  # per node
    machines: int = 1
    machine_rank: int = 0
    main_address: str | None = None
    main_port: int = 29500


def visible_gpus(env: Mapping[str, str]) -> int:
    """GPUs given to this job on this node (0 if none can be told)."""
    for key in ("SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE"):
        value = env.get(key, "")
        # "2" or "a800:2"
        match = re.fullmatch(r"(?:[\w-]+:)?(\d+)", value.strip())
        if match:
            return int(match.group(1))
    devices = env.get("CUDA_VISIBLE_DEVICES", "").strip()
    if devices and devices != "-1":
        return len([d for d in devices.split(",") if d.strip()])
    return 0


def first_host(nodelist: str) -> str | None:
    """The first host of a Slurm node list: ``gpu[03-05,07],cpu1`` → ``gpu03``."""
    nodelist = nodelist.strip()
    if not nodelist:
        return None
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist)
    if not match:
        return None
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    first = ranges.split(",")[0].split("-")[0]
    return prefix + first


def main_host(nodelist: str, env: Mapping[str, str]) -> str | None:
    """The first host of a node list. Inside a Slurm job (``SLURM_JOB_ID`` set, so the
    Slurm configuration is there) as ``scontrol show hostnames`` expands it, which knows
    every hostlist form (``rack[1-2]-gpu[01-04]``); otherwise :func:`first_host`."""
    scontrol = shutil.which("scontrol", path=env.get("PATH"))
    if scontrol and nodelist.strip() and env.get("SLURM_JOB_ID"):
        try:
            proc = subprocess.run(
                [scontrol, "show", "hostnames", nodelist],
                capture_output=True,
                text=True,
                env=dict(env),
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return first_host(nodelist)
        hosts = proc.stdout.split()
        if proc.returncode == 0 and hosts:
            return hosts[0]
    return first_host(nodelist)


def free_port() -> int:
    """A TCP port no process of this machine listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def topology(processes: int, env: Mapping[str, str] | None = None) -> Topology:
    """Processes per node and the multi-node layout from the config and Slurm's env."""
    env = os.environ if env is None else env
    if processes < 0:
        raise ConfigError(f"config: training.processes must be >= 0, not {processes}")
    n = processes or max(1, visible_gpus(env))
    machines = int(env.get("SLURM_NNODES", "1") or 1)
    if machines <= 1:
        # Two training jobs of one machine (Snakemake runs jobs side by side) must not
        # share a rendezvous port: one the system has free, unless the user names one.
        if n == 1:
            return Topology(processes=n)
        port = int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else free_port()
        return Topology(processes=n, main_port=port)
    address = env.get("MASTER_ADDR") or main_host(env.get("SLURM_JOB_NODELIST", ""), env)
    if not address:
        raise ConfigError("multi-node training needs MASTER_ADDR or SLURM_JOB_NODELIST")
    return Topology(
        processes=n,
        machines=machines,
        machine_rank=int(env.get("SLURM_NODEID", "0")),
        main_address=address,
        main_port=int(env.get("MASTER_PORT", "29500")),
    )


def accelerate_argv(
    module_args: Sequence[str],
    topo: Topology,
    *,
    precision: str = "no",
    cpu: bool = False,
    config_file: str | None = None,
    python: str = sys.executable,
    module: str = "avtrust.train.job",
) -> list[str]:
    """``python -m accelerate.commands.launch ... -m <module> <module_args>``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"config: training.precision must be one of {PRECISIONS}")
    if cpu and precision == "fp16":
        raise ConfigError("config: training.precision fp16 needs a GPU (use no or bf16)")
    total = topo.processes * topo.machines
    argv = [python, "-m", "accelerate.commands.launch"]
    if config_file:
        argv += ["--config_file", str(config_file)]
    elif total > 1:
        argv.append("--multi_gpu")
    argv += [
        "--num_processes",
        str(total),
        "--num_machines",
        str(topo.machines),
        "--machine_rank",
        str(topo.machine_rank),
        "--mixed_precision",
        precision,
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(topo.main_port),
    ]
    if topo.main_address:
        argv += ["--main_process_ip", topo.main_address]
    if cpu and total == 1:
        argv.append("--cpu")
    return [*argv, "-m", module, *module_args]


def launch_env(cpu: bool, threads: int, env: Mapping[str, str] | None = None) -> dict:
    out = dict(os.environ if env is None else env)
    if cpu:
        out["ACCELERATE_USE_CPU"] = "1"
    out.setdefault("OMP_NUM_THREADS", str(max(1, threads)))
    return out


def launch(argv: Sequence[str], env: Mapping[str, str], log=None) -> None:
    """Run the launcher; its output goes to this process's stderr (the rule's log)."""
    if log:
        log.info("launch: %s", " ".join(argv))
    # The children write to this process's stderr, i.e. the rule's log when run by
    # avtrust.logs.rule_logging (a real file there).
    try:
        sink = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        sink = None
    proc = subprocess.run(list(argv), env=dict(env), check=False, stdout=sink, stderr=sink)
    if proc.returncode != 0:
        raise RuntimeError(f"training processes failed with exit status {proc.returncode}")


def start(
    in_place: Callable[[], object],
    module_args: Sequence[str],
    processes: int,
    *,
    module: str = "avtrust.train.job",
    precision: str = "no",
    cpu: bool = False,
    threads: int = 1,
    config_file: str | None = None,
    log=None,
) -> None:
    """Run a training job's processes: ``in_place()`` in this process when the run is a
    single process without an accelerate config file (no launcher start-up), otherwise
    ``accelerate launch ... -m module module_args`` (:func:`accelerate_argv`)."""
    topo = topology(processes)
    if topo.machines > 1:
        # This job step runs on the first node only: one launcher per node, each of
        # which builds its own accelerate command (machine rank from SLURM_NODEID).
        argv = node_launcher_argv(
            module_args,
            topo.machines,
            processes=processes,
            precision=precision,
            config_file=config_file,
            module=module,
        )
        launch(argv, launch_env(cpu, threads), log)
        return
    if topo.processes * topo.machines == 1 and not config_file:
        import torch

        torch.set_num_threads(max(1, threads))
        in_place()
        return
    argv = accelerate_argv(
        module_args, topo, precision=precision, cpu=cpu, config_file=config_file, module=module
    )
    launch(argv, launch_env(cpu, threads), log)


def node_launcher_argv(
    module_args: Sequence[str],
    machines: int,
    *,
    processes: int = 0,
    precision: str = "no",
    config_file: str | None = None,
    module: str = "avtrust.train.job",
    python: str = sys.executable,
) -> list[str]:
    """Several nodes: ``srun`` (from inside the Snakemake job, whose own step holds one
    task) starts ``python -m avtrust.train.launch`` once per node; each copy reads its
    own ``SLURM_NODEID`` and GPUs, so every node gets its machine rank."""
    argv = ["srun", "--overlap", f"--nodes={machines}", "--ntasks-per-node=1"]
    argv += ["--kill-on-bad-exit=1", python, "-m", "avtrust.train.launch"]
    argv += ["--processes", str(processes), "--precision", precision, "--module", module]
    if config_file:
        argv += ["--config-file", str(config_file)]
    return [*argv, "--", *module_args]


def zero_stage(config_file: str | os.PathLike) -> int | None:
    """The DeepSpeed ZeRO stage an accelerate config file asks for (None: no DeepSpeed),
    from its ``deepspeed_config.zero_stage`` or the JSON file it points to (a relative
    path is taken from the working directory, as accelerate does)."""
    import json

    import yaml

    try:
        with open(config_file, encoding="utf-8") as f:
            accel = yaml.safe_load(f) or {}
        ds = accel.get("deepspeed_config") or {}
        if ds.get("deepspeed_config_file"):
            with open(ds["deepspeed_config_file"], encoding="utf-8") as f:
                return json.load(f).get("zero_optimization", {}).get("stage")
    except (OSError, ValueError, AttributeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config: accelerate config {config_file} is unreadable: {exc}") from exc
    return ds.get("zero_stage")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtrust.train.launch [options] -- <module args>``: the accelerate
    command for this node (``--print`` shows it as JSON instead of running it)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m avtrust.train.launch")
    parser.add_argument("--processes", type=int, default=0, help="per node; 0: GPUs given")
    parser.add_argument("--precision", default="no", choices=PRECISIONS)
    parser.add_argument("--config-file", default=None, help="accelerate config (DeepSpeed)")
    parser.add_argument("--module", default="avtrust.train.job")
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--print", action="store_true", help="print the command, run nothing")
    parser.add_argument("module_args", nargs="*")
    args = parser.parse_args(argv)
    cmd = accelerate_argv(
        args.module_args,
        topology(args.processes),
        precision=args.precision,
        cpu=args.cpu,
        config_file=args.config_file,
        module=args.module,
    )
    if args.print:
        print(json.dumps(cmd))
        return 0
    return subprocess.run(cmd, env=launch_env(args.cpu, 1), check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
