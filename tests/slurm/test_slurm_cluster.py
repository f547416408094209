"""The workflow on a real single-node Slurm cluster started for these tests.

The cluster (tests/slurm/cluster.py) has two partitions, `debug` (CPU) and `gpu`, two
fake A800s declared as gres, and no accounting. The workflow runs through a copy of
profiles/slurm/config.yaml in which only what a user changes for their own cluster
differs: partition names, the account (none here) and the polling and parallelism
sized for a 2-core test machine (see `cluster_profile`). Skipped only where Slurm
cannot be installed (not root, no apt-get).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml
from cluster import SlurmCluster

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
FAULTS = Path(__file__).with_name("faults.smk")


def _workflow_helpers():
    """tests/workflow/conftest.py (run_snakemake, build_tiny, TINY) as a plain module."""
    path = REPO / "tests" / "workflow" / "conftest.py"
    spec = importlib.util.spec_from_file_location("avtrust_workflow_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wf = _workflow_helpers()


# CAVPref's checkpoint and RL-CoMM's metrics, rebuilt from the scoring stage on: every
# GPU rule (both scorings, SFT-style and RL training, evaluation, the m2 judge) and CPU
# rules between them (pairs, RL-CoMM data, clip decoding, merging, metrics), 21 jobs. The
# stages before scoring are copied from the local run (`seed_from`): they are CPU rules
# that add no kind of job and would cost CI ~65 more jobs of sbatch round trips.
SLURM_TARGETS = ("results/checkpoints/cavpref/metrics.json", "results/metrics/rlcomm.parquet")
SLURM_FROM = ("score_pairs", "reference_reasoning")
# Test-machine settings that replace the profile's: fast polling (MinJobAge is 300 on the
# test cluster, so squeue stays valid), few parallel jobs, and a local filesystem.
TEST_SETTINGS = {
    "jobs": 4,
    "slurm-init-seconds-before-status-checks": 2,
    "max-status-checks-per-second": 2,
    "latency-wait": 10,
}


def cluster_profile(cluster: SlurmCluster, dest: Path) -> Path:
    """profiles/slurm with the test cluster's partitions, no account, TEST_SETTINGS.

    `set-threads` is dropped and every GPU job asks for one GPU: the rules keep the
    config's thread counts and one training process (training.processes 0 = the GPUs
    given), as in the local run the outputs are compared with.
    """
    settings = yaml.safe_load(PROFILE.read_text())
    # YAML aliases (`*train`) share one dict between rules: give each rule its own.
    settings["set-resources"] = {r: dict(res) for r, res in settings["set-resources"].items()}
    cpu = settings["default-resources"]["slurm_partition"]
    gpu = settings["set-resources"]["score_pairs"]["slurm_partition"]
    rename = {cpu: cluster.cpu_partition, gpu: cluster.gpu_partition}
    for resources in [settings["default-resources"], *settings["set-resources"].values()]:
        resources.pop("slurm_account", None)
        if "slurm_partition" in resources:
            resources["slurm_partition"] = rename[resources["slurm_partition"]]
        if resources.get("gpu", 0) > 1:
            resources["gpu"] = 1
    settings.pop("set-threads")
    settings.update(TEST_SETTINGS)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return dest


def gpu_rules() -> set[str]:
    resources = yaml.safe_load(PROFILE.read_text())["set-resources"]
    return {rule for rule, res in resources.items() if res.get("gpu", 0) > 0}


def slurm_logs(workdir: Path) -> dict[str, list[Path]]:
    """The executor's per-job logs: logs/slurm/rule_<rule>/<wildcards>/<jobid>.log."""
    out: dict[str, list[Path]] = {}
    for path in sorted((workdir / "logs" / "slurm").rglob("*.log")):
        rule = path.relative_to(workdir / "logs" / "slurm").parts[0].removeprefix("rule_")
        out.setdefault(rule, []).append(path)
    return out


def test_cluster_profile_changes_only_site_settings(cluster, tmp_path):
    real = yaml.safe_load(PROFILE.read_text())
    test = yaml.safe_load((cluster_profile(cluster, tmp_path) / "config.yaml").read_text())
    changed = {k for k in real.keys() | test.keys() if real.get(k) != test.get(k)}
    assert changed == {"default-resources", "set-resources", "set-threads", *TEST_SETTINGS}
    assert test["executor"] == "slurm" and test["slurm-status-command"] == "squeue"
    for rule, res in test["set-resources"].items():
        assert "slurm_account" not in res
        expected = cluster.gpu_partition if rule in gpu_rules() else cluster.cpu_partition
        assert res.get("slurm_partition", cluster.cpu_partition) == expected, rule
        assert res.get("gpu", 0) == min(real["set-resources"][rule].get("gpu", 0), 1)
        site = {"slurm_partition", "gpu"}
        assert {k: v for k, v in res.items() if k not in site} == {
            k: v for k, v in real["set-resources"][rule].items() if k not in site
        }


def seed_from(local: Path, workdir: Path) -> float:
    """A copy of the finished local run (files, their times and Snakemake's records;
    not its logs, so every rule log in ``workdir`` comes from a Slurm job); returns the
    time after the copy: a file newer than that was written by the Slurm run."""

    def top_logs(folder, _names):
        return ["logs"] if Path(folder) == local else []

    shutil.copytree(local, workdir, symlinks=True, ignore=top_logs)
    time.sleep(0.01)  # files written after this are newer at any mtime resolution
    return time.time()


def test_tiny_workflow_on_slurm_matches_local_run(cluster, tmp_path, tmp_path_factory):
    local = wf.build_tiny(tmp_path_factory)
    workdir = tmp_path / "run"
    seeded = seed_from(local, workdir)
    profile = cluster_profile(cluster, tmp_path / "profile")
    proc = wf.run_snakemake(
        workdir, "--profile", str(profile), *SLURM_TARGETS, "--forcerun", *SLURM_FROM
    )
    planned = wf.planned_jobs(proc)
    assert {"score_pairs", "reference_reasoning", "train", "rlcomm_train", "judge_m2"} <= set(
        planned
    )
    assert set(planned) - gpu_rules() - {"all"}, "no CPU rule in the run"
    submitted = set(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", proc.stdout))

    # Every job of every rule (except the target rule `all`) went through sbatch.
    logs = slurm_logs(workdir)
    assert {r: len(v) for r, v in logs.items()} == {r: n for r, n in planned.items() if r != "all"}
    assert {p.stem for paths in logs.values() for p in paths} == submitted
    states = {line.split("|")[0]: line.split("|") for line in cluster.jobs()}
    assert submitted <= set(states)
    assert {states[j][2] for j in submitted} == {"COMPLETED"}

    # GPU rules ran on the GPU partition with a GPU of their own; CPU rules without one.
    gpu = gpu_rules() & set(planned)
    assert gpu, f"no GPU rule in the run: {sorted(planned)}"
    for rule, paths in logs.items():
        for path in paths:
            partition = states[path.stem][3]
            assert partition == (cluster.gpu_partition if rule in gpu else cluster.cpu_partition)
    placements = {}  # rule log -> the placement line its job wrote
    for rule_log in (workdir / "logs").rglob("*.log"):
        found = re.search(r"placement: (\{.*\})", rule_log.read_text(errors="replace"))
        if found and "logs/slurm" not in rule_log.as_posix():
            placements[rule_log.relative_to(workdir).as_posix()] = ast.literal_eval(found[1])
    assert all("SLURM_JOB_ID" in p for p in placements.values())
    with_gpu = {
        k: v["CUDA_VISIBLE_DEVICES"] for k, v in placements.items() if "CUDA_VISIBLE_DEVICES" in v
    }
    assert set(with_gpu.values()) <= {"0", "1"}
    assert {"logs/score/pairs/0.log", "logs/score/reference/0.log"} <= set(with_gpu)
    cpu_stages = ("logs/decode/train/", "logs/score/cavpref_pairs", "logs/score/rlcomm_data")
    assert [k for k in placements if k.startswith(cpu_stages)]
    assert not [k for k in with_gpu if k.startswith(cpu_stages)]

    # What the Slurm jobs wrote: the same bytes as the local run of the same config
    # (wall-clock fields left out).
    ours, theirs = wf.result_digests(workdir), wf.result_digests(local)
    rebuilt = {name for name in ours if (workdir / name).stat().st_mtime > seeded}
    for stage in ("score/cavpref/", "score/rlcomm/", "checkpoints/cavpref/", "checkpoints/rlcomm",
                  "predictions/rlcomm/", "judge/rlcomm/", "metrics/rlcomm"):  # fmt: skip
        assert any(name.startswith(f"results/{stage}") for name in rebuilt), stage
    assert rebuilt <= set(theirs)
    assert [name for name in rebuilt if ours[name] != theirs[name]] == []


def test_failures_are_retried_or_stop_only_their_branch(cluster, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    profile = cluster_profile(cluster, tmp_path / "profile")
    targets = [
        "resources/raw/sounds",  # a real rule, independent of the faults
        "results/faults/after_flaky.txt",
        "results/faults/after_always.txt",
    ]
    proc = wf.run_snakemake(
        workdir, "-s", str(FAULTS), "--profile", str(profile), *targets, check=False
    )
    assert proc.returncode != 0
    logs = slurm_logs(workdir)

    # Fails once, is resubmitted (retries: 2 in the profile) and its branch completes.
    assert len(logs["flaky_once"]) == 2
    assert (workdir / "results" / "faults" / "after_flaky.txt").read_text() == "recovered\n"
    assert (workdir / "resources" / "raw" / "sounds").is_dir()

    # Fails on every attempt: 1 + 2 retries, then only its branch stops.
    assert len(logs["always_fails"]) == 3
    assert not (workdir / "results" / "faults" / "always.txt").exists()
    assert "after_always" not in logs
    assert not (workdir / "results" / "faults" / "after_always.txt").exists()

    # Reported with the rule log and the Slurm log of the failed job.
    assert "Error in rule always_fails" in proc.stdout
    assert "logs/faults/always_fails.log" in proc.stdout
    last = logs["always_fails"][-1]
    assert str(last.relative_to(workdir)) in proc.stdout or str(last) in proc.stdout
    rule_log = workdir / "logs" / "faults" / "always_fails.log"
    assert rule_log.read_text() == "injected failure (every attempt)\n"
