"""Readers and writers of the real datasets' and benchmarks' annotation formats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from avtrust.bench import official
from avtrust.datasets import audioset, avqa, music_avqa
from avtrust.errors import AnnotationError

# ------------------------------------------------------------------------------ MUSIC-AVQA

MUSIC_RECORDS = [
    {
        "video_id": "00000238",
        "question_id": 8,
        "modality": "Audio-Visual",
        "qtype": "Counting",
        "question_content": "How many instruments are sounding in the video?",
        "templ_values": [],
        "answer": "two",
    },
    {
        "video_id": "sa00007434",
        "question_id": 28884,
        "modality": "Visual",
        "qtype": "Existential",
        "question_content": "Are there <Object> and <Object> instruments in the video?",
        "templ_values": ["piano", "ukulele"],
        "answer": "no",
    },
    {
        "video_id": "00000272",
        "question_id": 50,
        "modality": "Audio-Visual",
        "qtype": "Temporal",
        "question_content": "Where is the <FL> sounding instrument?",
        "templ_values": ["first"],
        "answer": "left",
    },
]


def _write_json(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_fill_template_fills_slots_in_order_of_appearance():
    question = music_avqa.fill_template(
        "Is the <Object> on the <LR> more rhythmic than the <Object> on the <LRer>?",
        ["cello", "left", "violin", "right"],
    )
    assert question == "Is the cello on the left more rhythmic than the violin on the right?"
    assert music_avqa.fill_template("What is <TH> <BA> <LL>?", ["a", "b", "c"]) == "What is a b c?"
    assert music_avqa.fill_template("No slots here?", []) == "No slots here?"
    # A value that looks like a regex replacement is inserted literally.
    assert music_avqa.fill_template("Is <Object> here?", [r"\1 x"]) == r"Is \1 x here?"


def test_fill_template_count_mismatch_raises():
    with pytest.raises(AnnotationError, match="2 slot"):
        music_avqa.fill_template("Is <Object> louder than <Object>?", ["violin"])
    with pytest.raises(AnnotationError, match="0 slot"):
        music_avqa.fill_template("How many?", ["violin"])


def test_music_avqa_written_file_has_official_fields(tmp_path):
    path = music_avqa.write_annotations(MUSIC_RECORDS, tmp_path / "avqa-test.json")
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text)
    assert list(raw[1]) == [
        "video_id",
        "question_id",
        "type",
        "question_content",
        "templ_values",
        "question_deleted",
        "anser",
    ]
    assert raw[1]["type"] == '["Visual", "Existential"]'
    assert raw[1]["templ_values"] == '["piano", "ukulele"]'
    assert raw[0]["templ_values"] == "[]"
    assert raw[1]["anser"] == "no" and raw[1]["question_deleted"] == 0
    assert '"answer"' not in text


def test_music_avqa_round_trip_and_byte_identical_rewrite(tmp_path):
    first = music_avqa.write_annotations(MUSIC_RECORDS, tmp_path / "a.json")
    frame = music_avqa.read_annotations(first)
    assert list(frame["question_id"]) == [8, 28884, 50]
    row = frame.iloc[1]
    assert row["question"] == "Are there piano and ukulele instruments in the video?"
    assert row["category"] == "Visual/Existential"
    assert row["modality"] == "Visual" and row["qtype"] == "Existential"
    assert row["templ_values"] == ["piano", "ukulele"] and row["answer"] == "no"
    second = music_avqa.write_annotations(frame, tmp_path / "b.json")
    assert first.read_bytes() == second.read_bytes()


def test_music_avqa_drops_deleted_questions(tmp_path):
    path = music_avqa.write_annotations(MUSIC_RECORDS, tmp_path / "a.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw[0]["question_deleted"] = 1
    raw[2].update(question_deleted=1, templ_values="[]")  # withdrawn and broken: skipped
    frame = music_avqa.read_annotations(_write_json(tmp_path / "b.json", raw))
    assert list(frame["question_id"]) == [28884]


def test_category_short_names():
    assert music_avqa.CATEGORY_SHORT == {
        "Existential": "Exist",
        "Location": "Localis",
        "Counting": "Count",
        "Comparative": "Comp",
        "Temporal": "Temp",
    }
    assert set(music_avqa.CATEGORY_SHORT) == set(music_avqa.QTYPES)


def test_music_avqa_missing_key_names_key_and_record(tmp_path):
    path = music_avqa.write_annotations(MUSIC_RECORDS, tmp_path / "a.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    del raw[2]["anser"]
    bad = _write_json(tmp_path / "bad.json", raw)
    with pytest.raises(AnnotationError) as info:
        music_avqa.read_annotations(bad)
    message = str(info.value)
    assert str(bad) in message and "record 2" in message and "'anser'" in message


def test_music_avqa_wrong_types_and_bad_templates(tmp_path):
    path = music_avqa.write_annotations(MUSIC_RECORDS, tmp_path / "a.json")
    good = json.loads(path.read_text(encoding="utf-8"))
    cases = [
        ("question_id", "8", "'question_id'"),
        ("type", '["Audio", "Dancing"]', "Dancing"),
        ("type", "not json", "'type'"),
        ("templ_values", '["piano"]', "'templ_values'"),  # 2 slots, 1 value
    ]
    for key, value, expected in cases:
        raw = [dict(r) for r in good]
        raw[1][key] = value
        with pytest.raises(AnnotationError, match=expected) as info:
            music_avqa.read_annotations(_write_json(tmp_path / "bad.json", raw))
        assert "record 1" in str(info.value)
    with pytest.raises(AnnotationError, match="'templ_values'"):
        bad = dict(MUSIC_RECORDS[1], templ_values=["piano"])
        music_avqa.write_annotations([bad], tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()


def test_invalid_json_and_non_utf8_raise_annotation_error(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"video_id": "1",', encoding="utf-8")
    with pytest.raises(AnnotationError, match="invalid JSON") as info:
        music_avqa.read_annotations(broken)
    assert str(broken) in str(info.value)
    latin = tmp_path / "latin.json"
    latin.write_bytes('[{"video_id": "caf\xe9"}]'.encode("latin-1"))
    for reader in (
        music_avqa.read_annotations,
        avqa.read_annotations,
        official.read_confuse_m1_json,
    ):
        with pytest.raises(AnnotationError, match="UTF-8"):
            reader(latin)
    top = _write_json(tmp_path / "top.json", {"video_id": "1"})
    with pytest.raises(AnnotationError, match="JSON list"):
        music_avqa.read_annotations(top)


# ------------------------------------------------------------------------------------ AVQA

AVQA_RECORDS = [
    {
        "qa_id": 1139,
        "video_id": "06GyG4-wONQ_000006",
        "question": "How many animals are there in the video?",
        "options": ["3", "One", "4", "2"],
        "answer_index": 3,
        "question_type": "Which",
        "question_relation": "Both",
    },
    {
        "qa_id": 183,
        "video_id": "-HG3Omg_89c_000030",
        "question": "What happened in the video?",
        "options": ["motorboat", "Yacht consignment", "Rowing", "Swimming"],
        "answer_index": 1,
        "question_type": "Happening",
        "question_relation": "View",
    },
    {
        "qa_id": 1140,
        "video_id": "06GyG4-wONQ_000006",
        "question": "Where is the sound coming from?",
        "options": ["dog", "cat", "bird", "cow"],
        "answer_index": 0,
        "question_type": "Come From",
        "question_relation": "Sound",
    },
]


def test_avqa_official_layout_and_round_trip(tmp_path):
    path = avqa.write_annotations(AVQA_RECORDS, tmp_path / "val_qa.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw[0] == {
        "id": 1139,
        "video_name": "06GyG4-wONQ_000006",
        "video_id": 1,
        "question_text": "How many animals are there in the video?",
        "multi_choice": ["3", "One", "4", "2"],
        "answer": 3,
        "question_relation": "Both",
        "question_type": "Which",
    }
    # AVQA's integer video_id: one number per clip, in order of first appearance.
    assert [r["video_id"] for r in raw] == [1, 2, 1]
    frame = avqa.read_annotations(path)
    assert list(frame["qa_id"]) == [1139, 183, 1140]
    assert list(frame["answer"]) == ["2", "Yacht consignment", "dog"]
    assert frame.iloc[1]["options"] == ["motorboat", "Yacht consignment", "Rowing", "Swimming"]
    assert frame.iloc[1]["video_id"] == "-HG3Omg_89c_000030"
    rewritten = avqa.write_annotations(frame, tmp_path / "again.json")
    assert rewritten.read_bytes() == path.read_bytes()


def test_avqa_keeps_given_video_index(tmp_path):
    records = [dict(AVQA_RECORDS[0], video_index=1395), AVQA_RECORDS[1]]
    raw = json.loads(avqa.write_annotations(records, tmp_path / "a.json").read_text())
    assert [r["video_id"] for r in raw] == [1395, 1396]


def test_avqa_answer_index_out_of_range(tmp_path):
    path = avqa.write_annotations(AVQA_RECORDS, tmp_path / "a.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw[1]["answer"] = 4
    bad = _write_json(tmp_path / "bad.json", raw)
    with pytest.raises(AnnotationError, match="out of range") as info:
        avqa.read_annotations(bad)
    assert "record 1" in str(info.value) and "'answer'" in str(info.value)
    with pytest.raises(AnnotationError, match="'answer_index'"):
        avqa.write_annotations([dict(AVQA_RECORDS[0], answer_index=-1)], tmp_path / "b.json")
    with pytest.raises(AnnotationError, match="is not option"):
        avqa.write_annotations([dict(AVQA_RECORDS[0], answer="One")], tmp_path / "b.json")


def test_avqa_missing_key(tmp_path):
    path = avqa.write_annotations(AVQA_RECORDS, tmp_path / "a.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    del raw[0]["multi_choice"]
    with pytest.raises(AnnotationError, match=r"record 0: key 'multi_choice': missing"):
        avqa.read_annotations(_write_json(tmp_path / "bad.json", raw))


# -------------------------------------------------------------------------------- AudioSet

SEGMENTS = [
    {"ytid": "--PJHxphWEs", "start_seconds": 30.0, "end_seconds": 40.0,
     "labels": ["/m/09x0r", "/t/dd00088"]},
    {"ytid": "--ZhevVpy1s", "start_seconds": 50, "end_seconds": 60,
     "labels": ["/m/012xff"]},
    {"ytid": "-HG3Omg_89c", "start_seconds": 30.0, "end_seconds": 40.0,
     "labels": ["/m/09x0r"]},
]  # fmt: skip


def test_clip_id_convention():
    assert audioset.clip_id("-HG3Omg_89c", 30.0) == "-HG3Omg_89c_000030"
    assert audioset.clip_id("abc", 5) == "abc_000005"
    assert audioset.clip_id("abc", 123456.0) == "abc_123456"
    with pytest.raises(ValueError):
        audioset.clip_id("abc", -1.0)


def test_segments_official_layout_and_round_trip(tmp_path):
    path = audioset.write_segments(SEGMENTS, tmp_path / "eval_segments.csv")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Segments csv created by avtrust"
    assert lines[1] == ("# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=4")
    assert lines[2] == "# YTID, start_seconds, end_seconds, positive_labels"
    assert lines[3] == '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"'
    assert lines[4] == '--ZhevVpy1s, 50.000, 60.000, "/m/012xff"'
    frame = audioset.read_segments(path)
    assert list(frame.columns) == ["ytid", "start_seconds", "end_seconds", "labels", "clip_id"]
    assert frame.iloc[0]["labels"] == ["/m/09x0r", "/t/dd00088"]
    assert frame.iloc[1]["start_seconds"] == 50.0
    assert list(frame["clip_id"]) == [
        "--PJHxphWEs_000030",
        "--ZhevVpy1s_000050",
        "-HG3Omg_89c_000030",
    ]
    again = audioset.write_segments(frame, tmp_path / "again.csv")
    assert again.read_bytes() == path.read_bytes()


def test_read_real_release_header(tmp_path):
    path = tmp_path / "balanced_train_segments.csv"
    path.write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=22160, num_segs=22160, num_unique_labels=527, num_positive_labels=52882\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        '--aE2O5G5WE, 0.000, 10.000, "/m/03fwl,/m/04rlf,/m/09x0r"\n',
        encoding="utf-8",
    )
    frame = audioset.read_segments(path)
    assert frame.iloc[0]["labels"] == ["/m/03fwl", "/m/04rlf", "/m/09x0r"]
    assert frame.iloc[0]["clip_id"] == "--aE2O5G5WE_000000"


@pytest.mark.parametrize(
    ("row", "key"),
    [
        ("--PJHxphWEs, 30.000, 40.000", "'positive_labels'"),
        ('--PJHxphWEs, thirty, 40.000, "/m/09x0r"', "'start_seconds'"),
        ('--PJHxphWEs, 30.000, 20.000, "/m/09x0r"', "'end_seconds'"),
        ('--PJHxphWEs, 30.000, 40.000, "/m/09x0r', "'<row>'"),
    ],
)
def test_malformed_segment_row(tmp_path, row, key):
    path = tmp_path / "bad.csv"
    path.write_text(
        f'# a\n# b\n{audioset.SEGMENT_HEADER}\nok1, 0.000, 10.000, "/m/x"\n{row}\n',
        encoding="utf-8",
    )
    with pytest.raises(AnnotationError, match=key) as info:
        audioset.read_segments(path)
    assert str(path) in str(info.value) and "record 1" in str(info.value)
    assert "line 5" in str(info.value)


def test_ontology_round_trip_and_layout(tmp_path):
    entries = [
        {"id": "/m/09x0r", "name": "Speech", "description": "Spoken words."},
        {"id": "/m/04rlf", "name": "Music", "description": "Musik – Klänge.",
         "child_ids": ["/m/0342h"], "restrictions": ["abstract"]},
    ]  # fmt: skip
    path = audioset.write_ontology(entries, tmp_path / "ontology.json")
    text = path.read_text(encoding="utf-8")
    assert text.startswith('[\n  {\n    "id": "/m/09x0r",\n    "name": "Speech",\n')
    assert '    "child_ids": ["/m/0342h"],\n' in text and "Klänge" in text
    raw = json.loads(text)
    assert list(raw[0]) == list(audioset.ONTOLOGY_KEYS)
    assert raw[0]["citation_uri"] == "" and raw[0]["positive_examples"] == []
    assert audioset.read_ontology(path) == {"/m/09x0r": "Speech", "/m/04rlf": "Music"}
    again = audioset.write_ontology(raw, tmp_path / "again.json")
    assert again.read_bytes() == path.read_bytes()
    del raw[1]["name"]
    with pytest.raises(AnnotationError, match=r"record 1: key 'name': missing"):
        audioset.read_ontology(_write_json(tmp_path / "bad.json", raw))


# ----------------------------------------------------------------------------- AVTrustBench

TRUST_SAMPLES = [
    {
        "id": "MAIT-000001",
        "task": "MAIT",
        "source_ids": ["-HG3Omg_89c_000030", "06GyG4-wONQ_000006"],
        "question": "What happened in the video?",
        "options": ["Rowing", "Mismatch in audio and video", "Swimming", "None of the above"],
        "answer": "Mismatch in audio and video",
        "answer_index": 1,
    },
    {
        "id": "MAIT-000002",
        "task": "MAIT",
        "source_ids": ["06GyG4-wONQ_000006"],
        "question": "How many animals are there?\nCount carefully.",
        "options": ["One", "Two"],
        "answer": "One",
        "answer_index": 0,
    },
]


def test_avtrustbench_record_layout():
    record = official.avtrustbench_record(TRUST_SAMPLES[0])
    assert record["video"] == "-HG3Omg_89c_000030#06GyG4-wONQ_000006"
    assert official.avtrustbench_record(TRUST_SAMPLES[1])["video"] == "06GyG4-wONQ_000006"
    human, gpt = record["conversations"]
    assert human["from"] == "human" and gpt == {
        "from": "gpt",
        "value": "(B) Mismatch in audio and video",
    }
    assert human["value"].startswith("<video>\nWhat happened in the video?\n(A) Rowing\n")
    assert "(D) None of the above\n" in human["value"]


def test_avtrustbench_round_trip(tmp_path):
    path = official.avtrustbench_export_path(tmp_path, "MAIT", "avqa")
    assert path == tmp_path / "AVTrustBench" / "MAIT" / "avqa" / "instruct_test_MAIT.json"
    official.write_avtrustbench_json(TRUST_SAMPLES, path)
    assert official.read_avtrustbench_json(path) == TRUST_SAMPLES
    again = official.write_avtrustbench_json(pd.DataFrame(TRUST_SAMPLES), tmp_path / "x.json")
    assert again.read_bytes() == path.read_bytes()


def test_avtrustbench_reads_conversation_only_records(tmp_path):
    record = official.avtrustbench_record(TRUST_SAMPLES[1])
    slim = {key: record[key] for key in ("id", "video", "conversations")}
    path = _write_json(tmp_path / "instruct_test_MAT.json", [slim])
    (sample,) = official.read_avtrustbench_json(path)
    assert sample == dict(TRUST_SAMPLES[1], task="MAT")


def test_avtrustbench_errors(tmp_path):
    with pytest.raises(AnnotationError, match="'answer'"):
        official.avtrustbench_record(dict(TRUST_SAMPLES[0], answer="Rowing"))
    with pytest.raises(AnnotationError, match="'source_ids'"):
        official.avtrustbench_record(dict(TRUST_SAMPLES[0], source_ids=["a", "b", "c"]))
    with pytest.raises(AnnotationError, match="record 1: key 'id': duplicate"):
        official.write_avtrustbench_json([TRUST_SAMPLES[0]] * 2, tmp_path / "d.json")
    path = official.write_avtrustbench_json(TRUST_SAMPLES, tmp_path / "t.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw[0]["answer_index"] = 7
    with pytest.raises(AnnotationError, match="record 0: key 'answer_index'"):
        official.read_avtrustbench_json(_write_json(tmp_path / "bad.json", raw))
    del raw[0]["video"]
    with pytest.raises(AnnotationError, match="record 0: key 'video': missing"):
        official.read_avtrustbench_json(_write_json(tmp_path / "bad.json", raw))


# -------------------------------------------------------------------------- AV-ConfuseBench

M1 = [
    {
        "video_id": "000001",
        "question": "Is there a acoustic_guitar sound?",
        "answer": "no",
        "instruments": ["violin", "acoustic_guitar"],
    },
    {
        "video_id": "000071",
        "question": "Is there a piano sound?",
        "answer": "no",
        "instruments": ["piano", "violin", "cello"],
    },
]
M2 = [
    {
        "video_id": "000005",
        "filename": "combined_000005_wind.mp4",
        "question": "Describe what you see and what you hear.",
        "sound_type": "wind",
        "annotation": "Based on the video, two people play. Based on the audio, wind — howling.",
    }
]


def test_confuse_m1_official_fields_and_round_trip(tmp_path):
    path = official.write_confuse_m1_json(M1, tmp_path / "avconfusebench_test_m1.json")
    text = path.read_text(encoding="utf-8")
    assert text.startswith('[\n  {\n    "video_id": "000001",') and text.endswith("}\n]")
    raw = json.loads(text)
    assert raw[0]["instruments"] == "violin, acoustic_guitar"
    assert raw[0]["instruments_len"] == "two" and raw[1]["instruments_len"] == "three"
    assert list(raw[0]) == ["video_id", "question", "answer", "instruments", "instruments_len"]
    assert official.read_confuse_m1_json(path) == M1
    again = official.write_confuse_m1_json(official.read_confuse_m1_json(path), tmp_path / "b")
    assert again.read_bytes() == path.read_bytes()


def test_confuse_m1_errors(tmp_path):
    path = official.write_confuse_m1_json(M1, tmp_path / "m1.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw[1]["instruments_len"] = "two"
    with pytest.raises(AnnotationError, match="record 1: key 'instruments_len'"):
        official.read_confuse_m1_json(_write_json(tmp_path / "bad.json", raw))
    raw[1]["instruments_len"] = 3  # the README's int form is accepted
    assert official.read_confuse_m1_json(_write_json(tmp_path / "ok.json", raw))[1] == M1[1]
    with pytest.raises(AnnotationError, match="'instruments'"):
        official.write_confuse_m1_json([dict(M1[0], instruments=[])], tmp_path / "x.json")


def test_confuse_m2_round_trip_and_errors(tmp_path):
    path = official.write_confuse_m2_json(M2, tmp_path / "m2.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert list(raw[0]) == ["video_id", "filename", "question", "sound_type", "annotation"]
    assert "—" in path.read_text(encoding="utf-8")  # non-ASCII kept as is
    assert official.read_confuse_m2_json(path) == M2
    del raw[0]["sound_type"]
    with pytest.raises(AnnotationError, match="record 0: key 'sound_type': missing"):
        official.read_confuse_m2_json(_write_json(tmp_path / "bad.json", raw))


def test_writers_accept_numpy_values(tmp_path):
    records = [
        dict(r, question_id=np.int64(r["question_id"]), templ_values=np.array(r["templ_values"]))
        for r in MUSIC_RECORDS
    ]
    path = music_avqa.write_annotations(records, tmp_path / "a.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw[1]["question_id"] == 28884 and raw[1]["templ_values"] == '["piano", "ukulele"]'
    rows = [dict(r, start_seconds=np.float64(r["start_seconds"])) for r in SEGMENTS]
    assert audioset.read_segments(audioset.write_segments(rows, tmp_path / "s.csv")).shape == (3, 5)


def test_avtrustbench_answer_letter_from_gpt_turn(tmp_path):
    record = official.avtrustbench_record(TRUST_SAMPLES[0])
    slim = {key: record[key] for key in ("id", "video", "conversations")}
    path = tmp_path / "instruct_test_MAIT.json"
    for gpt, expected in (("B", 1), ("(B) Mismatch in audio and video", 1), ("D.", 3)):
        slim["conversations"][1]["value"] = gpt
        (sample,) = official.read_avtrustbench_json(_write_json(path, [slim]))
        assert sample["answer_index"] == expected
        assert sample["answer"] == TRUST_SAMPLES[0]["options"][expected]
    slim["conversations"][1]["value"] = "A dog barks"  # free text, not a letter
    with pytest.raises(AnnotationError, match="record 0: key 'answer_index'"):
        official.read_avtrustbench_json(_write_json(path, [slim]))


def test_confuse_writers_reproduce_released_bytes(tmp_path):
    # Records of AVConfuseBench/avconfusebench_test_m{1,2}.json (rikeilong/
    # AudioVisual_Confusion) with their questions as released (escaped newlines, "thera"
    # sic); the m2 annotation shortened. The layout is what is compared.
    released_m1 = (
        '[\n  {\n    "video_id": "000001",\n    "question": "This is a video of audio '
        "corruption where some instrument sound is muted. Please answer:\\n Is thera a "
        "acoustic_guitar sound? \\nYour answer can only be 'yes' or 'no'\",\n"
        '    "answer": "no",\n    "instruments": "violin, acoustic_guitar",\n'
        '    "instruments_len": "two"\n  }\n]'
    )
    released_m2 = (
        '[\n  {\n    "video_id": "000005",\n    "filename": "combined_000005_wind.mp4",\n'
        '    "question": "Describe what you see and what you hear. The output format should '
        'be as follows: Based on the video...\\nBased on the audio...",\n'
        '    "sound_type": "wind",\n    "annotation": "Now strong, now weak—howling."\n  }\n]'
    )
    for text, read, write in (
        (released_m1, official.read_confuse_m1_json, official.write_confuse_m1_json),
        (released_m2, official.read_confuse_m2_json, official.write_confuse_m2_json),
    ):
        source = tmp_path / "released.json"
        source.write_text(text, encoding="utf-8")
        assert write(read(source), tmp_path / "ours.json").read_text(encoding="utf-8") == text
