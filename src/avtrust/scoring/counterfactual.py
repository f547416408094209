"""The corrupted media of CAVPref: V' (the sample's audio under another video) and A'
(the sample's video with another soundtrack), made with ``avtrust.media.manipulate``.

CAVPref's modality terms compare the policy on the true clip (V, A) with the same
answer y_w on a clip whose video (V', A) or audio (V, A') was changed. Which change
makes y_w *wrong* depends on the task, so V' and A' are chosen per task:

- **restored** (the tasks whose abstention is about that modality): the corrupted
  stream is put back, so the abstention no longer holds —
  V' of MVIT and MVT = the audio clip's own video (``combine``); V' of COT-Swap = the
  videos reordered to match the swapped audio (``concat([clip 2, clip 1])``);
  A' of MAIT and MAT = the video clip's own soundtrack (``combine``); A' of COT-Swap =
  ``concat([clip 1, clip 2])``;
- **replaced** (every other task and modality): the stream comes from a *partner* clip
  of the same dataset that shares no label with any of the sample's source clips, so
  what is seen (heard) contradicts the question's content — V' = ``combine(video of
  the partner, audio of the sample)`` (MAT: the partner's video alone,
  ``strip_audio``), A' = ``combine(video of the sample, audio of the partner)`` (MVT:
  the partner's audio alone, ``strip_video``). For COT-Stitch the partner stream is
  two partner clips concatenated (``concat``), so V'/A' keep the sample's length.

Partners are drawn with a per-sample seed (``derive_seed(seed, "cavpref", task, id)``),
so a sample's V'/A' do not depend on the shard it lands in. Each record lists the
source clips of the video and audio streams of the clean clip, V' and A' (what AVSM's
captions are made of). Files: ``<media_root>/<task>/<id>.v.<ext>`` (V') and
``<id>.a.<ext>`` (A'). A sample whose media cannot be made is recorded with its error.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from avtrust.bench.samples import PartnerPool, derive_seed
from avtrust.errors import AvtrustError, MediaError, StorageError
from avtrust.media import manipulate
from avtrust.media.ffmpeg import scratch_dir
from avtrust.media.probe import probe

PathLike = str | os.PathLike
IDS = pa.list_(pa.string())
COUNTERFACTUAL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task", pa.string()),
        ("media_path", pa.string()),
        ("clean_video_ids", IDS),
        ("clean_audio_ids", IDS),
        ("video_corrupted_path", pa.string()),
        ("video_corrupted_kind", pa.string()),
        ("video_corrupted_video_ids", IDS),
        ("video_corrupted_audio_ids", IDS),
        ("audio_corrupted_path", pa.string()),
        ("audio_corrupted_kind", pa.string()),
        ("audio_corrupted_video_ids", IDS),
        ("audio_corrupted_audio_ids", IDS),
        ("ok", pa.bool_()),
        ("error", pa.string()),
    ]
)
RESTORE_VIDEO = {"MVIT", "MVT", "COT-Swap"}
RESTORE_AUDIO = {"MAIT", "MAT", "COT-Swap"}
TWO_CLIP = {"COT-Stitch", "COT-Swap"}


def clean_streams(task: str, source_ids: list[str]) -> tuple[list[str], list[str]]:
    """(video source ids, audio source ids) of a benchmark sample, in playing order."""
    s = source_ids
    if task == "MVIT":  # audio of clip 1 on the video of clip 2
        return [s[1]], [s[0]]
    if task == "MAIT":  # video of clip 1 with the audio of clip 2
        return [s[0]], [s[1]]
    if task == "COT-Stitch":
        return [s[0], s[1]], [s[0], s[1]]
    if task == "COT-Swap":  # [v1 + a2] then [v2 + a1]
        return [s[0], s[1]], [s[1], s[0]]
    if task == "MAT":
        return [s[0]], []
    if task == "MVT":
        return [], [s[0]]
    return [s[0]], [s[0]]


class Partners:
    """Partner clips (audio and video present) sharing no label with given sources."""

    def __init__(self, manifest: dict[str, dict]):
        self.labels = {c: list(r["labels"]) for c, r in manifest.items()}
        self.paths = {c: str(r["path"]) for c, r in manifest.items()}
        candidates = [c for c, r in manifest.items() if r["has_audio"] and r["has_video"]]
        self.pool = PartnerPool(candidates, self.labels)
        self.candidates = candidates

    def _lower(self, clip: str) -> set[str]:
        return {x.lower() for x in self.labels.get(clip, [])}

    def draw(self, sources: list[str], rng: np.random.Generator, exclude=()) -> str:
        """A partner disjoint in labels from every source (and not in ``exclude``)."""
        banned = set().union(*(self._lower(s) for s in sources)) if sources else set()
        skip = set(sources) | set(exclude)
        for _ in range(32):  # labelled sources: exact pool of the first, then check
            c = self.pool.draw(sources[0], rng)
            if c is None:
                break
            if c not in skip and not (self._lower(c) & banned):
                return c
        fits = [c for c in self.candidates if c not in skip and not (self._lower(c) & banned)]
        if not fits:
            raise MediaError(f"no partner clip shares no label with {', '.join(sources)}")
        return fits[int(rng.integers(len(fits)))]


def plan_sample(row: dict, partners: Partners, seed: int, media_root: str) -> dict:
    """V'/A' recipe of one sample: output paths, stream sources and the steps to run."""
    task, sid, src = row["task"], row["id"], list(row["source_ids"])
    rng = np.random.default_rng(derive_seed(seed, "cavpref", task, sid))
    video_ids, audio_ids = clean_streams(task, src)
    picked: list[str] = []  # partner clips, when V' or A' is a replaced stream
    if not (task in RESTORE_VIDEO and task in RESTORE_AUDIO):
        for _ in range(2 if task in TWO_CLIP else 1):
            picked.append(partners.draw(src, rng, exclude=picked))
    folder = f"{media_root}/{task}"
    plan = {
        "id": sid,
        "task": task,
        "media_path": row["media_path"],
        "clean_video_ids": video_ids,
        "clean_audio_ids": audio_ids,
        "video_corrupted_path": f"{folder}/{sid}.v.mp4",
        "audio_corrupted_path": f"{folder}/{sid}.a.{'m4a' if task == 'MVT' else 'mp4'}",
    }
    path = partners.paths
    m = row["media_path"]
    # V': the sample's audio (if any) under another video.
    if task in RESTORE_VIDEO:
        if task == "COT-Swap":
            v_steps = [("concat", [path[src[1]], path[src[0]]])]
            v_video = [src[1], src[0]]
        else:  # MVIT, MVT: the audio clip's own video
            v_steps = [("combine", path[audio_ids[0]], m)]
            v_video = [audio_ids[0]]
        plan["video_corrupted_kind"] = "restored"
    else:
        if task == "COT-Stitch":
            v_steps = [("combine", ("concat", [path[p] for p in picked]), m)]
        elif task == "MAT":
            v_steps = [("strip_audio", path[picked[0]])]
        else:
            v_steps = [("combine", path[picked[0]], m)]
        v_video = list(picked)
        plan["video_corrupted_kind"] = "replaced"
    plan["video_corrupted_video_ids"] = v_video
    plan["video_corrupted_audio_ids"] = audio_ids
    # A': the sample's video (if any) with another soundtrack.
    if task in RESTORE_AUDIO:
        if task == "COT-Swap":
            a_steps = [("concat", [path[src[0]], path[src[1]]])]
            a_audio = [src[0], src[1]]
        else:  # MAIT, MAT: the video clip's own soundtrack
            a_steps = [("combine", m, path[video_ids[0]])]
            a_audio = [video_ids[0]]
        plan["audio_corrupted_kind"] = "restored"
    else:
        if task == "COT-Stitch":
            a_steps = [("combine", m, ("concat", [path[p] for p in picked]))]
        elif task == "MVT":
            a_steps = [("strip_video", path[picked[0]])]
        else:
            a_steps = [("combine", m, path[picked[0]])]
        a_audio = list(picked)
        plan["audio_corrupted_kind"] = "replaced"
    plan["audio_corrupted_video_ids"] = video_ids
    plan["audio_corrupted_audio_ids"] = a_audio
    plan["_steps"] = {"video_corrupted_path": v_steps, "audio_corrupted_path": a_steps}
    return plan


def _source(spec, tmpdir: Path, n: list[int]) -> str:
    """A step argument: a path, or ("concat", paths) made into a temporary clip."""
    if isinstance(spec, tuple) and spec[0] == "concat":
        n[0] += 1
        dst = tmpdir / f"part{n[0]}.mp4"
        manipulate.concat(spec[1], dst)
        return str(dst)
    return spec


def run_steps(steps: list, dst: str) -> None:
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with scratch_dir(dst) as tmp:
        n = [0]
        for step in steps:
            op, *args = step
            args = [_source(a, Path(tmp), n) for a in args]
            if op == "combine":
                manipulate.combine(args[0], args[1], dst)
            elif op == "concat":
                manipulate.concat(args[0], dst)
            elif op == "strip_audio":
                manipulate.strip_audio(args[0], dst)
            elif op == "strip_video":
                manipulate.strip_video(args[0], dst)
            else:
                raise ValueError(f"unknown step {op!r}")


def _failed(row: dict, error: str) -> dict:
    empty = {f.name: None for f in COUNTERFACTUAL_SCHEMA}
    return {
        **empty,
        "id": row["id"],
        "task": row["task"],
        "media_path": row["media_path"],
        "ok": False,
        "error": error,
    }


def _execute(row: dict, partners: Partners, seed: int, media_root: str) -> dict:
    try:
        plan = plan_sample(row, partners, seed, media_root)
        for key, steps in plan.pop("_steps").items():
            run_steps(steps, plan[key])
            info = probe(plan[key])
            if not (info.has_audio or info.has_video):
                raise MediaError(f"{plan[key]}: no stream left")
    except StorageError:
        raise  # a full disk is not the sample's fault: stop the job, keep nothing
    except (AvtrustError, OSError, ValueError, KeyError, IndexError) as exc:
        return _failed(row, f"{type(exc).__name__}: {exc}")
    return {**{f.name: None for f in COUNTERFACTUAL_SCHEMA}, **plan, "ok": True, "error": None}


def run_counterfactual_shard(
    rows: list[dict],
    manifests: dict[str, dict[str, dict]],
    *,
    seed: int,
    media_root: str = "results/score/media",
    workers: int = 1,
) -> pa.Table:
    """Make V' and A' for ``rows`` (benchmark samples); ``manifests`` maps each
    sample's ``source_dataset`` to its manifest records by clip id."""
    partners = {name: Partners(records) for name, records in manifests.items()}

    def one(row: dict) -> dict:
        if row["source_dataset"] not in partners:
            return _failed(row, f"KeyError: no manifest of dataset {row['source_dataset']!r}")
        return _execute(row, partners[row["source_dataset"]], seed, media_root)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(one, rows), total=len(rows), desc="V'/A'", unit="sample"))
    return pa.Table.from_pylist(results, schema=COUNTERFACTUAL_SCHEMA)
