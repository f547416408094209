"""trust_remote_code stays off unless a config entry turns it on; secrets come from the
environment only and are never written to logs, configs or outputs.

(The scan for shell strings, os.system and os.popen is tests/workflow/test_lint.py's
test_no_shell_strings_in_the_package.)
"""

from __future__ import annotations

import ast
import csv
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from local_openai import ChatServer
from reliability_harness import REPO, run_snakemake, write_config

from avtrust import data_files
from avtrust.evaluate.infer import CHOICE_PROMPT, YES_NO_PROMPT
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


KEY_ENV = "AVTRUST_RELIABILITY_KEY"
JUDGE_REPLY = '{"audio": 4, "visual": 3}'
DESCRIPTION = "Based on the video, there is a violin. Based on the audio, I hear the wind blowing."


def served_model(body: dict) -> tuple[int, str | dict]:
    """Plausible replies of an audio-visual chat model: the judge's JSON for the m2 judge
    prompt, an option letter, yes/no or a description for benchmark questions."""
    messages = body["messages"]
    if messages[0] == {"role": "system", "content": data_files.load("judge")["system"]}:
        return 200, JUDGE_REPLY
    content = messages[-1]["content"]
    kinds = [part["type"] for part in content]
    if kinds[-1] != "text" or not {"image_url", "input_audio"} & set(kinds):
        return 400, {"error": {"message": f"expected media then a question, got {kinds}"}}
    question = content[-1]["text"]
    if CHOICE_PROMPT in question:
        return 200, "A"
    if YES_NO_PROMPT in question:
        return 200, "No."
    return 200, DESCRIPTION


def duckdb_text(path: Path) -> tuple[str, set[str]]:
    """Every value of every table and view of a DuckDB file as text (DuckDB compresses
    strings, so the file's bytes need not contain them), and the relations' names."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        relations = con.execute(
            "SELECT table_catalog, table_schema, table_name FROM information_schema.tables"
        ).fetchall()
        text = [
            repr(row)
            for catalog, schema, name in relations
            for row in con.execute(f'SELECT * FROM "{catalog}"."{schema}"."{name}"').fetchall()
        ]
    finally:
        con.close()
    return "\n".join(text), {name for _, _, name in relations}


def parquet_text(path: Path) -> str:
    """Every value of a Parquet file as text (its pages are zstd-compressed)."""
    return repr(pq.read_table(path).to_pylist())


@pytest.mark.workflow
def test_secrets_from_the_environment_are_never_written(tiny_run, tmp_path, monkeypatch):
    """Evaluate an endpoint model (served here, on 127.0.0.1) and judge m2 with it, the API
    key and an HF token in the environment, through to the results database and tables;
    then look for both secrets in every file the run wrote: raw bytes of each file, and the
    decoded values of every DuckDB table and view and of every Parquet file."""
    secrets = (API_KEY, HF_TOKEN)
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)  # the benchmark is built: only evaluate

    with ChatServer(served_model, key=API_KEY) as server:

        def add_endpoint(config):
            config["models"]["endpoint"] = {
                "adapter": "openai_http",
                "source": "http",
                "location": server.base_url,
                "model": "served-av-model",
                "api_key_env": KEY_ENV,
            }
            evaluation = config["evaluation"]
            evaluation["models"] = {"endpoint": {"model": "endpoint"}}
            # one task of each kind: multiple choice, yes/no, open description (judged)
            evaluation["tasks"] = {"avtrustbench": ["MAT"], "avconfusebench": ["m1", "m2"]}
            evaluation["judge"]["model"] = "endpoint"

        config = write_config(tmp_path / "config.yaml", add_endpoint)
        run_snakemake(work, "--cores", "2", "results/results.duckdb",
                      "results/tables/avtrustbench.md", config=config)  # fmt: skip

    # The key was used (every request carried it) and both kinds of request were answered.
    assert server.requests
    assert {r["auth"] for r in server.requests} == {f"Bearer {API_KEY}"}
    systems = [r["body"]["messages"][0].get("role") for r in server.requests]
    assert "system" in systems and "user" in systems  # judge prompts and benchmark questions
    manifest = (work / "resources/models/endpoint/avtrust_model.json").read_text()
    assert KEY_ENV in manifest  # the variable's name, never its value

    written = [p for p in [*work.rglob("*"), config] if p.is_file()]
    assert any(p.suffix == ".log" for p in written)
    databases = [p for p in written if p.suffix == ".duckdb"]
    assert {p.relative_to(work).as_posix() for p in databases} >= {
        "results/results.duckdb",
        "results/cache/results.duckdb",
    }
    leaks = []
    for path in written:
        texts = [path.read_bytes().decode("latin-1")]
        if path.suffix == ".duckdb":
            texts.append(duckdb_text(path)[0])
        elif path.suffix == ".parquet":
            texts.append(parquet_text(path))
        leaks += [f"{path.relative_to(tmp_path)}" for t in texts if any(s in t for s in secrets)]
    assert leaks == []

    # Not vacuous: the endpoint's answers and verdicts are in the scanned database.
    text, relations = duckdb_text(work / "results/results.duckdb")
    assert {"predictions", "judgements", "metrics", "runs"} <= relations
    con = duckdb.connect(str(work / "results/results.duckdb"), read_only=True)
    try:
        by_kind = dict(
            con.execute(
                "SELECT kind, count(*) FROM predictions WHERE model = 'endpoint' "
                "AND status IN ('ok', 'open') GROUP BY kind"
            ).fetchall()
        )
        verdicts = con.execute(
            "SELECT count(*) FROM judgements WHERE model = 'endpoint' AND judge = 'endpoint' "
            "AND a_score = 4 AND v_score = 3"
        ).fetchone()[0]
        adapter = con.execute("SELECT adapter FROM runs WHERE model = 'endpoint'").fetchall()
    finally:
        con.close()
    assert set(by_kind) == {"choice", "yes_no", "open"} and min(by_kind.values()) > 0
    assert verdicts == by_kind["open"]
    assert adapter == [("openai_http",)]
    assert "'endpoint'" in text and DESCRIPTION in text
    with (work / "results/tables/avconfusebench.csv").open(newline="") as table:
        row = next(r for r in csv.DictReader(table) if r["model"] == "endpoint")
    assert (float(row["A-Acc"]), float(row["V-Acc"])) == (4.0, 3.0)  # the judge's scores
