"""Training the tiny thinker's vision tower before its existence pre-training, for
``thinker_probe.py`` (``--vision-head-epochs``, ``--vision-align-steps``).

The pretrain stage starts the thinker from the audio LLM, whose audio encoder knows the
instruments, and leaves the vision tower as built (random); these two steps give the
tower what the audio encoder has, so the probe can ask whether a thinker that can also
see leans on sight (bench/README.md, "thinker_probe.py"):

- ``train_head``: the tower and a linear multi-label head on its mean-pooled output
  learn which instruments are on screen (binary cross-entropy, the clip's frames only);
- ``align``: the tower and the language model learn to say what is on screen ("Which
  instruments are in the video?" -> "I see a cello and a flute.") on the silent clips,
  through the thinker's own input path, so the tower's outputs mean something to the
  language model as the audio encoder's do.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avtrust.pretrain.corpus import DESCRIBE_QUESTION as QUESTION
from avtrust.pretrain.corpus import description

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


def describe_rows(clips: dict) -> list[dict]:
    """One row per silent clip (path -> instruments): "Which instruments are in the
    video?" -> "I see a X and a Y."."""
    return [
        {
            "media_path": c,
            "prompt": QUESTION,
            "response": description(shown),
            "category": "Visual/Description",
        }
        for c, shown in clips.items()
    ]


# Plain ways of asking what a silent clip shows (the first is the corpus's own), as the
# audio LLM is asked what it hears in several wordings.
VISUAL_WORDINGS = (
    QUESTION,
    "What instruments can be seen in this video?",
    "Look at the video. Which instruments are shown?",
)


def reference_rows(clips: dict, questions: list[dict]) -> list[dict]:
    """The audio LLM's training form, for sight: for each silent clip (path ->
    instruments) and each corpus question of its scene (``questions``, by video id), one
    row in the score stage's reference form (the question and its right answer in the
    instruction) and one plain row (:data:`VISUAL_WORDINGS` in turn), both answered with
    the clip's description."""
    from avtrust.scoring.reasoning import reference_instruction

    by_video: dict[str, list[dict]] = {}
    for q in questions:
        by_video.setdefault(Path(q["media_path"]).stem, []).append(q)
    rows = []
    for clip, shown in clips.items():
        for i, q in enumerate(by_video.get(Path(clip).stem, [])):
            answer = q["options"][q["answer_index"]]
            for prompt in (
                reference_instruction(q["question"], answer),
                VISUAL_WORDINGS[i % len(VISUAL_WORDINGS)],
            ):
                rows.append({"media_path": clip, "prompt": prompt, "response": description(shown)})
    return rows


def align(thinker, rows: list[dict], steps: int, lr: float, seed: int) -> float:
    """Train the vision tower and the language model (the audio encoder frozen) on
    ``rows`` ({media_path, prompt, response}, silent clips), ``steps`` batches of 8;
    the mean loss of the last 50 steps."""
    import torch

    from avtrust.train.data import SequenceEncoder, cache_decoding

    model = thinker.model
    clips = {r["media_path"] for r in rows}
    encoder = SequenceEncoder(cache_decoding(thinker.builder, len(clips)), model.get_rope_index)
    trained = []
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith("model.audio_tower."))
        if p.requires_grad:
            trained.append(p)
    optimiser = torch.optim.AdamW(trained, lr=lr)
    rng = np.random.default_rng(seed)
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc="vision alignment", unit="step"):
        batch = [rows[j] for j in rng.choice(len(rows), 8, replace=False)]
        paths, prompts = [r["media_path"] for r in batch], [r["prompt"] for r in batch]
        inputs = encoder(paths, prompts, [r["response"] for r in batch])
        loss = model(**inputs.batch, use_cache=False).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return float(np.mean(losses[-50:]))


def described_exactly(thinker, clips: dict) -> float:
    """Share of silent ``clips`` (path -> instruments) whose greedy reply to
    :data:`QUESTION` is exactly their description."""
    import torch

    right = []
    with torch.no_grad():
        for clip, shown in clips.items():
            inputs = thinker.builder([clip], [QUESTION])
            del inputs["use_audio_in_video"]
            reply = thinker.model.generate(**inputs, max_new_tokens=16, do_sample=False)
            text = thinker.builder.tokenizer.decode(
                reply[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )
            right.append(text.strip() == description(shown))
    return float(np.mean(right))
