"""Pre-training of the embedded default's tiny models on a synthetic corpus of their own.

The ``models`` stage builds each tiny model with random weights; with ``pretrain.enabled``
the ``pretrain`` stage trains those of the supported adapters (:data:`PRETRAINED`) on
clips generated from the pre-training seed, so that the models later stages load answer
from what they hear and see instead of at random.
"""

from avtrust.bench.samples import derive_seed

# adapter -> the module that trains it (the Snakefile imports this package: no torch here)
PRETRAINED = {"qwen2_5_omni_thinker": "avtrust.pretrain.thinker"}


def pretrain_seed(config: dict) -> int:
    """The pre-training's seed: ``pretrain.seed`` (null: the master seed), always passed
    through a derivation of its own, so that even ``pretrain.seed`` equal to the master
    seed draws other scenes than the benchmarks' corpus."""
    section = config.get("pretrain") or {}
    base = section.get("seed")
    return derive_seed(config["seed"] if base is None else base, "pretrain")


def pretrained_models(config: dict) -> list[str]:
    """Models the stage trains: ``tiny`` ones whose adapter has a pre-training, when
    ``pretrain.enabled``; the others keep the models stage's folder."""
    if not (config.get("pretrain") or {}).get("enabled", False):
        return []
    return [
        name
        for name, entry in config["models"].items()
        if entry.get("source") == "tiny" and entry.get("adapter") in PRETRAINED
    ]
