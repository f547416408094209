"""RL-CoMM stages and the GRPO baseline: warm-up SFT → Step-RR GRPO → Ans-CO.

One stage per training job, described by a JSON *spec* (written by the rule's thin
script, run in every process by ``python -m avtrust.train.rlcomm <spec.json>`` under
``accelerate launch``):

- ``warmup`` (``rlcomm_warmup``): the SFT stage's :class:`~avtrust.train.trainers.SFTTrainer`
  on the formatted warm-up pairs (``results/score/rlcomm/warmup_sft.parquet``);
- ``grpo`` (``rlcomm_steprr``: rewards format + arr + avc; ``grpo_acc``: format +
  accuracy): :class:`~avtrust.train.grpo.AVGRPOTrainer` from the warm-up checkpoint on
  the training samples of ``reference.parquet`` (prompt, clip, answer, reference
  embedding); the embedding model is loaded once per process;
- ``ansco`` (``rlcomm_ansco``): from the Step-RR checkpoint, targets and answer
  uncertainties are prepared once
  (:func:`avtrust.train.ansco_targets.prepare_ansco_targets`, in the job before the
  launch; cached in the resume state), then :class:`avtrust.train.ansco.AnsCOTrainer`
  minimises NLL + λ_i·answer entropy.

A GRPO stage's ``extra_rewards`` (config) adds the user's own TRL reward functions,
``"module:function"`` each (:func:`avtrust.train.rewards.load_reward`), to the stage's
rewards; they are logged as ``reward_<function name>``.

With one process (and no accelerate config) the stage runs inside the job itself,
otherwise under ``accelerate launch`` (:func:`avtrust.train.launch.start`).

Every stage trains LoRA adapters (or all weights) on the policy it starts from and
writes the merged full weights (``adapter: false`` in ``avtrust_checkpoint.json``), so
the next stage and :func:`~avtrust.train.checkpoint.load_policy` load it alone.
Step-RR without Ans-CO (the paper's ablation row) is the ``rlcomm_steprr`` checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from avtrust.io import write_json_atomic
from avtrust.train.ansco_targets import TARGETS, prepare_ansco_targets
from avtrust.train.arguments import Optimisation, trainer_arguments

PathLike = str | os.PathLike
# Rewards that compare the policy's reasoning with the reference by embedding.
REASONING_REWARDS = ("arr", "avc")
# TRL metric name -> log.jsonl key; besides, "rewards/<r_name>/mean" -> "reward_<name>"
LOG_KEYS = {
    "reward": "reward_mean",
    "reward_std": "reward_std",
    "accuracy": "accuracy",
    "answer_entropy": "answer_entropy",
    "entropy": "entropy",
    "completions/mean_length": "completion_length",
    "nll": "nll",
    "entropy_term": "entropy_term",
    "grad_norm": "grad_norm",
    "learning_rate": "learning_rate",
}


def load_start_policy(spec: dict):
    """The policy a stage starts from: the previous stage's checkpoint or the base."""
    from avtrust.models import registry
    from avtrust.train.checkpoint import load_policy

    if spec.get("init_dir"):
        return load_policy(spec["init_dir"], device="cpu", models_root=spec["models_root"])
    return registry.load(spec["base_dir"], device="cpu")


def grpo_rows(reference_path: PathLike) -> list[dict]:
    import pyarrow.parquet as pq

    cols = ["id", "media_path", "prompt", "answer", "options", "reference_embedding"]
    rows = pq.read_table(reference_path, columns=cols).to_pylist()
    if not rows:
        raise ValueError(f"{str(reference_path)!r} holds no RL-CoMM training samples")
    return rows


# RL-CoMM stages use a constant learning rate unless their section says otherwise.
STAGE_OPTIMISATION = {"lr_scheduler": "constant"}


def training_args(spec: dict, cls):
    """A TrainingArguments (or GRPOConfig) of the stage's settings."""
    s = spec["settings"]
    extra = {}
    if cls.__name__ == "GRPOConfig":
        extra = {
            "num_generations": s["group_size"],
            "max_completion_length": s["max_completion_length"],
            "temperature": s["temperature"],
            "beta": 0.0,
            "loss_type": s.get("loss_type", "grpo"),
            "scale_rewards": s.get("scale_rewards", "group"),
        }
    return trainer_arguments(
        cls,
        Optimisation.from_settings(s, **STAGE_OPTIMISATION),
        state_dir=spec["state_dir"],
        seed=spec["seed"],
        device=spec["device"],
        precision=spec.get("precision", "no"),
        **extra,
    )


def _policy_with_lora(policy, spec: dict):
    from avtrust.train.config import LoraSettings
    from avtrust.train.lora import apply_lora

    lora = dict(spec["lora"])
    lora["targets"] = tuple(lora["targets"])
    return apply_lora(policy.model, LoraSettings(**lora))


def _finish(spec: dict, trainer, model, extra: dict | None = None) -> None:
    """Merged weights, log.jsonl, curve and metrics (rank 0 only)."""
    from avtrust.train.checkpoint import write_checkpoint
    from avtrust.train.curves import final_metrics, write_log, write_metrics

    trainer.accelerator.wait_for_everyone()
    if not trainer.accelerator.is_main_process:
        return
    out = Path(spec["out_dir"])
    model = trainer.accelerator.unwrap_model(model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    write_checkpoint(
        model,
        out / "model",
        method=spec["method"],
        base_model=spec["base_model"],
        base_dir=spec["base_dir"],
        adapter=False,
        seed=spec["seed"],
        steps=trainer.state.global_step,
        config_hash=spec["config_hash"],
    )
    rows = rename_log(trainer.state.log_history)
    write_log(rows, out / "log.jsonl")
    plot_rlcomm_curves(rows, out / "curve.png", spec["method"])
    extra = {
        **(extra or {}),
        "processes": trainer.accelerator.num_processes,
        "config_hash": spec["config_hash"],
    }
    write_metrics(
        final_metrics(spec["method"], rows, trainer.state.global_step, extra), out / "metrics.json"
    )


def log_key(metric: str) -> str | None:
    """The log.jsonl key of a TRL metric (None: not logged)."""
    if metric in LOG_KEYS:
        return LOG_KEYS[metric]
    match = re.fullmatch(r"rewards/(\w+)/mean", metric)
    return f"reward_{match.group(1).removeprefix('r_')}" if match else None


def rename_log(history: list[dict]) -> list[dict]:
    from avtrust.train.curves import log_rows

    rows = []
    for row in log_rows(history):
        out = {"step": row["step"], "loss": row["loss"]}
        for key, value in row.items():
            name = log_key(key)
            if name:
                out[name] = value
        rows.append(out)
    return rows


def plot_rlcomm_curves(rows: list[dict], path: PathLike, title: str) -> Path:
    """Loss, mean reward and its components, accuracy and answer entropy per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from avtrust.train.curves import save_figure

    steps = [r["step"] for r in rows]
    parts = sorted({k for r in rows for k in r if k.startswith("reward_")} - {"reward_mean"})
    panels = [
        ("loss", ["loss", "nll"]),
        ("reward", ["reward_mean", *(k for k in parts if k != "reward_std")]),
        ("accuracy / entropy", ["accuracy", "answer_entropy"]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (name, keys) in zip(axes, panels, strict=True):
        for key in keys:
            if any(key in r for r in rows):
                ax.plot(steps, [r.get(key, float("nan")) for r in rows], marker="o", label=key)
        ax.set_xlabel("step")
        ax.set_title(f"{title}: {name}")
        if ax.lines:
            ax.legend(fontsize=7)
    return save_figure(fig, path)


# -- stages -------------------------------------------------------------------------------


def run_warmup(spec: dict, resume: str | None) -> None:
    import pyarrow.parquet as pq
    from datasets import Dataset
    from transformers import TrainingArguments

    from avtrust.train.data import SequenceEncoder, cache_decoding
    from avtrust.train.trainers import SFTCollator, SFTTrainer

    policy = load_start_policy(spec)
    rope_index = policy.model.get_rope_index
    cache_decoding(policy.builder, spec["settings"].get("media_cache", 64))
    model = _policy_with_lora(policy, spec)
    rows = pq.read_table(spec["data"], columns=["media_path", "prompt", "response"]).to_pylist()
    trainer = SFTTrainer(
        model=model,
        args=training_args(spec, TrainingArguments),
        train_dataset=Dataset.from_list(rows),
        data_collator=SFTCollator(SequenceEncoder(policy.builder, rope_index)),
    )
    trainer.train(resume_from_checkpoint=resume)
    _finish(spec, trainer, model)


def reward_functions(settings: dict, scorer=None) -> list:
    """The stage's TRL reward functions: the built-in components of ``rewards`` (from
    ``scorer``, a :class:`~avtrust.train.rewards.StepRewards`), then ``extra_rewards``."""
    from avtrust.errors import ConfigError
    from avtrust.train.rewards import StepRewards, load_reward

    scorer = scorer or StepRewards()
    funcs = scorer.functions(settings["rewards"])
    funcs += [load_reward(ref) for ref in settings.get("extra_rewards", [])]
    names = [f.__name__.removeprefix("r_") for f in funcs]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ConfigError(f"rlcomm: two rewards would be logged as reward_{clash[0]} ({names})")
    return funcs


def run_grpo(spec: dict, resume: str | None) -> None:
    from datasets import Dataset
    from trl import GRPOConfig

    from avtrust.models import registry
    from avtrust.train.grpo import AVGRPOTrainer
    from avtrust.train.rewards import StepRewards

    s = spec["settings"]
    policy = load_start_policy(spec)
    reasoning = any(r in REASONING_REWARDS for r in s["rewards"])
    embedder = registry.load(spec["embedder_dir"], device=spec["device"]) if reasoning else None
    scorer = StepRewards(
        embedder,
        omega=s["omega"],
        batch_size=s.get("embed_batch_size", 64),
        instruction=s.get("embedding_instruction"),
    )
    model = _policy_with_lora(policy, spec)
    trainer = AVGRPOTrainer(
        model,
        reward_functions(s, scorer),
        training_args(spec, GRPOConfig),
        train_dataset=Dataset.from_list(grpo_rows(spec["data"])),
        builder=policy.builder,
        seeded_generation=s.get("seeded_generation", False),
    )
    trainer.train(resume_from_checkpoint=resume)
    _finish(spec, trainer, model)


def run_ansco(spec: dict, resume: str | None) -> None:
    from datasets import Dataset
    from transformers import TrainingArguments

    from avtrust.train.ansco import COLUMNS, AnsCOCollator, AnsCOTrainer
    from avtrust.train.data import SequenceEncoder, cache_decoding

    s = spec["settings"]
    targets = json.loads((Path(spec["state_dir"]) / TARGETS).read_text())
    policy = load_start_policy(spec)
    rope_index = policy.model.get_rope_index
    cache_decoding(policy.builder, s.get("media_cache", 64))
    model = _policy_with_lora(policy, spec)
    rows = [{k: r[k] for k in COLUMNS} for r in targets]
    collator = AnsCOCollator(
        SequenceEncoder(policy.builder, rope_index), s["lam"], s["u_threshold"]
    )
    trainer = AnsCOTrainer(
        model=model,
        args=training_args(spec, TrainingArguments),
        train_dataset=Dataset.from_list(rows),
        data_collator=collator,
    )
    trainer.train(resume_from_checkpoint=resume)
    gated = sum(r["uncertainty"] > s["u_threshold"] for r in targets)
    _finish(spec, trainer, model, {"samples": len(targets), "gated_samples": gated})


STAGES = {"warmup": run_warmup, "grpo": run_grpo, "ansco": run_ansco}


def run(spec: dict) -> None:
    """Run one stage in this process (the job itself, or one of the launched processes),
    from the checkpoint ``spec["resume"]`` (set by :func:`train_stage`) if any."""
    if spec["stage"] not in STAGES:
        raise ValueError(f"unknown RL-CoMM stage {spec['stage']!r} ({', '.join(STAGES)})")
    import torch
    from transformers import set_seed

    torch.set_num_threads(max(1, int(spec.get("threads", 1))))
    set_seed(spec["seed"])  # the LoRA initialisation is the same in every run
    STAGES[spec["stage"]](spec, spec.get("resume"))


METHODS = {
    "rlcomm_warmup": ("warmup", "warmup", None),
    "rlcomm_steprr": ("grpo", "steprr", ["format", "arr", "avc"]),
    "rlcomm_ansco": ("ansco", "ansco", None),
    "grpo_acc": ("grpo", "grpo_acc", ["format", "accuracy"]),
}


# What every stage reads of the ``rlcomm`` section besides its own stage section.
SHARED_KEYS = (
    "policy", "device", "precision", "threads", "processes", "keep_state", "lora",
    "accelerate_config",
)  # fmt: skip


def method_stage(method: str) -> tuple[str, str, list[str] | None]:
    """(stage, config section, rewards) of ``method``; ValueError naming the known ones."""
    if method not in METHODS:
        raise ValueError(f"unknown RL-CoMM method {method!r} ({', '.join(METHODS)})")
    return METHODS[method]


def stage_settings(rlcomm: dict, method: str, embedding_instruction: str | None = None) -> dict:
    """Exactly the configuration the job of ``method`` reads (the rule's params): its
    stage's section and the shared keys, so editing Ans-CO's section leaves Step-RR as
    it is; a stage rewarding reasoning similarity (r_arr, r_avc) also reads the
    embedding instruction the references were embedded with (``scoring.rlcomm``)."""
    section, rewards = method_stage(method)[1:]
    stage = dict(rlcomm[section])
    if any(r in REASONING_REWARDS for r in rewards or ()):
        stage["embedding_instruction"] = embedding_instruction
    return {"stage": stage, **{k: rlcomm[k] for k in SHARED_KEYS}}


def stage_spec(method: str, job: dict, *, seed: int, **paths) -> dict:
    """The JSON spec of ``method`` from its :func:`stage_settings` (``job``) and the paths."""
    from avtrust.train.config import config_hash

    stage, _, rewards = method_stage(method)
    settings = dict(job["stage"])
    if rewards:
        settings["rewards"] = rewards
        reward_functions(settings)  # a bad extra_rewards entry fails here, in the job
    spec = {
        "stage": stage,
        "method": method,
        "seed": seed,
        "device": job["device"],
        "precision": job["precision"],
        "threads": job["threads"],
        "processes": job["processes"],
        "keep_state": job["keep_state"],
        "lora": job["lora"],
        "settings": settings,
        "models_root": str(Path(paths["base_dir"]).parent),
        **{k: (str(v) if v is not None else None) for k, v in paths.items()},
    }
    # the run's identity: what it trains on and how (not where its state lives)
    spec["config_hash"] = config_hash({k: v for k, v in spec.items() if k != "state_dir"})
    return spec


def train_stage(spec: dict, log=None, accelerate_config: str | None = None) -> None:
    """In the job: resume state, Ans-CO targets (one process), then the stage's
    processes (in place, or launched, with ``accelerate_config`` if given: e.g. DeepSpeed
    ZeRO-2); the resume state is removed after success unless ``keep_state``."""
    from avtrust.errors import ConfigError
    from avtrust.train.checkpoint import finish_state, prepare_state
    from avtrust.train.launch import start, zero_stage

    if accelerate_config and zero_stage(accelerate_config) == 3:
        raise ConfigError(
            f"config: rlcomm.accelerate_config {accelerate_config} uses DeepSpeed ZeRO-3, which "
            "RL-CoMM does not support (rank 0 merges and writes the weights without gathering "
            "the shards); use ZeRO-2 (config/accelerate/zero2.yaml)"
        )
    spec = {**spec, "resume": prepare_state(spec["state_dir"], spec["config_hash"], log)}
    if spec["stage"] == "ansco":
        prepare_ansco_targets(spec, log)
    spec_path = write_json_atomic(Path(spec["state_dir"]) / "spec.json", spec)
    start(
        lambda: run(spec),
        [str(spec_path)],
        spec["processes"],
        module="avtrust.train.rlcomm",
        precision=spec["precision"],
        cpu=spec["device"] == "cpu",
        threads=spec["threads"],
        config_file=accelerate_config,
        log=log,
    )
    finish_state(spec["state_dir"], keep=spec.get("keep_state", False))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m avtrust.train.rlcomm <spec.json>", file=sys.stderr)
        return 2
    run(json.loads(Path(args[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
