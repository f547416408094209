"""The evaluation prompt template (avtrust.evaluate.prompts): the default is the wording the
project always used, a configured template is what the model sees, and it is part of the
run's identity (the resume fingerprint, the evaluation job's parameters)."""

from __future__ import annotations

import pytest

from avtrust.errors import ConfigError
from avtrust.evaluate.infer import Predictor, Settings, fingerprint, run_shard
from avtrust.evaluate.prompt_template import check_template, template_parts
from avtrust.evaluate.prompts import DEFAULT_TEMPLATE, prompt_for

OPTIONS = ["violin", "cello", "Audio is missing"]


def test_the_default_is_the_projects_wording():
    assert prompt_for("Which?", OPTIONS) == (
        "Which?\nA. violin\nB. cello\nC. Audio is missing\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert prompt_for("Which?", OPTIONS, "loglik") == (
        "Which?\nOptions:\n- violin\n- cello\n- Audio is missing\n"
        "Answer with the text of one option."
    )
    assert prompt_for("Is there a violin sound?", ["yes", "no"]) == (
        "Is there a violin sound?\nAnswer yes or no."
    )
    assert prompt_for("Describe.", None) == "Describe."
    assert prompt_for("{braces} stay", None) == "{braces} stay"  # a question is not a template


def test_a_question_that_says_how_to_answer_gets_no_second_instruction():
    """The released m1 questions end with their own yes/no instruction."""
    release = "Please answer:\n Is there a violin sound? \nYour answer can only be 'yes' or 'no'"
    assert prompt_for(release, ["yes", "no"]) == release
    assert prompt_for("Is it loud? Say yes or no.", ["yes", "no"]) == "Is it loud? Say yes or no."
    # a configured wording is kept as written
    template = {"yes_no": "{question}\nReply with one word."}
    assert prompt_for(release, ["yes", "no"], template=template).endswith("one word.")
    # a question merely mentioning "no" still gets the instruction
    assert prompt_for("Is there no drum?", ["yes", "no"]).endswith("\nAnswer yes or no.")


def test_a_template_words_every_kind():
    template = {
        "choice": "Q: {question}\nChoices:\n{options}\nReply with a letter.",
        "option": "({letter}) {option}",
        "yes_no": "{question} Your answer can only be 'yes' or 'no'",
        "loglik": "{question} [{options}]",
        "loglik_option": "{letter}={option}",
        "open": "{question} Be brief.",
    }
    assert prompt_for("Which?", OPTIONS, template=template) == (
        "Q: Which?\nChoices:\n(A) violin\n(B) cello\n(C) Audio is missing\nReply with a letter."
    )
    assert prompt_for("Which?", OPTIONS[:2], "loglik", template) == "Which? [A=violin\nB=cello]"
    assert prompt_for("Is it?", ["Yes", "No"], template=template).endswith("only be 'yes' or 'no'")
    assert prompt_for("Describe.", None, template=template) == "Describe. Be brief."
    # a part left out keeps the default
    assert prompt_for("Describe.", None, template={"yes_no": "{question}?"}) == "Describe."


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"choices": "{question}"}, "unknown part"),
        ({"choice": "{question}"}, r"must use \{options\}, \{question\}"),
        ({"option": "{letter}. {opt}"}, r"uses \{letter\}, \{opt\}"),
        ({"yes_no": "{question} {options}"}, "must use"),
        ({"open": "{question} {"}, "literal brace"),
        ({"open": 3}, "expected a string"),
    ],
)
def test_bad_templates_are_refused_naming_the_part(template, message):
    with pytest.raises(ConfigError, match=message) as err:
        check_template(template, "config: evaluation.prompts.qa")
    assert str(err.value).startswith("config: evaluation.prompts.qa")


def test_a_task_reads_only_its_parts():
    edited = {"open": "{question} Be brief."}
    assert template_parts(edited, open_task=True) == {"open": "{question} Be brief."}
    closed = template_parts(edited, open_task=False)
    assert closed == template_parts(None, open_task=False)  # an m2 edit leaves MCQ jobs be
    assert set(closed) == set(DEFAULT_TEMPLATE) - {"open"}


class RecordingModel:
    """Answers "A" (or "yes") and records every prompt it is given."""

    def __init__(self):
        self.prompts: list[str] = []

    def generate(self, paths, prompts, *, max_new_tokens):
        self.prompts += prompts
        return ["A"] * len(prompts)


ROWS = [
    {"id": f"MAT-{i:06d}", "bench": "avtrustbench", "task": "MAT", "category": "c",
     "media_path": f"m/{i}.mp4", "has_audio": True, "has_video": True, "question": f"q{i}",
     "options": OPTIONS, "answer": "violin", "answer_index": 0}
    for i in range(3)
]  # fmt: skip


def test_the_configured_template_is_what_the_model_sees_and_what_is_recorded(tmp_path):
    template = {"choice": "{question} -- {options} -- letter?", "option": "[{letter}] {option}"}
    model = RecordingModel()
    table = run_shard(Predictor(model), ROWS, Settings(prompt=template), model_id="m",
                      state_dir=tmp_path / "s")  # fmt: skip
    expected = [f"q{i} -- [A] violin\n[B] cello\n[C] Audio is missing -- letter?" for i in range(3)]
    assert model.prompts == expected
    assert table["prompt"].to_pylist() == expected
    assert table["correct"].to_pylist() == [True] * 3  # the reply is parsed as before


def test_the_template_is_part_of_the_runs_identity(tmp_path):
    edited = Settings(prompt={"option": "({letter}) {option}"})
    assert fingerprint("m", ROWS, Settings()) != fingerprint("m", ROWS, edited)
    # no template and the default written out are one run: nothing is recomputed
    spelled_out = Settings(prompt=dict(DEFAULT_TEMPLATE))
    assert fingerprint("m", ROWS, Settings()) == fingerprint("m", ROWS, spelled_out)
    assert Settings().as_dict() == spelled_out.as_dict()

    # a resumed shard whose template changed computes every batch again, in the new wording
    model = RecordingModel()
    run_shard(Predictor(model), ROWS, Settings(batch_size=1), model_id="m",
              state_dir=tmp_path / "s")  # fmt: skip
    model.prompts.clear()
    table = run_shard(Predictor(model), ROWS, Settings(batch_size=1, prompt=edited.prompt),
                      model_id="m", state_dir=tmp_path / "s")  # fmt: skip
    assert len(model.prompts) == 3 and all("(B) cello" in p for p in model.prompts)
    assert all("(B) cello" in p for p in table["prompt"].to_pylist())


def test_settings_refuse_a_bad_template():
    with pytest.raises(ConfigError, match="evaluation prompt.choice"):
        Settings(prompt={"choice": "{question}"})
