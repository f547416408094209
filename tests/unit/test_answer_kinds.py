"""Options of the answer's kind: no multiple-choice option can be ruled out by type.

Runs the option-building code over every MUSIC-AVQA question template of templates.yaml
(synthetic scenes), all 33 real MUSIC-AVQA question templates (with the answers they have
in the released test file, json_update/avqa-test.json, where it asks them), the fixture
annotations, AVQA questions and AudioSet clips, and checks every option of every task
against the kind of the question's answer.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avtrust import data_files
from avtrust.bench import avtrustbench
from avtrust.bench.answer_kinds import Distractors, kind_of, related
from avtrust.bench.samples import TaskContext, wording
from avtrust.datasets import avqa, music_avqa
from avtrust.datasets.synthetic import Scene, _avqa_option, scene_questions
from avtrust.evaluate.samples import build_qa_set
from avtrust.media.synthesis import catalog, names_of_kind

DATA = Path(__file__).resolve().parents[1] / "data"
ABSTAIN = set(wording().values())
# MUSIC-AVQA's one template answered with a side or "simultaneously".
COMPANION_TEMPLATES = {"Which <Object> makes the sound <FL>?"}
SLOT_VALUES = {
    "<Object>": ["violin", "cello"],
    "<LR>": ["left", "right"],
    "<FL>": ["first", "last"],
    "<TH>": ["second"],
    "<LRer>": ["leftmost"],
    "<LL>": ["louder"],
    "<BA>": ["before"],
}
YN = ["yes", "no"]
COUNTS = ["zero", "one", "two", "three", "four", "five", "six", "eight", "more than ten"]
SOME = ["violin", "piano", "cello", "acoustic_guitar", "erhu", "ukulele", "accordion"]
SIDES = ["left", "right", "middle"]
# The real test file's templates (type, question_content) with answers they have there.
REAL_TEMPLATES = [
    ("Audio", "Comparative", "Is the <Object> louder than the <Object>?", YN),
    ("Audio", "Comparative", "Is the <Object> more rhythmic than the <Object>?", YN),
    ("Audio", "Comparative", "Is the <Object> playing longer than the <Object>?", YN),
    ("Audio", "Counting", "Are there <Object> and <Object> sound? ", YN),
    ("Audio", "Counting", "How many musical instruments were heard throughout the video?",
     COUNTS),
    ("Audio", "Counting", "Is there a <Object> sound?", YN),
    ("Audio-Visual", "Comparative",
     "Is the <Object> on the <LR> louder than the <Object> on the <LR>?", YN),
    ("Audio-Visual", "Comparative",
     "Is the instrument on the <LR> more rhythmic than the instrument on the <LR>?", YN),
    ("Audio-Visual", "Counting", "How many instruments are sounding in the video?", COUNTS),
    ("Audio-Visual", "Counting",
     "How many instruments in the video did not sound from beginning to end?", COUNTS[:5]),
    ("Audio-Visual", "Counting", "How many sounding <Object> in the video？", COUNTS),
    ("Audio-Visual", "Existential", "Is there a voiceover?", YN),
    ("Audio-Visual", "Existential", "Is this sound from the instrument in the video?", YN),
    ("Audio-Visual", "Location", "Is the <FL> sound coming from the <LR> instrument?", YN),
    ("Audio-Visual", "Location", "What is the <LR> instrument of the <FL> sounding instrument?",
     SOME),
    ("Audio-Visual", "Location", "Where is the <LL> instrument?", SIDES),
    ("Audio-Visual", "Location",
     "Which is the musical instrument that sounds at the same time as the <Object>?", SOME),
    ("Audio-Visual", "Temporal", "What is the <TH> instrument that comes in?", SOME),
    ("Audio-Visual", "Temporal", "Where is the <FL> sounding instrument?", SIDES),
    ("Audio-Visual", "Temporal", "Which <Object> makes the sound <FL>?",
     ["simultaneously", "simultaneously", *SIDES]),
    ("Audio-Visual", "Temporal", "Which instrument makes sounds <BA> the <Object>?", SOME),
    ("Visual", "Counting", "Are there <Object> and <Object> instruments in the video?", YN),
    ("Visual", "Counting", "How many <Object> are in the entire video?", COUNTS),
    ("Visual", "Counting", "Is there a <Object> in the entire video?", YN),
    ("Visual", "Location", "What is the instrument on the <LR> of <Object>?", SOME),
    ("Visual", "Location", "What kind of musical instrument is it?",
     [*SOME, "xylophone", "bagpipe", "suona"]),
    ("Visual", "Location", "Where is the performance?", ["indoor", "outdoor", "indoor"]),
    # MUSIC-AVQA's other templates (33 in all across its train, val and test files), with
    # answers of the kind their type gives
    ("Audio-Visual", "Existential", "Is the <Object> in the video always playing?", YN),
    ("Audio-Visual", "Counting", "How many types of musical instruments sound in the video?",
     COUNTS[:6]),
    ("Audio-Visual", "Comparative",
     "Is the instrument on the <LR> louder than the instrument on the <LR>?", YN),
    ("Audio-Visual", "Comparative",
     "Is the <Object> on the <LR> more rhythmic than the <Object> on the <LR>?", YN),
    ("Visual", "Counting", "How many types of musical instruments appeared in the entire video?",
     COUNTS[:6]),
    ("Visual", "Location", "What kind of instrument is the <LRer> instrument?", SOME),
]  # fmt: skip
# Every template, and every (modality, type) pair of MUSIC-AVQA's nine question types.
assert len({t[2].strip().replace("？", "?") for t in REAL_TEMPLATES}) == 33
assert {(m, q) for m, q, *_ in REAL_TEMPLATES} == {
    ("Audio", "Counting"), ("Audio", "Comparative"), ("Visual", "Counting"),
    ("Visual", "Location"), ("Audio-Visual", "Existential"), ("Audio-Visual", "Counting"),
    ("Audio-Visual", "Location"), ("Audio-Visual", "Comparative"), ("Audio-Visual", "Temporal"),
}  # fmt: skip


def _fill(content: str) -> list[str]:
    values, used = [], {}
    for slot in re.findall(r"<[A-Za-z]+>", content):
        options = SLOT_VALUES[slot]
        values.append(options[used.get(slot, 0) % len(options)])
        used[slot] = used.get(slot, 0) + 1
    return values


def real_template_records() -> list[dict]:
    records = []
    for modality, qtype, content, answers in REAL_TEMPLATES:
        for answer in answers:
            records.append(
                {
                    "video_id": f"{len(records):08d}",
                    "modality": modality,
                    "qtype": qtype,
                    "question_content": content,
                    "templ_values": _fill(content),
                    "answer": answer,
                }
            )
    return records


def yaml_template_records() -> list[dict]:
    """Questions of every templates.yaml MUSIC-AVQA template over random scenes."""
    templates = data_files.load("templates")["music_avqa_questions"]
    instruments = names_of_kind("instrument")
    records = []
    for i in range(40):
        rng = np.random.default_rng(i)
        k = int(rng.integers(1, 4))
        chosen = [str(x) for x in rng.choice(instruments, size=k, replace=False)]
        onsets = [float(o) for o in rng.permutation(k) * 0.25]
        gains = [float(g) for g in rng.permutation(np.linspace(0.5, 1.0, k))]
        records += scene_questions(Scene(f"scene_{i:03d}", chosen, onsets, gains), rng, templates)
    assert {r["question_content"] for r in records} == {t["question"] for t in templates}
    return records


def fixture_records() -> list[dict]:
    return music_avqa.read_annotations(DATA / "music_avqa" / "avqa-test.json").to_dict("records")


CORPORA = {
    "templates.yaml": yaml_template_records,
    "real MUSIC-AVQA templates": real_template_records,
    "fixture": fixture_records,
}


def _write_music(records: list[dict], path) -> pd.DataFrame:
    for qid, r in enumerate(records):
        r["question_id"] = qid
    music_avqa.write_annotations(records, path)
    return music_avqa.read_annotations(path)


def _context(task: str, questions: pd.DataFrame | None, clips: dict[str, list[str]], seed=3):
    ids = sorted(clips)
    manifest = pd.DataFrame(
        {
            "clip_id": ids,
            "path": [f"{c}.mp4" for c in ids],
            "labels": [clips[c] for c in ids],
            "stems": [[] for _ in ids],
        }
    ).set_index("clip_id", drop=False)
    n = len(questions) if questions is not None else len(ids)
    return TaskContext(
        bench="avtrustbench",
        task=task,
        samples=n,
        seed=seed,
        clips=manifest,
        dataset="d",
        wording=wording(),
        questions=questions,
    )


def allowed(answer: str, template: str) -> frozenset[str]:
    kinds = {kind_of(answer)}
    if template in COMPANION_TEMPLATES:
        kinds |= {"side", "temporal"}
    return related(kinds)


def assert_options_of_answer_kind(rows, truth):
    """Every non-abstention option of every row is of its question's answer kind."""
    assert rows
    for r in rows:
        answer, template = truth[r["source_ids"][0], r["question"]]
        kinds = allowed(answer, template)
        options = [o for o in r["options"] if o not in ABSTAIN]
        bad = [o for o in options if kind_of(o) not in kinds]
        assert not bad, f"{r['task']}: {bad} offered for {r['question']!r} (answer {answer!r})"
        assert len(set(options)) == len(options) and options
        if r["task"] in ("MAT", "MVT") or r["bench"] == "qa":
            assert answer in options
            if kind_of(answer) in ("yes_no", "place"):  # the other one only
                assert sorted(options) == sorted({"yes_no": YN, "place": ["indoor", "outdoor"]}[
                    kind_of(answer)])  # fmt: skip


@pytest.mark.parametrize("corpus", list(CORPORA))
def test_music_avqa_options_are_of_the_answers_kind(corpus, tmp_path):
    questions = _write_music(CORPORA[corpus](), tmp_path / "annotations" / "avqa-test.json")
    truth = {
        (v, q): (a, t)
        for v, q, a, t in zip(
            questions["video_id"], questions["question"], questions["answer"],
            questions["question_content"], strict=True,
        )
    }  # fmt: skip
    clips = {v: [] for v in questions["video_id"]}
    # ICIT needs 3 same-kind options of other clips: too few in the 12-question fixture.
    tasks = ["MAT", "MVT", "MCIT", "MVIT", "MAIT"] + (["ICIT"] if corpus != "fixture" else [])
    for task in tasks:
        rows = avtrustbench.BUILDERS[task](_context(task, questions, clips))
        assert_options_of_answer_kind(rows, truth)
        again = avtrustbench.BUILDERS[task](_context(task, questions, clips))
        assert again == rows  # seeded: deterministic
    # The plain QA set of the RL-CoMM main table.
    manifest = tmp_path / "manifest.parquet"
    ids = sorted(clips)
    pq.write_table(
        pa.table(
            {
                "clip_id": ids,
                "path": [f"{c}.mp4" for c in ids],
                "has_audio": [True] * len(ids),
                "has_video": [True] * len(ids),
            }
        ),
        manifest,
    )
    qa = build_qa_set("music_avqa", "m", str(manifest), str(tmp_path), len(questions), 1)
    rows = qa.to_pylist()
    assert len(rows) == len(questions)
    assert_options_of_answer_kind(rows, truth)
    again = build_qa_set("music_avqa", "m", str(manifest), str(tmp_path), len(questions), 1)
    assert again.equals(qa)


def test_avqa_tasks_keep_options_of_the_answers_kind(tmp_path):
    events = names_of_kind("event")
    cat, attrs = catalog(), data_files.load("attributes")
    templates = data_files.load("templates")["avqa_questions"]
    records, clips = [], {}
    rng = np.random.default_rng(0)
    for i in range(30):
        source = cat[events[i % len(events)]]
        video = f"avqa{i:07d}_000001"
        clips[video] = [source.label]
        others = [cat[e] for e in events if e != source.name]
        for template in templates:
            chosen = [others[j] for j in rng.choice(len(others), size=3, replace=False)]
            options = [_avqa_option(s, template["field"], attrs) for s in [source, *chosen]]
            records.append(
                {
                    "qa_id": len(records),
                    "video_id": video,
                    "question": template["question"],
                    "options": options,
                    "answer_index": 0,
                    "question_type": template["question_type"],
                    "question_relation": template["question_relation"],
                }
            )
    path = avqa.write_annotations(records, tmp_path / "val_qa.json")
    questions = avqa.read_annotations(path)
    truth = {
        (v, q): (a, q)
        for v, q, a in zip(questions["video_id"], questions["question"], questions["answer"],
                           strict=True)
    }  # fmt: skip
    for task in ("MCIT", "ICIT", "MVIT", "MAIT"):
        rows = avtrustbench.BUILDERS[task](_context(task, questions, clips))
        assert_options_of_answer_kind(rows, truth)


# AVQA's eight question types, each with a question and 8 answers of its own flavour (a
# Where answer is a place, a When answer a time, ...): an option of another type's
# question would be ruled out by its form alone.
AVQA_TYPES = {
    "Which": ("Which animal makes the sound?",
              ["dog", "cat", "cow", "horse", "sheep", "goat", "pig", "duck"]),
    "Come From": ("Where does the sound come from?",
                  ["the car", "the train", "the drum", "the bell", "the engine", "the radio",
                   "the dog", "the crowd"]),
    "Happening": ("What is happening in the video?",
                  ["a man is singing", "a dog is barking", "a car is passing",
                   "a baby is crying", "a crowd is cheering", "a bird is singing",
                   "a door is closing", "a phone is ringing"]),
    "Where": ("Where is the video taken?",
              ["in the kitchen", "in the street", "in a forest", "on a beach", "in a church",
               "in a stadium", "in a garage", "on a farm"]),
    "Why": ("Why does the sound happen?",
            ["because it is hungry", "because of the wind", "because a door closed",
             "because the game started", "because it is raining", "because of a fire",
             "because the car started", "because a baby woke up"]),
    "Before Next": ("What sound comes after the bell?",
                    ["a car horn", "a siren", "a whistle", "a scream", "an applause",
                     "a gunshot", "a bark", "a knock"]),
    "When": ("When is the sound made?",
             ["at night", "in the morning", "at noon", "in the evening", "at dawn", "at dusk",
              "at midnight", "in the afternoon"]),
    "Used For": ("What is the tool in the video used for?",
                 ["cutting wood", "drilling holes", "mowing grass", "painting walls",
                  "washing cars", "sawing metal", "sanding floors",
                  "grinding stone"]),
}  # fmt: skip


def test_every_avqa_question_type_gets_options_of_its_own_type(tmp_path):
    """All eight AVQA question types: the tasks that keep a question's options keep them,
    and ICIT's irrelevant options come from questions of the same type."""
    rng = np.random.default_rng(1)
    records, clips = [], {}
    for i in range(24):
        video = f"avqa{i:07d}_000001"
        clips[video] = [f"label {i}"]
        for qtype, (question, answers) in AVQA_TYPES.items():
            options = [answers[j] for j in rng.choice(len(answers), size=4, replace=False)]
            records.append({"qa_id": len(records), "video_id": video, "question": question,
                            "options": options, "answer_index": int(rng.integers(4)),
                            "question_type": qtype, "question_relation": "Both"})  # fmt: skip
    questions = avqa.read_annotations(avqa.write_annotations(records, tmp_path / "val_qa.json"))
    own = {(r["video_id"], r["question"]): set(r["options"]) for r in records}
    of_type = {t: set(answers) for t, (_, answers) in AVQA_TYPES.items()}
    for task in ("MCIT", "ICIT", "MVIT", "MAIT"):
        rows = avtrustbench.BUILDERS[task](_context(task, questions, clips))
        assert {r["category"] for r in rows} == set(AVQA_TYPES), task
        for r in rows:
            options = {o for o in r["options"] if o not in ABSTAIN}
            assert options and options <= of_type[r["category"]], (task, r["question"], options)
            mine = own[r["source_ids"][0], r["question"]]
            if task == "ICIT":
                assert not options & mine  # irrelevant: none of the question's own
            else:
                assert options <= mine


def test_audioset_tasks_offer_orders_and_bindings_only(tmp_path):
    cat = catalog()
    events = names_of_kind("event")
    labels = {
        f"as{i:09d}_{i}.000": [cat[events[i % len(events)]].label]
        + ([cat[events[(i + 3) % len(events)]].label] if i % 3 == 0 else [])
        for i in range(30)
    }
    say = data_files.load("templates")["avtrustbench"]["CAT"]["binding_option"]
    binding = re.compile(
        "^" + re.escape(say).replace(r"\{noun1\}", ".+").replace(r"\{noun2\}", ".+")
        .replace(r"\{verb1\}", r"\S+").replace(r"\{verb2\}", r"\S+") + "$"
    )  # fmt: skip
    names = {x for ls in labels.values() for x in ls}
    for task in ("COT-Stitch", "COT-Swap", "CAT"):
        ctx = _context(task, None, labels)
        ctx.samples = 10
        rows = avtrustbench.BUILDERS[task](ctx)
        assert rows
        for r in rows:
            options = [o for o in r["options"] if o not in ABSTAIN]
            assert all(kind_of(o) == "event" for o in options)
            if task == "CAT":
                assert all(binding.match(o) for o in options), options
            else:
                for o in options:
                    first, second = o.split(" then ")
                    assert {*first.split(" and "), *second.split(" and ")} <= names, o


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("yes", "yes_no"),
        ("No", "yes_no"),
        ("three", "number"),
        ("more than ten", "number"),
        ("7", "number"),
        ("acoustic_guitar", "instrument"),
        ("Acoustic guitar", "instrument"),
        ("left", "side"),
        ("middle", "side"),
        ("indoor", "place"),
        ("simultaneously", "temporal"),
        ("A dog barks", "event"),
        ("Dog then Bell", "event"),
    ],
)
def test_kind_of(answer, kind):
    assert kind_of(answer) == kind


def test_too_few_values_fall_back_to_the_kinds_vocabulary():
    rng = np.random.default_rng(0)
    d = Distractors(["yes", "two", "violin", "left", "indoor", "4"])
    assert d.draw("yes", 3, rng) == ["no"]  # the other one only: 2 options
    assert d.draw("indoor", 3, rng) == ["outdoor"]
    assert sorted(d.draw("left", 3, rng)) == ["middle", "right"]
    numbers = d.draw("two", 3, rng)
    assert len(numbers) == 3 and all(kind_of(n) == "number" and not n.isdigit() for n in numbers)
    digits = d.draw("4", 3, rng)
    assert len(digits) == 3 and all(n.isdigit() and n != "4" for n in digits)
    assert all(kind_of(x) == "instrument" for x in d.draw("violin", 3, rng))
    # Companion kinds only where one template has both.
    d = Distractors(
        ["left", "simultaneously", "right"], ["Which <Object>?", "Which <Object>?", "W"]
    )
    assert "simultaneously" in d.candidates("left", 3, "Which <Object>?")
    assert "simultaneously" not in d.candidates("left", 3, "W")
    assert sorted(d.candidates("simultaneously", 3, "Which <Object>?")) == sorted(SIDES)
