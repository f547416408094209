"""What a user's config removes, replaces and mixes, resolved before any rule is planned.

Snakemake merges every ``--configfile`` into config/config.yaml key by key (nested
sections are merged, not replaced), so a user's file can add and change entries but
not drop the default ones. :func:`resolve` gives such a file the means to say what it
replaces:

- a dataset, a generated task, a whole benchmark section, an import entry or a QA set
  set to ``null`` (or ``false``) is removed; a task still drawing from a removed dataset is an
  error naming both;
- an entry of ``evaluation.models`` set to ``null`` (or ``false``) is removed: not
  evaluated, so a checkpoint that only it asked for (not in ``training.methods``) is
  not trained (config/paper.yaml drops the default's non-paper ablations this way);
- a task under ``benchmark.import`` replaces the generated task of the same name;
- a benchmark (or the plain QA sets) drawing from synthetic and real sources together
  is an error naming the datasets of each kind, unless
  ``benchmark.allow_mixed_sources`` is true; then the run log says so.

The returned config is what every rule sees; the notes are what the run log states.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from avtrust.errors import ConfigError

GENERATED_BENCHES = ("avtrustbench", "avconfusebench")
QA_SETS = "evaluation.qa_sets"
OFFICIAL = "official files"  # an imported task: the released samples, real clips


def removed(value: object) -> bool:
    """A config entry set to null or false: the user removes it."""
    return value is None or value is False


@dataclass
class Resolved:
    config: dict
    notes: list[str] = field(default_factory=list)


def resolve(config: dict) -> Resolved:
    """The config with removals and replacements applied, and what the log states."""
    cfg = copy.deepcopy(config)
    notes: list[str] = []
    gone = _drop_removed_datasets(cfg, notes)
    _drop_removed_tasks(cfg, notes)
    _drop_removed_evaluation_entries(cfg, notes, "qa_sets")
    _drop_removed_evaluation_entries(cfg, notes, "models")
    _check_removed_datasets_unused(cfg, gone, notes)
    notes += _check_mixing(cfg)
    return Resolved(cfg, notes)


def _drop_removed_datasets(cfg: dict, notes: list[str]) -> list[str]:
    datasets = cfg["datasets"]
    gone = [name for name, spec in datasets.items() if removed(spec)]
    cfg["datasets"] = {n: s for n, s in datasets.items() if not removed(s)}
    if gone:
        notes.append(f"datasets removed by the config: {', '.join(gone)}")
    if not cfg["datasets"]:
        raise ConfigError(
            "config: every dataset under `datasets` is removed (null); keep or add one "
            "(the QA sets and generated tasks draw from them)"
        )
    return gone


def _drop_removed_tasks(cfg: dict, notes: list[str]) -> None:
    bench_cfg = cfg["benchmark"]
    imports = bench_cfg.get("import") or {}
    for bench in GENERATED_BENCHES:
        entries = imports.get(bench) or {}
        dropped = [t for t, spec in entries.items() if removed(spec)]
        if dropped:
            notes.append(f"benchmark.import.{bench}: removed {', '.join(dropped)}")
        if bench in imports:
            imports[bench] = {t: s for t, s in entries.items() if not removed(s)}
        imported = imports.get(bench, {})

        section = bench_cfg.get(bench)
        if removed(section):
            notes.append(f"benchmark.{bench}: every generated task removed")
            section = {}
        kept, replaced, off = {}, [], []
        for task, spec in section.items():
            if removed(spec):
                off.append(task)
            elif task in imported:
                replaced.append(task)
            else:
                kept[task] = spec
        bench_cfg[bench] = kept
        if off:
            notes.append(f"benchmark.{bench}: generated tasks removed: {', '.join(off)}")
        if replaced:
            notes.append(f"benchmark.import.{bench} replaces the generated {', '.join(replaced)}")
    if "import" in bench_cfg:
        bench_cfg["import"] = imports


def _drop_removed_evaluation_entries(cfg: dict, notes: list[str], key: str) -> None:
    """``evaluation.<key>`` (qa_sets, models) without its entries set to null or false."""
    evaluation = cfg.get("evaluation") or {}
    entries = evaluation.get(key) or {}
    off = [name for name, spec in entries.items() if removed(spec)]
    if off:
        evaluation[key] = {n: s for n, s in entries.items() if not removed(s)}
        notes.append(f"evaluation.{key} removed: {', '.join(off)}")


def _check_removed_datasets_unused(cfg: dict, gone: list[str], notes: list[str]) -> None:
    """A removed dataset may not be drawn from; a QA set of it is left out, said so."""
    if not gone:
        return
    users = []
    for bench in GENERATED_BENCHES:
        for task, spec in cfg["benchmark"][bench].items():
            for key in ("dataset", "sounds"):
                if spec.get(key) in gone:
                    users.append(f"benchmark.{bench}.{task}.{key} = {spec[key]}")
    for name, spec in cfg["datasets"].items():
        if spec.get("source") == "compose" and spec.get("from") in gone:
            users.append(f"datasets.{name}.from = {spec['from']}")
    if users:
        raise ConfigError(
            f"config: {'; '.join(users)}: that dataset is removed (set to null); remove "
            "these entries too (set them to null) or point them at a dataset the run keeps "
            f"({', '.join(cfg['datasets'])})"
        )
    qa = [n for n in (cfg.get("evaluation") or {}).get("qa_sets", {}) if n in gone]
    if qa:
        notes.append(f"QA sets left out with their removed datasets: {', '.join(qa)}")
    # RL-CoMM's training questions come from the QA datasets the run keeps.
    questions = ((cfg.get("scoring") or {}).get("rlcomm") or {}).get("questions") or {}
    left_out = [n for n in questions.get("datasets") or [] if n in gone]
    if left_out:
        questions["datasets"] = [n for n in questions["datasets"] if n not in gone]
        notes.append(
            "RL-CoMM training questions left out with their removed datasets: "
            + ", ".join(left_out)
        )


def dataset_kind(datasets: dict, name: str) -> str:
    """The kind of dataset ``name``: "synthetic" if generated here (or composed from a
    synthetic one), else "real"."""
    seen = set()
    spec = datasets[name]
    while spec["source"] == "compose" and spec.get("from") in datasets and name not in seen:
        seen.add(name)
        name = spec["from"]
        spec = datasets[name]
    return "synthetic" if spec["source"] == "synthetic" else "real"


def sources_by_bench(cfg: dict) -> dict[str, dict[str, list[str]]]:
    """Per benchmark (and the QA sets), the datasets it draws from by kind; imported
    tasks count as real ("official files")."""
    datasets = cfg["datasets"]
    out: dict[str, dict[str, list[str]]] = {}
    imports = cfg["benchmark"].get("import") or {}
    for bench in GENERATED_BENCHES:
        kinds: dict[str, list[str]] = {"synthetic": [], "real": []}
        for spec in cfg["benchmark"][bench].values():
            for key in ("dataset", "sounds"):
                name = spec.get(key)
                if name in datasets and name not in kinds[dataset_kind(datasets, name)]:
                    kinds[dataset_kind(datasets, name)].append(name)
        if imports.get(bench):
            kinds["real"].append(OFFICIAL)
        out[bench] = kinds
    qa = {"synthetic": [], "real": []}
    for name in (cfg.get("evaluation") or {}).get("qa_sets", {}):
        if name in datasets:
            qa[dataset_kind(datasets, name)].append(name)
    out[QA_SETS] = qa
    return out


def _check_mixing(cfg: dict) -> list[str]:
    allow = cfg["benchmark"].get("allow_mixed_sources", False)
    mixed = {
        bench: kinds
        for bench, kinds in sources_by_bench(cfg).items()
        if kinds["synthetic"] and kinds["real"]
    }
    lines = [
        f"{bench} mixes synthetic ({', '.join(k['synthetic'])}) and real "
        f"({', '.join(k['real'])}) sources"
        for bench, k in mixed.items()
    ]
    if mixed and not allow:
        raise ConfigError(
            "config: "
            + "; ".join(lines)
            + ". Set the synthetic datasets (or the tasks and QA sets using them) to null "
            "to leave them out, point those tasks at real datasets, or set "
            "benchmark.allow_mixed_sources: true to build them mixed"
        )
    return [f"{line} (benchmark.allow_mixed_sources: true)" for line in lines]
