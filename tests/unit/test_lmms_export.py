"""The lmms-eval task folder's names and errors (lmms-eval itself: tests/lmms_eval/)."""

from __future__ import annotations

import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from avtrust.bench.lmms_eval import export_lmms_eval, task_name
from avtrust.bench.samples import wording


def test_task_names_are_lmms_eval_names():
    assert task_name("avtrustbench", "COT-Stitch") == "avtrustbench_cot_stitch"
    assert task_name("avtrustbench", "MCIT") == "avtrustbench_mcit"
    assert task_name("avconfusebench", "m2") == "avconfusebench_m2"


def split_file(hf, task, split, options):
    path = hf / "data" / task / f"{split}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{"id": f"{task}-0", "options": options}]), path)


def export(hf, out):
    return export_lmms_eval(
        str(hf), str(out), {"avconfusebench": ["m1", "m2"]}, wording(), {"wind": ["wind"]}, 16, 48
    )


def test_open_tasks_get_the_open_token_budget_and_their_metric(tmp_path):
    hf = tmp_path / "hf"
    split_file(hf, "m1", "test", ["yes", "no"])
    split_file(hf, "m2", "test", None)
    assert export(hf, tmp_path / "out") == ["avconfusebench_m1", "avconfusebench_m2"]
    load = lambda name: yaml.safe_load(  # noqa: E731
        (tmp_path / "out" / f"{name}.yaml").read_text().replace("!function", "")
    )
    m1, m2 = load("avconfusebench_m1"), load("avconfusebench_m2")
    assert m1["generation_kwargs"]["max_new_tokens"] == 16
    assert [m["metric"] for m in m1["metric_list"]] == ["accuracy", "unparseable", "yes_rate"]
    assert m2["generation_kwargs"]["max_new_tokens"] == 48
    assert [m["metric"] for m in m2["metric_list"]] == ["audio_match"]
    assert load("avconfusebench") == {
        "group": "avconfusebench",
        "task": ["avconfusebench_m1", "avconfusebench_m2"],
    }


def test_a_task_without_the_split_is_an_error_naming_it(tmp_path):
    hf = tmp_path / "hf"
    split_file(hf, "m1", "test", ["yes", "no"])
    split_file(hf, "m2", "train", None)
    with pytest.raises(FileNotFoundError, match="task m2 has no 'test' split"):
        export(hf, tmp_path / "out")


def test_exported_tasks_word_prompts_by_the_configured_template(tmp_path, monkeypatch):
    """The copied task package asks with the bench's evaluation.prompts template, as the
    workflow's own evaluation does (a default-worded copy would score another prompt)."""
    hf = tmp_path / "hf"
    split_file(hf, "m1", "test", ["yes", "no"])
    split_file(hf, "m2", "test", None)
    template = {"yes_no": "Q: {question}\nReply yes or no.", "open": "{question} Be brief."}
    export_lmms_eval(
        str(hf), str(tmp_path / "out"), {"avconfusebench": ["m1", "m2"]}, wording(),
        {"wind": ["wind"]}, 16, 48, prompts={"avconfusebench": template},
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path / "out"))
    # Each task folder has its own `avtrust_eval` package: import this one afresh and
    # forget it afterwards (a later test importing another folder's would get this one).
    for name in avtrust_eval_modules():
        monkeypatch.delitem(sys.modules, name)
    try:
        check_prompts(tmp_path)
    finally:
        for name in avtrust_eval_modules():
            del sys.modules[name]


def avtrust_eval_modules() -> list[str]:
    return [m for m in sys.modules if m.split(".")[0] == "avtrust_eval"]


def check_prompts(tmp_path):
    import avtrust_eval.lmms_tasks as tasks

    m1 = {"bench": "avconfusebench", "question": "Is there a violin sound?"}
    m1["options"] = ["yes", "no"]
    m2 = {"bench": "avconfusebench", "question": "Describe it.", "options": None}
    assert tasks.doc_to_text(m1) == "Q: Is there a violin sound?\nReply yes or no."
    assert tasks.doc_to_text(m2) == "Describe it. Be brief."
    assert tasks.__file__.startswith(str(tmp_path / "out"))
