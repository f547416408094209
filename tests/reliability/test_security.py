"""trust_remote_code stays off unless a config entry turns it on; secrets come from the
environment only and are never written to logs, configs or outputs.

(The scan for shell strings, os.system and os.popen is tests/workflow/test_lint.py's
test_no_shell_strings_in_the_package.)
"""

from __future__ import annotations

import ast

import pytest
from reliability_harness import REPO, run_snakemake, write_config

from avtrust.models import registry

API_KEY = "sk-reliability-5b0c2f7e-not-a-real-key"
HF_TOKEN = "hf_reliabilityNotARealToken9d41"


def _trust_values(tree: ast.AST):
    """(line, value) of every ``trust_remote_code=`` keyword and ``"trust_remote_code":`` key."""
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
            yield node.value.lineno, node.value
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "trust_remote_code":
                    yield value.lineno, value


def _from_config(value: ast.AST, tree: ast.AST) -> bool:
    """True if ``value`` reads a ``.trust_remote_code`` attribute (a model spec's), directly
    or through a local name assigned from one."""
    text = ast.unparse(value)
    if ".trust_remote_code" in text:
        return True
    if isinstance(value, ast.Name):
        return any(
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == value.id for t in node.targets)
            and ".trust_remote_code" in ast.unparse(node.value)
            for node in ast.walk(tree)
        )
    return False


def test_every_trust_remote_code_argument_comes_from_the_config():
    uses, offenders = 0, []
    for folder in ("src", "workflow", "scripts", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for line, value in _trust_values(tree):
                uses += 1
                if not _from_config(value, tree):
                    offenders.append(f"{path.relative_to(REPO)}:{line}: {ast.unparse(value)}")
    assert uses >= 3  # CLAP/Qwen2-Audio, the Omni thinker and the embedder load with it
    assert offenders == []


def test_model_entries_leave_trust_remote_code_off_unless_set():
    models = {
        "plain": {"adapter": "clap", "source": "local", "location": "/models/clap"},
        "remote": {
            "adapter": "clap",
            "source": "local",
            "location": "/models/clap",
            "trust_remote_code": True,
        },
    }
    assert registry.spec_from_config("plain", models).trust_remote_code is False
    assert registry.spec_from_config("remote", models).trust_remote_code is True


@pytest.mark.parametrize(("entry", "expected"), [(None, False), (False, False), (True, True)])
def test_loading_passes_the_entry_flag_and_false_by_default(monkeypatch, entry, expected):
    import transformers

    seen = []

    class Fake:
        @classmethod
        def from_pretrained(cls, path, **kwargs):
            seen.append(kwargs["trust_remote_code"])
            return cls()

        def to(self, device):
            return self

        def eval(self):
            return self

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", Fake.from_pretrained)
    models = {"m": {"adapter": "clap", "source": "local", "location": "/models/m"}}
    if entry is not None:
        models["m"]["trust_remote_code"] = entry
    spec = registry.spec_from_config("m", models) if entry is not None else None
    registry.load_with_processor(Fake, "/models/m", spec, "cpu")
    assert seen == [expected, expected]  # processor and model


@pytest.mark.workflow
def test_secrets_from_the_environment_are_never_written(tmp_path, monkeypatch):
    """Prepare an endpoint model with its API key and an HF token in the environment, then
    look for both in every file the run wrote (logs, resources, results, .snakemake)."""
    monkeypatch.setenv("AVTRUST_RELIABILITY_KEY", API_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)

    def add_endpoint(config):
        config["models"]["endpoint"] = {
            "adapter": "openai_http",
            "source": "http",
            "location": "http://127.0.0.1:9/v1",
            "model": "judge-model",
            "api_key_env": "AVTRUST_RELIABILITY_KEY",
        }

    config = write_config(tmp_path / "config.yaml", add_endpoint)
    work = tmp_path / "work"
    run_snakemake(work, "--cores", "1", "resources/models/endpoint", config=config)
    manifest = (work / "resources/models/endpoint/avtrust_model.json").read_text()
    assert "AVTRUST_RELIABILITY_KEY" in manifest  # the variable's name, never its value
    written = [p for p in [*work.rglob("*"), config] if p.is_file()]
    assert any(p.suffix == ".log" for p in written)
    leaks = [
        str(p.relative_to(tmp_path))
        for p in written
        if API_KEY.encode() in p.read_bytes() or HF_TOKEN.encode() in p.read_bytes()
    ]
    assert leaks == []
