"""Training batches for the thinker's language model over frozen media towers.

With its audio and vision towers frozen, what the thinker's language model receives
from a clip depends on the clip alone, so each clip's tower outputs are computed once
and every training step runs the language model only. On a CPU the towers are most of a
step (the tiny thinker trains ~21 rows/s with them and ~130-190 without), and the lookup
the thinker has to learn — the instrument a question names against what the clip holds —
takes tens of thousands of rows (bench/README.md, ``lookup_probe.py``). Each row's token
ids, labels and 3-D position ids are encoded once too, all of a clip's rows in one call
(the clip is featurised once: ~40 ms a row when each row is encoded alone);
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


def first_row_media(batch: dict) -> dict:
    """The media inputs of the first row of an encoder batch whose rows share one clip."""
    out = {}
    if "input_features" in batch:
        out["input_features"] = batch["input_features"][:1]
        out["feature_attention_mask"] = batch["feature_attention_mask"][:1]
    if "pixel_values_videos" in batch:
        grid = batch["video_grid_thw"][:1]
        out["pixel_values_videos"] = batch["pixel_values_videos"][: int(grid.prod())]
        out["video_grid_thw"] = grid
    return out


class FrozenTowerBatches:
    """Batches of ``rows`` ({media_path, prompt, response}) for ``model`` (the thinker,
    towers frozen) whose media enter as precomputed ``inputs_embeds``.

    ``encoder`` is the :class:`avtrust.train.data.SequenceEncoder` the unfrozen path uses;
    rows and clips are encoded with it once, at construction, one call per clip.
    """

    def __init__(self, model, encoder, rows: list[dict], desc: str = "encoding clips"):
        self.model = model
        self.pad_id = encoder.pad_id
        self.left = encoder.left
        config = model.config
        self.placeholders = {"audio": config.audio_token_id, "video": config.video_token_id}
        self.features: dict[str, dict] = {}
        by_clip: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            by_clip.setdefault(str(row["media_path"]), []).append(i)
        encoded: list[EncodedRow | None] = [None] * len(rows)
        # One encoder call per clip: its media are featurised once for all its rows (the
        # builder repeats a clip's tensors per row), which is most of a row's cost.
        for clip, indices in tqdm(by_clip.items(), desc=desc, unit="clip"):
            batch = encoder(
                [clip] * len(indices),
                [rows[i]["prompt"] for i in indices],
                [rows[i]["response"] for i in indices],
            ).batch
            self.features[clip] = tower_outputs(model, first_row_media(batch))
            for k, i in enumerate(indices):
                encoded[i] = self.unpadded(clip, batch, k)
        self.rows: list[EncodedRow] = encoded

    def unpadded(self, clip: str, batch: dict, k: int) -> EncodedRow:
        """Row ``k`` of ``batch`` without the padding its batch gave it."""
        valid = int(batch["attention_mask"][k].sum())
        span = slice(-valid, None) if self.left else slice(0, valid)
        return EncodedRow(
            clip,
            batch["input_ids"][k, span],
            batch["attention_mask"][k, span],
            batch["labels"][k, span],
            batch["position_ids"][:, k, span],
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
