"""RL-CoMM stages and the GRPO baseline: warm-up SFT → Step-RR GRPO → Ans-CO.

Each stage is one training job (:mod:`avtrust.train.job`), with the settings of its
section of ``rlcomm:`` (:func:`stage_settings`, typed as
:class:`~avtrust.train.config.WarmupSettings`, :class:`~avtrust.train.config.GRPOSettings`
or :class:`~avtrust.train.config.AnsCOSettings`). The job builds the stage's trainer here:

- ``warmup`` (``rlcomm_warmup``): the SFT stage's :class:`~avtrust.train.trainers.SFTTrainer`
  on the formatted warm-up pairs (``results/score/rlcomm/warmup_sft.parquet``);
- ``grpo`` (``rlcomm_steprr``: rewards format + arr + avc; ``grpo_acc``: format +
  accuracy): :class:`~avtrust.train.grpo.AVGRPOTrainer` from the warm-up checkpoint on
  the training samples of ``reference.parquet`` (prompt, clip, answer, reference
  embedding); the embedding model is loaded once per process;
- ``ansco`` (``rlcomm_ansco``): from the Step-RR checkpoint, on the targets and answer
  uncertainties prepared once in the job before the launch
  (:func:`avtrust.train.ansco_targets.prepare_ansco_targets`, cached in the resume
  state), :class:`avtrust.train.ansco.AnsCOTrainer` minimises NLL + λ_i·answer entropy.

A GRPO stage scores its training prompts (a group of completions each, seeded) with the
policy it starts from and again with the trained one (evaluations of the trainer at
its start and last step, read by :func:`prompt_rewards`,
``reward_before_after``): ``metrics.json``'s ``reward_mean_before`` / ``_after`` and each
component's, the same prompts both times — unlike the per-step log, whose steps see
different prompts.

A GRPO stage's ``extra_rewards`` (config) adds the user's own TRL reward functions,
``"module:function"`` each (:func:`avtrust.train.rewards.load_reward`), to the stage's
rewards; they are logged as ``reward_<function name>``.

Every stage trains LoRA adapters (or all weights) on the policy it starts from; the job
writes the merged full weights (``adapter: false`` in ``avtrust_checkpoint.json``), so
the next stage and :func:`~avtrust.train.checkpoint.load_policy` load it alone.
Step-RR without Ans-CO (the paper's ablation row) is the ``rlcomm_steprr`` checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from avtrust.train.config import (
    JOB_KEYS,
    AnsCOSettings,
    GRPOSettings,
    WarmupSettings,
    build_settings,
    settings_dict,
)
from avtrust.train.tracking import job_tracking

PathLike = str | os.PathLike
# Rewards that compare the policy's reasoning with the reference by embedding.
REASONING_REWARDS = ("arr", "avc")
# method -> (family, config section, built-in rewards)
METHODS = {
    "rlcomm_warmup": ("warmup", "warmup", ()),
    "rlcomm_steprr": ("grpo", "steprr", ("format", "arr", "avc")),
    "rlcomm_ansco": ("ansco", "ansco", ()),
    "grpo_acc": ("grpo", "grpo_acc", ("format", "accuracy")),
}
FAMILY_SETTINGS = {"warmup": WarmupSettings, "grpo": GRPOSettings, "ansco": AnsCOSettings}


def method_stage(method: str) -> tuple[str, str, tuple[str, ...]]:
    """(family, config section, rewards) of ``method``; ValueError naming the known ones."""
    if method not in METHODS:
        raise ValueError(f"unknown RL-CoMM method {method!r} ({', '.join(METHODS)})")
    return METHODS[method]


def stage_settings(
    rlcomm: dict, method: str, seed: int, embedding_instruction: str | None = None
) -> dict:
    """Exactly the configuration the job of ``method`` reads (the rule's params, in the
    shape of :func:`avtrust.train.config.job_settings`): its stage's section with the
    shared ``lora`` as typed settings, and the job keys; so editing Ans-CO's section
    leaves Step-RR as it is. A stage rewarding reasoning similarity (r_arr, r_avc) also
    reads the embedding instruction the references were embedded with
    (``scoring.rlcomm``). A bad ``extra_rewards`` entry fails here."""
    family, section, rewards = method_stage(method)
    values = {**rlcomm[section], "method": method, "family": family, "seed": seed}
    values["lora"] = rlcomm["lora"]
    if rewards:
        values["rewards"] = rewards
    if any(r in REASONING_REWARDS for r in rewards):
        values["embedding_instruction"] = embedding_instruction
    settings = build_settings(FAMILY_SETTINGS[family], f"rlcomm.{section}", values)
    if rewards:
        reward_functions(settings)
    return {
        "settings": settings_dict(settings),
        "model": rlcomm["policy"],
        **{k: rlcomm[k] for k in JOB_KEYS},
        "tracking": job_tracking(rlcomm["tracking"], "rlcomm.tracking", method),
    }


def grpo_rows(reference_path: PathLike) -> list[dict]:
    import pyarrow.parquet as pq

    cols = ["id", "media_path", "prompt", "answer", "options", "reference_embedding"]
    rows = pq.read_table(reference_path, columns=cols).to_pylist()
    if not rows:
        raise ValueError(f"{str(reference_path)!r} holds no RL-CoMM training samples")
    return rows


def reward_functions(settings: GRPOSettings, scorer=None) -> list:
    """The stage's TRL reward functions: the built-in components of ``rewards`` (from
    ``scorer``, a :class:`~avtrust.train.rewards.StepRewards`), then ``extra_rewards``."""
    from avtrust.errors import ConfigError
    from avtrust.train.rewards import StepRewards, load_reward

    scorer = scorer or StepRewards()
    funcs = scorer.functions(list(settings.rewards))
    funcs += [load_reward(ref) for ref in settings.extra_rewards]
    names = [f.__name__.removeprefix("r_") for f in funcs]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ConfigError(f"rlcomm: two rewards would be logged as reward_{clash[0]} ({names})")
    return funcs


# -- the stages' trainers: (trainer, training rows, extra metrics) ---------------------


def build_warmup(spec: dict, settings: WarmupSettings):
    import pyarrow.parquet as pq
    from datasets import Dataset

    from avtrust.train.arguments import job_arguments
    from avtrust.train.data import SequenceEncoder, job_builder
    from avtrust.train.job import load_start_policy
    from avtrust.train.lora import apply_lora
    from avtrust.train.trainers import SFTCollator, SFTTrainer

    policy = load_start_policy(spec)
    rope_index = policy.model.get_rope_index
    job_builder(policy, spec)
    columns = ["media_path", "prompt", "response"]
    rows = pq.read_table(spec["inputs"]["data"], columns=columns).to_pylist()
    trainer = SFTTrainer(
        model=apply_lora(policy.model, settings.lora),
        args=job_arguments(settings, spec),
        train_dataset=Dataset.from_list(rows),
        data_collator=SFTCollator(SequenceEncoder(policy.builder, rope_index)),
    )
    return trainer, len(rows), {}


def build_grpo(spec: dict, settings: GRPOSettings):
    from datasets import Dataset

    from avtrust.models import registry
    from avtrust.train.arguments import job_arguments
    from avtrust.train.data import with_decode_cache
    from avtrust.train.grpo import AVGRPOTrainer
    from avtrust.train.job import load_start_policy
    from avtrust.train.lora import apply_lora
    from avtrust.train.rewards import StepRewards

    policy = load_start_policy(spec)
    with_decode_cache(policy.builder, spec)  # the trainer keeps its own media memo
    reasoning = any(r in REASONING_REWARDS for r in settings.rewards)
    embedder = None
    if reasoning:
        embedder = registry.load(spec["inputs"]["embedder"], device=spec["device"])
    scorer = StepRewards(
        embedder,
        omega=settings.omega,
        batch_size=settings.embed_batch_size,
        instruction=settings.embedding_instruction,
    )
    rows = grpo_rows(spec["inputs"]["data"])
    dataset = Dataset.from_list(rows)
    trainer = AVGRPOTrainer(
        apply_lora(policy.model, settings.lora),
        reward_functions(settings, scorer),
        job_arguments(settings, spec),
        train_dataset=dataset,
        # the training prompts again, scored before and after (reward_before_after)
        eval_dataset=dataset if settings.reward_before_after else None,
        builder=policy.builder,
        seeded_generation=settings.seeded_generation,
    )
    return trainer, len(rows), {}


def build_ansco(spec: dict, settings: AnsCOSettings):
    from datasets import Dataset

    from avtrust.train.ansco import COLUMNS, AnsCOCollator, AnsCOTrainer
    from avtrust.train.ansco_targets import TARGETS
    from avtrust.train.arguments import job_arguments
    from avtrust.train.data import SequenceEncoder, job_builder
    from avtrust.train.job import load_start_policy
    from avtrust.train.lora import apply_lora

    targets = json.loads((Path(spec["state_dir"]) / TARGETS).read_text())
    policy = load_start_policy(spec)
    rope_index = policy.model.get_rope_index
    job_builder(policy, spec)
    rows = [{k: r[k] for k in COLUMNS} for r in targets]
    collator = AnsCOCollator(
        SequenceEncoder(policy.builder, rope_index), settings.lam, settings.u_threshold
    )
    trainer = AnsCOTrainer(
        model=apply_lora(policy.model, settings.lora),
        args=job_arguments(settings, spec),
        train_dataset=Dataset.from_list(rows),
        data_collator=collator,
    )
    gated = sum(r["uncertainty"] > settings.u_threshold for r in targets)
    return trainer, len(rows), {"samples": len(targets), "gated_samples": gated}


def prompt_rewards(trainer, settings: GRPOSettings) -> dict:
    """After training: the mean of every reward over a group of completions for each
    training prompt, by the start policy and by the trained one, as
    ``reward_<name>_before`` / ``_after`` (``reward_mean_before``,
    ``reward_format_after``, ...); {} when ``reward_before_after`` is off. The figures
    are the trainer's evaluations at the start and at the last step (the job's
    arguments ask for them; the start's survives a resume in the trainer's state)."""
    from avtrust.train.curves import log_key

    if not settings.reward_before_after:
        return {}
    evaluations = [e for e in trainer.state.log_history if "eval_reward" in e]
    if not evaluations:
        return {}
    out = {}
    for when, entry in (("before", evaluations[0]), ("after", evaluations[-1])):
        if when == "before" and entry.get("step", 0) != 0:
            continue  # resumed from a checkpoint saved before the start was scored
        for key, value in entry.items():
            name = log_key(key.removeprefix("eval_")) if key.startswith("eval_") else None
            if name and name.startswith("reward_") and name != "reward_std":
                out[f"{name}_{when}"] = float(value)
    return out
