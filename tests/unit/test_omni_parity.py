"""The project's Qwen2.5-Omni inputs equal the official pipeline's.

The official pipeline is what the authors' evaluation scripts run: ``process_mm_info``
of ``qwen-omni-utils`` (frames read with decord, audio with librosa) then
``Qwen2_5OmniProcessor(text=..., audio=..., images=..., videos=..., padding=True,
use_audio_in_video=...)``. transformers 5 needs one more argument for audio that the
caller decoded from the videos itself, ``audio_from_video_indices`` (without it the call
raises); nothing else is added.

Both project builders (:func:`input_builder` ``processor`` = auto, and ``builtin``) are
fed the same clip and prompt. The processor is built from the tiny thinker's folder with
the real Qwen2.5-Omni ``preprocessor_config.json`` values (Whisper features over 300 s,
processor resize bounds 3136 to 12845056 pixels), so frames are sized by the utility's
video budget as with the real checkpoint. Compared:

- equal: ``input_ids`` and ``attention_mask`` (audio/video token counts and placement,
  the 2-second interleave), ``video_grid_thw``, ``video_second_per_grid``,
  ``feature_attention_mask`` and the model's 3-D RoPE position ids;
- ``pixel_values_videos``: bit-equal through the processor (the same uint8 frames: decord
  and ffmpeg decode to the same RGB, both resized by torchvision); the builtin path
  normalises in numpy, within 1e-6 (float32 rounding);
- ``input_features``: the official audio is decoded by ffmpeg to 16-bit PCM (audioread)
  and resampled by librosa (soxr), the project's by ffmpeg to float32 at 16 kHz. The
  log-mel features of the valid frames then differ only where a mel bin sits near
  Whisper's floor (max - 8 in log10): at most 0.05 anywhere (in units of the features'
  (log10 + 4) / 4 scale, i.e. 0.2 in log10 power) and 5e-4 on average; for 16 kHz
  sources, rounding the project's audio to 16 bits first makes the difference vanish
  (below 1e-5), which shows it is the PCM quantisation and nothing else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from avtrust.media.ffmpeg import encode_clip
from avtrust.media.synthesis import catalog, render_frames, synthesize_audio
from avtrust.models.media import streams
from avtrust.models.omni_inputs import (
    OMNI_SYSTEM,
    VIDEO_SAMPLING_FILE,
    OmniInputBuilder,
    OmniProcessorInputs,
    chat_prompt,
    input_builder,
)
from avtrust.models.tiny import build_omni_thinker

torch = pytest.importorskip("torch")

VIDEO_CODEC = {"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1}
AUDIO_CODEC = {"acodec": "aac", "b:a": "64k"}
QUESTION = "Which instrument is playing?"
# Qwen2.5-Omni-7B's preprocessor_config.json (the values the processor reads).
REAL_PREPROCESSOR = {
    "chunk_length": 300,
    "dither": 0.0,
    "feature_size": 128,
    "hop_length": 160,
    "n_fft": 400,
    "n_samples": 4800000,
    "nb_max_frames": 30000,
    "padding_side": "right",
    "padding_value": 0.0,
    "return_attention_mask": True,
    "sampling_rate": 16000,
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "size": {"shortest_edge": 3136, "longest_edge": 12845056},
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
}
# name -> (sources, seconds, fps or None for no video, width, height, audio rate or None)
CLIPS = {
    # tiny frames: the utility scales 160x120 *up* to its 128-token minimum (392x280)
    "av_tiny_frames": (["violin"], 3.3, 25, 160, 120, 16000),
    # a size far from multiples of 28 (and of 4; H.264 4:2:0 needs even sides), 44.1 kHz
    # audio (resampled by both), 29.97 fps, a non-integer length
    "av_odd_size": (["cello", "piano"], 2.7, 30000 / 1001, 202, 118, 44100),
    # above the 768-token maximum: scaled down
    "av_large": (["trumpet"], 1.9, 24, 1280, 720, 48000),
    "video_only": (["guitar"], 2.2, 24, 320, 240, None),
    "audio_only": (["flute"], 4.45, None, 0, 0, 16000),
    # longer than Whisper's 30 s window: 17 interleave chunks, audio over 30 s
    "av_long": (["violin"], 33.7, 8, 96, 64, 16000),
}


def encode(path: Path, sources, seconds, fps, width, height, rate, seed) -> Path:
    cat, rng = catalog(), np.random.default_rng(seed)
    frames = None
    if fps is not None:
        frames = render_frames([cat[s] for s in sources], seconds, 24, width, height, rng)
    audio = None
    if rate is not None:
        audio = np.sum([synthesize_audio(cat[s], seconds, rate, rng) for s in sources], axis=0)
    video_codec = dict(VIDEO_CODEC)
    if fps is not None and fps != 24:
        video_codec["r"] = f"{fps:.5f}"  # resampled by ffmpeg from the 24 rendered frames
    encode_clip(
        path,
        frames,
        audio,
        fps=24,
        sample_rate=rate or 16000,
        video_codec=video_codec,
        audio_codec=AUDIO_CODEC,
    )
    return path


@pytest.fixture(scope="module")
def official():
    """``process_mm_info`` with decord reading the frames (its torchvision reader needs
    ``torchvision.io.read_video``, which torchvision 0.29 no longer has)."""
    os.environ["FORCE_QWENVL_VIDEO_READER"] = "decord"
    from qwen_omni_utils import process_mm_info
    from qwen_omni_utils.v2_5 import vision_process

    assert vision_process.get_video_reader_backend() == "decord"
    return process_mm_info


@pytest.fixture(scope="module")
def real_omni(tmp_path_factory) -> Path:
    """The tiny thinker with the real checkpoint's preprocessing files."""
    folder = tmp_path_factory.mktemp("omni_real")
    build_omni_thinker(folder, seed=0)
    cfg = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**cfg, **REAL_PREPROCESSOR}))
    (folder / "video_preprocessor_config.json").unlink()  # the release has none
    (folder / VIDEO_SAMPLING_FILE).unlink()  # the tiny budget: not the real one
    return folder


@pytest.fixture(scope="module")
def model(real_omni):
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(str(real_omni))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parity_clips")
    out = {}
    for seed, (name, spec) in enumerate(CLIPS.items()):
        suffix = ".m4a" if spec[2] is None else ".mp4"
        out[name] = encode(root / f"{name}{suffix}", *spec, seed=seed)
    return out


def official_inputs(process_mm_info, processor, path: Path, kind: str) -> dict:
    """The authors' evaluation call for one clip and :data:`QUESTION`."""
    element = {"type": "video", "video": str(path)} if "v" in kind else None
    element = element or {"type": "audio", "audio": str(path)}
    conversation = [{"role": "user", "content": [element, {"type": "text", "text": QUESTION}]}]
    use_audio_in_video = kind == "av"
    audios, images, videos = process_mm_info(conversation, use_audio_in_video=use_audio_in_video)
    tokens = {
        name: getattr(processor.tokenizer, name)
        for name in ("audio_token", "video_token", "audio_bos_token", "audio_eos_token")
        + ("vision_bos_token", "vision_eos_token")
    }
    text = chat_prompt(QUESTION, kind, tokens, OMNI_SYSTEM)
    extra = {"audio_from_video_indices": list(range(len(videos)))} if use_audio_in_video else {}
    return dict(
        processor(
            text=[text],
            audio=audios,
            images=images,
            videos=videos,
            return_tensors="pt",
            padding=True,
            use_audio_in_video=use_audio_in_video,
            **extra,
        )
    )


def rope(model, batch: dict, use_audio_in_video: bool):
    mask = batch.get("feature_attention_mask")
    positions, deltas = model.model.get_rope_index(
        batch["input_ids"],
        None,
        batch.get("video_grid_thw"),
        batch["attention_mask"],
        use_audio_in_video,
        None if mask is None else mask.sum(-1),
        batch.get("video_second_per_grid"),
    )
    return positions, deltas


def feature_difference(a, b, mask) -> tuple[float, float]:
    valid = mask[0].bool()
    diff = (a[0][:, valid] - b[0][:, valid]).abs()
    return diff.max().item(), diff.mean().item()


@pytest.mark.parametrize("mode", ["processor", "builtin", "processor+decode_cache"])
@pytest.mark.parametrize("name", list(CLIPS))
def test_project_inputs_equal_the_official_pipeline(
    name, mode, clips, official, real_omni, model, tmp_path
):
    """... also when the clip's arrays come from the decode-once cache (what evaluation
    and training read), not from ffmpeg."""
    from transformers import AutoProcessor

    from avtrust.models import decode_cache

    processor = AutoProcessor.from_pretrained(str(real_omni))
    path = clips[name]
    kind = streams(path).kind
    want = official_inputs(official, processor, path, kind)
    builder = input_builder(real_omni, mode.split("+")[0])
    assert isinstance(builder, OmniInputBuilder if mode == "builtin" else OmniProcessorInputs)
    if mode.endswith("decode_cache"):
        decode_cache.build([str(path)], [builder.vision], tmp_path / "decoded")
        cache = decode_cache.DecodeCache(tmp_path / "decoded")
        decode_cache.attach(builder, cache)
        decode_cache.DECODES.reset()
    got = builder([path], [QUESTION])
    if mode.endswith("decode_cache"):
        assert decode_cache.DECODES.total() == 0 and cache.hits == 1  # read, not decoded

    assert got["use_audio_in_video"] == (kind == "av")
    assert sorted(k for k in got if k != "use_audio_in_video") == sorted(want)
    assert torch.equal(got["input_ids"], want["input_ids"])
    assert torch.equal(got["attention_mask"], want["attention_mask"])
    if "v" in kind:
        assert torch.equal(got["video_grid_thw"], want["video_grid_thw"])
        assert torch.equal(
            torch.as_tensor(got["video_second_per_grid"]),
            torch.as_tensor(want["video_second_per_grid"]),
        )
        atol = 1e-6 if mode == "builtin" else 0.0
        torch.testing.assert_close(
            got["pixel_values_videos"], want["pixel_values_videos"], rtol=0, atol=atol
        )
    if "a" in kind:
        assert torch.equal(got["feature_attention_mask"], want["feature_attention_mask"])
        worst, mean = feature_difference(
            got["input_features"], want["input_features"], want["feature_attention_mask"]
        )
        assert worst <= 0.05 and mean <= 5e-4, (worst, mean)
    for ours, theirs in zip(
        rope(model, got, kind == "av"), rope(model, want, kind == "av"), strict=True
    ):
        assert torch.equal(ours, theirs)


def test_the_processor_is_not_asked_to_recap_the_frames_it_is_given(clips, real_omni):
    """The frames come sized by qwen-omni-utils' budget (the project's sampling); the
    builder tells the processor not to apply its own per-frame cap, so it neither
    resizes them nor logs its cap warning in every evaluation and training job."""
    import logging

    from transformers.utils import logging as hf_logging

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    hf_logging.warning_once.cache_clear()  # another test may have logged it already
    try:
        input_builder(real_omni, "processor")([clips["av_large"]], [QUESTION])
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if "cap_pixels_per_frame" in r.getMessage()]


def test_the_feature_difference_is_16_bit_quantisation(clips, official, real_omni):
    """Rounding the project's 16 kHz audio to 16-bit PCM, as audioread hands it to
    librosa, leaves no difference in the features: the tolerance above covers only that."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(real_omni))
    path = clips["av_tiny_frames"]
    want = official_inputs(official, processor, path, "av")
    builder = input_builder(real_omni, "processor")
    _, audio, _ = builder.read_clip(path)
    pcm = np.round(np.clip(audio, -1, 1 - 1 / 32768) * 32768) / 32768
    feats = processor.feature_extractor(
        [pcm.astype(np.float32)],
        sampling_rate=16000,
        padding="max_length",
        return_attention_mask=True,
        return_tensors="pt",
    )
    worst, _ = feature_difference(
        feats["input_features"], want["input_features"], want["feature_attention_mask"]
    )
    assert worst < 1e-5


def ffmpeg(*args: str) -> None:
    import subprocess

    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def test_the_only_difference_on_purpose_is_a_late_audio_start(clips, official, real_omni, tmp_path):
    """A late audio start is the documented difference, and nothing else: the project
    feeds the sound on the clip's timeline (silence first), the utility from 0 s. A
    display matrix is none: decord turns the pictures upright as the project does."""
    builder = input_builder(real_omni, "processor")
    source = clips["av_tiny_frames"]
    rotated, late = tmp_path / "rotated.mp4", tmp_path / "late.mp4"
    ffmpeg("-i", str(source), "-c", "copy", "-metadata:s:v", "rotate=90", str(rotated))
    ffmpeg("-i", str(source), "-itsoffset", "1", "-i", str(source), "-map", "0:v",
           "-map", "1:a", "-c", "copy", str(late))  # fmt: skip

    def both(path):
        conversation = [{"role": "user", "content": [{"type": "video", "video": str(path)}]}]
        audios, _, videos = official(conversation, use_audio_in_video=True)
        _, audio, frames = builder.read_clip(path)
        return audios[0], videos[0].numpy().astype(np.uint8).transpose(0, 2, 3, 1), audio, frames

    their_audio, their_frames, audio, frames = both(rotated)
    assert frames.shape[1:3] == (392, 280)  # portrait, as a player shows it
    np.testing.assert_array_equal(frames, their_frames)
    np.testing.assert_allclose(audio, their_audio, atol=2 / 32768)

    their_audio, their_frames, audio, frames = both(late)
    np.testing.assert_array_equal(frames, their_frames)  # the pictures: untouched
    lead = 16000  # 1 s of silence first, then the utility's audio
    assert np.abs(audio[:lead]).max() < 1e-3  # silence (the AAC decoder's edge: ~5e-4)
    # The remuxed stream lost the edit list that trims AAC's 1024 priming samples: the
    # utility keeps them, ffmpeg places the stream by its timestamps without them.
    priming = len(their_audio) - (len(audio) - lead)
    assert priming in (0, 1024)
    np.testing.assert_allclose(audio[lead:], their_audio[priming:], atol=2 / 32768)
