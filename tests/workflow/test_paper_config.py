"""config/paper.yaml plans at paper scale without data, and the datasets' config is checked.

No test here times anything: bench/dag_scale.py measures the dry run's seconds.
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from conftest import REPO, TINY, planned_jobs, run_snakemake, write_config
from snakemake.utils import update_config, validate

pytestmark = pytest.mark.workflow

PAPER = REPO / "config" / "paper.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def test_paper_config_plans_the_whole_chain_without_any_data(tmp_path):
    # As in a checkout: the Snakefile loads config/config.yaml, paper.yaml extends it.
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    jobs = planned_jobs(run_snakemake(tmp_path, "-n", config=PAPER))
    paper = yaml.safe_load(PAPER.read_text())
    shards = paper["benchmark"]["shards"]
    youtube = {n: d["shards"] for n, d in paper["datasets"].items() if d["source"] == "youtube"}
    assert {k: jobs.get(k) for k in ("fetch_youtube_list", "fetch_youtube")} == {
        "fetch_youtube_list": len(youtube),
        "fetch_youtube": len(youtube),
    }
    assert jobs["fetch_youtube_shard"] == sum(youtube.values())
    assert jobs["fetch_local"] == 2 and jobs["compose_scenes"] == 1
    assert jobs["index_dataset"] == len(paper["datasets"])
    assert jobs["plan_task"] == 11 and jobs["build_questions"] == 11
    assert jobs["manipulate_shard"] == 11 * shards
    assert sum(jobs.values()) <= 2000
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


def test_paper_dry_run_starts_with_the_preflight(tmp_path):
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    out = run_snakemake(tmp_path, "-n", config=PAPER).stdout
    head = out[: out.index("Building DAG of jobs")]
    lines = head.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("preflight: "))
    block = lines[start : start + 1 + 2 * int(lines[start].split()[1])]
    text = "\n".join(block)
    for key in (
        "datasets.music_avqa.path: /data/MUSIC-AVQA/MUSIC-AVQA-videos-Real",
        "datasets.sounds.path: /data/sounds does not exist",
        "sha256 still TO-BE-FILLED",
        "datasets.avqa.annotations (2): 2 urls still TO-BE-FILLED",
        "models: omni, audio_llm, clap, embedder (source: hub) not downloaded yet",
    ):
        assert key in text, text
    assert all(line.startswith("      fix: ") for line in block[2::2])
    # config/paper.yaml and profiles/slurm agree on every GPU count
    assert "GPU(s) for rule" not in out
    # a profile that gives training fewer GPUs than the config computes its batch with
    out = run_snakemake(tmp_path, "-n", "--set-resources", "train:gpu=4", config=PAPER).stdout
    assert (
        "training.gpus: 8 GPU(s) for rule train, but the profile (or --set-resources) of this "
        "run sets gpu: 4, which wins"
    ) in out
    # the synthetic default has nothing to report
    assert "preflight" not in run_snakemake(tmp_path, "-n").stdout


def test_paper_sample_counts_reach_600k():
    paper = yaml.safe_load(PAPER.read_text())
    counts = {t: c["samples"] for t, c in paper["benchmark"]["avtrustbench"].items()}
    assert len(counts) == 9 and sum(counts.values()) == 600_000
    # As the Snakefile sees it: config/config.yaml extended by paper.yaml, placeholders
    # (TO-BE-FILLED) included, is a valid config.
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(config, paper)
    validate(config, str(SCHEMA))


def dataset_error(spec: dict) -> str:
    config = yaml.safe_load(TINY.read_text())
    config["datasets"]["extra"] = spec
    with pytest.raises(Exception) as info:  # snakemake's WorkflowError
        validate(config, str(SCHEMA))
    return str(info.value)


ANN = [{"url": "https://example.org/a.csv", "sha256": "a" * 64}]


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"format": "avqa", "source": "local", "path": "/x", "anotations": []}, "anotations"),
        ({"format": "avqa", "source": "youtube", "annotations": ANN, "path": "/x"}, "path"),
        ({"format": "avqa", "source": "youtube", "annotations": ANN, "shard": 2}, "shard"),
        ({"format": "avqa", "source": "synthetic", "url_template": "x"}, "url_template"),
        ({"format": "avqa", "source": "youtub"}, "youtub"),
        ({"format": "folder", "source": "local"}, "path"),
        ({"format": "folder", "source": "http", "files": [{"url": "https://e/x"}]}, "sha256"),
        (
            {
                "format": "folder",
                "source": "http",
                "files": [{"url": "https://e/x", "sha256": "beef", "path": "a/x.wav"}],
            },
            "beef",
        ),
        (
            {
                "format": "folder",
                "source": "http",
                "files": [{"url": "https://e/x", "sha256": "a" * 64, "path": "../x.wav"}],
            },
            "../x.wav",
        ),
        ({"format": "avqa", "source": "youtube", "annotations": ANN, "url_template": "x"}, "{id}"),
        ({"format": "music_avqa", "source": "compose", "from": "a"}, "scenes"),
    ],
    ids=[
        "local-typo",
        "youtube-with-local-key",
        "youtube-typo",
        "synthetic-extra",
        "unknown-source",
        "local-no-path",
        "http-no-sha256",
        "http-bad-sha256",
        "http-unsafe-path",
        "youtube-template-without-id",
        "compose-no-scenes",
    ],
)
def test_dataset_keys_are_checked_per_source(spec, named):
    assert named in dataset_error(spec)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            lambda c: c["datasets"].update(
                scenes={"format": "music_avqa", "source": "compose", "from": "nope", "scenes": 2}
            ),
            "nope",
        ),
        (
            lambda c: c["datasets"].update(
                yt={"format": "music_avqa", "source": "youtube", "annotations": ANN}
            ),
            "avqa and audioset",
        ),
        (
            lambda c: c["benchmark"].update(
                {"import": {"avtrustbench": {"MAT": {"json": "/x.json", "media": "/m"}}}}
            ),
            # the imported MAT replaces the generated one; the other tasks stay synthetic
            "and real (official files) sources",
        ),
        (
            lambda c: c["benchmark"].update(
                {"import": {"avtrustbench": {"MXIT": {"json": "/x.json", "media": "/m"}}}}
            ),
            "MXIT",
        ),
    ],
    ids=["compose-from-unknown", "youtube-music-avqa", "import-and-synthetic", "import-unknown"],
)
def test_source_and_import_errors_stop_the_workflow_before_any_job(tmp_path, edit, named):
    proc = run_snakemake(
        tmp_path, "-n", config=write_config(tmp_path / "bad.yaml", edit), check=False
    )
    assert proc.returncode != 0 and named in proc.stdout, proc.stdout[-3000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()
