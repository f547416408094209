"""Answer parsing on realistic model replies across the tasks (avtrust.evaluate.parse)."""

from __future__ import annotations

import pytest

from avtrust.evaluate.parse import (
    AMBIGUOUS,
    EMPTY,
    OFF_OPTIONS,
    OK,
    UNPARSEABLE,
    AnswerParser,
    yes_no,
)

MAT = ["violin", "cello", "piano", "Audio is missing"]
MVT = ["two", "three", "one", "Visual is missing"]
MCIT = ["Dog", "Car engine", "Guitar", "None of the above"]
ICIT = ["Train horn", "Applause", "Thunder", "Irrelevant options"]
MVIT = ["Dog", "Cat", "Cow", "Horse", "Mismatch in audio and video"]
COT = ["Dog bark then Car horn", "Car horn then Dog bark", "Mismatch in audio and video"]
CAT = ["The dog barks and the bell rings", "The dog rings and the bell barks"]
YN = ["yes", "no"]
QA_YN = ["yes", "no", "two", "left"]

CASES = [
    # option letters
    ("B", MAT, 1),
    ("(B)", MAT, 1),
    ("B.", MAT, 1),
    ("[C]", MAT, 2),
    ("Answer: D", MAT, 3),
    ("The answer is (A).", MCIT, 0),
    ("The correct option is C. Guitar", MCIT, 2),
    ("D. None of the above", MCIT, 3),
    ("C) Thunder", ICIT, 2),
    ("I would choose B because the sound is a cat.", MVIT, 1),
    ("Answer: E", MVIT, 4),
    ("B: Car horn then Dog bark", COT, 1),
    # option text
    ("violin", MAT, 0),
    ("It is the cello.", MAT, 1),
    ("The instrument being played is a piano", MAT, 2),
    ("Car horn then Dog bark", COT, 1),
    ("First the dog bark, then the car horn: Dog bark then Car horn.", COT, 0),
    ("The dog barks and the bell rings.", CAT, 0),
    ("There are 2 instruments.", MVT, 0),
    ("three", MVT, 1),
    ("guitar", MCIT, 2),
    # abstentions (wordings and paraphrases)
    ("None of the above.", MCIT, 3),
    ("None of the options is correct.", MCIT, 3),
    ("The correct answer is not listed.", MCIT, 3),
    ("Irrelevant options", ICIT, 3),
    ("None of the options are relevant to this video.", ICIT, 3),
    ("None of the above", ICIT, 3),  # a rejection of every option selects ICIT's wording
    ("The options are irrelevant to what happens in the clip.", ICIT, 3),
    ("Mismatch in audio and video.", MVIT, 4),
    ("There is a mismatch between the audio and the video.", MVIT, 4),
    ("The audio and the video do not match: I hear a dog but see a cow.", MVIT, 4),
    ("The sound doesn't match the video.", COT, 2),
    ("The audio is missing.", MAT, 3),
    ("There is no audio in this video, but I can see a violin.", MAT, 3),
    ("I can't hear anything; the video is silent.", MAT, 3),
    ("No sound can be heard in this clip.", MAT, 3),
    ("The visual is missing.", MVT, 3),
    ("There is no video, only audio is available.", MVT, 3),
    ("The screen is black so I cannot see anything.", MVT, 3),
    # RL-CoMM tagged output
    (
        "<a-think>I hear a cello.</a-think> <v-think>A cello is shown.</v-think> "
        "<answer>cello</answer>",
        MAT,
        1,
    ),
    ("<a-think>Silence.</a-think><v-think>A violin.</v-think><answer>D</answer>", MAT, 3),
    # yes/no on m1-style questions
    ("Yes.", YN, 0),
    ("yes, there is a violin sound in the video.", YN, 0),
    ("No, I can't hear a violin.", YN, 1),
    ("There is no cello sound.", YN, 1),
    ("I cannot hear the piano at all.", YN, 1),
    ("There is a flute sound playing in the background.", YN, 0),
    ("The guitar is not audible.", YN, 1),
    ("A", YN, 0),
    ("Yes, it is.", QA_YN, 0),
    ("No.", QA_YN, 1),
    ("Two instruments.", QA_YN, 2),
    ("It is on the left.", QA_YN, 3),
]


@pytest.mark.parametrize(("raw", "options", "index"), CASES)
def test_parses_realistic_replies(raw, options, index):
    parsed = AnswerParser().parse(raw, options)
    assert (parsed.status, parsed.index) == (OK, index), parsed
    assert parsed.answer == options[index]


def test_enough_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    ("raw", "options", "status"),
    [
        ("", MAT, EMPTY),
        ("<|im_end|>", MAT, EMPTY),
        ("I am not sure what this is.", MAT, UNPARSEABLE),
        ("The violin or maybe the cello.", MAT, AMBIGUOUS),
        ("F", MVIT, UNPARSEABLE),  # no sixth option: not a letter of this question
        ("hmm the the the", YN, UNPARSEABLE),
        ("Audio is missing", MVT, OFF_OPTIONS),  # an abstention this question doesn't offer
        ("Yes.", MAT, OFF_OPTIONS),
    ],
)
def test_unparseable_and_off_option_replies(raw, options, status):
    parsed = AnswerParser().parse(raw, options)
    assert parsed.status == status and parsed.index is None


def test_off_option_abstention_names_its_kind():
    parsed = AnswerParser().parse("There is no sound at all in this video.", MVT)
    assert (parsed.status, parsed.answer) == (OFF_OPTIONS, "audio_missing")


def test_configured_wording_is_recognised():
    options = ["Train horn", "Applause", "Thunder", "Nothing here fits the clip"]
    parser = AnswerParser({"irrelevant_options": "Nothing here fits the clip"})
    assert parser.parse("nothing here fits the clip!", options).index == 3
    assert parser.parse("Sadly, nothing here fits the clip.", options).index == 3


def test_yes_no_without_options():
    assert yes_no("Yes, I can hear it.") == "yes"
    assert yes_no("Nope.") == "no"
    assert yes_no("I don't hear any trumpet.") == "no"
    assert yes_no("The video shows a stage.") is None
    assert AnswerParser().parse("no", None).answer == "no"
