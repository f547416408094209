"""scripts/reliability_figure.py: JUnit XML of the reliability suite -> outcome figure."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "reliability_figure.py"
_spec = importlib.util.spec_from_file_location("reliability_figure", SCRIPT)
figure = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = figure  # dataclasses look their module up there
_spec.loader.exec_module(figure)

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.reliability.test_interruption"
  name="test_killed_stage_resumes_to_identical_outputs[train]" time="41.5"/>
<testcase classname="tests.reliability.test_hostile_inputs"
  name="test_bad_clip_is_a_reject_naming_the_problem" time="0.8">
  <failure message="boom">trace</failure></testcase>
<testcase classname="tests.reliability.test_full_disk" name="test_writers" time="2.0">
  <skipped message="no tmpfs"/></testcase>
<testcase classname="tests.reliability.test_security" name="test_scan" time="30">
  <error message="fixture">trace</error></testcase>
<testcase classname="tests.unit.test_train" name="test_other" time="1"/>
</testsuite></testsuites>
"""


def test_cases_are_read_with_family_outcome_and_time(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text(REPORT)
    cases = figure.read_cases(xml)
    assert [(c.family, c.name, c.outcome, c.seconds) for c in cases] == [
        ("SIGKILL + rerun", "killed stage resumes to identical outputs [train]", "passed", 41.5),
        ("hostile inputs", "bad clip is a reject naming the problem", "failed", 0.8),
        ("full disk", "writers", "skipped", 2.0),
        ("security", "scan", "error", 30.0),
    ]  # the unit test outside tests/reliability is left out
    out = tmp_path / "fig" / "suite.png"
    figure.main([str(xml), str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<testsuites", "not a readable JUnit XML"),
        ("<testsuites/>", "no test of tests/reliability"),
    ],
)
def test_unusable_reports_are_named(tmp_path, text, message):
    xml = tmp_path / "junit.xml"
    xml.write_text(text)
    with pytest.raises(SystemExit, match=message) as err:
        figure.read_cases(xml)
    assert str(xml) in str(err.value)


def test_every_module_of_the_suite_has_a_family():
    """A module left out of FAMILIES would be silently missing from the figure."""
    suite = SCRIPT.parents[1] / "tests" / "reliability"
    modules = {p.stem for p in suite.glob("test_*.py")}
    assert modules <= set(figure.FAMILIES), sorted(modules - set(figure.FAMILIES))
