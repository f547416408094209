"""Qwen2.5-Omni thinker inputs from media files.

Two builders take the same decoded media (:mod:`avtrust.models.media`, which samples and
resizes frames as the authors' ``qwen-omni-utils`` does) to the thinker's inputs:

- :class:`OmniProcessorInputs` feeds them through the official ``Qwen2_5OmniProcessor``
  (the default: ``input_builder: auto``);
- :class:`OmniInputBuilder` rebuilds what the processor does, step by step, in numpy:

1. **audio** (16 kHz mono from ffmpeg) → ``WhisperFeatureExtractor(feature_size=128)``,
   padded to 30 s with a frame mask (``feature_attention_mask``), as the processor does;
   a clip gives ``((L - 1) // 2 + 1 - 2) // 2 + 1`` audio tokens for L valid mel frames
   (25 per second);
2. **video** → frames sampled at ``fps`` (2 by default; Qwen2-VL's frame-count rule),
   scaled by ffmpeg so that both sides are multiples of 28 (patch 14 × merge 2) with the
   area in [min_pixels, max_pixels], rescaled to [0, 1], normalised with the CLIP
   mean/std and cut into 14×14×2 patches (Qwen2-VL's patchify: a temporal patch of 2
   frames, patches ordered so that each 2×2 merge group is contiguous); one video has
   ``t·h·w / 4`` tokens for a (t, h, w) patch grid, and ``video_second_per_grid`` =
   temporal patch / fps;
3. **placeholder expansion**: the prompt holds ``<|vision_bos|><|VIDEO|><|vision_eos|>``
   for a clip with video and ``<|audio_bos|><|AUDIO|><|audio_eos|>`` for an audio-only
   clip. ``<|AUDIO|>`` becomes one token per audio token. ``<|VIDEO|>`` becomes one token
   per video token, or, with ``use_audio_in_video`` (a clip with both streams), the
   processor's interleaving: ``<|audio_bos|>`` + per 2-second chunk (50 position ids at
   25 per second) the chunk's video tokens then its audio tokens + ``<|audio_eos|>``.
   The model's 3-D RoPE index expects exactly this layout.

Media are decoded as a player shows them (:mod:`avtrust.models.media`): audio on the
clip's timeline (silence before a late start) and frames turned upright by the display
matrix. The official ``qwen-omni-utils`` reads the soundtrack with librosa from its first
sample, so on a clip whose audio starts late the two differ on purpose (decord turns the
frames as the project does); on others both builders give what ``process_mm_info`` +
``Qwen2_5OmniProcessor`` give (``tests/unit/test_omni_parity.py``).

A batch must hold clips with the same streams (the model takes one
``use_audio_in_video`` flag per batch); :func:`group_by_streams` splits a list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avtrust.models.decode_cache import decode_arrays
from avtrust.models.media import Streams, streams

PathLike = str | os.PathLike

OMNI_SYSTEM = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
    "perceiving auditory and visual inputs, as well as generating text and speech."
)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
AUDIO_SAMPLE_RATE = 16000


# Written next to a model by avtrust (the tiny build) to sample its videos with another
# budget than qwen-omni-utils' defaults; the keys of VisionSettings' sampling fields.
VIDEO_SAMPLING_FILE = "avtrust_video_sampling.json"
SAMPLING_KEYS = ("min_pixels", "max_pixels", "total_pixels", "fps", "min_frames", "max_frames")


@dataclass(frozen=True)
class VisionSettings:
    """Video preprocessing of the Omni thinker.

    The sampling fields (pixel budget, fps, frame limits) default to what the authors'
    ``qwen-omni-utils`` applies to a video (``fetch_video``: 128 to 768 tokens a frame,
    2 fps, 4 to 768 frames, ``total_pixels`` None = its 128k-token budget). They are not
    read from the checkpoint's ``min_pixels``/``max_pixels`` (3136 to 12845056 for
    Qwen2.5-Omni): those bound the processor's own resize, which the utility's frames
    already satisfy. A model folder may hold :data:`VIDEO_SAMPLING_FILE` to change them.
    """

    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    total_pixels: float | None = None
    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 768
    image_mean: tuple[float, ...] = CLIP_MEAN
    image_std: tuple[float, ...] = CLIP_STD

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    @classmethod
    def from_dir(cls, path: PathLike) -> VisionSettings:
        """Patch geometry and normalisation from the checkpoint's video (else image)
        preprocessor config; sampling from :data:`VIDEO_SAMPLING_FILE` if present."""
        path = Path(path)
        cfg: dict = {}
        for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
            if (path / name).is_file():
                cfg = json.loads((path / name).read_text())
                break
        kwargs = {
            "patch_size": cfg.get("patch_size"),
            "temporal_patch_size": cfg.get("temporal_patch_size"),
            "merge_size": cfg.get("merge_size"),
            "image_mean": tuple(cfg["image_mean"]) if "image_mean" in cfg else None,
            "image_std": tuple(cfg["image_std"]) if "image_std" in cfg else None,
        }
        if (path / VIDEO_SAMPLING_FILE).is_file():
            sampling = json.loads((path / VIDEO_SAMPLING_FILE).read_text())
            unknown = sorted(set(sampling) - set(SAMPLING_KEYS))
            if unknown:
                raise ValueError(f"{path / VIDEO_SAMPLING_FILE}: unknown keys {unknown}")
            kwargs.update(sampling)
        return cls(**{k: v for k, v in kwargs.items() if v is not None})

    def sampling(self) -> dict:
        """The keyword arguments of :func:`avtrust.models.media.read_frames`."""
        return {
            "fps": self.fps,
            "factor": self.factor,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "total_pixels": self.total_pixels,
            "temporal_patch_size": self.temporal_patch_size,
            "min_frames": self.min_frames,
            "max_frames": self.max_frames,
        }


def patchify(
    frames: np.ndarray, patch_size: int, temporal_patch_size: int, merge_size: int
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Qwen2-VL's patch layout for normalised frames (T, C, H, W).

    Returns ``(grid_t·grid_h·grid_w, C·temporal·patch·patch)`` rows and the grid
    ``(t, h, w)``. A frame count that is not a multiple of the temporal patch repeats
    the last frame.
    """
    t, c, h, w = frames.shape
    if h % (patch_size * merge_size) or w % (patch_size * merge_size):
        raise ValueError(f"frame size {w}x{h} is not a multiple of {patch_size * merge_size}")
    if pad := -t % temporal_patch_size:
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)], axis=0)
        t += pad
    gt, gh, gw = t // temporal_patch_size, h // patch_size, w // patch_size
    patches = frames.reshape(
        gt,
        temporal_patch_size,
        c,
        gh // merge_size,
        merge_size,
        patch_size,
        gw // merge_size,
        merge_size,
        patch_size,
    ).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(gt * gh * gw, c * temporal_patch_size * patch_size * patch_size)
    return np.ascontiguousarray(flat), (gt, gh, gw)


def normalise_frames(frames: np.ndarray, mean, std) -> np.ndarray:
    """uint8 (T, H, W, 3) → float32 (T, 3, H, W), rescaled to [0, 1] and standardised."""
    x = frames.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return x.transpose(0, 3, 1, 2)


def audio_token_count(feature_frames: int) -> int:
    """Audio tokens of the thinker for ``feature_frames`` valid mel frames."""
    return ((feature_frames - 1) // 2 + 1 - 2) // 2 + 1


def chunk_bounds(positions: Sequence[float], per_chunk: int) -> list[tuple[int, int]]:
    """(start, end) slices of ``positions`` (increasing) per ``per_chunk`` position ids."""
    bounds, start, chunk = [], 0, 1
    for i, value in enumerate(positions):
        if value >= chunk * per_chunk:
            bounds.append((start, i))
            start, chunk = i, chunk + 1
    bounds.append((start, len(positions)))
    return bounds


def interleaved_placeholder(
    grid: tuple[int, int, int],
    merge_size: int,
    second_per_grid: float,
    n_audio: int,
    tokens: dict[str, str],
    position_id_per_seconds: int = 25,
    seconds_per_chunk: float = 2.0,
) -> str:
    """What ``<|VIDEO|>`` becomes with ``use_audio_in_video``: 2-second chunks of video
    tokens then audio tokens between audio bos/eos (the processor's layout)."""
    gt, gh, gw = grid
    per_frame = (gh // merge_size) * (gw // merge_size)
    video_pos = np.repeat(np.arange(gt), per_frame) * second_per_grid * position_id_per_seconds
    audio_pos = np.arange(n_audio)
    per_chunk = int(position_id_per_seconds * seconds_per_chunk)
    video_chunks = chunk_bounds(video_pos, per_chunk)
    audio_chunks = chunk_bounds(audio_pos, per_chunk)
    parts = [tokens["audio_bos_token"]]
    for j in range(max(len(video_chunks), len(audio_chunks))):
        if j < len(video_chunks):
            parts.append(tokens["video_token"] * (video_chunks[j][1] - video_chunks[j][0]))
        if j < len(audio_chunks):
            parts.append(tokens["audio_token"] * (audio_chunks[j][1] - audio_chunks[j][0]))
    parts.append(tokens["audio_eos_token"])
    return "".join(parts)


def group_by_streams(paths: Sequence[PathLike], probe=streams) -> dict[str, list[int]]:
    """Positions of ``paths`` by stream kind (``"av"``, ``"a"``, ``"v"``), in order;
    ``probe``: path → :class:`Streams` (e.g. a builder's memoised ``streams``)."""
    groups: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        groups.setdefault(probe(path).kind, []).append(i)
    return groups


def unique_positions(paths: Sequence[PathLike]) -> tuple[list[str], list[int]]:
    """The distinct paths (first-seen order) and, per path, its position among them."""
    keys = [str(p) for p in paths]
    unique = list(dict.fromkeys(keys))
    where = {k: i for i, k in enumerate(unique)}
    return unique, [where[k] for k in keys]


@dataclass
class Media:
    """The decoded streams of the clips of one batch."""

    kind: str
    audio: list[np.ndarray] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)


def chat_prompt(question: str, kind: str, tokens: dict[str, str], system: str) -> str:
    """The Qwen2.5-Omni chat text with one unexpanded media placeholder."""
    if "v" in kind:
        media = tokens["vision_bos_token"] + tokens["video_token"] + tokens["vision_eos_token"]
    elif "a" in kind:
        media = tokens["audio_bos_token"] + tokens["audio_token"] + tokens["audio_eos_token"]
    else:
        media = ""
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        f"<|im_start|>user\n{media}{question}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


class _Base:
    """Shared by both builders: decoding, prompts, responses and labels."""

    def __init__(self, tokenizer, vision: VisionSettings, system: str = OMNI_SYSTEM):
        self.tokenizer = tokenizer
        self.vision = vision
        self.system = system
        self.workers = 1  # decoding threads (see decode)
        self.tokens = {
            name: getattr(tokenizer, name)
            for name in (
                "audio_token",
                "video_token",
                "audio_bos_token",
                "audio_eos_token",
                "vision_bos_token",
                "vision_eos_token",
            )
        }

    def streams(self, path: PathLike) -> Streams:
        """The clip's probe (memoised by :func:`avtrust.models.media_cache.cache_decoding`)."""
        return streams(path)

    def read_clip(self, path: PathLike) -> tuple[str, np.ndarray | None, np.ndarray | None]:
        """One clip's stream kind, 16 kHz audio and sampled frames (``None`` if absent)."""
        s = self.streams(path)
        return (s.kind, *decode_arrays(s, self.vision, AUDIO_SAMPLE_RATE))

    def decode(self, paths: Sequence[PathLike]) -> Media:
        """The clips' streams, one entry per path; a repeated path is decoded once and its
        entries share the arrays. Clips are decoded by ``self.workers`` threads (each
        decode is an ffmpeg process)."""
        keys = [str(p) for p in paths]
        unique = list(dict.fromkeys(keys))
        if self.workers > 1 and len(unique) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(self.workers, len(unique))) as pool:
                clips = dict(zip(unique, pool.map(self.read_clip, unique), strict=True))
        else:
            clips = {k: self.read_clip(k) for k in unique}
        kinds = {clips[k][0] for k in unique}
        if len(kinds) != 1:
            raise ValueError(
                f"a batch mixes clips with different streams ({sorted(kinds)}); "
                "split it with group_by_streams()"
            )
        media = Media(kind=kinds.pop())
        for key in keys:
            _, audio, frames = clips[key]
            if audio is not None:
                media.audio.append(audio)
            if frames is not None:
                media.frames.append(frames)
        return media

    def prompts(self, questions: Sequence[str], kind: str) -> list[str]:
        return [chat_prompt(q, kind, self.tokens, self.system) for q in questions]

    def add_labels(self, batch: dict, prompt_lengths: Sequence[int]) -> dict:
        """Labels that score only the responses: prompt and padding positions are -100."""
        import torch

        ids = batch["input_ids"]
        labels = torch.full_like(ids, -100)
        for i, n in enumerate(prompt_lengths):
            valid = int(batch["attention_mask"][i].sum())
            start = ids.shape[1] - valid if self.tokenizer.padding_side == "left" else 0
            labels[i, start + n : start + valid] = ids[i, start + n : start + valid]
        batch["labels"] = labels
        return batch

    @staticmethod
    def with_responses(prompts: list[str], responses: Sequence[str] | None) -> list[str]:
        if responses is None:
            return prompts
        if len(responses) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        return [p + r + "<|im_end|>\n" for p, r in zip(prompts, responses, strict=True)]


class OmniInputBuilder(_Base):
    """Thinker inputs built in numpy (see the module docstring)."""

    def __init__(
        self,
        tokenizer,
        feature_extractor,
        vision: VisionSettings,
        *,
        position_id_per_seconds: int = 25,
        seconds_per_chunk: float = 2.0,
        system: str = OMNI_SYSTEM,
    ):
        super().__init__(tokenizer, vision, system)
        self.feature_extractor = feature_extractor
        self.position_id_per_seconds = position_id_per_seconds
        self.seconds_per_chunk = seconds_per_chunk

    @classmethod
    def from_pretrained(cls, path: PathLike, tokenizer=None, config=None) -> OmniInputBuilder:
        from transformers import AutoTokenizer, WhisperFeatureExtractor

        tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(path))
        if (Path(path) / "preprocessor_config.json").is_file():
            fe = WhisperFeatureExtractor.from_pretrained(str(path))
        else:
            fe = WhisperFeatureExtractor(feature_size=128)
        kwargs = {}
        if config is not None:
            kwargs = {
                "position_id_per_seconds": config.position_id_per_seconds,
                "seconds_per_chunk": config.seconds_per_chunk,
            }
        return cls(tokenizer, fe, VisionSettings.from_dir(path), **kwargs)

    def __call__(
        self,
        paths: Sequence[PathLike],
        questions: Sequence[str],
        responses: Sequence[str] | None = None,
        *,
        use_audio_in_video: bool = True,
    ) -> dict:
        import torch

        if len(paths) != len(questions):
            raise ValueError(f"{len(paths)} clips but {len(questions)} questions")
        # A clip repeated in the batch (every option of a sample in log-likelihood mode)
        # is decoded and featurised once; its tensors are repeated per row.
        unique, where = unique_positions(paths)
        media = self.decode(unique)
        interleave = use_audio_in_video and media.kind == "av"
        v = self.vision
        batch: dict = {}
        n_audio: list[int] = []
        # A clip with both streams but without use_audio_in_video is its video alone (the
        # official pipeline then does not load the soundtrack).
        if media.audio and (interleave or media.kind == "a"):
            feats = self.feature_extractor(
                media.audio,
                sampling_rate=AUDIO_SAMPLE_RATE,
                return_attention_mask=True,
                padding="max_length",
                return_tensors="pt",
            )
            rows = torch.tensor(where)
            batch["input_features"] = feats["input_features"][rows]
            batch["feature_attention_mask"] = feats["attention_mask"][rows]
            n_audio = [audio_token_count(int(n)) for n in feats["attention_mask"].sum(-1)]
            n_audio = [n_audio[u] for u in where]
        grids: list[tuple[int, int, int]] = []
        if media.frames:
            patches = []
            for frames in media.frames:
                x = normalise_frames(frames, v.image_mean, v.image_std)
                patches.append(patchify(x, v.patch_size, v.temporal_patch_size, v.merge_size))
            grids = [patches[u][1] for u in where]
            batch["pixel_values_videos"] = torch.from_numpy(
                np.concatenate([patches[u][0] for u in where])
            )
            batch["video_grid_thw"] = torch.tensor(grids, dtype=torch.long)
            batch["video_second_per_grid"] = torch.tensor(
                [v.temporal_patch_size / v.fps] * len(grids), dtype=torch.float32
            )
        texts = []
        for i, prompt in enumerate(self.prompts(questions, media.kind)):
            texts.append(self._expand(prompt, i, media.kind, grids, n_audio, interleave))
        full = self.with_responses(texts, responses)
        enc = self.tokenizer(full, return_tensors="pt", padding=True)
        batch["input_ids"] = enc["input_ids"]
        batch["attention_mask"] = enc["attention_mask"]
        batch["use_audio_in_video"] = interleave
        if responses is not None:
            self.add_labels(batch, [len(self.tokenizer(t)["input_ids"]) for t in texts])
        return batch

    def _expand(self, prompt, i, kind, grids, n_audio, interleave) -> str:
        t, v = self.tokens, self.vision
        if "v" in kind:
            if interleave:
                filler = interleaved_placeholder(
                    grids[i],
                    v.merge_size,
                    v.temporal_patch_size / v.fps,
                    n_audio[i],
                    t,
                    self.position_id_per_seconds,
                    self.seconds_per_chunk,
                )
            else:
                gt, gh, gw = grids[i]
                filler = t["video_token"] * (gt * gh * gw // v.merge_size**2)
            return prompt.replace(t["video_token"], filler, 1)
        if "a" in kind:
            return prompt.replace(t["audio_token"], t["audio_token"] * n_audio[i], 1)
        return prompt


class OmniProcessorInputs(_Base):
    """Thinker inputs through the official ``Qwen2_5OmniProcessor``."""

    def __init__(self, processor, vision: VisionSettings, system: str = OMNI_SYSTEM):
        super().__init__(processor.tokenizer, vision, system)
        self.processor = processor

    @property
    def feature_extractor(self):
        """The processor's Whisper feature extractor (replaceable: a per-clip cache,
        :func:`avtrust.models.media_cache.cache_decoding`, wraps it)."""
        return self.processor.feature_extractor

    @feature_extractor.setter
    def feature_extractor(self, extractor) -> None:
        self.processor.feature_extractor = extractor

    def __call__(self, paths, questions, responses=None, *, use_audio_in_video: bool = True):
        media = self.decode(paths)  # a repeated clip is decoded once (see decode)
        interleave = use_audio_in_video and media.kind == "av"
        texts = self.prompts(questions, media.kind)
        # The tokenizer's side (left to generate, right to train, see add_labels), not the
        # processor's default (left).
        kwargs = {"return_tensors": "pt", "padding": True}
        kwargs["padding_side"] = self.tokenizer.padding_side
        if media.frames:
            v = self.vision
            kwargs["videos"] = media.frames
            # The frames are sampled and sized already; the processor's own resize bounds
            # are the sampling budget, so its smart_resize keeps them as they are (as it
            # keeps qwen-omni-utils' frames under its default bounds, the same numbers).
            # The per-frame share of the total budget (qwen-vl-utils' cap, which
            # transformers applies only when asked) is applied by that sampling already,
            # with `total_pixels` as configured; re-capping here with the processor's own
            # budget could shrink them, and leaving it unset logs a warning per job.
            kwargs["videos_kwargs"] = {
                "fps": v.fps,
                "do_sample_frames": False,
                "size": {"shortest_edge": v.min_pixels, "longest_edge": v.max_pixels},
                "cap_pixels_per_frame": False,
            }
        if media.audio and (interleave or media.kind == "a"):  # see OmniInputBuilder
            kwargs["audio"] = media.audio
        if interleave:
            kwargs["load_audio_from_video"] = True
            kwargs["audio_from_video_indices"] = list(range(len(media.frames)))
        batch = dict(self.processor(text=self.with_responses(texts, responses), **kwargs))
        batch["use_audio_in_video"] = interleave
        if responses is not None:
            # Prompt lengths after expansion: the prompts alone through the processor.
            lengths = self.processor(text=texts, **kwargs)["attention_mask"].sum(-1).tolist()
            self.add_labels(batch, lengths)
        return batch


def torchvision_available() -> bool:
    from transformers.utils import is_torchvision_available

    return is_torchvision_available()


def input_builder(path: PathLike, mode: str = "auto", tokenizer=None, config=None):
    """The thinker's input builder: ``processor`` (the official Qwen2_5OmniProcessor),
    ``builtin`` (:class:`OmniInputBuilder`) or ``auto`` (the processor; builtin only in an
    environment without torchvision, which the processor's video path needs)."""
    if mode == "processor" or (mode == "auto" and torchvision_available()):
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(str(path))
        return OmniProcessorInputs(processor, VisionSettings.from_dir(path))
    if mode not in ("auto", "builtin"):
        raise ValueError(f"unknown input builder {mode!r} (auto, builtin, processor)")
    return OmniInputBuilder.from_pretrained(path, tokenizer=tokenizer, config=config)
