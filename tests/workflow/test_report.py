"""`snakemake --report` on the tiny build: every table, plot, training curve and the
benchmark statistics are in the report, in their categories, with their captions."""

from __future__ import annotations

import base64
import json
import re

import pytest
import yaml
from conftest import TINY, run_snakemake

from avtrust.results.views import VIEWS

pytestmark = pytest.mark.workflow

CONFIG = yaml.safe_load(TINY.read_text())


def report_contents(html: str) -> tuple[dict, dict]:
    """The report's file entries (path -> entry with caption and data) and categories,
    from the JSON the report page embeds."""

    def embedded(name):
        match = re.search(rf"var {name} = (\{{.*?\}});\s*</script>", html, re.S)
        assert match, f"the report has no {name}"
        return json.loads(match[1])

    return embedded("results"), embedded("categories")


def trained_methods() -> list[str]:
    methods = list(CONFIG["training"]["methods"])
    if CONFIG["rlcomm"]["enabled"]:
        methods += ["rlcomm_warmup", "rlcomm_steprr", "rlcomm_ansco", "grpo_acc"]
    return methods


def test_report_holds_every_table_plot_curve_and_the_statistics(tiny_run, tmp_path):
    # written outside the shared tiny run, which other tests read (and copy) meanwhile
    run_snakemake(tiny_run, "--nolock", "--report", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text()
    results, categories = report_contents(html)
    tables = [f"results/tables/{v}.csv" for v in VIEWS]
    plots = sorted(str(p.relative_to(tiny_run)) for p in (tiny_run / "results/plots").glob("*"))
    curves = [f"results/checkpoints/{m}/curve.png" for m in trained_methods()]
    assert plots, "the tiny run made no plots"
    for path in [*tables, *plots, *curves, "results/bench/statistics.csv"]:
        assert path in results, f"{path} is not in the report"
        data = results[path]["data_uri"].split(",", 1)[-1]
        assert base64.b64decode(data) == (tiny_run / path).read_bytes(), path
    placed = {c: {p for sub in subs.values() for p in sub} for c, subs in categories.items()}
    breakdowns = {p for p in plots if p.rsplit("/", 1)[-1].startswith("breakdown_")}
    assert breakdowns and breakdowns <= placed["Breakdowns"]
    assert set(tables) <= placed["Tables"] and set(plots) - breakdowns <= placed["Plots"]
    assert set(curves) <= placed["Training curves"]
    benchmark = {"results/bench/statistics.csv", "results/tables/benchmark_checks.csv"}
    assert placed["Benchmark"] == benchmark
    # captions, rendered with the job's wildcards
    assert "Training curve of the cavpref checkpoint" in results[curves[2]]["caption"]
    assert "one row per task and split" in results["results/bench/statistics.csv"]["caption"]
    assert "rebuilt AVTrustBench" in html  # the workflow description page
