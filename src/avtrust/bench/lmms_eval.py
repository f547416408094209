"""Export of the benchmark tasks as lmms-eval tasks (rule export_lmms_eval).

The task folder holds one YAML per task (``avtrustbench_mcit``, ``avconfusebench_m1``…,
lmms-eval task names: the bench, an underscore and the task in lower case, other
characters as underscores), a group YAML per benchmark (``avtrustbench``,
``avconfusebench``), ``utils.py`` (what the YAMLs' ``!function`` tags name) and the
package ``avtrust_eval/``: unchanged copies of the workflow's prompt, answer parser,
audio keyword metric and lmms-eval task functions (:mod:`avtrust.evaluate.lmms_tasks`),
with ``settings.json`` (the Hugging Face folder, the abstention wordings, the m2 sound
keywords). lmms-eval loads each task's ``split`` from the Hugging Face ``datasets``
export (:mod:`avtrust.bench.export`) by its absolute path, so the task folder works
from anywhere while the export folder and its media stay where they were built.

Run with ``lmms-eval --include_path <folder> --tasks avtrustbench,avconfusebench …``.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import yaml

from avtrust.bench import card
from avtrust.io import write_text_atomic

PACKAGE = "avtrust_eval"
# The modules copied into the task folder's package (all import only each other).
MODULES = ("parse", "prompts", "audio_keywords", "lmms_tasks")
UTILS = f'''"""lmms-eval task functions of the AVTrustBench / AV-ConfuseBench export (avtrust).

lmms-eval imports this file by path; the functions live in the {PACKAGE} package next to
it: copies of the workflow's prompt, answer parser and metrics.
"""

import sys
from pathlib import Path

_here = str(Path(__file__).resolve().parent)
if _here not in sys.path:
    sys.path.insert(0, _here)

from {PACKAGE}.lmms_tasks import doc_to_text, doc_to_visual, process_results  # noqa: E402

__all__ = ["doc_to_text", "doc_to_visual", "process_results"]
'''


class _Function(str):
    """A YAML ``!function`` reference (lmms-eval's tag for a function of utils.py)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Function, lambda dumper, value: dumper.represent_scalar("!function", str(value))
)


def task_name(bench: str, task: str) -> str:
    """The lmms-eval name of a task: ``avtrustbench_cot_stitch``, ``avconfusebench_m1``."""
    return f"{bench}_{re.sub(r'[^0-9a-z]+', '_', task.lower()).strip('_')}"


def metrics_of(task: str, kind: str) -> list[str]:
    """The metrics a task reports (names as in the results database)."""
    if kind == "open":
        return ["audio_match"]
    return ["accuracy", "unparseable"] + (["yes_rate"] if task == "m1" else [])


def _metric_entry(metric: str) -> dict:
    # The samples score 0 or 100, so the mean is the task's percentage. Lower is better
    # for the share of unparseable replies and for m1's hallucinated "yes".
    better = metric not in ("unparseable", "yes_rate")
    return {"metric": metric, "aggregation": "mean", "higher_is_better": better}


def task_config(
    bench: str, task: str, kind: str, hf_folder: Path, split: str, max_new_tokens: int
) -> dict:
    """One task's lmms-eval YAML, as a dict."""
    return {
        "task": task_name(bench, task),
        "dataset_path": str(hf_folder),
        "dataset_name": task,
        "test_split": split,
        "output_type": "generate_until",
        "doc_to_visual": _Function("utils.doc_to_visual"),
        "doc_to_text": _Function("utils.doc_to_text"),
        "doc_to_target": "answer",
        "process_results": _Function("utils.process_results"),
        # greedy, as the workflow's generate mode
        "generation_kwargs": {
            "max_new_tokens": max_new_tokens,
            "do_sample": False,
            "temperature": 0,
            "num_beams": 1,
        },
        "metric_list": [_metric_entry(m) for m in metrics_of(task, kind)],
        "metadata": {"version": 1.0},
    }


def _task_kind(hf_folder: Path, task: str, split: str) -> str:
    """``open`` when the task's samples have no options (m2), else ``closed``."""
    import pyarrow.parquet as pq

    path = hf_folder / card.split_file(task, split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: task {task} has no {split!r} split in the Hugging Face export "
            "(too few samples for the split?); lmms-eval tasks are built from it"
        )
    options = pq.read_table(path, columns=["options"]).column("options").to_pylist()
    return "closed" if any(options) else "open"


def export_lmms_eval(
    hf_folder: str,
    out_folder: str,
    tasks: dict[str, list[str]],
    wording: dict[str, str],
    sound_keywords: dict[str, list[str]],
    max_new_tokens: int,
    max_new_tokens_open: int,
    split: str = "test",
    prompts: dict[str, dict[str, str]] | None = None,
) -> list[str]:
    """Write the lmms-eval task folder ``out_folder`` for ``tasks`` (bench -> tasks) of
    the Hugging Face export ``hf_folder``; returns the lmms-eval task names.
    ``wording`` is every abstention wording (the workflow's, overrides applied);
    ``prompts`` each bench's evaluation prompt template (``evaluation.prompts``; a bench
    left out asks with the default wording)."""
    hf = Path(hf_folder).resolve()
    out = Path(out_folder)
    package = out / PACKAGE
    source = resources.files("avtrust.evaluate")
    for module in MODULES:
        text = source.joinpath(f"{module}.py").read_text(encoding="utf-8")
        write_text_atomic(package / f"{module}.py", text)
    write_text_atomic(package / "__init__.py", '"""avtrust\'s lmms-eval task functions."""\n')
    settings = {
        "hf_folder": str(hf),
        "wording": wording,
        "sound_keywords": sound_keywords,
        "prompts": prompts or {},
    }
    write_text_atomic(package / "settings.json", json.dumps(settings, indent=1, sort_keys=True))
    write_text_atomic(out / "utils.py", UTILS)
    names = []
    for bench, bench_tasks in tasks.items():
        members = []
        for task in bench_tasks:
            kind = _task_kind(hf, task, split)
            tokens = max_new_tokens_open if kind == "open" else max_new_tokens
            config = task_config(bench, task, kind, hf, split, tokens)
            text = yaml.dump(config, Dumper=_Dumper, sort_keys=False)
            write_text_atomic(out / f"{config['task']}.yaml", text)
            members.append(config["task"])
        group = {"group": bench, "task": members}
        write_text_atomic(out / f"{bench}.yaml", yaml.safe_dump(group, sort_keys=False))
        names += members
    return names
