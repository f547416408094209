"""The m2 judge: strict score parsing, retries on malformed replies against a local
OpenAI-compatible server, recorded failures, and the judge-free audio metric."""

from __future__ import annotations

import json
import time

import pytest
from local_openai import ChatServer

from avtrust.evaluate.judge import (
    HttpJudge,
    JudgeReplyError,
    judge_messages,
    judge_predictions,
    parse_scores,
    sound_match,
)
from avtrust.evaluate.metrics import judge_metrics
from avtrust.models import registry

ENV = "AVTRUST_TEST_JUDGE_KEY"


@pytest.mark.parametrize(
    ("reply", "scores"),
    [
        ('{"audio": 4, "visual": 5}', (4, 5)),
        (' {"visual": 0, "audio": 3}\n', (3, 0)),
        ('```json\n{"audio": 5, "visual": 5}\n```', (5, 5)),
    ],
)
def test_scores_parse(reply, scores):
    assert parse_scores(reply) == scores


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("Audio: 4, Visual: 5", "exactly one JSON object"),
        ('{"audio": 4, "visual": 5} {"audio": 1, "visual": 1}', "found 2"),
        ('Sure! {"audio": 4, "visual": 5}', "text besides"),
        ('{"audio": 4}', "keys"),
        ('{"audio": 4, "visual": 5, "note": 1}', "keys"),
        ('{"audio": 4.5, "visual": 5}', "integer 0-5"),
        ('{"audio": 6, "visual": 5}', "integer 0-5"),
        ('{"audio": true, "visual": 5}', "integer 0-5"),
        ('{"audio": "4", "visual": 5}', "integer 0-5"),
        ("{audio: 4, visual: 5}", "invalid JSON"),
    ],
)
def test_malformed_replies_are_rejected(reply, message):
    with pytest.raises(JudgeReplyError, match=message):
        parse_scores(reply)


class Judge:
    """Replies from a script, one per request; records each request's body."""

    script: list = []
    bodies: list = []

    @staticmethod
    def reply(body):
        Judge.bodies.append(body)
        status, content = Judge.script.pop(0) if Judge.script else (200, "no more replies")
        if status == "hang":  # longer than the client's timeout
            time.sleep(content)
            return 200, '{"audio": 5, "visual": 5}'
        if status == "garbage":  # not JSON at all
            return 200, b"\xff<html>bad gateway</html>"
        return status, content if status == 200 else {"error": "busy"}


@pytest.fixture
def endpoint(monkeypatch):
    Judge.script, Judge.bodies = [], []
    monkeypatch.setenv(ENV, "test-key")
    with ChatServer(Judge.reply, key="test-key") as server:
        models = {"judge": {"adapter": "openai_http", "source": "http",
                            "location": server.base_url, "model": "judge-model",
                            "api_key_env": ENV}}  # fmt: skip
        spec = registry.spec_from_config("judge", models)
        from avtrust.models.http import OpenAIEndpoint

        yield OpenAIEndpoint.from_spec(spec)


SAMPLES = {
    "m2-0": {"id": "m2-0", "question": "Describe what you see and what you hear.",
             "answer": "Based on the video, there is a violin. Based on the audio, there is the "
                       "sound of wind blowing, and no sound from the violin can be heard.",
             "instruments": ["violin"], "sound_type": "wind", "snr_db": None},
    "m2-1": {"id": "m2-1", "question": "Describe what you see and what you hear.",
             "answer": "Based on the video, there is a cello and a flute. Based on the audio, "
                       "there is the sound of rain falling together with the sound of the cello.",
             "instruments": ["cello", "flute"], "sound_type": "rain", "snr_db": 5.0},
}  # fmt: skip


def prediction(i, text):
    return {"model": "omni", "id": f"m2-{i}", "mode": "generate", "kind": "open", "raw": text}


def test_judge_retries_malformed_replies_then_records_failures(endpoint):
    Judge.script = [
        (200, "The audio is good: 4/5"),  # m2-0, attempt 1: malformed
        (200, '{"audio": 4, "visual": 5}'),  # m2-0, attempt 2: ok
        (503, ""),  # m2-1, attempt 1: server error
        (200, '{"audio": 9, "visual": 1}'),  # attempt 2: out of range
        (200, "{}"),  # attempt 3: no keys -> failure recorded
    ]
    preds = [
        prediction(0, "Based on the video, a violin. Based on the audio, I hear the wind."),
        prediction(1, "Based on the video, a cello. Based on the audio, a cello is playing."),
    ]
    table = judge_predictions(preds, SAMPLES, HttpJudge(endpoint, 32), judge_name="judge",
                              retries=2, retry_temperature=0.5)  # fmt: skip
    rows = table.to_pylist()
    assert [(r["a_score"], r["v_score"], r["attempts"]) for r in rows] == [
        (4, 5, 2),
        (None, None, 3),
    ]
    assert rows[0]["error"] is None
    assert "keys" in rows[1]["error"]
    # first attempt greedy, retries sampled; the prompt carries the sample's facts
    assert [b["temperature"] for b in Judge.bodies] == [0.0, 0.5, 0.0, 0.5, 0.5]
    prompt = Judge.bodies[0]["messages"][-1]["content"]
    assert "only wind blowing; no sound from violin" in prompt and "I hear the wind" in prompt
    assert [r["audio_match"] for r in rows] == [True, False]
    metrics = {
        r["metric"]: (r["value"], r["n"]) for r in judge_metrics(rows) if r["category"] is None
    }
    assert metrics["a_score"] == (4.0, 1) and metrics["v_acc"] == (100.0, 1)
    assert metrics["judge_failed"] == (1.0, 2) and metrics["audio_match"] == (50.0, 2)


def test_without_a_judge_only_the_audio_metric_is_computed():
    table = judge_predictions([prediction(0, "Based on the audio, wind.")], SAMPLES, None,
                              judge_name=None)  # fmt: skip
    row = table.to_pylist()[0]
    assert (row["a_score"], row["attempts"], row["audio_match"]) == (None, 0, True)


@pytest.mark.parametrize(
    ("text", "sound", "instruments", "snr", "match"),
    [
        (
            "Based on the video, there is a violin. Based on the audio, wind is blowing.",
            "wind",
            ["violin"],
            None,
            True,
        ),
        (
            "Based on the video, there is a violin. Based on the audio, the violin is playing.",
            "wind",
            ["violin"],
            None,
            False,
        ),
        ("Based on the audio, I hear wind and a violin melody.", "wind", ["violin"], None, False),
        (
            "Based on the audio, there is wind; no violin can be heard.",
            "wind",
            ["violin"],
            None,
            True,
        ),
        ("Based on the audio, birds are chirping.", "bird", ["cello"], None, True),
        ("Based on the audio, rain falls and the cello plays.", "rain", ["cello"], 0.0, True),
        (
            "Based on the video, a drill on the table. Based on the audio, music.",
            "drill",
            [],
            None,
            False,
        ),
        ("I can hear thunder rumbling.", "thunder", ["flute"], None, True),
    ],
)
def test_audio_keyword_metric(text, sound, instruments, snr, match):
    assert sound_match(text, sound, instruments, snr) is match


def test_judge_prompt_for_a_mixed_soundtrack():
    messages = judge_messages(SAMPLES["m2-1"], "desc")
    assert messages[0]["role"] == "system"
    assert "rain falling together with cello and flute" in messages[1]["content"]


def test_judge_timeouts_and_garbage_bodies_are_retried_then_recorded(endpoint):
    endpoint.timeout_s = 0.3
    Judge.script = [
        ("hang", 1.0),  # m2-0, attempt 1: times out
        ("garbage", ""),  # attempt 2: a body that is not JSON
        (200, '{"audio": 3, "visual": 4}'),  # attempt 3: ok
        ("hang", 1.0),  # m2-1: every attempt times out
        ("hang", 1.0),
        ("garbage", ""),
    ]
    preds = [prediction(0, "Based on the audio, wind."), prediction(1, "Based on the audio, rain.")]
    rows = judge_predictions(preds, SAMPLES, HttpJudge(endpoint, 32), judge_name="judge",
                             retries=2, retry_temperature=0.5).to_pylist()  # fmt: skip
    assert [(r["a_score"], r["v_score"], r["attempts"]) for r in rows] == [
        (3, 4, 3),
        (None, None, 3),
    ]
    assert "not JSON" in rows[1]["error"]
    assert "test-key" not in json.dumps(rows)  # the API key never lands in a result
