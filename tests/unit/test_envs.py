"""The conda environments pin the same versions as pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        name, _, version = requirement.partition("==")
        assert version, f"pyproject dependency {requirement!r} is not pinned with =="
        pins[name.lower()] = version
    return pins


@pytest.mark.parametrize("env", sorted(p.name for p in (REPO / "envs").glob("*.yaml")))
def test_env_pins_match_pyproject(env):
    spec = yaml.safe_load((REPO / "envs" / env).read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = pyproject_pins()
    for requirement in pip:
        name, _, version = requirement.partition("==")
        assert name.lower() in pins, f"{env}: {name} is not a dependency in pyproject.toml"
        assert version == pins[name.lower()], (
            f"{env}: {name}=={version}, pyproject has {pins[name.lower()]}"
        )
    assert "python=3.11" in spec["dependencies"]


def test_every_rule_names_an_existing_env():
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for line in text.splitlines():
            if line.strip().startswith('"../../envs/'):
                env = line.strip().strip('",').replace("../../", "")
                assert (REPO / env).is_file(), f"{smk.name}: {env} does not exist"
