"""Qwen2-Audio's and CLAP's inputs equal their official pipelines'.

Both official pipelines (the models' cards and evaluation scripts) load a file with
``librosa.load(path, sr=<the feature extractor's rate>)`` and hand the waveform to the
processor. The project decodes with ffmpeg at the stream's own rate (audio on the clip's
timeline) and resamples with librosa's resampler (:func:`avtrust.models.media.resample`),
then calls the same processor. librosa reads a compressed file through audioread as
16-bit PCM, so the features are compared within what that rounding moves: Whisper
log-mel features (Qwen2-Audio) within 0.05 on valid frames and 5e-4 on average (see
``test_omni_parity.py``). Token ids and masks are equal. CLAP's features (dB) agree
within 0.5 dB in every bin within 60 dB of the loudest; quieter bins differ more (see
the test). CLAP's one deliberate difference: a clip longer than its 10 s window is cut
around its centre instead of at a random offset (``rand_trunc``), so scores repeat.
"""

from __future__ import annotations

import numpy as np
import pytest

from avtrust.media.ffmpeg import encode_clip
from avtrust.media.synthesis import catalog, synthesize_audio
from avtrust.models.audio_llm import AudioLLM
from avtrust.models.clap import Clap, centre_crop
from avtrust.models.media import read_audio
from avtrust.models.tiny import build_clap, build_qwen2_audio

torch = pytest.importorskip("torch")
librosa = pytest.importorskip("librosa")


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    """AAC soundtracks: 44.1 kHz for 3.7 s, 48 kHz for 12.3 s (over CLAP's window)."""
    root = tmp_path_factory.mktemp("sounds")
    out = {}
    for seed, (name, rate, seconds) in enumerate([("short", 44100, 3.7), ("long", 48000, 12.3)]):
        audio = synthesize_audio(catalog()["violin"], seconds, rate, np.random.default_rng(seed))
        out[name] = root / f"{name}.m4a"
        encode_clip(
            out[name],
            None,
            audio,
            fps=1,
            sample_rate=rate,
            video_codec={},
            audio_codec={"acodec": "aac", "b:a": "96k"},
        )
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio_models")
    build_qwen2_audio(root / "audio_llm", seed=0)
    build_clap(root / "clap", seed=0)
    return AudioLLM.load(root / "audio_llm"), Clap.load(root / "clap")


@pytest.mark.parametrize("name", ["short", "long"])
def test_qwen2_audio_inputs_equal_the_official_pipeline(name, sounds, models):
    llm, _ = models
    path = sounds[name]
    theirs, _ = librosa.load(str(path), sr=llm.processor.feature_extractor.sampling_rate)
    text = llm.chat_text("What do you hear?")
    want = llm.processor(text=[text], audio=[theirs], return_tensors="pt", padding=True)
    got = llm.inputs([llm.read(path)], ["What do you hear?"])
    assert sorted(got) == sorted(want)
    for key in ("input_ids", "attention_mask", "feature_attention_mask"):
        assert torch.equal(got[key], want[key]), key
    valid = want["feature_attention_mask"][0].bool()
    diff = (got["input_features"][0][:, valid] - want["input_features"][0][:, valid]).abs()
    assert diff.max() <= 0.05 and diff.mean() <= 5e-4, (diff.max(), diff.mean())


@pytest.mark.parametrize("name", ["short", "long"])
def test_clap_inputs_equal_the_official_pipeline(name, sounds, models):
    _, clap = models
    path = sounds[name]
    theirs, _ = librosa.load(str(path), sr=clap.sample_rate)
    if len(theirs) > clap.window:  # the deliberate difference: the centre, not a random cut
        theirs = centre_crop(theirs, clap.window)
    want = clap.processor(audio=[theirs], sampling_rate=clap.sample_rate, return_tensors="pt")
    ours = read_audio(path, clap.sample_rate)
    got = clap.features([ours])
    assert sorted(got) == sorted(want)
    assert torch.equal(got["is_longer"], want["is_longer"])
    # Where the sound is (bins within 60 dB of the loudest) the features agree closely;
    # below, in bins AAC left nearly empty, the two decoders' output (16-bit through
    # audioread, float from ffmpeg) differs by up to ~15 dB of nothing.
    loud = want["input_features"] > want["input_features"].max() - 60
    diff = (got["input_features"] - want["input_features"]).abs()
    assert diff[loud].max() <= 0.5 and diff[loud].mean() <= 0.01, (diff[loud].max(), diff.mean())
    assert diff.mean() <= 1.0
