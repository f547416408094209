"""Pre-train the tiny thinker's vision tower to tell which instruments are on screen.

Qwen2.5-Omni does not learn to see from its instruction data: its vision encoder starts
from Qwen2.5-VL's, trained on images and videos first. The tiny thinker's tower is
built random, and a random tower gives its language model nothing to learn from (its
mean output predicts the exact on-screen set of 9 % of held-out clips; the thinker then
answers from the soundtrack alone: bench/README.md, "thinker_probe.py"). This job trains
the tower (patch embedding, blocks and merger) with a linear multi-label head on its
mean-pooled output, binary cross-entropy against the instruments each clip shows, on the
silent copies of the corpus's training scenes and solos; the head is thrown away. The
thinker's pre-training loads the tower (:func:`load_tower`) and teaches its language
model to read it (the corpus's visual rows).

With 129 training clips (120 scenes, 4 solos per instrument) the head overfits
(held-out exact set 48-57 %); with ~460 (480 scenes, 8 solos per instrument) it gets
92-99 %.

With ``align`` the job then teaches the thinker's language model to read the tower, so
that it learns to see before it learns what sounds: the tower and the language
model train together on :func:`avtrust.pretrain.corpus.sight_rows` (the silent clips'
descriptions asked plainly and in the score stage's reference form), and the job writes
both. The thinker's pre-training then takes only the audio encoder from the audio LLM
(``pretrain.thinker.start_parts: [audio_tower]``) and keeps this language model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avtrust.bench.samples import derive_seed
from avtrust.errors import ConfigError
from avtrust.evaluate.prompts import prompt_for
from avtrust.pretrain import SectionSettings, corpus
from avtrust.pretrain.thinker import batch_order, loss_summary, optimiser_step
from avtrust.pretrain.thinker_init import LANGUAGE_MODEL

PathLike = str | os.PathLike
PREFIX = "model.visual."  # the thinker's vision tower, by parameter prefix
AUDIO_PREFIX = "model.audio_tower."  # never written: the thinker takes the audio LLM's
WEIGHTS = "vision_tower.safetensors"
VISION = "vision_tower"  # a written folder's parts (load_tower's answer): this and
# thinker_init.LANGUAGE_MODEL when it was aligned


@dataclass(frozen=True)
class AlignSettings(SectionSettings):
    """config ``pretrain.vision_tower.align``."""

    key = "vision_tower.align"


@dataclass(frozen=True)
class VisionTowerSettings(SectionSettings):
    """config ``pretrain.vision_tower``."""

    key = "vision_tower"

    # The tower and the language model then taught to say what the silent clips show
    # (AlignSettings' keys); null: the tower alone is trained and written.
    align: dict | None = None

    def alignment(self) -> AlignSettings | None:
        return None if self.align is None else AlignSettings.from_config(self.align)


def video_inputs(thinker, clips: list[str]) -> dict[str, dict]:
    """Each silent clip's tower inputs (pixel values and patch grid), built once."""
    from avtrust.pretrain.frozen_towers import first_row_media
    from avtrust.train.data import SequenceEncoder

    encoder = SequenceEncoder(thinker.builder, thinker.model.get_rope_index)
    out = {}
    for clip in tqdm(clips, desc="decoding clips", unit="clip"):
        media = first_row_media(encoder([clip], ["?"], ["."]).batch)
        if "pixel_values_videos" not in media:
            raise ValueError(f"vision tower pre-training: {clip} has no video stream")
        out[clip] = media
    return out


class OnScreenHead:
    """The tower's mean-pooled output -> one logit per instrument of ``names``."""

    def __init__(self, thinker, names: list[str], inputs: dict[str, dict]):
        import torch

        self.inner = thinker.model.model
        self.inputs = inputs
        self.linear = torch.nn.Linear(thinker.model.config.text_config.hidden_size, len(names))

    def __call__(self, clips: list[str]):
        import torch

        pooled = []
        for clip in clips:
            media = self.inputs[clip]
            video = self.inner.get_video_features(
                media["pixel_values_videos"], media["video_grid_thw"]
            )
            pooled.append(torch.cat(list(video.pooler_output)).mean(0))
        return self.linear(torch.stack(pooled))


def exact_share(head: OnScreenHead, targets: dict[str, object]) -> float:
    """Share of ``targets``' clips whose whole on-screen set the head gets right."""
    import torch

    if not targets:
        return float("nan")
    clips = list(targets)
    with torch.no_grad():
        said = head(clips) > 0
    return float(np.mean([bool((said[k] == (targets[c] > 0)).all()) for k, c in enumerate(clips)]))


def train(thinker, train_clips: dict, held_out: dict, settings, seed: int) -> dict:
    """Train the thinker's vision tower in place on ``train_clips`` (silent clip ->
    instruments shown); the summary: losses, and the exact-set share on the training and
    ``held_out`` clips."""
    import torch

    if not train_clips:
        raise ValueError("vision tower pre-training: the corpus has no training scenes")
    names = sorted({n for shown in [*train_clips.values(), *held_out.values()] for n in shown})
    target = {
        clip: torch.tensor([float(n in shown) for n in names])
        for clip, shown in {**train_clips, **held_out}.items()
    }
    torch.manual_seed(seed % 2**31)
    head = OnScreenHead(thinker, names, video_inputs(thinker, list(target)))
    tower = [p for n, p in thinker.model.named_parameters() if n.startswith(PREFIX)]
    parameters = [*tower, *head.linear.parameters()]
    optimiser = torch.optim.AdamW(
        parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    clips = list(train_clips)
    losses = []
    thinker.model.train()
    batches = batch_order(len(clips), settings.steps, settings.batch_size, seed)
    progress = tqdm(batches, desc="pre-training the vision tower", unit="step")
    for step, indices in enumerate(progress):
        chosen = [clips[i] for i in indices]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            head(chosen), torch.stack([target[c] for c in chosen])
        )
        losses.append(optimiser_step(optimiser, parameters, loss, step, settings))
        progress.set_postfix(loss=f"{losses[-1]:.3f}")
    thinker.model.eval()
    summary = loss_summary(losses, clips=len(clips), instruments=len(names))
    summary["train_exact"] = exact_share(head, {c: target[c] for c in train_clips})
    summary["held_out_exact"] = exact_share(head, {c: target[c] for c in held_out})
    summary["held_out_clips"] = len(held_out)
    return summary


def train_tower(thinker, corpus_dir: Path, section: dict, seed: int, log=None) -> dict:
    """The pretrain stage's vision job: train the tower on the corpus's silent training
    scenes and solos, then (``align``) the tower and the language model on their
    descriptions; returns the summary."""
    settings = VisionTowerSettings.from_config(section["vision_tower"])
    aligned = settings.alignment()  # a wrong key fails before the training
    train_clips = corpus.on_screen(corpus_dir, "train")
    held_out = corpus.on_screen(corpus_dir, "held_out")
    if log:
        log.info("%d training clips, %d held out", len(train_clips), len(held_out))
    if aligned is not None:
        from avtrust.models.media_cache import cache_decoding

        # the head's inputs and the alignment's rows read the same clips: decoded once
        cache_decoding(thinker.builder, len(train_clips) + len(held_out))
    summary = train(thinker, train_clips, held_out, settings, seed)
    if aligned is not None:
        rounds = section["corpus"].get("question_rounds", 1)
        asked = corpus.questions(corpus_dir, "train", seed, rounds)
        rows = corpus.sight_rows(train_clips, asked)
        if log:
            log.info("alignment: %d rows on %d silent clips", len(rows), len(train_clips))
        taught = summary["align"] = align(thinker, rows, held_out, aligned, seed)
        if log:
            log.info(
                "alignment: loss %.4f -> %.4f over %d steps; held-out clips described "
                "exactly: %.3f",
                taught["loss_first"],
                taught["loss_last"],
                taught["steps"],
                taught["held_out_described"],
            )
    return summary


def align(thinker, rows: list[dict], held_out: dict, settings: AlignSettings, seed: int) -> dict:
    """Train the tower and the language model in place on ``rows`` (silent clips, so the
    audio encoder gets nothing to learn from); the summary: losses and the share of
    ``held_out`` clips (path -> instruments) the thinker then describes exactly."""
    from avtrust.pretrain import thinker as thinker_training

    plain = thinker_training.ThinkerSettings(
        **{f.name: getattr(settings, f.name) for f in fields(AlignSettings)}
    )
    losses = thinker_training.train(
        thinker, rows, plain, derive_seed(seed, "align"), desc="teaching the thinker to see"
    )
    summary = loss_summary(losses, rows=len(rows))
    summary["held_out_described"] = described_exactly(thinker, held_out)
    return summary


def described_exactly(thinker, clips: dict, max_new_tokens: int = 16) -> float:
    """Share of silent ``clips`` (path -> instruments) whose greedy reply to the corpus's
    description question is exactly their :func:`avtrust.pretrain.corpus.description`
    (nan without clips)."""
    import torch

    if not clips:
        return float("nan")
    prompt = prompt_for(corpus.DESCRIBE_QUESTION, [], "generate")
    right = []
    with torch.no_grad():
        for clip, shown in tqdm(clips.items(), desc="held-out descriptions", unit="clip"):
            inputs = thinker.builder([clip], [prompt])
            inputs.pop("use_audio_in_video", None)
            reply = thinker.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            text = thinker.builder.tokenizer.decode(
                reply[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )
            right.append(text.strip() == corpus.description(shown))
    return float(np.mean(right))


def save_tower(thinker, out_dir: PathLike, language_model: bool = False) -> None:
    """The vision tower's weights (thinker parameter names) into ``out_dir``, and with
    ``language_model`` every other weight but the audio encoder's."""
    from safetensors.torch import save_file

    state = {
        k: v.detach().contiguous()
        for k, v in thinker.model.state_dict().items()
        if k.startswith(PREFIX) or (language_model and not k.startswith(AUDIO_PREFIX))
    }
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_file(state, str(Path(out_dir) / WEIGHTS))


def load_tower(thinker_model, tower_dir: PathLike) -> list[str]:
    """Copy a pre-trained vision tower (:func:`save_tower`'s folder: the tower, and the
    language model when it was aligned) into ``thinker_model`` in place; the parts
    copied (:data:`VISION`, :data:`LANGUAGE_MODEL`). A tower of another shape (built
    with other dimensions), or one missing a tensor, is a ConfigError."""
    from safetensors.torch import load_file

    tower = load_file(str(Path(tower_dir) / WEIGHTS))
    state = thinker_model.state_dict()
    parts = [VISION]
    expected = {k for k in state if k.startswith(PREFIX)}
    if any(not k.startswith(PREFIX) for k in tower):
        parts.append(LANGUAGE_MODEL)
        expected = {k for k in state if not k.startswith(AUDIO_PREFIX)}
    if set(tower) != expected:
        missing, extra = sorted(expected - set(tower)), sorted(set(tower) - expected)
        raise ConfigError(
            f"vision tower {tower_dir} does not fit the thinker: missing {missing[:3]}, "
            f"unexpected {extra[:3]}"
        )
    for name, tensor in tower.items():
        if tuple(tensor.shape) != tuple(state[name].shape):
            raise ConfigError(
                f"vision tower {tower_dir}: {name!r} {tuple(tensor.shape)} does not fit the "
                f"thinker's {tuple(state[name].shape)}: built with other dimensions"
            )
        state[name] = tensor.to(state[name].dtype)
    thinker_model.load_state_dict(state)
    return parts
