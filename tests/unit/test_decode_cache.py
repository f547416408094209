"""The decode-once cache (:mod:`avtrust.models.decode_cache`): the arrays it stores are
those ffmpeg gives, a builder reading it builds the same tensors without decoding, and a
changed clip or changed settings miss it (rebuilt, never stale)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from avtrust.models import decode_cache as dc
from avtrust.models.media import streams
from avtrust.models.omni_inputs import AUDIO_SAMPLE_RATE, VisionSettings

torch = pytest.importorskip("torch")

VISION = VisionSettings(min_pixels=28 * 28, max_pixels=56 * 56)


def copied(clips, tmp_path, *names):
    out = []
    for name in names:
        dst = tmp_path / "media" / clips[name].path.name
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(clips[name].path, dst)
        out.append(dst)
    return out


def test_cached_arrays_equal_decoded_ones_for_every_stream_kind(clips, tmp_path):
    paths = copied(clips, tmp_path, "violin", "audio_only", "video_only")
    report = dc.build(paths, [VISION], tmp_path / "cache", shard_clips=2, workers=2)
    assert (report.entries, report.decoded, report.reused, report.shards) == (3, 3, 0, 2)
    cache = dc.DecodeCache(tmp_path / "cache")
    sha = dc.settings_digest(VISION, AUDIO_SAMPLE_RATE)
    for path in paths:
        s = streams(path)
        audio, frames = dc.decode_arrays(s, VISION, AUDIO_SAMPLE_RATE)
        hit = cache.get(path, sha)
        assert hit.kind == s.kind and hit.info == s.info
        for got, want in ((hit.audio, audio), (hit.frames, frames)):
            assert (got is None) == (want is None)
            if want is not None:
                assert got.dtype == want.dtype and np.array_equal(got, want)
    assert cache.hits == 3 and cache.misses == 0


def test_other_models_hear_the_cached_soundtrack_as_read_audio_gives_it(clips, tmp_path):
    """The audio LLM (16 kHz) and CLAP (48 kHz) read the thinker's cache: a clip's
    soundtrack at a rate it was decoded at, or resampled from an entry decoded at the
    stream's own rate (ffmpeg's samples, unresampled), is exactly what read_audio gives;
    an entry resampled to another rate, or other bytes, are a KeyError (the caller
    decodes)."""
    from avtrust.models.media import read_audio

    violin, video_only, cello = copied(clips, tmp_path, "violin", "video_only", "cello")
    assert streams(violin).info.sample_rate == AUDIO_SAMPLE_RATE  # the stream's own rate
    dc.build([violin, video_only], [VISION], tmp_path / "cache")
    cache = dc.DecodeCache(tmp_path / "cache")
    for rate in (AUDIO_SAMPLE_RATE, 48000):
        got = cache.soundtrack(violin, rate)
        assert got.dtype == np.float32 and np.array_equal(got, read_audio(violin, rate))
    assert cache.soundtrack(video_only, 48000) is None  # no audio stream
    # decoded at 8 kHz, resampled from the stream's 16: another rate cannot be made from it
    dc.build([violin], [VISION], tmp_path / "at8k", sample_rate=8000)
    resampled = dc.DecodeCache(tmp_path / "at8k")
    assert np.array_equal(resampled.soundtrack(violin, 8000), read_audio(violin, 8000))
    with pytest.raises(KeyError):
        resampled.soundtrack(violin, 48000)
    shutil.copy(cello, violin)
    with pytest.raises(KeyError):
        cache.soundtrack(violin, AUDIO_SAMPLE_RATE)
    assert (cache.hits, cache.misses) == (3, 1)
    # read_soundtrack: the cache where it holds the clip, read_audio otherwise
    assert np.array_equal(dc.read_soundtrack(cache, violin, 48000), read_audio(violin, 48000))
    assert np.array_equal(dc.read_soundtrack(None, cello, 48000), read_audio(cello, 48000))


def test_a_rebuild_from_scratch_writes_the_same_bytes(clips, tmp_path):
    # the workflow's byte-identical rebuild check covers results/decoded: nothing
    # run-dependent (timings, thread order) may reach the index or the shards
    paths = copied(clips, tmp_path, "violin", "audio_only", "video_only")
    for root in ("first", "second"):
        dc.build(paths, [VISION], tmp_path / root, shard_clips=2, workers=2)
    first, second = (
        {p.relative_to(tmp_path / root): p for p in (tmp_path / root).rglob("*") if p.is_file()}
        for root in ("first", "second")
    )
    assert sorted(first) == sorted(second) and len(first) == 3  # index + two shards
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name


def test_the_workers_run_torch_on_one_thread_and_store_what_several_give(
    clips, tmp_path, monkeypatch
):
    """build() runs torch on one intra-op thread while its workers decode (they take
    the cores), gives the caller's thread count back, and stores the frames a reader
    resizing on several threads gets."""
    seen = []
    decode = dc._decode_entry

    def spy(*args):
        seen.append(torch.get_num_threads())
        return decode(*args)

    monkeypatch.setattr(dc, "_decode_entry", spy)
    (path,) = copied(clips, tmp_path, "piano_wide")
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        dc.build([path], [VISION], tmp_path / "cache", workers=2)
        assert seen == [1] and torch.get_num_threads() == 4
        _, frames = dc.decode_arrays(streams(path), VISION, AUDIO_SAMPLE_RATE)
    finally:
        torch.set_num_threads(threads)
    sha = dc.settings_digest(VISION, AUDIO_SAMPLE_RATE)
    assert np.array_equal(dc.DecodeCache(tmp_path / "cache").get(path, sha).frames, frames)


def test_a_changed_clip_or_setting_misses_and_is_rebuilt(clips, tmp_path):
    violin, cello = copied(clips, tmp_path, "violin", "cello")
    root = tmp_path / "cache"
    dc.build([violin], [VISION], root)
    sha = dc.settings_digest(VISION, AUDIO_SAMPLE_RATE)
    before = dc.DecodeCache(root).get(violin, sha)
    # other settings: a miss (no arrays sampled at another rate are ever served)
    other = dataclasses.replace(VISION, fps=1.0)
    assert dc.DecodeCache(root).get(violin, dc.settings_digest(other, AUDIO_SAMPLE_RATE)) is None
    # the same name, other bytes: a miss, then a rebuild decodes it afresh
    shutil.copy(cello, violin)
    cache = dc.DecodeCache(root)
    assert cache.get(violin, sha) is None and cache.misses == 1
    report = dc.build([violin], [VISION, other], root)
    assert (report.decoded, report.reused, report.entries) == (2, 0, 2)
    after = dc.DecodeCache(root).get(violin, sha)
    audio, frames = dc.decode_arrays(streams(violin), VISION, AUDIO_SAMPLE_RATE)
    assert np.array_equal(after.audio, audio) and not np.array_equal(after.audio, before.audio)
    assert len(list((root / dc.SHARDS).iterdir())) == 1  # the violin's old shard is gone
    # unchanged content and settings: nothing decoded again, even without the index
    # (Snakemake deletes it before rerunning the rule): the shards describe themselves
    (root / dc.INDEX).unlink()
    assert dc.build([violin], [VISION, other], root).decoded == 0
    assert len(dc.DecodeCache(root)) == 2


def test_a_builder_reads_the_cache_and_builds_the_same_tensors(clips, tmp_path):
    from avtrust.models import registry

    spec = registry.ModelSpec("omni", "qwen2_5_omni_thinker", "tiny", "Qwen/Qwen2.5-Omni-3B")
    folder = registry.prepare(spec, tmp_path / "omni", seed=1)
    plain = registry.load(folder).builder
    cached = registry.load(folder).builder
    paths = copied(clips, tmp_path, "violin", "cello")
    dc.build(paths, [cached.vision], tmp_path / "cache")
    cache = dc.DecodeCache(tmp_path / "cache")
    dc.attach(cached, cache)
    assert dc.attach(cached, cache) is cached  # idempotent: one wrapper
    dc.DECODES.reset()
    got = cached(paths, ["Which?", "Which?"], ["violin", "cello"])
    assert dc.DECODES.total() == 0 and cache.hits == 2  # no ffmpeg: both from the cache
    want = plain(paths, ["Which?", "Which?"], ["violin", "cello"])
    assert dc.DECODES.total() == 2
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert torch.equal(got[k], v) if hasattr(v, "shape") else got[k] == v, k
    # a clip the cache does not hold is decoded as before
    (extra,) = copied(clips, tmp_path, "piano_wide")
    cached([extra], ["Which?"])
    assert dc.DECODES.total() == 3 and cache.misses >= 1


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="shard_clips"):
        dc.build([], [VISION], tmp_path, shard_clips=0)
    from avtrust.errors import MediaError

    with pytest.raises(MediaError, match="no such clip"):
        dc.build([tmp_path / "missing.mp4"], [VISION], tmp_path)


def test_evaluation_of_several_models_decodes_each_clip_once(clips, tmp_path):
    """The evaluate path (run_shard with prefetch and length-ordered batches) on cached
    inputs gives the predictions that decoding gives, and decodes nothing itself."""
    from avtrust.evaluate.infer import Predictor, Settings, run_shard
    from avtrust.models import registry

    spec = registry.ModelSpec("omni", "qwen2_5_omni_thinker", "tiny", "Qwen/Qwen2.5-Omni-3B")
    paths = copied(clips, tmp_path, "violin", "cello", "piano_wide")
    rows = [
        {"id": f"s{i}", "bench": "avtrustbench", "task": "MAT", "category": None,
         "media_path": str(p), "has_audio": True, "has_video": True,
         "question": "Which instrument?" + " Look closely." * i,
         "options": ["violin", "cello", "piano"], "answer": "violin", "answer_index": 0}
        for i, p in enumerate(paths * 2)
    ]  # fmt: skip
    settings = Settings(modes=("generate", "loglik"), batch_size=2, max_new_tokens=4)
    models = [registry.load(registry.prepare(spec, tmp_path / f"m{s}", seed=s)) for s in (1, 2)]
    root = tmp_path / "cache"
    dc.DECODES.reset()
    dc.build(paths, [m.builder.vision for m in models], root)
    assert dc.DECODES.total() == len(paths)  # one settings set shared by both models
    for n, model in enumerate(models):
        cache = dc.DecodeCache(root)
        predictor = Predictor(model, threads=2, cache=2, decoded=cache)
        before = dc.DECODES.total()
        cached = run_shard(predictor, rows, settings, model_id="m", state_dir=tmp_path / f"c{n}")
        assert dc.DECODES.total() == before and cache.misses == 0 and cache.hits >= len(paths)
        plain = registry.load(tmp_path / f"m{n + 1}")
        decoded = run_shard(Predictor(plain, cache=2), rows, settings, model_id="m",
                            state_dir=tmp_path / f"d{n}")  # fmt: skip
        assert dc.DECODES.total() > before  # without the cache: decoded again
        a, b = cached.to_pylist(), decoded.to_pylist()
        assert [(r["id"], r["mode"], r["raw"]) for r in a] == [
            (r["id"], r["mode"], r["raw"]) for r in b
        ]


def test_a_training_job_reads_its_decode_cache(clips, tmp_path):
    from avtrust.models import registry
    from avtrust.train.data import SequenceEncoder, job_builder

    spec = registry.ModelSpec("omni", "qwen2_5_omni_thinker", "tiny", "Qwen/Qwen2.5-Omni-3B")
    policy = registry.load(registry.prepare(spec, tmp_path / "omni", seed=1))
    paths = copied(clips, tmp_path, "violin", "audio_only")
    dc.build(paths, [policy.builder.vision], tmp_path / "cache")
    builder = job_builder(policy, {"media_cache": 4, "decoded": str(tmp_path / "cache")})
    encoder = SequenceEncoder(builder, policy.model.get_rope_index)
    before = dc.DECODES.total()
    encoded = encoder([str(p) for p in paths], ["Which?", "Which?"], ["violin", "flute"])
    assert dc.DECODES.total() == before and builder.decode_cache.hits == 2
    assert encoded.batch["input_ids"].shape[0] == 2
