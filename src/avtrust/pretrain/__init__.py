"""Pre-training of the embedded default's tiny models on a synthetic corpus of their own.

The ``models`` stage builds each tiny model with random weights; with ``pretrain.enabled``
the ``pretrain`` stage trains those of the supported adapters (:data:`PRETRAINED`) on
clips generated from the pre-training seed, so that the models later stages load answer
from what they hear and see instead of at random.
"""

from dataclasses import dataclass
from typing import ClassVar

from avtrust.bench.samples import derive_seed
from avtrust.pretrain.thinker_init import LANGUAGE_MODEL, PARTS

# adapter -> the module that trains it (the Snakefile imports this package: no torch here).
# Each module has train_model(model, corpus_dir, section, seed, log) -> summary, the model
# being what avtrust.models.registry.load returns, and save(model, untrained_dir, out_dir).
PRETRAINED = {
    "qwen2_5_omni_thinker": "avtrust.pretrain.thinker",
    "clap": "avtrust.pretrain.clap",
    "qwen3_embedding": "avtrust.pretrain.embedder",
    "qwen2_audio": "avtrust.pretrain.audio_llm",
}

# adapter -> its settings under `pretrain` (what only that model's job reads)
SECTIONS = {
    "qwen2_5_omni_thinker": "thinker",
    "clap": "clap",
    "qwen3_embedding": "embedder",
    "qwen2_audio": "audio_llm",
}


# the thinker's vision tower, trained by a job of its own before the thinker's
# (avtrust.pretrain.vision_tower); its settings, under `pretrain`, only that job reads
VISION_SECTION = "vision_tower"


def corpus_job_config(config: dict) -> dict:
    """What the corpus job reads (its params): editing a model's training settings must
    not redraw the corpus, which would retrain every model."""
    section = config.get("pretrain") or {}
    return {  # a config without the stage (real data only) may have no corpus section
        "seed": config["seed"],
        "corpus": config.get("corpus"),
        "media": config.get("media"),
        "pretrain": {k: section.get(k) for k in ("seed", "corpus")},
    }


def model_job_config(config: dict, name: str) -> dict:
    """What the job training model ``name`` reads (its params): the seeds and the
    `pretrain` section without the other models' settings, so editing one model's
    settings retrains that model alone."""
    own = SECTIONS[config["models"][name]["adapter"]]
    # media_workers: how many ffmpeg processes write and decode the corpus, no weight
    left_out = {"enabled", "models", "media_workers", VISION_SECTION, *SECTIONS.values()} - {own}
    section = config.get("pretrain") or {}
    return {
        "seed": config["seed"],
        "pretrain": {k: v for k, v in section.items() if k not in left_out},
    }


def vision_job_config(config: dict) -> dict:
    """What the vision tower's job reads: the seeds, the corpus settings, the threads and
    its own section."""
    section = config.get("pretrain") or {}
    kept = ("seed", "threads", "corpus", VISION_SECTION)
    return {"seed": config["seed"], "pretrain": {k: section.get(k) for k in kept}}


def is_thinker(config: dict, name: str) -> bool:
    """Whether model ``name`` is an Omni thinker (adapter qwen2_5_omni_thinker)."""
    return config["models"][name].get("adapter") == "qwen2_5_omni_thinker"


def vision_tower_trained(config: dict, name: str) -> bool:
    """Whether model ``name``'s pre-training loads a vision tower trained before it: a
    pre-trained Omni thinker, with ``pretrain.vision_tower`` set (null: the tower as
    built)."""
    section = config.get("pretrain") or {}
    return (
        section.get(VISION_SECTION) is not None
        and is_thinker(config, name)
        and name in pretrained_models(config)
    )


def pretrain_seed(config: dict) -> int:
    """The pre-training's seed: ``pretrain.seed`` (null: the master seed), always passed
    through a derivation of its own, so that even ``pretrain.seed`` equal to the master
    seed draws other scenes than the benchmarks' corpus."""
    section = config.get("pretrain") or {}
    base = section.get("seed")
    return derive_seed(config["seed"] if base is None else base, "pretrain")


def pretrained_models(config: dict) -> list[str]:
    """Models the stage trains, when ``pretrain.enabled``: ``tiny`` ones whose adapter has
    a pre-training, all of them or those named in ``pretrain.models``; the others keep the
    models stage's folder. A named model that is not a tiny build (a real checkpoint,
    e.g. an overlay pointing it at the Hub) is already trained and is skipped; a name
    that is not under ``models``, or whose adapter has no pre-training, is an error."""
    section = config.get("pretrain") or {}
    if not section.get("enabled", False):
        return []
    models = config["models"]
    trainable = [
        name
        for name, entry in models.items()
        if entry.get("source") == "tiny" and entry.get("adapter") in PRETRAINED
    ]
    chosen = section.get("models")
    if chosen is None:
        return trainable
    wrong = [
        name
        for name in chosen
        if name not in models or models[name].get("adapter") not in PRETRAINED
    ]
    if wrong:
        raise ValueError(
            f"pretrain.models: {wrong} are not models with a pre-training "
            f"(adapters {', '.join(PRETRAINED)})"
        )
    return [name for name in trainable if name in chosen]


# adapters a thinker can start from (avtrust.pretrain.thinker_init)
STARTS = ("qwen2_audio",)


def start_model(config: dict, name: str) -> str | None:
    """The model whose trained folder the pre-training of model ``name`` starts from
    (``pretrain.thinker.start_from`` for the thinker; None for the others or when null).
    It must be a model under ``models`` with an adapter the thinker can start from, and
    its language model is not taken when the vision job teaches the thinker's own."""
    if not is_thinker(config, name):
        return None
    start = ((config.get("pretrain") or {}).get("thinker") or {}).get("start_from")
    if start is None:
        return None
    entry = config["models"].get(start)
    if entry is None or entry.get("adapter") not in STARTS:
        raise ValueError(
            f"pretrain.thinker.start_from: {start!r} is not a model under `models` with "
            f"adapter {' or '.join(STARTS)}"
        )
    section = config.get("pretrain") or {}
    parts = list(section["thinker"].get("start_parts", PARTS))
    if (section.get(VISION_SECTION) or {}).get("align") and LANGUAGE_MODEL in parts:
        raise ValueError(
            "pretrain.vision_tower.align teaches the thinker's own language model to see, "
            f"and pretrain.thinker.start_parts {parts} would replace it with {start!r}'s: "
            "set start_parts to [audio_tower]"
        )
    return start


@dataclass(frozen=True)
class SectionSettings:
    """A model's optimiser settings, read from its section ``pretrain.<key>``; each model's
    subclass names its key and adds its own fields (with defaults)."""

    key: ClassVar[str]

    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0

    @classmethod
    def from_config(cls, section: dict):
        # the schema rejects unknown keys too; this guards dicts built in Python
        unknown = sorted(set(section) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"pretrain.{cls.key}: unknown key(s) {unknown}")
        return cls(**section)


# adapters of audio-only models, whose pre-training hears the corpus's soundtracks
AUDIO_ONLY = ("qwen2_audio", "clap")


def corpus_decoder(config: dict, name: str) -> str | None:
    """The pre-trained thinker whose decode-once cache of the corpus (rule
    decode_pretrain_clips) the pre-training of model ``name`` reads: a thinker's own; an
    audio-only model's (the audio LLM, CLAP) the first pre-trained thinker's, whose
    soundtracks it hears (:meth:`avtrust.models.decode_cache.DecodeCache.soundtrack`);
    None for the others, for a model not pre-trained, or without a pre-trained
    thinker."""
    chosen = pretrained_models(config)
    if name not in chosen:
        return None
    if is_thinker(config, name):
        return name
    thinkers = [m for m in chosen if is_thinker(config, m)]
    if config["models"][name].get("adapter") in AUDIO_ONLY and thinkers:
        return thinkers[0]
    return None
