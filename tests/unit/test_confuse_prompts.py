"""AV-ConfuseBench prompts: the paper's m1 wording, the release's m2 instruction, import of
the released m1 prompt, and exports in the release's spelling."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avtrust.bench.avconfusebench import (
    indefinite_article,
    m1,
    m1_question,
    m2,
    project_sound_type,
    release_sound_type,
)
from avtrust.bench.export import export_official
from avtrust.bench.importer import import_official
from avtrust.bench.samples import SAMPLE_SCHEMA, TaskContext

# The released m1 prompt (rikeilong/AudioVisual_Confusion, avconfusebench_test_m1.json).
RELEASED = (
    "This is a video of audio corruption where some instrument sound is muted. Please answer:"
    "\n Is thera a {} sound? \nYour answer can only be 'yes' or 'no'"
)
M2_QUESTION = (
    "Describe what you see and what you hear. The output format should be as follows: "
    "Based on the video...\nBased on the audio..."
)


@pytest.mark.parametrize(
    ("name", "article"),
    [
        ("accordion", "an"),
        ("acoustic_guitar", "an"),
        ("erhu", "an"),
        ("electric_bass", "an"),
        ("oboe", "an"),
        ("ukulele", "a"),
        ("euphonium", "a"),
        ("upright_piano", "an"),
        ("violin", "a"),
        ("xylophone", "a"),
        ("Harp", "a"),
    ],
)
def test_indefinite_article(name, article):
    assert indefinite_article(name) == article


def test_m1_question_is_the_papers_wording():
    assert m1_question("erhu") == (
        "This is a video of audio corruption where some instrument sound is muted. "
        "Is there an erhu sound?"
    )
    assert m1_question("ukulele").endswith("Is there a ukulele sound?")


def _context(task: str, **params) -> TaskContext:
    clips = pd.DataFrame(
        {
            "clip_id": ["s0", "s1", "s2"],
            "path": ["s0.mp4", "s1.mp4", "s2.mp4"],
            "labels": [["accordion", "violin"], ["ukulele", "erhu", "cello"], ["flute", "oboe"]],
            "stems": [["a.wav", "b.wav"], ["c.wav", "d.wav", "e.wav"], ["f.wav", "g.wav"]],
        }
    ).set_index("clip_id", drop=False)
    return TaskContext(
        bench="avconfusebench",
        task=task,
        samples=6,
        seed=5,
        clips=clips,
        dataset="scenes",
        wording={},
        params=params,
    )


def test_m1_samples_ask_in_the_papers_words_with_the_right_article():
    rows = m1(_context("m1", min_instruments=2))
    for r in rows:
        name = r["muted_instrument"]
        article = "an" if name in ("accordion", "erhu", "oboe") else "a"
        assert r["question"].endswith(f"muted. Is there {article} {name} sound?")
        assert r["answer"] == "no" and r["options"] == ["yes", "no"]


def test_m2_question_carries_the_release_output_format():
    ctx = _context("m2", sound_types=["thunder"], snr_db=[None], sounds="sounds")
    ctx.sounds = pd.DataFrame(
        {"clip_id": ["t0"], "path": ["t0.wav"], "labels": [["thunder"]], "stems": [[]]}
    ).set_index("clip_id", drop=False)
    rows = m2(ctx)
    assert {r["question"] for r in rows} == {M2_QUESTION}
    assert all(r["sound_type"] == "thunder" for r in rows)
    annotation = next(r["answer"] for r in rows if r["source_ids"][0] == "s0")
    assert annotation.startswith("Based on the video, there is an accordion and a violin.")


def test_import_recovers_the_muted_instrument_from_the_released_prompt(tmp_path, caplog):
    records = [
        (RELEASED.format("acoustic_guitar"), "violin, acoustic_guitar"),
        (RELEASED.format("accordion"), "accordion, piano"),  # the release's "a accordion"
        (RELEASED.replace("thera a", "there an").format("erhu"), "erhu, pipa, guzheng"),
        (RELEASED.replace("thera", "THERA").format("Acoustic guitar"), "acoustic_guitar, tuba"),
        (m1_question("ukulele"), "cello, ukulele"),  # the paper's wording
        ("Is there an erhu sound?", "erhu, violin"),
        ("Can you hear the violin at all?", "violin, cello"),  # one instrument named
    ]
    raw = [
        {
            "video_id": f"{i:06d}",
            "question": question,
            "answer": "no",
            "instruments": names,
            "instruments_len": "two" if names.count(",") == 1 else "three",
        }
        for i, (question, names) in enumerate(records)
    ]
    path = tmp_path / "avconfusebench_test_m1.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    media = tmp_path / "media"
    media.mkdir()
    with caplog.at_level(logging.WARNING):
        rows = import_official("avconfusebench", "m1", path, media).to_pylist()
    muted = [r["muted_instrument"] for r in rows]
    assert muted == [
        "acoustic_guitar",
        "accordion",
        "erhu",
        "acoustic_guitar",
        "ukulele",
        "erhu",
        "violin",
    ]
    assert all(r["question"] == q for r, (q, _) in zip(rows, records, strict=True))
    assert "no muted instrument" not in caplog.text
    raw[0]["question"] = RELEASED.format("trumpet")  # not in the scene: null, with a warning
    path.write_text(json.dumps(raw), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        rows = import_official("avconfusebench", "m1", path, media).to_pylist()
    assert rows[0]["muted_instrument"] is None and "no muted instrument" in caplog.text


def test_sound_type_spelling():
    assert release_sound_type("thunder") == "thunderstorm"
    assert release_sound_type("wind") == "wind"
    assert project_sound_type("Thunderstorm") == project_sound_type("thunder") == "thunder"


def _samples_file(path, rows):
    full = [{name: r.get(name) for name in SAMPLE_SCHEMA.names} for r in rows]
    pq.write_table(pa.Table.from_pylist(full, schema=SAMPLE_SCHEMA), path)
    return str(path)


def test_exports_have_the_release_fields_and_spelling(tmp_path):
    m1_rows = [
        {
            "id": "m1-000000",
            "media_path": "results/media/avconfusebench/m1/m1-000000.mp4",
            "question": m1_question("cello"),
            "answer": "no",
            "instruments": ["violin", "cello"],
            "muted_instrument": "cello",
        },
        {
            "id": "m1-000001",
            "media_path": "results/media/avconfusebench/m1/m1-000001.mp4",
            "question": m1_question("erhu"),
            "answer": "no",
            "instruments": ["erhu", "pipa", "tuba"],
            "muted_instrument": "erhu",
        },
    ]
    out = export_official("avconfusebench", "m1", _samples_file(tmp_path / "m1.parquet", m1_rows),
                          str(tmp_path / "avconfusebench_test_m1.json"))  # fmt: skip
    raw = json.loads(out.read_text(encoding="utf-8"))
    assert [list(r) for r in raw] == [
        ["video_id", "question", "answer", "instruments", "instruments_len"]
    ] * 2
    assert raw[0]["video_id"] == "m1-000000" and raw[0]["instruments"] == "violin, cello"
    # the release's prompt layout, "there" as its later records spell it, the right article
    assert raw[0]["question"] == RELEASED.replace("thera", "there").format("cello")
    assert raw[1]["question"] == RELEASED.replace("thera a", "there an").format("erhu")
    assert [r["instruments_len"] for r in raw] == ["two", "three"]
    (tmp_path / "media").mkdir()
    back = import_official("avconfusebench", "m1", out, tmp_path / "media").to_pylist()
    assert [r["muted_instrument"] for r in back] == ["cello", "erhu"]
    # an imported file exports back byte for byte ("thera", "a erhu" and all)
    released = tmp_path / "released_m1.json"
    released.write_text(json.dumps([{**raw[1], "video_id": "000047", "question":
                                     RELEASED.format("erhu")}], indent=2))  # fmt: skip
    imported = import_official("avconfusebench", "m1", released, tmp_path / "media").to_pylist()
    for r in imported:
        r["media_path"] = "media/000047.mp4"
    again = export_official("avconfusebench", "m1", _samples_file(tmp_path / "i.parquet", imported),
                            str(tmp_path / "again.json"))  # fmt: skip
    assert again.read_text(encoding="utf-8") == released.read_text(encoding="utf-8")

    m2_rows = [
        {
            "id": f"m2-00000{i}",
            "media_path": f"results/media/avconfusebench/m2/m2-00000{i}.mp4",
            "source_ids": ["scene_07", f"{kind}_01"],
            "question": M2_QUESTION,
            "answer": "Based on the video, there is a violin. Based on the audio, ...",
            "sound_type": kind,
        }
        for i, kind in enumerate(["thunder", "wind"])
    ]
    out = export_official("avconfusebench", "m2", _samples_file(tmp_path / "m2.parquet", m2_rows),
                          str(tmp_path / "avconfusebench_test_m2.json"))  # fmt: skip
    raw = json.loads(out.read_text(encoding="utf-8"))
    assert list(raw[0]) == ["video_id", "filename", "question", "sound_type", "annotation"]
    assert [r["sound_type"] for r in raw] == ["thunderstorm", "wind"]
    assert {r["question"] for r in raw} == {M2_QUESTION}  # the release's, word for word
    assert raw[0]["video_id"] == "scene_07" and raw[0]["filename"] == "m2-000000.mp4"
    back = import_official("avconfusebench", "m2", out, tmp_path / "media").to_pylist()
    assert [r["sound_type"] for r in back] == ["thunder", "wind"]
    assert back[0]["media_path"] == str(tmp_path / "media" / "m2-000000.mp4")
