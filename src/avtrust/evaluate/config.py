"""The ``evaluation`` config section: which models are evaluated, and where they live.

Each entry of ``evaluation.models`` is one line, keyed by the name used in result paths
(``results/predictions/<name>/``)::

    evaluation:
      models:
        omni: {model: omni}            # zero-shot: a model under `models` (registry)
        cavpref: {checkpoint: cavpref} # trained: results/checkpoints/cavpref/model
        rlcomm: {checkpoint: rlcomm_ansco, benches: [avconfusebench, qa]}

``benches`` limits a model to some benchmarks (default all): the papers evaluate CAVPref
on AVTrustBench and RL-CoMM on AV-ConfuseBench and the plain QA sets.

Zero-shot models need an adapter that answers questions about clips
(``qwen2_5_omni_thinker``, or ``openai_http`` for models served behind an
OpenAI-compatible endpoint); a checkpoint is opened with
``avtrust.train.checkpoint.load_policy``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from avtrust.errors import ConfigError
from avtrust.evaluate.samples import QA_BENCH

BENCHES = ("avtrustbench", "avconfusebench", QA_BENCH)

EVAL_ADAPTERS = ("qwen2_5_omni_thinker", "openai_http")
JUDGE_ADAPTERS = ("qwen2_5_omni_thinker", "openai_http")


@dataclass(frozen=True)
class EvalModel:
    name: str
    kind: str  # zero-shot | checkpoint
    registry_name: str | None
    method: str | None
    adapter: str
    benches: tuple[str, ...] = BENCHES

    def record(self) -> dict:
        """What the results record of this model (model_metrics) reads: every field but
        ``benches`` (which only decides which tasks are evaluated)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "registry_name": self.registry_name,
            "method": self.method,
            "adapter": self.adapter,
        }

    @property
    def folder(self) -> str:
        if self.kind == "checkpoint":
            return f"results/checkpoints/{self.method}/model"
        return f"resources/models/{self.registry_name}"


def eval_models(
    evaluation: dict, models: dict, methods: Sequence[str], base_model: str = "omni"
) -> dict[str, EvalModel]:
    """The evaluated models by name; ConfigError naming the key for a bad entry.

    ``methods``: the methods the run can train — every method declared under
    ``training`` (an ablation of the user's own included) and RL-CoMM's stages — so a
    checkpoint entry may name any of them."""
    out = {}
    for name, entry in (evaluation.get("models") or {}).items():
        where = f"config: evaluation.models.{name}"
        entry = entry or {}
        benches = tuple(entry.get("benches") or BENCHES)
        unknown = sorted(set(benches) - set(BENCHES))
        if unknown:
            raise ConfigError(
                f"{where}.benches: {', '.join(unknown)} unknown (one of {', '.join(BENCHES)})"
            )
        if ("model" in entry) == ("checkpoint" in entry):
            raise ConfigError(f"{where}: give exactly one of `model` (zero-shot) or `checkpoint`")
        if "model" in entry:
            reg = entry["model"]
            if reg not in models:
                raise ConfigError(
                    f"{where}.model = {reg!r} is not a model under `models` "
                    f"({', '.join(sorted(models))})"
                )
            adapter = models[reg]["adapter"]
            if adapter not in EVAL_ADAPTERS:
                raise ConfigError(
                    f"{where}.model = {reg!r} has adapter {adapter!r}; evaluation needs "
                    f"{' or '.join(EVAL_ADAPTERS)}"
                )
            if adapter == "openai_http" and evaluation.get("mode") == "loglik":
                # an endpoint returns text, never the log-probabilities of given options:
                # with loglik alone this model would get no prediction at all
                raise ConfigError(
                    f"{where}.model = {reg!r} is an openai_http endpoint, which can only "
                    "generate; evaluation.mode is loglik (set it to both or generate)"
                )
            out[name] = EvalModel(name, "zero-shot", reg, None, adapter, benches)
        else:
            method = entry["checkpoint"]
            if method not in methods:
                raise ConfigError(
                    f"{where}.checkpoint = {method!r} is not a training method "
                    f"({', '.join(methods)})"
                )
            out[name] = EvalModel(
                name, "checkpoint", base_model, method, "qwen2_5_omni_thinker", benches
            )
    judge = (evaluation.get("judge") or {}).get("model")
    if judge is not None:
        if judge not in models:
            raise ConfigError(f"config: evaluation.judge.model = {judge!r} is not under `models`")
        if models[judge]["adapter"] not in JUDGE_ADAPTERS:
            raise ConfigError(
                f"config: evaluation.judge.model = {judge!r} has adapter "
                f"{models[judge]['adapter']!r}; a judge needs {' or '.join(JUDGE_ADAPTERS)}"
            )
    return out


def config_hash(config: dict) -> str:
    """SHA-256 of a configuration (canonical JSON)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
