"""A throw-away single-node Slurm cluster for the tests (munge + slurmctld + slurmd).

Everything lives in one temporary directory: munge key and socket, slurm.conf, gres.conf,
state, spool, pid and log files. The daemons run in the foreground as children of the
test process (no systemd) and are stopped by :meth:`SlurmCluster.stop`.

Fake GPUs: ``gres.conf`` declares ``gpus`` GPUs of type ``gpu_type`` backed by character
devices made with ``mknod`` in the temporary directory (numbered ``nvidia<i>`` so Slurm
derives CUDA_VISIBLE_DEVICES from them). Slurm checks only that they exist.

One path outside the temporary directory is touched: the executor plugin's job step runs
``srun`` with every SLURM_* variable (SLURM_CONF included) removed from its environment, so
``srun`` reads the compiled-in ``/etc/slurm/slurm.conf``. The cluster links that path to its
own slurm.conf while it runs (only where no other file is there) and removes the link on stop.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo", "scancel", "srun")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "avtrust-slurm-test"  # in every path this module creates


class SlurmUnavailable(RuntimeError):
    """Slurm is not installed and cannot be installed here (the reason is the message)."""


def _which(name: str) -> str | None:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin"
    return shutil.which(name, path=path)


def missing_programs() -> list[str]:
    return [name for name in DAEMONS + CLIENTS if _which(name) is None]


def ensure_installed() -> None:
    """Install the Debian Slurm and munge packages if a program is missing.

    Raises SlurmUnavailable (with the reason) where that is impossible: not root, no
    apt-get, or apt-get failing.
    """
    missing = missing_programs()
    if not missing:
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable(
            f"Slurm programs {missing} are missing and installing them needs root "
            f"(apt-get install {' '.join(PACKAGES)})"
        )
    apt = _which("apt-get")
    if apt is None:
        raise SlurmUnavailable(f"Slurm programs {missing} are missing and there is no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        [apt, "update", "-qq"],
        [apt, "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise SlurmUnavailable(
                f"'{' '.join(cmd)}' failed ({proc.returncode}): {proc.stderr.strip()[-800:]}"
            )
    still = missing_programs()
    if still:
        raise SlurmUnavailable(f"after apt-get install, still missing: {still}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SlurmCluster:
    """One node, a CPU and a GPU partition, ``gpus`` fake GPUs, no accounting."""

    root: Path
    cpu_partition: str = "debug"
    gpu_partition: str = "gpu"
    gpu_type: str = "a800"
    gpus: int = 2
    cpus: int = 16  # declared, not real: SlurmdParameters=config_overrides
    memory_mb: int = 262144
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    linked_system_conf: bool = False

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    # configuration -------------------------------------------------------------------
    def write_config(self) -> None:
        for sub in ("state", "spool", "munge", "devices", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(self.root / sub, 0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)
        devices = []
        for index in range(self.gpus):
            dev = self.root / "devices" / f"nvidia{index}"
            if not dev.exists():
                null = os.stat("/dev/null").st_rdev
                os.mknod(dev, 0o666 | stat.S_IFCHR, null)
            devices.append(dev)
        user = getpass.getuser()
        r = self.root
        lines = [
            f"ClusterName={MARKER.replace('-', '')}",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r / 'munge' / 'munge.socket'}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "SlurmdParameters=config_overrides",
            # Finished jobs stay visible to squeue for an hour: the executor's squeue
            # status checks need >= 120 s, the tests read every job's final state.
            "MinJobAge=3600",
            "SchedulerType=sched/builtin",
            "SchedulerParameters=sched_interval=2",
            "MessageTimeout=20",
            "GresTypes=gpu",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={self.memory_mb} Gres=gpu:{self.gpu_type}:{self.gpus} State=UNKNOWN",
            f"PartitionName={self.cpu_partition} Nodes={self.node} Default=YES "
            "MaxTime=INFINITE State=UP",
            f"PartitionName={self.gpu_partition} Nodes={self.node} MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        gres = [f"NodeName={self.node} Name=gpu Type={self.gpu_type} File={d}" for d in devices]
        (self.root / "gres.conf").write_text("\n".join(gres) + "\n")

    # lifecycle -----------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "wb")  # noqa: SIM115 (closed by the child)
        self.processes[name] = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        out.close()

    def _wait(self, what: str, ready, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}:\n{self.logs()}")

    def _link_system_conf(self) -> None:
        if SYSTEM_CONF.is_symlink() and MARKER in os.readlink(SYSTEM_CONF):
            SYSTEM_CONF.unlink()  # left behind by a killed earlier run
        if SYSTEM_CONF.exists():
            raise RuntimeError(
                f"{SYSTEM_CONF} exists: this machine has a real Slurm configuration, "
                "which the test cluster will not replace"
            )
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self.linked_system_conf = True

    def start(self) -> SlurmCluster:
        if MARKER not in str(self.root):
            raise ValueError(f"cluster directory must contain {MARKER!r}: {self.root}")
        self.write_config()
        self._link_system_conf()
        munge = self.root / "munge"
        self._spawn(
            "munged",
            [
                _which("munged"),
                "--foreground",
                "--force",
                f"--key-file={munge / 'munge.key'}",
                f"--socket={munge / 'munge.socket'}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--seed-file={munge / 'munged.seed'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
            ],
        )
        self._wait("munged", (munge / "munge.socket").exists)
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-c", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self.run("scontrol", "ping", check=False).returncode == 0)
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.node])
        self._wait("an idle node", lambda: self.node_state() in {"idle", "mixed", "allocated"})
        return self

    def node_state(self) -> str:
        proc = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%T", check=False)
        return proc.stdout.strip().split("\n")[0].rstrip("*~#") if proc.returncode == 0 else ""

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        return subprocess.run(
            [_which(argv[0]), *argv[1:]], capture_output=True, text=True, env=self.env, check=check
        )

    def jobs(self) -> list[str]:
        """squeue lines 'id|name|state|partition|tres' of the jobs the controller knows."""
        proc = self.run("squeue", "-h", "-t", "all", "-o", "%i|%j|%T|%P|%b", check=False)
        return [line for line in proc.stdout.splitlines() if line.strip()]

    def stop(self) -> None:
        """Cancel every job, stop the daemons (newest first), remove the system link."""
        try:
            if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
                self.run("scancel", "--user", getpass.getuser(), check=False)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and any(
                    "|RUNNING|" in j or "|COMPLETING|" in j for j in self.jobs()
                ):
                    time.sleep(1)
        finally:
            for name in reversed(list(self.processes)):
                proc = self.processes[name]
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            if self.linked_system_conf and SYSTEM_CONF.is_symlink():
                SYSTEM_CONF.unlink()
                self.linked_system_conf = False

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)
