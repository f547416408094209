"""RL-CoMM's training questions: only the QA datasets' training files, a seeded subset,
warm-up and RL sets disjoint, open-ended answers kept out, options of the answer's kind."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avtrust.bench.answer_kinds import kind_of
from avtrust.datasets import avqa, music_avqa, synthetic
from avtrust.datasets.adapters import read_questions as adapter_questions
from avtrust.datasets.synthetic import train_videos
from avtrust.errors import AnnotationError, ConfigError
from avtrust.evaluate.samples import build_qa_set
from avtrust.scoring.reasoning import REFERENCE_SCHEMA, rlcomm_tables
from avtrust.scoring.rlcomm_questions import (
    MAX_ANSWER_WORDS,
    check_splits,
    closed_answer,
    read_questions,
    training_questions,
)

DESCRIPTION = "Based on the video a violin is played and based on the audio wind blows"
# (question template, template values, answer) cycled over the MUSIC-AVQA training videos.
MUSIC_KINDS = [
    ("Is the <Object> in the video always playing?", ["violin"], "yes"),
    ("Is the <Object> in the video always playing?", ["cello"], "no"),
    ("How many instruments are sounding in the video?", [], "two"),
    ("How many instruments are sounding in the video?", [], "three"),
    ("What is the <LR> instrument?", ["left"], "violin"),
    ("What is the <LR> instrument?", ["right"], "cello"),
    ("Where is the first sounding instrument?", [], "left"),
]


def _music_record(qid, video, template, values, answer, qtype="Counting"):
    return {
        "video_id": video,
        "question_id": qid,
        "modality": "Audio-Visual",
        "qtype": qtype,
        "question_content": template,
        "templ_values": values,
        "answer": answer,
    }


def _avqa_record(qid, video, answer_index=0, options=None):
    return {
        "qa_id": qid,
        "video_id": video,
        "question": "What is making the sound?",
        "options": options or ["Dog", "Cat", "Horse", "Car"],
        "answer_index": answer_index,
        "question_type": "Which",
        "question_relation": "Sound",
    }


def _manifest(path, clip_ids):
    rows = [
        {"clip_id": c, "path": f"resources/raw/x/videos/{c}.mp4", "has_audio": True,
         "has_video": True, "dataset": "x", "labels": []}
        for c in clip_ids
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


@pytest.fixture
def corpus(tmp_path):
    """MUSIC-AVQA with train (42 questions + one open-ended + one about an unindexed
    clip), val and test files; AVQA with train (20 + one long-option answer) and val."""
    music = tmp_path / "music" / "annotations"
    music.mkdir(parents=True)
    train = [
        _music_record(i, f"mtrain{i % 6}", *MUSIC_KINDS[i % len(MUSIC_KINDS)]) for i in range(42)
    ]
    train.append(_music_record(42, "mtrain0", "Describe the <Object>.", ["violin"], DESCRIPTION))
    train.append(_music_record(43, "unindexed", *MUSIC_KINDS[0]))
    music_avqa.write_annotations(train, music / "avqa-train.json")
    music_avqa.write_annotations(
        [_music_record(i, f"mval{i % 2}", *MUSIC_KINDS[i % 7]) for i in range(7)],
        music / "avqa-val.json",
    )
    music_avqa.write_annotations(
        [_music_record(i, "mtest0", *MUSIC_KINDS[i % 7]) for i in range(1000, 1007)],
        music / "avqa-test.json",
    )
    av = tmp_path / "avqa" / "annotations"
    av.mkdir(parents=True)
    long_option = "A man explains at length how the engine of the boat works"
    avqa.write_annotations(
        [_avqa_record(i, f"atrain{i % 5}_000001", i % 4) for i in range(20)]
        + [_avqa_record(20, "atrain0_000001", 0, [long_option, "Dog", "Cat", "Car"])],
        av / "train_qa.json",
    )
    avqa.write_annotations(
        [_avqa_record(i, "aval0_000001", 1) for i in range(500, 505)], av / "val_qa.json"
    )
    manifests = {
        "music_avqa": _manifest(
            tmp_path / "music.parquet",
            [f"mtrain{i}" for i in range(6)] + ["mval0", "mval1", "mtest0"],
        ),
        "avqa": _manifest(
            tmp_path / "avqa.parquet",
            [f"atrain{i}_000001" for i in range(5)] + ["aval0_000001"],
        ),
    }
    raw = {"music_avqa": str(tmp_path / "music"), "avqa": str(tmp_path / "avqa")}
    return raw, manifests


DATASETS = {"music_avqa": "music_avqa", "avqa": "avqa"}


def select(corpus, **kw):
    raw, manifests = corpus
    args = {"splits": ["train"], "warmup_samples": 6, "fraction": 0.5, "max_samples": 0,
            "seed": 3} | kw  # fmt: skip
    table, counts = training_questions(DATASETS, raw, manifests, **args)
    return table.to_pylist(), counts


def test_only_the_training_files_are_read(corpus):
    rows, counts = select(corpus)
    assert {r["split"] for r in rows} == {"train"}
    assert not {r["source_ids"][0] for r in rows} & {"mval0", "mval1", "mtest0", "aval0_000001"}
    assert {r["id"].rsplit("-", 1)[0] for r in rows} == {"MUSIC-AVQA-train", "AVQA-train"}
    assert counts["music_avqa"]["read"] == 44 and counts["avqa"]["read"] == 21
    # With MUSIC-AVQA's val split as well, its val questions join; AVQA's val never does.
    table, _ = training_questions(
        {"music_avqa": "music_avqa"}, *corpus, splits=["train", "val"],
        warmup_samples=0, fraction=1.0, max_samples=0, seed=3,
    )  # fmt: skip
    rows = table.to_pylist()
    assert {r["split"] for r in rows} == {"train", "val"}
    assert "mtest0" not in {r["source_ids"][0] for r in rows}
    with pytest.raises(ConfigError, match="evaluation set"):
        training_questions({"avqa": "avqa"}, *corpus, splits=["train", "val"],
                           warmup_samples=0, fraction=1.0, max_samples=0, seed=3)  # fmt: skip


def test_warmup_and_rl_sets_are_disjoint_and_sized(corpus):
    rows, counts = select(corpus, warmup_samples=6, fraction=0.5)
    warm = [r for r in rows if r["role"] == "warmup"]
    rl = [r for r in rows if r["role"] == "rl"]
    assert len(warm) == 6 and not {r["id"] for r in warm} & {r["id"] for r in rl}
    assert {r["task"] for r in warm} == {"MUSIC-AVQA", "AVQA"}  # round robin: 3 + 3
    eligible = {"music_avqa": 42, "avqa": 20}  # closed answers about indexed clips
    for name, n in eligible.items():
        assert counts[name]["rl"] == round(0.5 * n)
        assert sum(r["role"] == "rl" and r["source_dataset"] == name for r in rows) == round(
            0.5 * n
        )
    assert len({r["id"] for r in rows}) == len(rows)
    # A count cap per dataset.
    rows, counts = select(corpus, max_samples=4)
    assert counts["music_avqa"]["rl"] == counts["avqa"]["rl"] == 4
    # The fraction is of all usable questions: with fraction 1 the RL set is what the
    # warm-up left.
    rows, counts = select(corpus, warmup_samples=6, fraction=1.0)
    assert counts["music_avqa"]["rl"] + counts["music_avqa"]["warmup"] == 42


def test_selection_is_deterministic_with_the_seed(corpus):
    a, _ = select(corpus, seed=3)
    b, _ = select(corpus, seed=3)
    c, _ = select(corpus, seed=4)
    assert a == b
    pick = lambda rows: {(r["id"], r["role"]) for r in rows}  # noqa: E731
    assert pick(a) != pick(c)
    assert [r["options"] for r in a] == [r["options"] for r in b]


def test_open_ended_answers_and_unindexed_clips_never_enter(corpus):
    rows, counts = select(corpus, fraction=1.0, warmup_samples=0)
    answers = {r["answer"] for r in rows}
    assert DESCRIPTION not in answers
    assert not any(a.startswith("A man explains") for a in answers)
    assert "unindexed" not in {r["source_ids"][0] for r in rows}
    assert counts["music_avqa"]["open_ended"] == 1 and counts["music_avqa"]["clip_not_indexed"] == 1
    assert counts["avqa"]["open_ended"] == 1
    for r in rows:
        assert closed_answer(r["answer"], r["options"])
        assert r["options"][r["answer_index"]] == r["answer"]


def test_closed_answer():
    assert closed_answer("yes", ["no", "yes"])
    assert closed_answer("A dog barks", ["A dog barks", "A car honks"])
    assert not closed_answer("yes", None)
    assert not closed_answer("yes", ["yes"])  # nothing to choose from
    assert not closed_answer("maybe", ["yes", "no"])
    words = " ".join(["word"] * (MAX_ANSWER_WORDS + 1))
    assert not closed_answer(words, [words, "no"])
    assert not closed_answer(DESCRIPTION, [DESCRIPTION, "other"])


def test_options_come_from_the_answer_kind_or_the_dataset(corpus):
    rows, _ = select(corpus, fraction=1.0, warmup_samples=0)
    for r in rows:
        assert r["answer"] in r["options"] and len(set(r["options"])) == len(r["options"])
        if r["task"] == "AVQA":
            assert sorted(r["options"]) == ["Car", "Cat", "Dog", "Horse"]
            continue
        kinds = {kind_of(o) for o in r["options"]}
        if r["answer"] in ("yes", "no"):
            assert sorted(r["options"]) == ["no", "yes"]
        elif r["answer"] in ("two", "three"):
            assert kinds == {"number"} and len(r["options"]) == 4
        elif r["answer"] in ("violin", "cello"):
            assert kinds == {"instrument"} and len(r["options"]) == 4
        else:
            assert kinds <= {"side", "temporal"} and len(r["options"]) == 3


def test_missing_training_file_and_bad_splits_are_clear(tmp_path, corpus):
    raw, _ = corpus
    (tmp_path / "avqa" / "annotations" / "train_qa.json").unlink()
    with pytest.raises(AnnotationError, match=r"train_qa\.json: missing"):
        read_questions("avqa", raw["avqa"], ["train"])
    with pytest.raises(ConfigError, match="evaluation set"):
        check_splits("avqa", ["val"], "here")
    with pytest.raises(ConfigError, match="no question annotations"):
        check_splits("audioset", ["train"], "here")


def test_nothing_left_for_rl_is_an_error(corpus):
    with pytest.raises(ConfigError, match="no RL-CoMM training question"):
        select(corpus, warmup_samples=1000, fraction=0.5)


def test_evaluation_qa_set_never_uses_a_training_file(tmp_path, corpus):
    raw, manifests = corpus
    (tmp_path / "avqa" / "annotations" / "val_qa.json").unlink()
    with pytest.raises(AnnotationError, match="training files are not evaluated on"):
        build_qa_set("avqa", "avqa", manifests["avqa"], raw["avqa"], 4, 1)
    # MUSIC-AVQA: the test file only, though train and val files are there too.
    table = build_qa_set(
        "music_avqa", "music_avqa", manifests["music_avqa"], raw["music_avqa"], 50, 1
    )
    assert table.num_rows == 7
    assert {s[0] for s in table["source_ids"].to_pylist()} == {"mtest0"}


def _reference(rows):
    out = []
    for r in rows:
        ref = {name: r[name] for name in REFERENCE_SCHEMA.names if name in r}
        ref.update(
            prompt=r["question"],
            visual_labels=["violin"],
            reference_a_think="A violin sounds.",
            reference_origin="generated",
            reference_model="audio_llm",
            reference_embedding=[1.0, 0.0],
        )
        out.append(ref)
    return pa.Table.from_pylist(out, schema=REFERENCE_SCHEMA)


def test_rlcomm_tables_split_the_roles(corpus):
    rows, _ = select(corpus)
    half = len(rows) // 2
    rl, warmup = rlcomm_tables([_reference(rows[:half]), _reference(rows[half:])])
    assert sorted(rl["id"].to_pylist()) == sorted(r["id"] for r in rows if r["role"] == "rl")
    assert set(rl["role"].to_pylist()) == {"rl"}
    for name in ("id", "media_path", "prompt", "answer", "options", "reference_embedding"):
        assert name in rl.column_names  # what the GRPO stages read
    want = {r["id"]: r["answer"] for r in rows if r["role"] == "warmup"}
    assert sorted(warmup["id"].to_pylist()) == sorted(want)
    for w in warmup.to_pylist():
        assert w["response"].startswith("<a-think>A violin sounds.</a-think> <v-think>")
        assert w["response"].endswith(f"<answer>{want[w['id']]}</answer>")
    bad = _reference(rows[:1]).set_column(
        REFERENCE_SCHEMA.names.index("role"), "role", pa.array(["test"])
    )
    with pytest.raises(ValueError, match="test"):
        rlcomm_tables([bad])


def test_release_layouts_are_read(corpus):
    raw, _ = corpus
    path = f"{raw['music_avqa']}/annotations/avqa-train.json"
    assert "anser" in json.loads(open(path, encoding="utf-8").read())[0]  # the release's key
    questions = read_questions("avqa", raw["avqa"], ["train"])
    assert len(questions) == 21 and all(len(q["options"]) == 4 for q in questions)
    assert questions[1]["answer"] == "Cat"  # multi_choice[answer]


def test_synthetic_split_sends_each_video_to_one_file():
    ids = [f"v{i}" for i in range(10)]
    train = train_videos(ids, 0.5, 7, "avqa")
    assert len(train) == 5 and train == train_videos(ids, 0.5, 7, "avqa")
    assert train != train_videos(ids, 0.5, 8, "avqa")
    assert len(train_videos(ids, 0.01, 7, "avqa")) == 1  # both files ask something
    assert len(train_videos(ids, 0.99, 7, "avqa")) == 9
    assert train_videos(ids, 0.0, 7, "avqa") == set()
    assert len(train_videos(ids, 1.0, 7, "avqa")) == 10


def test_synthetic_corpus_writes_the_training_file_in_the_release_format(tmp_path):
    corpus = {"duration_s": 0.5, "fps": 4, "width": 32, "height": 32, "sample_rate": 16000,
              "avqa_clips": 4, "qa_train_fraction": 0.5}  # fmt: skip
    media = {"video_codec": {"vcodec": "libx264", "preset": "veryfast", "crf": 30, "threads": 1},
             "audio_codec": {"acodec": "aac", "b:a": "32k"}}  # fmt: skip
    synthetic.generate("avqa", tmp_path, corpus, media, seed=5)
    train = read_questions("avqa", tmp_path, ["train"])
    val = avqa.read_annotations(tmp_path / "annotations" / "val_qa.json")
    train_videos_ = {q["video_id"] for q in train}
    assert len(train_videos_) == 2 and len(set(val["video_id"])) == 2
    assert not train_videos_ & set(val["video_id"])
    # The adapter (what the benchmark tasks and the index read) sees both files.
    assert len(adapter_questions("avqa", tmp_path)) == len(train) + len(val)
