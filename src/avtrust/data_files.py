"""Access to the YAML data files shipped inside the package (templates, catalogues)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def load(name: str) -> dict:
    """Parse ``avtrust/data/<name>.yaml``; cached, so callers must not mutate it."""
    text = resources.files("avtrust").joinpath(f"data/{name}.yaml").read_text("utf-8")
    return yaml.safe_load(text)
