"""Training the tiny thinker's vision tower before its existence pre-training, for
``thinker_probe.py`` (``--vision-head-epochs``, ``--vision-align-steps``).

The pretrain stage starts the thinker from the audio LLM, whose audio encoder knows the
instruments, and leaves the vision tower as built (random); these two steps give the
tower what the audio encoder has, so the probe can ask whether a thinker that can also
see leans on sight (bench/README.md, "thinker_probe.py"):

- ``train_head``: the tower and a linear multi-label head on its mean-pooled output
  learn which instruments are on screen (binary cross-entropy, the clip's frames only);
- the alignment (the pipeline's own since session 23:
  :func:`avtrust.pretrain.vision_tower.align`): the tower and the language model learn
  to say what is on screen ("Which instruments are in the video?" -> "I see a cello and
  a flute.") on the silent clips, through the thinker's own input path, so the tower's
  outputs mean something to the language model as the audio encoder's do.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

SOUND_QUESTION = "Is there a {} sound?"


def on_screen(corpus_dir: Path, questions: list[dict]) -> dict[str, list[str]]:
    """The clips of ``questions`` that are scenes or solos -> the instruments they show."""
    scenes = json.loads((corpus_dir / "annotations" / "scenes.json").read_text())
    shown = {s["video_id"]: s["instruments"] for s in scenes}
    clips = sorted({q["media_path"] for q in questions if Path(q["media_path"]).stem in shown})
    return {clip: shown[Path(clip).stem] for clip in clips}


def train_head(thinker, train: dict, held_out: dict, epochs: int, lr: float, seed: int) -> dict:
    """Train the vision tower with the pretrain stage's multi-label head
    (:class:`avtrust.pretrain.vision_tower.OnScreenHead`) for ``epochs`` over ``train``
    (clip -> instruments) in batches of 8 at a constant rate (the stage's job runs a
    warm-up and decay over steps instead); the share of ``held_out`` clips whose whole
    on-screen set the head gets right, and of the training clips."""
    import torch

    from avtrust.pretrain.vision_tower import OnScreenHead, exact_share, video_inputs

    names = sorted({n for shown in [*train.values(), *held_out.values()] for n in shown})
    target = {
        clip: torch.tensor([float(n in shown) for n in names])
        for clip, shown in {**train, **held_out}.items()
    }
    torch.manual_seed(seed)
    head = OnScreenHead(thinker, names, video_inputs(thinker, list(target)))
    params = [*thinker.model.model.visual.parameters(), *head.linear.parameters()]
    optimiser = torch.optim.AdamW(params, lr=lr)
    rng = np.random.default_rng(seed)
    clips = list(train)
    for _ in tqdm(range(epochs), desc="vision head", unit="epoch"):
        order = rng.permutation(len(clips))
        for start in range(0, len(order), 8):
            batch = [clips[j] for j in order[start : start + 8]]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                head(batch), torch.stack([target[c] for c in batch])
            )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return {
        "held_out_exact": exact_share(head, {c: target[c] for c in held_out}),
        "train_exact": exact_share(head, {c: target[c] for c in clips}),
    }
