"""Inference over a shard (avtrust.evaluate.infer): batching by stream kind, both scoring
modes, resuming a killed shard without redoing finished batches; the QA set builder."""

from __future__ import annotations

import pytest

from avtrust.evaluate.infer import (
    Predictor,
    Settings,
    batches,
    merge_shards,
    prompt_for,
    run_shard,
)
from avtrust.io import write_parquet_atomic
from avtrust.sharding import shard_rows


class FakeModel:
    """Answers from a table by prompt; log-probs favour option `best` of each sample."""

    def __init__(self, replies, best):
        self.replies, self.best = replies, best
        self.generate_calls, self.forward_calls = [], 0

    def generate(self, paths, prompts, *, max_new_tokens, batch_size):
        self.generate_calls.append(len(paths))
        return [self.replies[p.split("\n")[0]] for p in prompts]

    def inputs(self, paths, prompts, responses):
        import torch

        labels = torch.tensor([[-100, 1, 1] for _ in responses])
        return {"responses": responses, "prompts": prompts, "labels": labels}

    def sequence_logprobs(self, batch):
        import torch

        self.forward_calls += 1
        return torch.tensor(
            [0.0 if r == self.best[p.split("\n")[0]] else -5.0
             for p, r in zip(batch["prompts"], batch["responses"], strict=True)]
        )  # fmt: skip


def row(i, kind="av", options=("violin", "cello", "Audio is missing"), answer=2):
    return {"id": f"MAT-{i:06d}", "bench": "avtrustbench", "task": "MAT", "category": "c",
            "media_path": f"m/{i}.mp4", "has_audio": "a" in kind, "has_video": "v" in kind,
            "question": f"q{i}", "options": list(options) if options else None,
            "answer": options[answer] if options else "desc",
            "answer_index": answer if options else -1}  # fmt: skip


def test_batches_group_by_stream_kind():
    rows = [row(0, "av"), row(1, "v"), row(2, "av"), row(3, "v"), row(4, "av")]
    assert batches(rows, 2) == [[0, 2], [4], [1, 3]]
    assert [r["id"] for r in shard_rows(rows, 1, 2)] == ["MAT-000001", "MAT-000003"]


def test_batches_by_sequence_length_within_a_stream_kind():
    rows = [row(0, "av"), row(1, "v"), row(2, "av"), row(3, "v"), row(4, "av")]
    length = {"MAT-000000": 9, "MAT-000002": 1, "MAT-000004": 5, "MAT-000001": 2,
              "MAT-000003": 1}  # fmt: skip
    assert batches(rows, 2, lambda r: length[r["id"]]) == [[2, 4], [0], [3, 1]]


def test_prompts():
    assert prompt_for("Is there a violin sound?", ["yes", "no"]).endswith("Answer yes or no.")
    assert "B. cello" in prompt_for("q", ["violin", "cello"])
    assert prompt_for("Describe.", None) == "Describe."


def test_both_modes_and_correctness(tmp_path):
    rows = [row(i) for i in range(3)] + [row(3, options=None)]
    model = FakeModel({"q0": "C", "q1": "It is the violin.", "q2": "hmm", "q3": "Based on..."},
                      {"q0": "Audio is missing", "q1": "violin",
                       "q2": "Audio is missing"})  # fmt: skip
    table = run_shard(Predictor(model), rows, Settings(modes=("generate", "loglik"), batch_size=4),
                      model_id="fake", state_dir=tmp_path / "s")  # fmt: skip
    got = {
        (r["id"][-1], r["mode"]): (r["parsed_index"], r["status"], r["correct"])
        for r in table.to_pylist()
    }
    assert got == {
        ("0", "generate"): (2, "ok", True), ("0", "loglik"): (2, "ok", True),
        ("1", "generate"): (0, "ok", False), ("1", "loglik"): (0, "ok", False),
        ("2", "generate"): (None, "unparseable", False), ("2", "loglik"): (2, "ok", True),
        ("3", "generate"): (None, "open", None),
    }  # fmt: skip
    assert model.forward_calls == 1  # all options of all samples of the batch in one forward
    loglik = [r for r in table.to_pylist() if r["mode"] == "loglik"][0]
    assert loglik["option_logprobs"] == [-5.0, -5.0, 0.0] and loglik["option_tokens"] == [2, 2, 2]


def test_a_killed_shard_resumes_without_redoing_finished_batches(tmp_path):
    rows = [row(i) for i in range(5)]
    replies = {f"q{i}": "C" for i in range(5)}
    model = FakeModel(replies, {})
    settings = Settings(modes=("generate",), batch_size=2)

    def kill_after_second(batch):
        if batch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_shard(Predictor(model), rows, settings, model_id="fake", state_dir=tmp_path / "s",
                  progress=kill_after_second)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "s").glob("batch-*")) == [
        "batch-00000.parquet",
        "batch-00001.parquet",
    ]
    model.generate_calls.clear()
    table = run_shard(Predictor(model), rows, settings, model_id="fake", state_dir=tmp_path / "s")
    assert model.generate_calls == [1]  # only the last batch (one sample) was computed again
    assert table.num_rows == 5 and all(table["correct"].to_pylist())
    # a changed setting invalidates the saved batches
    model.generate_calls.clear()
    run_shard(Predictor(model), rows, Settings(modes=("generate",), batch_size=2, max_new_tokens=3),
              model_id="fake", state_dir=tmp_path / "s")  # fmt: skip
    assert model.generate_calls == [2, 2, 1]


def test_another_batch_plan_discards_the_saved_batches(tmp_path):
    """A batch file holds the rows of its plan position: when the order by length
    changes (a decode cache added or dropped), saved batches must not be reused."""
    rows = [row(i) for i in range(4)]
    model = FakeModel({f"q{i}": "C" for i in range(4)}, {})
    settings = Settings(modes=("generate",), batch_size=2)
    run_shard(Predictor(model), rows, settings, model_id="fake", state_dir=tmp_path / "s")

    class Reversed(Predictor):
        def length(self, path, prompt):
            return -int(path.rsplit("/", 1)[-1].split(".")[0])  # m/<i>.mp4: last first

    model.generate_calls.clear()
    table = run_shard(Reversed(model), rows, settings, model_id="fake", state_dir=tmp_path / "s")
    assert model.generate_calls == [2, 2]  # recomputed, not read back in the wrong places
    assert sorted(table["id"].to_pylist()) == [r["id"] for r in rows]
    first = sorted(r["id"] for r in table.to_pylist() if r["batch"] == 0)
    assert first == ["MAT-000002", "MAT-000003"]


def test_merge_orders_by_id(tmp_path):
    model = FakeModel({f"q{i}": "A" for i in range(4)}, {})
    rows = [row(i) for i in range(4)]
    paths = []
    for shard in (0, 1):
        t = run_shard(Predictor(model), shard_rows(rows, shard, 2), Settings(), model_id="f",
                      state_dir=tmp_path / str(shard), shard=shard)  # fmt: skip
        paths.append(write_parquet_atomic(tmp_path / f"{shard}.parquet", t))
    merged = merge_shards(paths)
    assert merged["id"].to_pylist() == [r["id"] for r in rows]
    assert merged["shard"].to_pylist() == [0, 1, 0, 1]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="scoring modes"):
        Settings(modes=("beam",))
    with pytest.raises(ValueError, match="loglik_norm"):
        Settings(loglik_norm="max")


def _manifest(path, clip_ids):
    import pyarrow as pa

    from avtrust.datasets.index import MANIFEST_SCHEMA

    rows = [{"clip_id": c, "dataset": "d", "path": f"resources/raw/d/videos/{c}.mp4",
             "has_audio": True, "has_video": True, "labels": [], "stems": []}
            for c in clip_ids]  # fmt: skip
    return write_parquet_atomic(path, pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA))


def test_qa_sets_from_the_real_annotation_formats(tmp_path):
    import json
    import shutil
    from pathlib import Path

    from avtrust.bench.samples import SAMPLE_SCHEMA
    from avtrust.evaluate.samples import build_qa_set

    data = Path(__file__).resolve().parents[1] / "data"
    raw = tmp_path / "music" / "annotations"
    raw.mkdir(parents=True)
    shutil.copy(data / "music_avqa" / "avqa-test.json", raw)
    records = json.loads((raw / "avqa-test.json").read_text())
    manifest = _manifest(tmp_path / "m.parquet", ["00000001", "00000002", "00000003"])
    table = build_qa_set("music_avqa", "d", str(manifest), str(tmp_path / "music"), 100, 7)
    assert table.schema == SAMPLE_SCHEMA
    expected = [r for r in records if r["video_id"] in {"00000001", "00000002", "00000003"}
                and not r.get("question_deleted")]  # fmt: skip
    assert table.num_rows == len(expected)
    for r in table.to_pylist():
        assert r["bench"] == "qa" and r["task"] == "MUSIC-AVQA"
        assert r["options"][r["answer_index"]] == r["answer"] and len(set(r["options"])) >= 2
        assert r["category"].split("/")[0] in ("Audio", "Visual", "Audio-Visual")
    again = build_qa_set("music_avqa", "d", str(manifest), str(tmp_path / "music"), 100, 7)
    assert again.equals(table)  # seeded
    assert (
        build_qa_set("music_avqa", "d", str(manifest), str(tmp_path / "music"), 2, 7).num_rows == 2
    )

    raw = tmp_path / "avqa" / "annotations"
    raw.mkdir(parents=True)
    shutil.copy(data / "avqa" / "val_qa.json", raw)
    first = json.loads((raw / "val_qa.json").read_text())[0]
    manifest = _manifest(tmp_path / "a.parquet", [first["video_name"]])
    rows = build_qa_set("avqa", "d", str(manifest), str(tmp_path / "avqa"), 10, 7).to_pylist()
    mine = [r for r in rows if r["question"] == first["question_text"]][0]
    assert mine["options"] == first["multi_choice"] and mine["answer_index"] == first["answer"]
    assert mine["category"] == first["question_type"]
