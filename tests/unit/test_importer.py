"""Import of the official benchmark files (tests/data/official) into plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avtrust.bench.importer import DEFAULT_SRC, import_official, task_source
from avtrust.bench.samples import PLAN_SCHEMA
from avtrust.errors import AnnotationError

OFFICIAL = Path(__file__).resolve().parents[1] / "data" / "official"
MVIT = OFFICIAL / "AVTrustBench" / "MVIT" / "avqa" / "instruct_test_MVIT.json"
MAT = OFFICIAL / "AVTrustBench" / "MAT" / "music_avqa" / "instruct_test_MAT.json"
COT = OFFICIAL / "AVTrustBench" / "COT-Stitch" / "instruct_test_COT_Stitch.json"
M1 = OFFICIAL / "AVConfuseBench" / "avconfusebench_test_m1.json"
M2 = OFFICIAL / "AVConfuseBench" / "avconfusebench_test_m2.json"


@pytest.fixture
def media(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("-HG3Omg_89c_000030.mp4", "aB3dE5fG7hI_000012.mkv", "00000001.mp4"):
        (folder / name).write_bytes(b"x")
    return folder


def rows(path, bench, task, media):
    table = import_official(bench, task, path, media)
    assert table.schema == PLAN_SCHEMA
    return table.to_pylist()


def test_mvit_puts_the_audio_of_clip_1_on_the_video_of_clip_2(media):
    (row,) = rows(MVIT, "avtrustbench", "MVIT", media)
    args = json.loads(row["op_args"])
    assert row["op"] == "combine" and row["id"] == "MVIT-000000"
    assert args == {
        "audio_src": str(media / "-HG3Omg_89c_000030.mp4"),
        "video_src": str(media / "aB3dE5fG7hI_000012.mkv"),  # found whatever its suffix
    }
    assert row["media_path"] == "results/media/avtrustbench/MVIT/MVIT-000000.mp4"
    assert row["options"][row["answer_index"]] == row["answer"] == "Mismatch in audio and video"
    assert row["source_dataset"] == "avqa"


def test_mat_questions_come_from_the_conversation_turns(media):
    out = rows(MAT, "avtrustbench", "MAT", media)
    assert [r["op"] for r in out] == ["strip_audio"] * 3
    assert out[1]["question"] == "Is this sound from the instrument in the video?"
    assert out[1]["options"] == ["yes", "Audio is missing", "no"] and out[1]["answer_index"] == 1
    # A clip not in the media folder still gets a row: the manipulate stage rejects it.
    assert json.loads(out[2]["op_args"])["src"] == str(media / "00000042.mp4")


def test_cot_file_name_spells_the_task_with_an_underscore(media):
    (row,) = rows(COT, "avtrustbench", "COT-Stitch", media)
    assert row["op"] == "concat" and row["answer"] == "Dog then Bell"


def test_confusebench_m1_and_m2(media):
    m1 = rows(M1, "avconfusebench", "m1", media)
    assert [r["muted_instrument"] for r in m1] == ["violin", "flute", "cello"]
    assert [r["instruments"] for r in m1][1] == ["trumpet", "flute", "cello"]
    assert {r["op"] for r in m1} == {"verify"} and m1[0]["options"] == ["yes", "no"]
    m2 = rows(M2, "avconfusebench", "m2", media)
    assert [r["sound_type"] for r in m2] == ["thunder", "bird", "wind"]
    assert m2[0]["media_path"] == str(media / "combined_000001_thunderstorm.mp4")
    assert m2[0]["answer_index"] == -1 and m2[0]["snr_db"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("video_id", "../../etc/x"), ("video_id", "a;rm -rf b"), ("filename", "sub/dir.mp4")],
)
def test_unsafe_names_are_errors_naming_the_record(tmp_path, media, field, value):
    records = json.loads(M2.read_text())
    records[1][field] = value
    bad = tmp_path / "m2.json"
    bad.write_text(json.dumps(records))
    with pytest.raises(AnnotationError, match=f"record 1: key '{field}'"):
        import_official("avconfusebench", "m2", bad, media)


def test_wrong_task_and_missing_files(tmp_path, media):
    with pytest.raises(AnnotationError, match="imported as 'MAIT'"):
        import_official("avtrustbench", "MAIT", MVIT, media)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_official("avtrustbench", "MAT", tmp_path / "none.json", media)
    with pytest.raises(FileNotFoundError, match="folder"):
        import_official("avtrustbench", "MAT", MAT, tmp_path / "none")


def test_export_source_folder_of_imported_tasks():
    assert task_source("MAT", {}) == "music_avqa" == DEFAULT_SRC["MVT"]
    assert task_source("MVIT", {"src": "vggsound"}) == "vggsound"
