"""GPU check of the workflow's own training jobs: SFT, DPO, CAVPref and an RL-CoMM GRPO
stage run as the ``train`` / ``rlcomm_train`` rules run them, in bf16, a few optimiser
steps each, on the device given (``cuda`` on a GPU machine, ``cpu`` for the test).

Each job is ``workflow/scripts/train.py`` itself, executed in a fresh Python process
(as Snakemake's ``script:`` directive does) with a stand-in for the ``snakemake`` object
that the rule would pass: its inputs, outputs, log, threads and ``params.job`` built by
the workflow's own functions (:func:`avtrust.train.config.job_settings` for the train
rule, :func:`avtrust.train.rlcomm.stage_settings` for rlcomm_train) from the
``training`` and ``rlcomm`` sections a run with ``--configfile config/paper.yaml`` sees
(merged into config/config.yaml, the schema's defaults filled in; what users run on A800
nodes: LoRA r 64, gradient checkpointing, grad accumulation, precision bf16) with the
device, the step counts and the batch sizes of this check put in and tracking off. From
there on the path is the workflow's: ``rule_logging`` → ``make_spec`` → ``train_job`` →
``avtrust.train.launch.start`` → ``execute`` → ``save``.

Two launch modes (``--launch``, both by default):

- ``in-place``: ``processes: 1`` and no accelerate config, the job trains in its own
  process (a one-GPU job: ``training.processes`` 1, or 0 with one GPU given);
- ``accelerate``: ``processes: 1`` with an accelerate config file (no DeepSpeed,
  mixed precision as ``--precision``): ``launch.start`` runs ``accelerate launch ...
  -m avtrust.train.job spec.json`` (the multi-GPU path, at one process).

The tiny Omni thinker is built as the workflow's models stage builds it
(``registry.prepare`` of ``config/config.yaml``'s ``models.omni``, no download); the
clips are synthesised with the project's generators (``bench/eval_throughput.py``'s
AVTrustBench-shaped rows); the split, the benchmark table, the CAVPref pairs (with the
config's η/γ per task) and the RL-CoMM reference rows are written in the files' schemas.
The GRPO stage is ``rlcomm_steprr`` (format + r_arr + r_avc; the tiny Qwen3 embedder,
which needs sentence-transformers) or, where sentence-transformers is missing,
``grpo_acc`` (format + accuracy): the same trainer, merge and save path
(``--grpo-stage``).

After each job: the process exited 0, ``log.jsonl`` has one row per optimiser step with
a finite loss (and finite grad norm), ``metrics.json`` counts the steps, the checkpoint
has its ``avtrust_checkpoint.json`` and its weights (the LoRA adapter, or for the GRPO
stage the merged full weights), every saved tensor finite. A failing job is recorded
(the tail of its log) and the others still run. The summary (per job: wall seconds,
losses, peak GPU memory on cuda, ok / error) goes to ``--out`` and stdout; the exit
status is 1 if any job failed. The jobs' logs are kept next to the summary.

Run it through ``bench/gpu_train_check.sh`` (sets ``PYTHONPATH``, ``PYTHON``, ``OUT_DIR``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCRIPT = ROOT / "workflow" / "scripts" / "train.py"
MODELS_CONFIG = ROOT / "config" / "config.yaml"
PAPER_CONFIG = ROOT / "config" / "paper.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
METHODS = ("sft", "dpo", "cavpref", "grpo")
LAUNCHES = ("in-place", "accelerate")
GRPO_STAGES = ("rlcomm_steprr", "grpo_acc")
# What the training path imports, by distribution name (recorded in the summary: a job
# that fails on a missing package says which one).
PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "trl": "trl",
    "peft": "peft",
    "accelerate": "accelerate",
    "datasets": "datasets",
    "pyarrow": "pyarrow",
    "numpy": "numpy",
    "matplotlib": "matplotlib",
    "safetensors": "safetensors",
    "soundfile": "soundfile",
    "ffmpeg": "ffmpeg-python",
    "yaml": "PyYAML",
    "sentence_transformers": "sentence-transformers",
}
SEED = 7


# -- the job process: workflow/scripts/train.py with a stand-in `snakemake` ------------


class Named(dict):
    """Snakemake's named lists as train.py reads them: ``items()`` and attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Snakemake:
    """The attributes of the ``snakemake`` object that the train script and
    ``avtrust.logs.rule_logging`` read."""

    def __init__(self, job: dict):
        self.rule = job["rule"]
        self.input = Named(job["input"])
        self.output = Named(job["output"])
        self.params = Named(job["params"])
        self.wildcards = Named(method=job["method"])
        self.log = [job["log"]]
        self.threads = job["threads"]
        self.scriptdir = str(SCRIPT.parent)


def run_job(job_file: Path) -> int:
    """Child mode: run the train script as the rule would; record the training process's
    peak CUDA memory (in-place launches; an accelerate launch trains in a grandchild)."""
    import runpy

    job = json.loads(job_file.read_text())
    os.chdir(job["workdir"])  # the rule's relative outputs and tracking folder live here
    try:
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": Snakemake(job)}, run_name="__main__")
    finally:
        peak = None
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            peak = torch.cuda.max_memory_allocated() / 2**30
        Path(job["memory"]).write_text(json.dumps({"peak_allocated_gib": peak}))
    return 0


# -- inputs ----------------------------------------------------------------------------


def load_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def workflow_config(user: Path) -> dict:
    """The ``training`` and ``rlcomm`` sections a run with ``--configfile <user>`` sees:
    ``user`` merged into config/config.yaml, then the schema's defaults of the sections'
    own keys (what the Snakefile's ``validate`` fills in)."""
    from avtrust.train.config import deep_merge

    config = deep_merge(load_yaml(MODELS_CONFIG), load_yaml(user))
    schema = load_yaml(SCHEMA)["properties"]
    for section in ("training", "rlcomm"):
        for key, prop in schema[section]["properties"].items():
            if "default" in prop:
                config[section].setdefault(key, prop["default"])
    return config


def prepare_model(name: str, models: dict, root: Path) -> Path:
    """The model folder as the models stage (workflow/scripts/prepare_model.py) makes it."""
    from avtrust.bench.samples import derive_seed
    from avtrust.models.registry import prepare, spec_from_config

    spec = spec_from_config(name, models)
    if spec.source != "tiny":
        raise SystemExit(f"models.{name} in {MODELS_CONFIG} is not a tiny model (no downloads)")
    return prepare(spec, root / name, seed=derive_seed(SEED, "model", spec.name))


def write_parquet(rows: list[dict], path: Path, schema=None) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return str(path)


def training_data(root: Path, samples: int, seconds: float, embedder: Path | None) -> dict:
    """Clips and the files the train rules read: the AVTrustBench table and split (SFT),
    the pairs file (DPO, CAVPref), the RL-CoMM reference rows (GRPO)."""
    sys.path.insert(0, str(BENCH))
    from cavpref_step import task_weights
    from eval_throughput import make_clips

    from avtrust.scoring.reasoning import policy_prompt
    from avtrust.scoring.split import SPLIT_SCHEMA, split_table

    (root / "clips").mkdir(parents=True)
    rows = make_clips(root / "clips", samples, seconds, seed=SEED)  # MCIT-shaped rows
    table = write_parquet(rows, root / "bench" / "avtrustbench" / "MCIT.parquet")
    split = split_table({("avtrustbench", "MCIT"): table}, SEED, train_fraction=1.0)
    split_path = root / "score" / "split.parquet"
    write_parquet(split.to_pylist(), split_path, SPLIT_SCHEMA)
    # One pair per clip, every task of scoring.cavpref in turn with its η and γ, so that
    # CAVPref's L_V and L_A terms have samples; V' and A' are other clips.
    weights = task_weights(MODELS_CONFIG)
    n = len(rows)
    pairs = []
    for i, r in enumerate(rows):
        task, eta, gamma = weights[i % len(weights)]
        pairs.append(
            {
                "id": r["id"],
                "task": task,
                "media_path": r["media_path"],
                "question": r["question"],
                "options": r["options"],
                "chosen": "Mismatch in audio and video" if eta or gamma else r["answer"],
                "rejected": r["options"][1],
                "video_corrupted_path": rows[(i + 1) % n]["media_path"],
                "audio_corrupted_path": rows[(i + 2) % n]["media_path"],
                "eta": eta,
                "gamma": gamma,
                "beta_text": 0.3,
                "beta_video": 0.5,
                "beta_audio": 0.7,
            }
        )
    pairs_path = write_parquet(pairs, root / "score" / "cavpref" / "pairs.parquet")
    texts = [f"I hear a {r['answer']}." for r in rows]
    if embedder is not None:  # the references embedded as the score stage embeds them
        from avtrust.models import registry

        vectors = registry.load(embedder, device="cpu").embed(texts).tolist()
    else:  # grpo_acc reads the column but rewards no similarity
        vectors = [[1.0, 0.0]] * len(rows)
    reference = [
        {
            "id": r["id"],
            "media_path": r["media_path"],
            "prompt": policy_prompt(r["question"], r["options"]),
            "answer": r["answer"],
            "options": r["options"],
            "reference_embedding": v,
        }
        for r, v in zip(rows, vectors, strict=True)
    ]
    reference_path = write_parquet(reference, root / "score" / "rlcomm" / "reference.parquet")
    return {"table": table, "split": str(split_path), "pairs": pairs_path, "data": reference_path}


# -- the rules' params -----------------------------------------------------------------


def job_keys(args, accelerate_config: str | None) -> dict:
    """The job keys of a training section for this check (avtrust.train.config.JOB_KEYS)."""
    return {
        "device": args.device,
        "precision": args.precision,
        "processes": 1,
        "accelerate_config": accelerate_config,
        "keep_state": False,
        "tracking": {
            "report_to": "none",
            "run_name": "{method}",
            "logging_dir": "results/tracking",
        },
    }


def check_sections(paper: dict, args, accelerate_config: str | None) -> tuple[dict, dict]:
    """config/paper.yaml's ``training`` and ``rlcomm`` with this check's device, launch,
    steps and sizes (every other setting is the paper run's)."""
    from avtrust.train.rlcomm import method_stage

    steps = {
        "max_steps": args.steps,
        "save_steps": 1,  # a resume checkpoint every step: the state's save path too
        "logging_steps": 1,
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
    }
    training = {**paper["training"], **job_keys(args, accelerate_config)}
    training["defaults"] = {**training["defaults"], **steps, "max_samples": 0}
    rlcomm = {**paper["rlcomm"], **job_keys(args, accelerate_config)}
    for section in {method_stage(stage)[1] for stage in GRPO_STAGES}:
        rlcomm[section] = {
            **rlcomm[section],
            **steps,
            "batch_size": args.group,  # one prompt's group per process and step
            "group_size": args.group,
            "max_completion_length": args.max_new_tokens,
        }
    return training, rlcomm


def grpo_stage(choice: str) -> tuple[str, str]:
    """(stage, why) for ``--grpo-stage``."""
    if choice != "auto":
        return choice, "asked"
    try:
        importlib.import_module("sentence_transformers")
    except Exception as exc:  # missing, or its own dependencies are
        return "grpo_acc", f"auto: rlcomm_steprr's embedder needs sentence-transformers ({exc})"
    return "rlcomm_steprr", "auto: sentence-transformers imports"


def rule_job(method: str, stage: str, data: dict, models: dict, sections: tuple, args) -> dict:
    """The rule, inputs and params of ``method`` (the check's name: sft, dpo, cavpref,
    grpo) as workflow/rules/{train,rlcomm}.smk build them."""
    from avtrust.train.config import job_settings
    from avtrust.train.rlcomm import stage_settings

    training, rlcomm = sections
    if method == "grpo":
        inputs = {"model": str(models["omni"]), "data": data["data"]}
        if "embedder" in models and stage == "rlcomm_steprr":
            inputs["embedder"] = str(models["embedder"])
        job = stage_settings(rlcomm, stage, SEED, None)
        return {"rule": "rlcomm_train", "method": stage, "input": inputs, "job": job}
    if method == "sft":
        inputs = {"model": str(models["omni"]), "split": data["split"], "tables": [data["table"]]}
    else:
        inputs = {"model": str(models["omni"]), "pairs": data["pairs"]}
    return {
        "rule": "train",
        "method": method,
        "input": inputs,
        "job": job_settings(training, method, SEED, None),
    }


def accelerate_file(path: Path, args) -> str:
    """A one-process accelerate config without DeepSpeed (the GPU machine has none)."""
    lines = [
        "compute_environment: LOCAL_MACHINE",
        'distributed_type: "NO"',
        f"mixed_precision: {args.precision}",
        "num_processes: 1",
        f"use_cpu: {'true' if args.device == 'cpu' else 'false'}",
        'downcast_bf16: "no"',
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# -- running and checking one job ------------------------------------------------------


class DeviceMemory:
    """The device's used memory sampled with nvidia-smi while a job runs (any process
    of the job, the CUDA context and the allocator's cache included), above the level
    before it started; None without nvidia-smi."""

    def __init__(self, enabled: bool, every_s: float = 0.2):
        self.smi = shutil.which("nvidia-smi") if enabled else None
        self.every_s = every_s
        self.peak_mib: float | None = None

    def used_mib(self) -> float | None:
        proc = subprocess.run(
            [self.smi, "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        values = [float(v) for v in proc.stdout.split() if v.strip()]
        return sum(values) if proc.returncode == 0 and values else None

    def __enter__(self):
        if self.smi:
            self.base = self.used_mib() or 0.0
            self.done = threading.Event()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while not self.done.is_set():
            used = self.used_mib()
            if used is not None:
                self.peak_mib = max(self.peak_mib or 0.0, used - self.base)
            self.done.wait(self.every_s)

    def __exit__(self, *exc):
        if self.smi:
            self.done.set()
            self.thread.join()


class JobFailed(Exception):
    """A finished job whose outputs fail a check (the message says which)."""


def log_tail(path: Path, lines: int = 12) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def check_outputs(outputs: dict, steps: int, merged: bool) -> dict:
    """The checks of a finished job (module doc); its logged figures."""
    import torch
    from safetensors.torch import load_file

    from avtrust.train.checkpoint import read_meta
    from avtrust.train.curves import read_log

    rows = read_log(outputs["jsonl"])
    losses = [r.get("loss") for r in rows]
    grad_norms = [r["grad_norm"] for r in rows if "grad_norm" in r]
    if len(rows) != steps:
        raise JobFailed(f"log.jsonl has {len(rows)} step rows, not {steps}")
    bad = [x for x in [*losses, *grad_norms] if x is None or not math.isfinite(x)]
    if bad:
        raise JobFailed(f"non-finite or missing loss / grad norm: losses {losses}, {grad_norms}")
    metrics = json.loads(Path(outputs["metrics"]).read_text())
    if metrics.get("steps") != steps:
        raise JobFailed(f"metrics.json: {metrics.get('steps')} steps, not {steps}")
    model = Path(outputs["model"])
    meta = read_meta(model)
    if meta.get("adapter") != (not merged):
        raise JobFailed(f"checkpoint meta adapter={meta.get('adapter')}, expected {not merged}")
    weights = sorted(model.glob("*.safetensors"))
    want = "model" if merged else "adapter_model"
    if not any(p.name.startswith(want) for p in weights):
        raise JobFailed(f"no {want}*.safetensors in {model} ({sorted(p.name for p in weights)})")
    tensors, dtypes = 0, set()
    for path in weights:
        for name, t in load_file(str(path)).items():
            tensors += 1
            dtypes.add(str(t.dtype).removeprefix("torch."))
            if not torch.isfinite(t.float()).all():
                raise JobFailed(f"{path.name}: {name} holds non-finite values")
    if not Path(outputs["curve"]).is_file():
        raise JobFailed("no curve.png")
    return {
        "steps": metrics["steps"],
        "losses": losses,
        "grad_norms": grad_norms,
        "rewards": [r["reward_mean"] for r in rows if "reward_mean" in r] or None,
        "checkpoint": sorted(p.name for p in model.iterdir()),
        "saved_tensors": tensors,
        "saved_dtypes": sorted(dtypes),
    }


def run_one(method: str, launch: str, rule: dict, root: Path, logs: Path, args) -> dict:
    workdir = root / launch
    workdir.mkdir(parents=True, exist_ok=True)
    name = rule["method"]
    outputs = {
        "model": f"results/checkpoints/{name}/model",
        "jsonl": f"results/checkpoints/{name}/log.jsonl",
        "curve": f"results/checkpoints/{name}/curve.png",
        "metrics": f"results/checkpoints/{name}/metrics.json",
    }
    log = logs / f"{launch}-{name}.log"
    job = {
        "rule": rule["rule"],
        "method": name,
        "input": rule["input"],
        "output": outputs,
        "params": {"job": rule["job"], "state_dir": f"results/train_state/{name}"},
        "log": str(log),
        "threads": args.threads,
        "workdir": str(workdir),
        "memory": str(workdir / f"{name}.memory.json"),
    }
    job_file = workdir / f"{name}.job.json"
    job_file.write_text(json.dumps(job, indent=1))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    result = {"method": method, "job": name, "rule": rule["rule"], "launch": launch}
    cuda = args.device.startswith("cuda")
    start = time.perf_counter()
    try:
        with DeviceMemory(cuda) as memory:
            proc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--job", str(job_file)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
                timeout=args.job_timeout,
            )
        result["wall_s"] = round(time.perf_counter() - start, 2)
        (logs / f"{launch}-{name}.out").write_text(proc.stdout + proc.stderr)
        if cuda:
            result["peak_gpu_used_gib_sampled"] = (
                None if memory.peak_mib is None else round(memory.peak_mib / 1024, 3)
            )
            mem = Path(job["memory"])
            peak = json.loads(mem.read_text())["peak_allocated_gib"] if mem.is_file() else None
            result["peak_gpu_allocated_gib"] = None if peak is None else round(peak, 3)
        if proc.returncode != 0:
            tail = log_tail(log) or (proc.stdout + proc.stderr)[-2000:]
            raise JobFailed(f"exit status {proc.returncode}; log tail:\n{tail}")
        from avtrust.train.job import MERGED

        settings = rule["job"]["settings"]
        merged = settings["family"] in MERGED and bool(settings["lora"]["enabled"])
        result.update(
            check_outputs({k: workdir / v for k, v in outputs.items()}, args.steps, merged)
        )
        result["ok"] = True
    except subprocess.TimeoutExpired:
        result["wall_s"] = round(time.perf_counter() - start, 2)
        result.update(ok=False, error=f"timed out after {args.job_timeout} s\n{log_tail(log)}")
    except Exception as exc:  # recorded; the other jobs still run
        result.setdefault("wall_s", round(time.perf_counter() - start, 2))
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    return result


def versions() -> dict:
    out = {}
    for module, dist in PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            out[dist] = None
            continue
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "present"
    out["ffmpeg (binary)"] = shutil.which("ffmpeg")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--precision", default="bf16", choices=["bf16", "no", "fp16"])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--launch", default=",".join(LAUNCHES), help="in-place,accelerate")
    parser.add_argument("--grpo-stage", default="auto", choices=["auto", *GRPO_STAGES])
    parser.add_argument("--steps", type=int, default=3, help="optimiser steps per job")
    parser.add_argument("--batch-size", type=int, default=2, help="SFT/DPO/CAVPref, per process")
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--group", type=int, default=6, help="GRPO completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="GRPO completion length")
    parser.add_argument("--samples", type=int, default=8, help="synthetic clips (training rows)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the clips")
    parser.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--job-timeout", type=int, default=180, help="seconds per job")
    parser.add_argument(
        "--paper-config",
        type=Path,
        default=PAPER_CONFIG,
        help="the user config on top of config.yaml",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="kept (default: temporary)")
    parser.add_argument("--out", type=Path, default=None, help="summary JSON")
    parser.add_argument("--job", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        return run_job(args.job)
    if args.out is None:
        parser.error("--out is required")
    methods = args.methods.split(",")
    launches = args.launch.split(",")
    if unknown := sorted(set(methods) - set(METHODS)) + sorted(set(launches) - set(LAUNCHES)):
        parser.error(f"unknown method(s) / launch(es) {unknown}")
    stage, why = grpo_stage(args.grpo_stage)
    out = {
        "device": args.device,
        "precision": args.precision,
        "launches": launches,
        "grpo_stage": stage,
        "grpo_stage_why": why,
        "settings": {
            k: getattr(args, k)
            for k in ("steps", "batch_size", "grad_accum", "group", "max_new_tokens", "samples")
        },
        "versions": versions(),
    }
    # sentence-transformers only matters for rlcomm_steprr (grpo_stage_why)
    missing = [d for d, v in out["versions"].items() if v is None and d != "sentence-transformers"]
    if missing:
        print(f"warning: not found: {', '.join(missing)} (the jobs that need them fail)")
    if args.device == "cuda":
        import torch

        out["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    logs = args.out.parent / (args.out.stem + "-logs")
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    out["jobs"] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_train_check.") as tmp:
        root = args.work_dir or Path(tmp)
        try:  # what every job shares: without it no job can run
            models_cfg = load_yaml(MODELS_CONFIG)["models"]
            models = {"omni": prepare_model("omni", models_cfg, root / "models")}
            if "grpo" in methods and stage == "rlcomm_steprr":
                models["embedder"] = prepare_model("embedder", models_cfg, root / "models")
            data = training_data(root / "data", args.samples, args.seconds, models.get("embedder"))
            config = workflow_config(args.paper_config)
        except Exception as exc:
            out["inputs_error"] = f"{type(exc).__name__}: {exc}"
            print(f"inputs failed: {out['inputs_error']}", flush=True)
        else:
            out["inputs_s"] = round(time.perf_counter() - start, 2)
            print(f"inputs ready in {out['inputs_s']} s", flush=True)
            for launch in launches:
                accelerate = accelerate_file(root / "accelerate.yaml", args)
                sections = check_sections(
                    config, args, accelerate if launch == "accelerate" else None
                )
                for method in methods:
                    try:
                        rule = rule_job(method, stage, data, models, sections, args)
                    except Exception as exc:  # a config the rule would refuse
                        error = f"{type(exc).__name__}: {exc}"
                        result = {"method": method, "launch": launch, "ok": False, "error": error}
                    else:
                        result = run_one(method, launch, rule, root, logs, args)
                    out["jobs"].append(result)
                    brief = {k: result.get(k) for k in ("wall_s", "ok", "losses")}
                    print(f"{launch} {result.get('job', method)}: {json.dumps(brief)}", flush=True)
                    if not result["ok"]:
                        print(result["error"], flush=True)
    out["ok"] = "inputs_error" not in out and all(j["ok"] for j in out["jobs"])
    out["total_s"] = round(time.perf_counter() - start, 2)
    out["logs"] = str(logs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
