"""Exact reruns: editing one configuration key reruns exactly the jobs that read it and
what depends on them.

For every leaf key of config/config.yaml (as the tiny run sets it) and the keys that
config/paper.yaml adds, a copy of the tiny config with that value changed is dry-run in
the finished tiny run's folder. The jobs Snakemake plans must be the jobs that read
the key (``READERS`` below: the specification, written from what each rule's script
and the package functions it calls read) plus everything downstream of them — no job
missing (a stale result) and no job more (wasted GPU hours).
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import MISSING, fields

import pytest
import yaml
from conftest import REPO, SNAKEMAKE, TINY

from avtrust.dryrun import planned_jobs
from avtrust.evaluate.prompts import DEFAULT_TEMPLATE
from avtrust.train.config import TrainSettings

pytestmark = pytest.mark.workflow

DEFAULT = yaml.safe_load((REPO / "config/config.yaml").read_text())
PAPER = yaml.safe_load((REPO / "config/paper.yaml").read_text())


# The tiny run's config (a --configfile takes the place of config/config.yaml); json
# round trip: YAML anchors (rlcomm.grpo_acc: *grpo) must not share one dict.
TINY_CONFIG = json.loads(json.dumps(yaml.safe_load(TINY.read_text())))
# What a key left out of the config means (the schema's or the settings' default): a
# key config/config.yaml or config/paper.yaml adds is set to a value other than this.
IMPLIED = {
    **{f.name: f.default for f in fields(TrainSettings) if f.default is not MISSING},
    "mem_mb": 8000,
    "accelerate_config": None,
    "embedding_instruction": None,
    "on_short_supply": "cap",
    "allow_mixed_sources": False,
    # the schema's defaults of a `tracking` section
    "report_to": "none",
    "run_name": "{method}",
    "logging_dir": "results/tracking",
    # the evaluation prompt's parts (evaluation.prompts.<bench>.<part>)
    **DEFAULT_TEMPLATE,
}


def leaves(cfg, prefix=()):
    """(path, value) of every leaf; a list is one leaf, an empty section none."""
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            yield from leaves(v, (*prefix, k))
    else:
        yield prefix, cfg


# Keys deliberately not checked, with the reason.
EXEMPT = {
    r"datasets\..*": "a dataset's format or source picks other rules (the DAG changes shape); "
    "the real sources' keys need real data, which the tiny run does not have",
    r"models\.[^.]+\.adapter": "another adapter is another kind of model: the config checks "
    "refuse it where a rule needs this kind",
    r"(training\.model|rlcomm\.policy|scoring\.clap_model|scoring\.rlcomm\.(reference|embedding)"
    r"_model|evaluation\.judge\.model)": "names another model: the consumers' input folder "
    "changes, so Snakemake reruns them through their inputs",
    r"models\.judge_llm\..*": "config/paper.yaml's endpoint judge, used only when named",
    r"scoring\.rlcomm\.questions\.splits": "the only other split, val, is MUSIC-AVQA's alone "
    "(AVQA's val file is its evaluation set: refused) and the synthetic corpus writes no "
    "val file; rlcomm_questions holds it in its params",
    r"evaluation\.(models|tasks)\..*": "which models and tasks are evaluated: jobs appear or "
    "leave the DAG (tests/workflow/test_evaluate.py)",
    r"pretrain\.enabled": "turns the pretrain stage on: its jobs join the DAG in front of "
    "every consumer of the thinker (tests/workflow/test_pretrain_workflow.py)",
    r"evaluation\.decode_cache\.dir": "moves the decode-once cache: the decode jobs' outputs "
    "and the evaluation and training jobs' inputs change path, so Snakemake reruns them "
    "through their inputs",
}

# Alternatives for values whose type alone does not say what else is valid.
CHOICES = {
    "device": ["cpu", "auto"],
    "precision": ["no", "bf16"],
    "mode": ["both", "generate"],
    "loglik_norm": ["sum", "mean"],
    "split": ["test", "all"],
    "source": ["tiny", "hub"],
    "lr_scheduler": ["linear", "cosine"],
    "report_to": ["none", "tensorboard"],
    "beta": [0.1, 0.2],
    "dataset": ["avqa", "audioset", "music_avqa"],
    "sounds": ["sounds", "audioset"],
    "sample_rate": [16000, 22050],  # the schema's list of rates
    "on_short_supply": ["cap", "fail"],
    "group_tasks": ["task", "benchmark", "model"],
}


def changed(path: tuple, value):
    """Another valid value for ``path``."""
    name = path[-1]
    if name in CHOICES and value in CHOICES[name]:
        options = CHOICES[name]
        return options[(options.index(value) + 1) % len(options)]
    if name == "beta" and value == "calibrated":
        return 0.3
    if isinstance(value, bool):
        return not value
    if value is None:
        return {
            "accelerate_config": "config/accelerate/zero2.yaml",
            "embedding_instruction": "Instruct: Say whether two texts name the same sounds\nQuery:",
        }.get(name, 1)
    if isinstance(value, int):
        return value + (2 if name in ("width", "height") else 1)  # frame sizes are even
    if isinstance(value, float):
        return value / 2 if 0 < value < 1 else value + 1
    if isinstance(value, str):
        return value + "-edited"
    if isinstance(value, list):
        return value[:-1] if len(value) > 1 else [*value, value[0]]
    raise TypeError(f"no change for {'.'.join(path)} = {value!r}")


def is_(rule, **wc):
    return lambda j: j["rule"] == rule and all(j["wildcards"].get(k) in v for k, v in wc.items())


def rules(*names):
    return lambda j: j["rule"] in names


CLIP_FORMATS = ("music_avqa", "avqa", "audioset")
SEEDED = rules(
    "fetch_synthetic", "plan_task", "prepare_model", "split_samples", "counterfactual_media",
    "rlcomm_questions", "train", "rlcomm_train", "qa_set", "judge_m2", "model_metrics",
)  # fmt: skip
NOBODY = rules()  # resources (threads, GPUs, memory) and `all`'s target lists
# tiny.yaml evaluates each task on its own (evaluation.group_tasks: task): group =
# <bench>/<task>


def evaluates(*benches, task=None):
    """Evaluation jobs of one of ``benches`` (any when none), of ``task`` if given."""

    def test(j):
        if j["rule"] != "evaluate_shard":
            return False
        bench, name = j["wildcards"]["group"].split("/")
        return (not benches or bench in benches) and task in (None, name)

    return test


CLOSED_EVAL = lambda j: evaluates()(j) and not evaluates(task="m2")(j)  # noqa: E731
LMMS = rules("export_lmms_eval")  # the lmms-eval tasks: prompts cut and replies parsed the same way
FORMAT_KEYS = {
    "solos_per_instrument": ("music_avqa",),
    "scenes": ("music_avqa",),
    "instruments_per_scene": ("music_avqa",),
    "onset_step_s": ("music_avqa",),
    "avqa_clips": ("avqa",),
    "qa_train_fraction": ("music_avqa", "avqa"),
    "audioset_clips": ("audioset",),
    "two_event_fraction": ("audioset",),
    "sounds_per_type": ("sounds",),
    "duration_s": (*CLIP_FORMATS, "sounds"),
    "sample_rate": (*CLIP_FORMATS, "sounds"),
}

# key pattern -> the jobs that read it (first match wins); {name} groups are wildcards.
READERS = [
    (r"seed", lambda m: SEEDED),
    (r"corpus\.(\w+)", lambda m: is_("fetch_synthetic", dataset=FORMAT_KEYS.get(m[1], CLIP_FORMATS))),
    (r"index\.decode_check", lambda m: rules("index_dataset")),
    (
        r"media\.(video|audio)_codec\..*",
        lambda m: lambda j: is_("fetch_synthetic", dataset=CLIP_FORMATS)(j) or j["rule"] == "manipulate_shard",
    ),
    (r"media\.sample_rate", lambda m: is_("manipulate_shard", task=("m1", "m2"))),
    (r"benchmark\.shards", lambda m: rules("manipulate_shard")),
    (r"benchmark\.on_short_supply", lambda m: rules("plan_task")),
    (
        r"benchmark\.wording\.irrelevant_options",
        lambda m: lambda j: is_("plan_task", task=("ICIT",))(j) or CLOSED_EVAL(j) or LMMS(j),
    ),
    (r"benchmark\.(avtrustbench|avconfusebench)\.([^.]+)\..*", lambda m: is_("plan_task", bench=(m[1],), task=(m[2],))),
    (r"models\.(\w+)\..*", lambda m: is_("prepare_model", model=(m[1],))),
    (r"scoring\.train_fraction", lambda m: rules("split_samples")),
    (r"scoring\.shards", lambda m: rules("counterfactual_media", "reference_reasoning")),
    (r"scoring\.(batch_size|device)", lambda m: rules("score_pairs", "reference_reasoning")),
    (r"scoring\.cavpref\.tasks", lambda m: rules("counterfactual_media", "score_pairs")),
    (r"scoring\.cavpref\.(eta|gamma)\..*", lambda m: rules("score_pairs")),
    (r"scoring\.rlcomm\.max_new_tokens", lambda m: rules("reference_reasoning")),
    (r"scoring\.rlcomm\.(questions\..*|warmup_samples)", lambda m: rules("rlcomm_questions")),
    (r"scoring\.rlcomm\.embedding_instruction", lambda m: lambda j: j["rule"] == "reference_reasoning" or is_("rlcomm_train", method=("rlcomm_steprr",))(j)),
    (r"rlcomm\.(device|precision|processes|media_cache|keep_state|lora\..*|accelerate_config|tracking\..*)", lambda m: rules("rlcomm_train")),
    (r"rlcomm\.warmup\..*", lambda m: is_("rlcomm_train", method=("rlcomm_warmup",))),
    (r"rlcomm\.steprr\..*", lambda m: is_("rlcomm_train", method=("rlcomm_steprr",))),
    (r"rlcomm\.grpo_acc\..*", lambda m: is_("rlcomm_train", method=("grpo_acc",))),
    (r"rlcomm\.ansco\..*", lambda m: is_("rlcomm_train", method=("rlcomm_ansco",))),
    (r"training\.(device|precision|processes|accelerate_config|media_cache|keep_state|tasks|tracking\..*|defaults\..*)", lambda m: rules("train")),
    (r"training\.(sft|dpo|cavpref)\..*", lambda m: is_("train", method=(m[1],))),
    (r"evaluation\.split", lambda m: lambda j: (j["rule"] == "decode_clips" and j["wildcards"]["bench"] != "qa") or evaluates("avtrustbench", "avconfusebench")(j) or j["rule"] == "results_db"),
    (r"evaluation\.(shards|group_tasks)", lambda m: rules("evaluate_shard")),
    (r"evaluation\.(batch_size|device)", lambda m: lambda j: j["rule"] == "evaluate_shard" or (m[1] == "device" and j["rule"] == "judge_m2")),
    (r"evaluation\.mode", lambda m: rules("evaluate_shard", "model_metrics")),
    (r"evaluation\.loglik_norm", lambda m: CLOSED_EVAL),
    (r"evaluation\.max_new_tokens", lambda m: lambda j: CLOSED_EVAL(j) or LMMS(j)),
    (r"evaluation\.max_new_tokens_open", lambda m: lambda j: evaluates(task="m2")(j) or LMMS(j)),
    (r"evaluation\.prompts\.(\w+)\.open", lambda m: lambda j: evaluates(m[1], task="m2")(j) or (m[1] != "qa" and LMMS(j))),
    # SFT, DPO and CAVPref train on AVTrustBench's log-likelihood wording (training_parts)
    (
        r"evaluation\.prompts\.avtrustbench\.(yes_no|loglik|loglik_option)",
        lambda m: lambda j: j["rule"] == "train" or (evaluates("avtrustbench")(j) and CLOSED_EVAL(j)) or LMMS(j),
    ),
    (r"evaluation\.prompts\.(\w+)\.\w+", lambda m: lambda j: (evaluates(m[1])(j) and CLOSED_EVAL(j)) or (m[1] != "qa" and LMMS(j))),
    # the tiny run has the stage off: its settings must rerun nothing
    (r"pretrain\..*", lambda m: lambda j: False),
    (r"evaluation\.qa_sets\.(\w+)\.samples", lambda m: is_("qa_set", dataset=(m[1],))),
    (r"evaluation\.judge\..*", lambda m: rules("judge_m2")),
    (
        # allow_mixed_sources: checked when the DAG is built, read by no job
        r"(index\.workers|benchmark\.(workers_per_shard|allow_mixed_sources)|(scoring|training|rlcomm|evaluation)"
        r"\.(threads|gpus|mem_mb)|training\.methods|rlcomm\.enabled|training\.cavpref_\w+\..*"
        r"|evaluation\.decode_cache\.shard_clips)",
        lambda m: NOBODY,
    ),
]  # fmt: skip
# Keys whose edit adds or removes jobs: the expected jobs come from the edited DAG.
RESHAPING = re.compile(r"benchmark\.shards|scoring\.shards|evaluation\.(shards|group_tasks)")


def readers_of(key: str):
    for pattern, make in READERS:
        match = re.fullmatch(pattern, key)
        if match:
            return make(match)
    return None


def job_id(job: dict) -> str:
    wc = ",".join(f"{k}={v}" for k, v in sorted(job["wildcards"].items()))
    return f"{job['rule']}[{wc}]"


def downstream(jobs: list[dict], start: set[str]) -> set[str]:
    """``start`` and every job that consumes, directly or not, one of their outputs."""
    producer = {}
    for j in jobs:
        for out in j["output"]:
            producer[out] = job_id(j)
    consumers: dict[str, set[str]] = {}
    for j in jobs:
        for path in j["input"]:
            src = producer.get(path) or next(
                (p for d, p in producer.items() if path.startswith(d + "/")), None
            )
            if src:
                consumers.setdefault(src, set()).add(job_id(j))
    seen, todo = set(start), list(start)
    while todo:
        for nxt in consumers.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def cases() -> list[tuple[str, tuple, object]]:
    """(key, path, new value) for every checked key."""
    out = []
    tiny_leaves = dict(leaves(TINY_CONFIG))
    for path, value in tiny_leaves.items():
        out.append((".".join(path), path, changed(path, value)))
    seen = set(tiny_leaves)
    for extra in (DEFAULT, PAPER):  # keys the tiny config leaves at their default
        for path, value in leaves(extra):
            if path in seen or any(path[:i] in tiny_leaves for i in range(1, len(path))):
                continue
            seen.add(path)
            if path[-1] in IMPLIED and value == IMPLIED[path[-1]]:
                value = changed(path, value)
            out.append((".".join(path), path, value))
    return [c for c in out if not any(re.fullmatch(p, c[0]) for p in EXEMPT)]


# Sections whose keys the schema requires together: an edit of one of their keys in a
# config without the section starts from the default's whole section.
WHOLE_SECTIONS = {("pretrain", "vision_tower")}


def set_key(cfg: dict, path: tuple, value) -> dict:
    cfg = json.loads(json.dumps(cfg))
    node = cfg
    for i, k in enumerate(path[:-1]):
        if k not in node and path[: i + 1] in WHOLE_SECTIONS:
            section = DEFAULT
            for part in path[: i + 1]:
                section = section[part]
            node[k] = json.loads(json.dumps(section))
        node = node.setdefault(k, {})
    node[path[-1]] = value
    return cfg


def dry_run(workdir, config_path, *extra) -> list[dict]:
    cmd = [*SNAKEMAKE, "-n", "--nolock", "--directory", str(workdir), "--configfile",
           str(config_path), *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"dry run with {config_path.name} failed:\n{proc.stderr[-3000:]}")
    return [j for j in planned_jobs(proc.stdout) if j["rule"] != "all"]


def test_every_key_is_specified():
    """A new config key needs a line in READERS (or EXEMPT): nothing is left unchecked."""
    missing = [key for key, _, _ in cases() if readers_of(key) is None]
    assert not missing, f"keys without a READERS entry: {missing}"


def test_editing_a_key_reruns_exactly_its_readers(tiny_run, tmp_path):
    full = dry_run(tiny_run, TINY, "--forceall")

    def check(case):
        key, path, value = case
        config_path = tmp_path / f"{key}.yaml"
        config_path.write_text(yaml.safe_dump(set_key(TINY_CONFIG, path, value), sort_keys=False))
        planned = {job_id(j) for j in dry_run(tiny_run, config_path)}
        graph = dry_run(tiny_run, config_path, "--forceall") if RESHAPING.fullmatch(key) else full
        reads = readers_of(key)
        new = {job_id(j) for j in graph} - {job_id(j) for j in full}
        expected = downstream(graph, {job_id(j) for j in graph if reads(j)} | new)
        problems = []
        if planned - expected:
            problems.append(f"reruns jobs that do not read it: {sorted(planned - expected)}")
        if expected - planned:
            problems.append(f"leaves stale jobs that read it: {sorted(expected - planned)}")
        return key, problems

    todo = [c for c in cases() if readers_of(c[0]) is not None]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(check, todo))
    failures = {key: problems for key, problems in results if problems}
    assert not failures, "\n".join(f"{k}: {'; '.join(p)}" for k, p in failures.items())
