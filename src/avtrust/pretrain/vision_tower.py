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

With the default corpus's 129 training clips the head overfits (held-out exact set
48-57 %); with ~460 (480 scenes, 8 solos per instrument) it gets 92-99 %.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avtrust.errors import ConfigError
from avtrust.pretrain import SectionSettings, corpus
from avtrust.pretrain.thinker import batch_order, loss_summary, optimiser_step

PathLike = str | os.PathLike
PREFIX = "model.visual."  # the thinker's vision tower, by parameter prefix
WEIGHTS = "vision_tower.safetensors"


@dataclass(frozen=True)
class VisionTowerSettings(SectionSettings):
    """config ``pretrain.vision_tower``."""

    key = "vision_tower"


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
    scenes and solos; returns the summary."""
    settings = VisionTowerSettings.from_config(section["vision_tower"])
    train_clips = corpus.on_screen(corpus_dir, "train")
    held_out = corpus.on_screen(corpus_dir, "held_out")
    if log:
        log.info("%d training clips, %d held out", len(train_clips), len(held_out))
    return train(thinker, train_clips, held_out, settings, seed)


def save_tower(thinker, out_dir: PathLike) -> None:
    """The vision tower's weights (thinker parameter names) into ``out_dir``."""
    from safetensors.torch import save_file

    state = {
        k: v.detach().contiguous()
        for k, v in thinker.model.state_dict().items()
        if k.startswith(PREFIX)
    }
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_file(state, str(Path(out_dir) / WEIGHTS))


def load_tower(thinker_model, tower_dir: PathLike) -> int:
    """Copy a pre-trained vision tower (:func:`save_tower`'s folder) into
    ``thinker_model`` in place; the number of tensors copied. A tower of another shape
    (built with other dimensions), or one missing a tensor, is a ConfigError."""
    from safetensors.torch import load_file

    tower = load_file(str(Path(tower_dir) / WEIGHTS))
    state = thinker_model.state_dict()
    expected = {k for k in state if k.startswith(PREFIX)}
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
    return len(tower)
