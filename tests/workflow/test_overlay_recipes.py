"""The README's config recipes work exactly as written, as overlays of config/config.yaml
(`snakemake -n --configfile config/config.yaml <recipe>` in a checkout), and an overlay
that would mix synthetic and real sources stops naming them."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import REPO, SNAKEMAKE

from avtrust.dryrun import job_counts

pytestmark = pytest.mark.workflow

# The README's recipes by file name: fenced yaml blocks starting "# <name>.yaml:".
RECIPES = {
    m[2]: m[1]
    for m in re.finditer(
        r"```yaml\n(# ([\w-]+)\.yaml:.*?)```", (REPO / "README.md").read_text(), re.DOTALL
    )
}


def dry_run(tmp_path, text: str) -> subprocess.CompletedProcess:
    """``snakemake -n --configfile config/config.yaml overlay.yaml`` in a checkout's copy."""
    (tmp_path / "config").mkdir(exist_ok=True)
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    (tmp_path / "overlay.yaml").write_text(text)
    cmd = [*SNAKEMAKE, "-n", "--configfile", "config/config.yaml", "overlay.yaml"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    proc.stdout += proc.stderr
    return proc


def test_the_readme_has_its_recipes():
    assert set(RECIPES) == {"official", "music_only", "mixed"}


def test_official_files_recipe(tmp_path):
    proc = dry_run(tmp_path, RECIPES["official"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = job_counts(proc.stdout)
    assert jobs["import_official"] == 3  # MAT, m1, m2
    assert "plan_task" not in jobs  # nothing generated: no mix with the synthetic corpus
    assert "config: benchmark.avtrustbench: every generated task removed" in proc.stdout
    assert "config: benchmark.import.avconfusebench replaces the generated m1, m2" in proc.stdout


def test_music_only_recipe_schedules_nothing_synthetic(tmp_path):
    proc = dry_run(tmp_path, RECIPES["music_only"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = job_counts(proc.stdout)
    assert "fetch_synthetic" not in jobs
    assert jobs["fetch_local"] == 1 and jobs["compose_scenes"] == 1
    assert jobs["plan_task"] == 3  # MAT, MVT, m1
    assert "config: datasets removed by the config: avqa, audioset, sounds" in proc.stdout


def test_mixed_recipe_states_the_mix(tmp_path):
    proc = dry_run(tmp_path, RECIPES["mixed"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = job_counts(proc.stdout)
    assert jobs["fetch_local"] == 1 and jobs["fetch_synthetic"] == 3
    assert (
        "config: avconfusebench mixes synthetic (sounds) and real (music_avqa) sources "
        "(benchmark.allow_mixed_sources: true)"
    ) in proc.stdout


def test_a_real_dataset_among_synthetic_ones_stops_naming_them(tmp_path):
    # The mixed recipe without its explicit choice.
    text = RECIPES["mixed"].replace("  allow_mixed_sources: true\n", "  shards: 2\n")
    proc = dry_run(tmp_path, text)
    assert proc.returncode != 0
    assert "avtrustbench mixes synthetic (avqa, audioset) and real (music_avqa)" in proc.stdout
    assert "benchmark.allow_mixed_sources: true" in proc.stdout
    assert "Traceback" not in proc.stdout
