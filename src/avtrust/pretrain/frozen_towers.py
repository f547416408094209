"""Training batches for the thinker's language model over frozen media towers.

With its audio and vision towers frozen, what the thinker's language model receives
from a clip depends on the clip alone, so each clip's tower outputs are computed once
and every training step runs the language model only. On a CPU the towers are most of a
step (the tiny thinker trains ~21 rows/s with them and ~130-190 without), and the lookup
the thinker has to learn — the instrument a question names against what the clip holds —
takes tens of thousands of rows (bench/README.md, ``lookup_probe.py``). Each row's token
ids, labels and 3-D position ids are encoded once too (the processor costs ~5 ms a row);
a batch pads its rows and writes each clip's tower outputs over the clip's placeholder
tokens, as the model's own forward does with the towers it runs (tested equal).
"""

from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm

from avtrust.train.data import _pad


@dataclass(frozen=True)
class EncodedRow:
    """One training row, encoded alone: its clip and the model inputs that do not
    depend on the other rows of a batch (1-D, and position ids (3, length))."""

    clip: str
    input_ids: object
    attention_mask: object
    labels: object
    position_ids: object


def tower_outputs(model, batch: dict) -> dict[str, object]:
    """What the thinker's towers make of one clip's batch (one row): ``audio`` (audio
    tokens, hidden) and ``video`` (video tokens, hidden), for the streams it has."""
    import torch

    out = {}
    with torch.no_grad():
        if "input_features" in batch:
            audio = model.model.get_audio_features(
                batch["input_features"], batch["feature_attention_mask"]
            )
            out["audio"] = audio.last_hidden_state
        if "pixel_values_videos" in batch:
            video = model.model.get_video_features(
                batch["pixel_values_videos"], batch["video_grid_thw"]
            )
            out["video"] = torch.cat(list(video.pooler_output), dim=0)
    return out


class FrozenTowerBatches:
    """Batches of ``rows`` ({media_path, prompt, response}) for ``model`` (the thinker,
    towers frozen) whose media enter as precomputed ``inputs_embeds``.

    ``encoder`` is the :class:`avtrust.train.data.SequenceEncoder` the unfrozen path uses;
    rows and clips are encoded with it once, at construction.
    """

    def __init__(self, model, encoder, rows: list[dict], desc: str = "encoding rows"):
        self.model = model
        self.pad_id = encoder.pad_id
        self.left = encoder.left
        config = model.config
        self.placeholders = {"audio": config.audio_token_id, "video": config.video_token_id}
        self.rows: list[EncodedRow] = []
        self.features: dict[str, dict] = {}
        for row in tqdm(rows, desc=desc, unit="row"):
            clip = str(row["media_path"])
            batch = encoder([clip], [row["prompt"]], [row["response"]]).batch
            if clip not in self.features:
                self.features[clip] = tower_outputs(model, batch)
            self.rows.append(
                EncodedRow(
                    clip,
                    batch["input_ids"][0],
                    batch["attention_mask"][0],
                    batch["labels"][0],
                    batch["position_ids"][:, 0],
                )
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __call__(self, indices: list[int]) -> dict:
        """The model's keyword arguments for the rows at ``indices``: inputs_embeds,
        attention_mask, labels, position_ids."""
        import torch

        chosen = [self.rows[i] for i in indices]
        length = max(r.input_ids.shape[0] for r in chosen)

        def stack(field: str, value) -> torch.Tensor:
            return torch.stack([_pad(getattr(r, field), length, value, self.left) for r in chosen])

        input_ids = stack("input_ids", self.pad_id)
        position_ids = torch.stack(
            [_pad(r.position_ids, length, 1, self.left) for r in chosen], dim=1
        )
        embeds = self.model.get_input_embeddings()(input_ids).clone()
        for k, row in enumerate(chosen):
            for stream, features in self.features[row.clip].items():
                embeds[k, input_ids[k] == self.placeholders[stream]] = features.to(embeds.dtype)
        return {
            "inputs_embeds": embeds,
            "attention_mask": stack("attention_mask", 0),
            "labels": stack("labels", -100),
            "position_ids": position_ids,
        }
