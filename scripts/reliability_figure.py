"""Draw the reliability suite's outcome figure from a pytest JUnit XML report.

    .venv/bin/pytest tests/reliability --junitxml=results/reliability/junit.xml
    .venv/bin/python scripts/reliability_figure.py results/reliability/junit.xml \\
        docs/figures/reliability_suite.png

One row per test case (a stage killed, a hostile input, a full disk, a secret scan),
grouped by the fault family of its module, coloured by outcome, with its wall time: a
reader sees at a glance what was tried and that nothing failed.
"""

from __future__ import annotations

import argparse
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

# Module of tests/reliability -> the fault family it injects.
FAMILIES = {
    "test_interruption": "SIGKILL + rerun",
    "test_hostile_inputs": "hostile inputs",
    "test_full_disk": "full disk",
    "test_security": "security",
    "test_media_timeline": "timing + rotation",
    "test_containers": "containers + codecs",
    "test_annotations": "malformed annotations",
    "test_local_folders": "local folders",
}
COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "error": "#6a1b9a", "skipped": "#9e9e9e"}


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    outcome: str  # passed | failed | error | skipped
    seconds: float


def read_cases(junit_xml: Path) -> list[Case]:
    """Test cases of the reliability modules in ``junit_xml``, in report order."""
    try:
        root = ET.parse(junit_xml).getroot()
    except (OSError, ET.ParseError) as exc:
        raise SystemExit(f"{junit_xml}: not a readable JUnit XML report ({exc})") from exc
    cases = []
    for case in root.iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        if module not in FAMILIES:
            continue
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
        cases.append(
            Case(
                FAMILIES[module], _label(case.get("name", "")), outcome, float(case.get("time", 0))
            )
        )
    if not cases:
        raise SystemExit(f"{junit_xml}: no test of tests/reliability in this report")
    return cases


def _label(test_name: str) -> str:
    """``test_killed_stage_resumes_to_identical_outputs[train]`` -> ``killed stage resumes
    to identical outputs [train]``."""
    base, _, param = test_name.partition("[")
    words = re.sub(r"^test_", "", base).replace("_", " ")
    label = f"{words} [{param}" if param else words
    return label if len(label) <= 80 else label[:77] + "…]"


def draw(cases: list[Case], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = list(dict.fromkeys(FAMILIES.values()))
    cases = sorted(cases, key=lambda c: order.index(c.family))
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(cases) + 1.6))
    rows = range(len(cases))
    ax.barh(rows, [c.seconds for c in cases], color=[COLOURS[c.outcome] for c in cases])
    ax.set_yticks(list(rows), [f"{c.family}: {c.name}" for c in cases], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("wall time of the test (s)")
    counts = {o: sum(c.outcome == o for c in cases) for o in COLOURS}
    summary = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    ax.set_title(f"tests/reliability: {summary}", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[o]) for o in COLOURS if counts[o]]
    ax.legend(handles, [o for o in COLOURS if counts[o]], loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit_xml", type=Path)
    parser.add_argument("figure", type=Path)
    args = parser.parse_args(argv)
    cases = read_cases(args.junit_xml)
    draw(cases, args.figure)
    print(f"{args.figure}: {len(cases)} tests")


if __name__ == "__main__":
    main()
