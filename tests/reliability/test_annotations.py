"""Annotation files checked like media: repeated ids, files the adapter would not read,
and errors that name the user's file and record without a traceback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from avtrust.datasets import avqa, music_avqa
from avtrust.datasets.adapters import list_clips, read_questions
from avtrust.datasets.download.local import prepare_local
from avtrust.errors import AnnotationError
from avtrust.logs import rule_logging

DATA = Path(__file__).resolve().parents[1] / "data"


def music_records() -> list[dict]:
    return json.loads((DATA / "music_avqa" / "avqa-test.json").read_text(encoding="utf-8"))


def avqa_records() -> list[dict]:
    return json.loads((DATA / "avqa" / "val_qa.json").read_text(encoding="utf-8"))


def write(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_music_avqa_conflicting_question_ids_name_both_records(tmp_path):
    records = music_records()
    twin = {**records[0], "anser": "seven"}  # question_id of record 0, another answer
    path = write(tmp_path / "avqa-test.json", [*records, twin])
    with pytest.raises(AnnotationError) as err:
        music_avqa.read_annotations(path)
    message = str(err.value)
    assert str(path) in message and f"record {len(records)}" in message
    assert "record 0" in message and "'question_id'" in message
    assert "answer 'one' vs 'seven'" in message


def test_avqa_conflicting_ids_name_both_records(tmp_path):
    records = avqa_records()
    twin = {**records[1], "answer": (records[1]["answer"] + 1) % 4}
    path = write(tmp_path / "val_qa.json", [*records, twin])
    with pytest.raises(AnnotationError, match=rf"record {len(records)}: key 'id'.*record 1\b"):
        avqa.read_annotations(path)


@pytest.mark.parametrize("fmt", ["music_avqa", "avqa"])
def test_identical_repeats_are_kept_once_and_logged(tmp_path, caplog, fmt):
    records = music_records() if fmt == "music_avqa" else avqa_records()
    name = "avqa-test.json" if fmt == "music_avqa" else "val_qa.json"
    reader = music_avqa.read_annotations if fmt == "music_avqa" else avqa.read_annotations
    once = reader(write(tmp_path / "once" / name, records))
    with caplog.at_level(logging.INFO):
        twice = reader(write(tmp_path / "twice" / name, [*records, records[2]]))
    assert twice.equals(once)
    assert f"record {len(records)}" in caplog.text and "repeats record 2 identically" in caplog.text


def test_a_question_file_the_adapter_would_ignore_is_an_error_naming_the_names(tmp_path):
    raw = tmp_path / "music_avqa"
    (raw / "videos").mkdir(parents=True)
    write(raw / "annotations" / "music_avqa_test.json", music_records())
    for call in (lambda: list_clips("music_avqa", raw), lambda: read_questions("music_avqa", raw)):
        with pytest.raises(AnnotationError) as err:
            call()
        message = str(err.value)
        assert "music_avqa_test.json: not read" in message
        assert "avqa-*.json" in message and "avqa-test.json" in message


def test_fetch_names_the_users_annotation_file(tmp_path):
    videos = tmp_path / "my videos"
    videos.mkdir()
    (videos / "00000001.mp4").write_bytes(b"not probed at fetch")
    records = music_records()
    mine = write(tmp_path / "mine" / "avqa-test.json", [*records, {**records[0], "anser": "x"}])
    spec = {"path": str(videos), "annotations": [{"path": str(mine)}]}
    with pytest.raises(AnnotationError) as err:
        prepare_local("music_avqa", "music_avqa", spec, tmp_path / "raw", tmp_path / "cache")
    message = str(err.value)
    assert f"datasets.music_avqa.annotations[0]: {mine}" in message
    assert f"record {len(records)}" in message and "record 0" in message


def test_rule_log_records_an_annotation_error_without_a_traceback(tmp_path):
    log_path = tmp_path / "plan.log"
    smk = SimpleNamespace(log=[str(log_path)], rule="plan_task", wildcards={})
    with pytest.raises(SystemExit) as exit_info, rule_logging(smk):
        raise AnnotationError("annotations/avqa-test.json: record 4: key 'anser': missing")
    text = log_path.read_text()
    assert "Traceback" not in text
    assert "AnnotationError: annotations/avqa-test.json: record 4: key 'anser': missing" in text
    assert "record 4" in str(exit_info.value.code)
