"""The pretrain stage's jobs: the corpus, one model trained on it, the thinker's vision
tower trained on it.

``pretrain_model`` trains a copy of the untrained build (``resources/pretrain/untrained/
<name>``) into ``resources/models/<name>``, the folder every later stage loads, with the
pre-training's summary (steps, first/last loss, held-out figures) in its manifest under
``pretrained``; the adapter's module in :data:`avtrust.pretrain.PRETRAINED` trains and
saves it. It is written into a temporary sibling and renamed into place, so an
interrupted job leaves no half-trained model.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from avtrust.bench.samples import derive_seed
from avtrust.io import dumps_json, remove_stale_scratch, scratch_prefix
from avtrust.models.registry import MANIFEST, load, read_manifest
from avtrust.pretrain import PRETRAINED, corpus, pretrain_seed

PathLike = str | os.PathLike


def write_corpus(out_dir: PathLike, config: dict, workers: int = 1) -> None:
    """The pre-training corpus of ``config`` into ``out_dir``, ``workers`` clips encoded
    at once."""
    settings = corpus.corpus_settings(config["corpus"], config["pretrain"]["corpus"])
    seed = pretrain_seed(config)
    corpus.generate_corpus(out_dir, settings, config["media"], seed, workers)


def decode_corpus(
    untrained_dir: PathLike, corpus_dir: PathLike, out_dir: PathLike, workers: int = 1, log=None
):
    """Decode every clip of the corpus (natural and silent) once, as the untrained
    thinker's input builder reads it, into a decode-once cache
    (:mod:`avtrust.models.decode_cache`) under ``out_dir``: its vision job and its own
    pre-training read the same clips, and each decoding them was ~1.5 and ~2.5 minutes
    of the sight-first chain. Returns the build's report."""
    from avtrust.models.decode_cache import build
    from avtrust.models.omni_inputs import VisionSettings

    _require_thinker(untrained_dir, "decoding the corpus")
    settings = [VisionSettings.from_dir(untrained_dir)]
    return build(corpus.clips(corpus_dir), settings, out_dir, workers=workers, log=log)


def _require_thinker(untrained_dir: PathLike, what: str) -> dict:
    manifest = read_manifest(untrained_dir)
    if manifest["adapter"] != "qwen2_5_omni_thinker":
        raise ValueError(
            f"{what}: {untrained_dir} is a {manifest['adapter']!r} model, not the Omni thinker"
        )
    return manifest


def read_decoded(model, decoded_dir: PathLike | None):
    """``model`` reading the corpus's decode-once cache (:func:`decode_corpus`) where
    given: a thinker's input builder, as a training job reads its own
    (:func:`avtrust.train.data.with_decode_cache`); the audio LLM and CLAP, which hear
    only, its soundtracks (their ``read``, :func:`avtrust.models.decode_cache.read_soundtrack`)."""
    if decoded_dir is None:
        return model
    if hasattr(model, "builder"):
        from avtrust.train.data import with_decode_cache

        with_decode_cache(model.builder, {"decoded": decoded_dir})
    else:
        from avtrust.models.decode_cache import DecodeCache

        model.decode_cache = DecodeCache(decoded_dir)
    return model


def pretrain_model(
    untrained_dir: PathLike,
    corpus_dir: PathLike,
    out_dir: PathLike,
    config: dict,
    log=None,
    start_dir: PathLike | None = None,
    vision_dir: PathLike | None = None,
    decoded_dir: PathLike | None = None,
) -> dict:
    """Train the untrained model folder on the corpus into ``out_dir``; returns the
    summary also written into the manifest (and, by the rule, into results/pretrain).
    ``start_dir``: a trained model the training starts from (the thinker's
    ``start_from``) and ``vision_dir`` a pre-trained vision tower
    (:func:`pretrain_vision_tower`), passed to the adapter's trainer when given;
    ``decoded_dir``: the thinker's decode-once cache of the corpus (:func:`decode_corpus`),
    read by a thinker, the audio LLM and CLAP."""
    import torch

    section = config["pretrain"]
    manifest = read_manifest(untrained_dir)
    adapter = manifest["adapter"]
    if adapter not in PRETRAINED:
        raise ValueError(f"no pre-training for adapter {adapter!r} ({', '.join(PRETRAINED)})")
    torch.set_num_threads(section["threads"])
    seed = derive_seed(pretrain_seed(config), "model", manifest["name"])
    trainer = importlib.import_module(PRETRAINED[adapter])
    model = read_decoded(load(untrained_dir, device="cpu"), decoded_dir)
    given = {"start_dir": start_dir, "vision_dir": vision_dir}
    starting = {k: v for k, v in given.items() if v is not None}
    summary = trainer.train_model(model, Path(corpus_dir), section, seed, log, **starting)
    if log:
        held_out = summary.get("held_out_accuracy", summary.get("held_out"))
        log.info(
            "loss %.4f -> %.4f over %d steps; held out %s",
            summary["loss_first"],
            summary["loss_last"],
            summary["steps"],
            json.dumps(held_out),
        )
    brief = {k: v for k, v in summary.items() if k != "losses"}

    def write(tmp: Path) -> None:
        trainer.save(model, untrained_dir, tmp)
        (tmp / MANIFEST).write_text(dumps_json({**manifest, "pretrained": brief}), "utf-8")

    _write_folder(out_dir, write)
    return summary


def pretrain_vision_tower(
    untrained_dir: PathLike,
    corpus_dir: PathLike,
    out_dir: PathLike,
    config: dict,
    log=None,
    decoded_dir: PathLike | None = None,
) -> dict:
    """Train the untrained thinker's vision tower on the corpus's silent scenes and solos
    (:mod:`avtrust.pretrain.vision_tower`), and its language model with it when
    ``align`` is set, and write them into ``out_dir``, for the thinker's own
    pre-training to load; returns the summary. ``decoded_dir``: as for
    :func:`pretrain_model`."""
    import torch

    from avtrust.pretrain import vision_tower

    manifest = _require_thinker(untrained_dir, "vision tower pre-training")
    torch.set_num_threads(config["pretrain"]["threads"])
    seed = derive_seed(pretrain_seed(config), "vision tower", manifest["name"])
    thinker = read_decoded(load(untrained_dir, device="cpu"), decoded_dir)
    summary = vision_tower.train_tower(thinker, Path(corpus_dir), config["pretrain"], seed, log)
    if log:
        log.info(
            "loss %.4f -> %.4f over %d steps; exact on-screen set: held out %.3f, trained %.3f",
            summary["loss_first"],
            summary["loss_last"],
            summary["steps"],
            summary["held_out_exact"],
            summary["train_exact"],
        )
    aligned = "align" in summary  # the language model was taught too: written with it
    _write_folder(out_dir, lambda tmp: vision_tower.save_tower(thinker, tmp, aligned))
    return summary


def _write_folder(out_dir: PathLike, write) -> None:
    """``write(tmp)`` fills a temporary sibling of ``out_dir``, renamed into place: an
    interrupted job leaves no half-written folder."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(out)
    tmp = Path(tempfile.mkdtemp(prefix=scratch_prefix(out), dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
