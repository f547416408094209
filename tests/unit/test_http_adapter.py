"""The OpenAI-compatible endpoint adapter against a local server (127.0.0.1 only).

The API key comes from an environment variable, reaches the server in the
Authorization header, and appears nowhere else: not in logs, repr, errors or the
prepared model folder.
"""

from __future__ import annotations

import logging

import pytest
from local_openai import ChatServer

from avtrust.models import registry
from avtrust.models.http import OpenAIEndpoint
from avtrust.models.registry import ModelError

SECRET = "sk-test-7f3a9c1e-not-a-real-key"
ENV = "AVTRUST_TEST_API_KEY"


def echo(body):
    return 200, f"echo: {body['messages'][-1]['content'][-1]['text']}"


def rejected(body):
    # Some servers echo the key they rejected; the adapter must scrub it.
    return 401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}}


@pytest.fixture
def server():
    with ChatServer(echo) as served:
        yield served


@pytest.fixture
def spec(server):
    models = {
        "served": {
            "adapter": "openai_http",
            "source": "http",
            "location": server.base_url,
            "model": "gpt-4o-mini",
            "api_key_env": ENV,
        }
    }
    return registry.spec_from_config("served", models)


def test_chat_with_media_sends_the_key_only_in_the_header(
    spec, server, tmp_path, monkeypatch, caplog, clips
):
    monkeypatch.setenv(ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    folder = registry.prepare(spec, tmp_path / "served")
    assert SECRET not in (folder / "avtrust_model.json").read_text()
    endpoint = registry.load(folder)
    assert isinstance(endpoint, OpenAIEndpoint)
    replies = endpoint.generate([clips["violin"].path, None], ["Is there a violin?", "Hi"])
    assert replies == ["echo: Is there a violin?", "echo: Hi"]
    first, second = server.requests
    assert first["path"] == "/v1/chat/completions"
    assert first["auth"] == f"Bearer {SECRET}"
    assert first["body"]["model"] == "gpt-4o-mini"
    kinds = [part["type"] for part in first["body"]["messages"][-1]["content"]]
    assert "image_url" in kinds and "input_audio" in kinds and kinds[-1] == "text"
    image = next(p for p in first["body"]["messages"][-1]["content"] if p["type"] == "image_url")
    assert image["image_url"]["url"].startswith("data:image/jpeg;base64,/9j/")  # JPEG SOI
    assert [p["type"] for p in second["body"]["messages"][-1]["content"]] == ["text"]
    assert SECRET not in repr(endpoint) and SECRET not in caplog.text
    assert "chat/completions" in caplog.text  # requests are logged, without the key


def test_errors_never_show_the_key(spec, server, monkeypatch, caplog):
    monkeypatch.setenv(ENV, SECRET)
    server.reply = rejected
    endpoint = OpenAIEndpoint.from_spec(spec)
    with pytest.raises(ModelError) as info:
        endpoint.chat([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    assert "HTTP 401" in str(info.value) and "***" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in caplog.text


def test_missing_key_names_the_variable(spec, server, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(ModelError, match=f"environment variable {ENV} is not set"):
        OpenAIEndpoint.from_spec(spec).generate([None], ["hi"])
    assert server.requests == []


def test_a_keyless_server_gets_no_authorization_header(server, tmp_path, monkeypatch):
    # A local server (vLLM, llama.cpp) declared without api_key_env: no key is looked up
    # and none is sent, whatever the environment holds.
    monkeypatch.setenv(ENV, SECRET)
    models = {
        "local": {
            "adapter": "openai_http",
            "source": "http",
            "location": server.base_url,
            "model": "my-avllm",
        }
    }
    folder = registry.prepare(registry.spec_from_config("local", models), tmp_path / "local")
    assert registry.load(folder).generate([None], ["Hi"]) == ["echo: Hi"]
    (request,) = server.requests
    assert request["auth"] is None and request["body"]["model"] == "my-avllm"


def test_only_http_urls_are_accepted():
    with pytest.raises(ModelError, match="not http"):
        OpenAIEndpoint("file:///etc/passwd", "m", ENV)
