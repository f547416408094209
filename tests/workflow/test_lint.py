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


def test_no_shell_strings_in_the_package():
    offenders = []
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "workflow").rglob("*.py")]:
        text = path.read_text()
        if "shell=True" in text or "os.system(" in text or "trust_remote_code=True" in text:
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
