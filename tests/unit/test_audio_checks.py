"""The audio checks after manipulation: a correct manipulation passes with its measured
values, a deliberately wrong one is rejected with the value that gave it away."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avtrust.bench import checks
from avtrust.bench.assemble import assemble
from avtrust.bench.samples import CHECK_NAMES, PLAN_SCHEMA, SAMPLE_SCHEMA
from avtrust.bench.shards import run_shard
from avtrust.media import manipulate, measure
from avtrust.media.ffmpeg import decode_audio

SR = 16000
AUDIO = {"sample_rate": SR, "audio_codec": {"acodec": "aac", "b:a": "64k"}}
MEDIA = {
    **AUDIO,
    "video_codec": {"vcodec": "libx264", "preset": "veryfast", "crf": 23, "threads": 1},
}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("checked")


# ------------------------------------------------------------------------------ m1


@pytest.mark.parametrize("muted", [0, 2])
def test_m1_correctly_muted_stem_passes(scene, out_dir, muted):
    dst = out_dir / f"m1_{muted}.mp4"
    args = {"video_src": str(scene.clip.path), "stems": [str(p) for p in scene.stem_paths],
            "muted": muted}  # fmt: skip
    manipulate.mute_stem(args["video_src"], args["stems"], muted, dst, **AUDIO)
    got = checks.check_output("mute_stem", args, str(dst))
    print(got)
    assert got.failure is None
    assert got.values["measured_muted_db"] <= checks.MUTED_MAX_DB
    assert got.values["measured_kept_db"] == pytest.approx(0.0, abs=0.5)
