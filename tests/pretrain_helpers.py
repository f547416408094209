"""What the pre-training tests share: the tiny build's config with a small `pretrain`
section of the test's own, an untrained build, a written corpus, a folder's weights."""

from __future__ import annotations

from pathlib import Path

import yaml

from avtrust.models.registry import prepare, spec_from_config
from avtrust.pretrain import corpus_job_config
from avtrust.pretrain.stage import write_corpus

TINY = yaml.safe_load((Path(__file__).parent / "workflow" / "tiny.yaml").read_text())


def config_with(base: dict, **overrides) -> dict:
    """tiny.yaml with ``pretrain`` = ``base`` updated by ``overrides``."""
    return {**TINY, "pretrain": {**base, **overrides}}


def untrained_build(out: Path, name: str) -> Path:
    """The tiny model ``name`` with random weights (seed 3), as the models stage builds it."""
    prepare(spec_from_config(name, TINY["models"]), out, seed=3)
    return out


def written_corpus(out: Path, config: dict) -> Path:
    write_corpus(out, corpus_job_config(config))
    return out


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    (path,) = folder.glob("*.safetensors")
    return load_file(path)
