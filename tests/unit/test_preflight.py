"""The preflight of a real configuration: what is missing, named by key, with a fix."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from avtrust.preflight import RULE_GPUS, check, real_sources, report

REPO = Path(__file__).resolve().parents[2]
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
SHA = "a" * 64


def real_config(tmp_path: Path) -> dict:
    """A config naming real data: some of it present under ``tmp_path``, some not."""
    (tmp_path / "videos").mkdir()
    (tmp_path / "solos.json").write_text("{}")
    (tmp_path / "mine").mkdir()
    (tmp_path / "resources/models/clap").mkdir(parents=True)
    (tmp_path / "resources/models/clap/avtrust_model.json").write_text("{}")
    return {
        "datasets": {
            "music_avqa": {
                "format": "music_avqa",
                "source": "local",
                "path": ["videos", "/nowhere/MUSIC-AVQA-videos-Synthetic"],
                "annotations": [
                    {"url": "https://example.org/avqa-train.json", "sha256": "TO-BE-FILLED"},
                    {"url": "https://example.org/avqa-test.json", "sha256": "TO-BE-FILLED"},
                    {"path": "solos.json"},
                    {"path": "/nowhere/extra.json"},
                ],
            },
            "avqa": {
                "format": "avqa",
                "source": "youtube",
                "annotations": [
                    {"url": "https://TO-BE-FILLED/train_qa.json", "sha256": SHA},
                ],
            },
            "sounds": {"format": "folder", "source": "synthetic"},
        },
        "benchmark": {
            "import": {"avtrustbench": {"MAT": {"json": "/nowhere/MAT.json", "media": "videos"}}}
        },
        "models": {
            "omni": {"adapter": "qwen2_5_omni_thinker", "source": "hub", "location": "Q/Omni"},
            "clap": {"adapter": "clap", "source": "hub", "location": "laion/clap"},
            "audio_llm": {"adapter": "qwen2_audio", "source": "local", "location": "mine"},
            "embedder": {"adapter": "qwen3_embedding", "source": "tiny", "location": "Q/E"},
            "judge": {
                "adapter": "openai_http",
                "source": "http",
                "location": "https://api.example.org/v1",
                "model": "m",
                "api_key_env": "JUDGE_KEY",
            },
            "served": {
                "adapter": "openai_http",
                "source": "http",
                "location": "http://localhost:8000/v1",
                "model": "m",
            },
        },
        "training": {"gpus": 8, "accelerate_config": "config/accelerate/zero2.yaml"},
        "rlcomm": {"gpus": 4},
        "scoring": {"gpus": 1},
        "evaluation": {"gpus": 1, "judge": {"model": None}},
    }


PROFILE = {
    "set-resources": {
        "train": {"gpu": 4, "mem_mb": 1},
        "rlcomm_train": {"gpu": 4},
        "score_pairs": {"gpu": 1},
        "evaluate_shard": {"gpu": 1},
        "judge_m2": {"gpu": 1},  # no judge model: the GPU idles, nothing to fix
        "index_dataset": {"mem_mb": 2},
    }
}


def by_key(findings) -> dict[str, tuple[str, str]]:
    return {f.key: (f.problem, f.fix) for f in findings}


def test_the_synthetic_default_has_nothing_to_report(tmp_path):
    assert real_sources(DEFAULT) == []
    assert check(DEFAULT, root=tmp_path, profile=PROFILE, environ={}) == []
    assert report([]) == ""


def test_a_real_config_gets_each_gap_named_with_its_fix(tmp_path):
    config = real_config(tmp_path)
    assert real_sources(config) == ["music_avqa", "avqa", "benchmark.import.avtrustbench.MAT"]
    found = by_key(
        check(config, root=tmp_path, profile=PROFILE, profile_name="profiles/x", environ={})
    )
    assert set(found) == {
        "datasets.music_avqa.path",
        "datasets.music_avqa.annotations",
        "benchmark.import.avtrustbench.MAT",
        "training.accelerate_config",
        "datasets.music_avqa.annotations (2)",
        "datasets.avqa.annotations",
        "models",
        "models.audio_llm.location",
        "models.judge.api_key_env",
        "training.gpus",
        "datasets.avqa",
    }
    # only the absent one of two folders, with where the data come from
    problem, fix = found["datasets.music_avqa.path"]
    assert problem == "/nowhere/MUSIC-AVQA-videos-Synthetic does not exist"
    assert "gewu-lab.github.io/MUSIC-AVQA" in fix and "datasets.music_avqa.path" in fix
    assert found["datasets.music_avqa.annotations"][0] == "/nowhere/extra.json does not exist"
    assert found["benchmark.import.avtrustbench.MAT"][0] == "json /nowhere/MAT.json not found"
    problem, fix = found["datasets.music_avqa.annotations (2)"]
    assert problem == "2 sha256 still TO-BE-FILLED" and "prints its sha256" in fix
    problem, fix = found["datasets.avqa.annotations"]
    assert problem == "1 url still TO-BE-FILLED" and "{path: ...}" in fix
    # clap is prepared already; the tiny embedder and the keyless server need nothing
    problem, fix = found["models"]
    assert problem.startswith("omni (source: hub) not downloaded yet")
    assert "--until prepare_model" in fix
    assert found["models.audio_llm.location"][0] == f"{tmp_path / 'mine'} holds no config.json"
    assert found["models.judge.api_key_env"][0] == "environment variable JUDGE_KEY is not set"
    problem, fix = found["training.gpus"]
    assert problem.startswith("8 GPU(s) for rule train, but profiles/x sets gpu: 4, which wins")
    assert "global batch" in problem and "profiles/x" in fix
    problem, fix = found["datasets.avqa"]
    assert problem.startswith("no `deno` on PATH") and "deno.land" in fix


def test_what_is_in_place_is_not_reported(tmp_path):
    config = real_config(tmp_path)
    (tmp_path / "nowhere").mkdir()
    config["datasets"]["music_avqa"]["path"] = ["videos"]
    config["datasets"]["music_avqa"]["annotations"] = [{"path": "solos.json"}]
    config["datasets"]["avqa"]["annotations"] = [{"url": "https://e.org/a.json", "sha256": SHA}]
    config["benchmark"]["import"]["avtrustbench"]["MAT"]["json"] = "solos.json"
    (tmp_path / "config/accelerate").mkdir(parents=True)
    (tmp_path / "config/accelerate/zero2.yaml").write_text("{}")
    for name in ("omni", "clap"):
        (tmp_path / f"resources/models/{name}").mkdir(parents=True, exist_ok=True)
        (tmp_path / f"resources/models/{name}/avtrust_model.json").write_text("{}")
    (tmp_path / "mine/config.json").write_text("{}")
    config["training"]["gpus"] = 4
    environ = {"JUDGE_KEY": "k", "PATH": str(fake_deno(tmp_path))}
    findings = check(config, root=tmp_path, profile=PROFILE, environ=environ)
    assert findings == []
    # no profile: nothing to compare the GPU counts with
    config["training"]["gpus"] = 8
    assert check(config, root=tmp_path, environ=environ) == []
    # a mirror (url_template) is not YouTube: no challenge to solve, no deno needed
    config["datasets"]["avqa"]["url_template"] = "http://127.0.0.1:8000/{id}.mp4"
    assert check(config, root=tmp_path, environ={"JUDGE_KEY": "k"}) == []


def fake_deno(tmp_path: Path) -> Path:
    """A folder with an executable named deno (what shutil.which looks for)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    (folder / "deno").write_text("#!/bin/sh\n")
    (folder / "deno").chmod(0o755)
    return folder


def test_a_youtube_dataset_needs_yt_dlp(tmp_path, monkeypatch):
    import importlib.util

    config = real_config(tmp_path)
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "yt_dlp" else found(name, *a)
    )
    findings = by_key(check(config, root=tmp_path, environ={"PATH": str(fake_deno(tmp_path))}))
    problem, fix = findings["datasets.avqa"]
    assert problem == "yt-dlp is not installed in this environment"
    assert "pyproject.toml" in fix


def test_the_report_is_a_few_lint_style_lines(tmp_path):
    findings = check(real_config(tmp_path), root=tmp_path, profile=PROFILE, environ={})
    lines = report(findings).splitlines()
    assert lines[0].startswith(f"preflight: {len(findings)} things to settle before a real run")
    assert len(lines) == 1 + 2 * len(findings)
    assert all(line.startswith("      fix: ") for line in lines[2::2])


def test_the_gpu_table_matches_the_rules():
    """Every rule asking for GPUs is in RULE_GPUS, with the config key its `gpu=` reads."""
    aliases = {"TRAINING": "training", "RLCOMM": "rlcomm", "EVAL": "evaluation"}
    found = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        rule = None
        for line in path.read_text().splitlines():
            if m := re.match(r"rule (\w+):", line):
                rule = m[1]
            elif m := re.match(r"\s+gpu=(.*),$", line):
                expr = m[1]
                section = next(
                    (s for a, s in aliases.items() if f'{a}["gpus"]' in expr),
                    next(iter(re.findall(r'config\["(\w+)"\]\["gpus"\]', expr)), None),
                )
                found[rule] = (section, "gpus")
    assert found == RULE_GPUS


def test_a_cpu_config_is_compared_only_with_the_profile_it_runs_with(tmp_path):
    config = real_config(tmp_path)
    for section in ("training", "rlcomm", "scoring", "evaluation"):
        config[section]["gpus"] = 0
    keys = lambda **kw: {f.key for f in check(config, root=tmp_path, profile=PROFILE, **kw)}  # noqa: E731
    assert not any(k.endswith(".gpus") for k in keys())  # the cluster profile, not in use
    assert {"training.gpus", "rlcomm.gpus", "scoring.gpus", "evaluation.gpus"} <= keys(
        profile_in_use=True
    )
