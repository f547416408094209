"""Style gates the project keeps: ruff, snakefmt and snakemake's own linter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*cmd):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff_is_clean():
    proc = run(str(BIN / "ruff"), "check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_clean():
    proc = run(str(BIN / "ruff"), "format", "--check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_is_clean():
    proc = run(str(BIN / "snakefmt"), "--check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.workflow
def test_snakemake_lint_is_clean():
    proc = run(sys.executable, "-m", "snakemake", "--lint")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations" in output, output


# Ways to hand a string to a shell; data must only ever reach argument lists.
SHELL_CALLS = ("shell=True", "os.system(", "os.popen(", "getoutput(", "getstatusoutput(")
# The one deliberate exception: the throughput benchmark's baseline re-enacts the authors'
# generator (one shell string per sample, paths shlex-quoted); the workflow never runs it.
SHELL_ALLOWED = {"bench/manipulation_throughput.py": 1}


def test_no_shell_strings_in_the_package():
    offenders = []
    files = [REPO / "Snakefile"]
    for folder in ("src", "workflow", "scripts", "bench"):
        files += [p for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".smk")]
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        rel = path.relative_to(REPO).as_posix()
        calls = sum(text.count(call) for call in SHELL_CALLS)
        if calls > SHELL_ALLOWED.get(rel, 0) or "trust_remote_code=True" in text:
            offenders.append(rel)
        if path.suffix == ".smk" or path.name == "Snakefile":
            # rules run scripts, never `shell:` / `run:` blocks that could interpolate data
            if any(line.strip() in ("shell:", "run:") for line in text.splitlines()):
                offenders.append(f"{rel} (shell:/run: directive)")
    assert offenders == []
