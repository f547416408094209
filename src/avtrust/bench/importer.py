"""Import of the official benchmark files: evaluate on the released samples directly.

A task listed under ``benchmark.import`` is not generated: rule ``import_official``
turns its official JSON into the task's *plan* (the same table ``plan_task`` writes),
and the manipulate and build_questions stages make the sample table from it as for a
generated task. Media are looked up by name in the folder given with the JSON:

- **AVTrustBench** ``instruct_test_<TASK>.json`` (records ``id``, ``video`` = ``"id1"``
  or ``"id1#id2"``, question and lettered options; read by
  :func:`avtrust.bench.official.read_avtrustbench_json`). The release ships source clip
  ids, and its ``datagen.py`` rebuilds the perturbed media from them; so does the import:
  ``media`` is the folder of source clips (``<id>.mp4``), and each task's manipulation is
  planned as the generator plans it (MVIT: audio of id1 on the video of id2; MAIT: video
  of id1 with the audio of id2; COT-Stitch/COT-Swap: id1 then id2, straight or swapped;
  MAT/MVT: audio/video stripped; MCIT, ICIT, CAT: the clip as is).
- **AV-ConfuseBench** ``avconfusebench_test_m1.json`` / ``_m2.json``: the release ships the
  manipulated videos themselves; ``media`` is their folder (m1: ``<video_id>.<ext>``;
  m2: the record's ``filename``). The sound type ``thunderstorm`` of the release is this
  project's ``thunder`` (:func:`avtrust.bench.avconfusebench.project_sound_type`).

Record ids and clip ids become file names: one with a path separator, ``..`` or a shell
metacharacter is an error naming the record. A clip missing from the media folder is
not: its sample fails in the manipulate stage and is listed in the task's rejects (clips
used as they are get the manipulation ``verify``: probed, both streams required).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from avtrust import data_files
from avtrust.bench import official
from avtrust.bench.avconfusebench import project_sound_type
from avtrust.bench.samples import BENCHES, PLAN_SCHEMA
from avtrust.datasets.adapters import SAFE_ID, _media_files
from avtrust.datasets.records import annotation_error

log = logging.getLogger(__name__)

# The release's source dataset per AVTrustBench task (its <src> folder).
DEFAULT_SRC = {
    "MCIT": "avqa",
    "ICIT": "avqa",
    "MVIT": "avqa",
    "MAIT": "avqa",
    "COT-Stitch": "audioset",
    "COT-Swap": "audioset",
    "CAT": "audioset",
    "MAT": "music_avqa",
    "MVT": "music_avqa",
}
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"]
_canonical_json = json.JSONEncoder(sort_keys=True).encode


def task_source(task: str, spec: dict[str, Any]) -> str:
    """The ``<src>`` of an imported AVTrustBench task: ``src`` in its config, else the
    release's (MAT/MVT: music_avqa; MVIT/MAIT/MCIT/ICIT: avqa; COT/CAT: audioset)."""
    return spec.get("src") or DEFAULT_SRC.get(task, "imported")


class _Media:
    """Finds media files by stem (or exact name) in a folder, listed once."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.by_stem = _media_files(self.folder)

    def clip(self, clip_id: str) -> str:
        """The file of ``clip_id``; a path that does not exist when there is none (the
        manipulate stage then rejects the sample with 'no such file')."""
        found = self.by_stem.get(clip_id)
        return str(found if found is not None else self.folder / f"{clip_id}.mp4")

    def file(self, name: str) -> str:
        return str(self.folder / name)


def _safe(value: str, path: str | os.PathLike, index: int, key: str) -> str:
    if not SAFE_ID.match(value):
        raise annotation_error(
            path,
            index,
            key,
            f"{value!r} is not a safe name (letters, digits, '_', '-', '.'; no '..', "
            "no path separators or shell characters)",
        )
    return value


def _row(bench: str, task: str, sample_id: str, **fields: Any) -> dict:
    row = {name: None for name in PLAN_SCHEMA.names}
    row.update(bench=bench, task=task, id=sample_id, **fields)
    return row


def _avtrustbench(task: str, path: str, media: _Media, src: str, media_root: str) -> list[dict]:
    rows, seen = [], set()
    for index, sample in enumerate(official.read_avtrustbench_json(path)):
        # The release spells the COT files' task with '_' (instruct_test_COT_Stitch.json).
        if sample["task"].replace("_", "-") != task:
            raise annotation_error(
                path, index, "task", f"{sample['task']!r} in a file imported as {task!r}"
            )
        sample_id = _safe(str(sample["id"]), path, index, "id")
        if sample_id in seen:
            raise annotation_error(path, index, "id", f"duplicate id {sample_id!r}")
        seen.add(sample_id)
        ids = [_safe(i, path, index, "video") for i in sample["source_ids"]]
        needed = 2 if task in ("MVIT", "MAIT", "COT-Stitch", "COT-Swap") else 1
        if len(ids) != needed:
            raise annotation_error(
                path, index, "video", f"{task} needs {needed} clip id(s), got {len(ids)}"
            )
        clips = [media.clip(i) for i in ids]
        out = f"{media_root}/avtrustbench/{task}/{sample_id}"
        if task in ("MCIT", "ICIT", "CAT"):
            op, args, media_path = "verify", {"src": clips[0]}, clips[0]
        elif task == "MVIT":  # audio of clip 1 on the video of clip 2
            op, args = "combine", {"video_src": clips[1], "audio_src": clips[0]}
            media_path = f"{out}.mp4"
        elif task == "MAIT":  # video of clip 1 with the audio of clip 2
            op, args = "combine", {"video_src": clips[0], "audio_src": clips[1]}
            media_path = f"{out}.mp4"
        elif task in ("COT-Stitch", "COT-Swap"):
            op = "concat" if task == "COT-Stitch" else "swap_stitch"
            args, media_path = {"src1": clips[0], "src2": clips[1]}, f"{out}.mp4"
        elif task == "MAT":
            op, args, media_path = "strip_audio", {"src": clips[0]}, f"{out}.mp4"
        elif task == "MVT":
            op, args, media_path = "strip_video", {"src": clips[0]}, f"{out}.m4a"
        else:
            raise ValueError(f"no import for AVTrustBench task {task!r}")
        rows.append(
            _row(
                "avtrustbench",
                task,
                sample_id,
                source_dataset=src,
                source_ids=ids,
                media_path=media_path,
                question=sample["question"],
                options=sample["options"],
                answer=sample["answer"],
                answer_index=sample["answer_index"],
                op=op,
                op_args=_canonical_json(args),
            )
        )
    return rows


def _normal(name: str) -> str:
    return re.sub(r"[\s_]+", "_", name.strip().lower())


def _muted_instrument(question: str, instruments: list[str]) -> str | None:
    """The instrument an m1 question asks about, as spelled in ``instruments``.

    Reads the paper's wording ("... Is there a/an {instrument} sound?") and the release's
    ("... Please answer:\\n Is thera a {instrument} sound? \\nYour answer can only be
    'yes' or 'no'") with the templates' ``muted_pattern``; names compare case-, space- and
    underscore-insensitively ("acoustic guitar" is ``acoustic_guitar``). Otherwise, the one
    instrument of the scene named anywhere in the question, if exactly one is.
    """
    pattern = data_files.load("templates")["avconfusebench"]["m1"]["muted_pattern"]
    by_name = {_normal(name): name for name in instruments}
    match = re.search(pattern, question, flags=re.IGNORECASE)
    if match and _normal(match.group("instrument")) in by_name:
        return by_name[_normal(match.group("instrument"))]
    words = _normal(question)
    named = [
        name for key, name in by_name.items() if re.search(rf"(?<![a-z]){key}(?![a-z])", words)
    ]
    return named[0] if len(named) == 1 else None


def _m1(path: str, media: _Media) -> list[dict]:
    options = list(data_files.load("templates")["avconfusebench"]["m1"]["options"])
    rows, unknown = [], []
    for index, sample in enumerate(official.read_confuse_m1_json(path)):
        video = _safe(sample["video_id"], path, index, "video_id")
        answer = sample["answer"].strip().lower()
        if answer not in options:
            raise annotation_error(path, index, "answer", f"{sample['answer']!r} is not yes/no")
        instruments = sample["instruments"]
        muted = _muted_instrument(sample["question"], instruments)
        if muted is None:
            unknown.append(index)
        clip = media.clip(video)
        rows.append(
            _row(
                "avconfusebench",
                "m1",
                f"m1-{index:06d}",
                source_dataset="avconfusebench",
                source_ids=[video],
                media_path=clip,
                question=sample["question"],
                options=options,
                answer=answer,
                answer_index=options.index(answer),
                category=NUMBER_WORDS[len(instruments)] if len(instruments) < 9 else None,
                instruments=instruments,
                muted_instrument=muted,
                op="verify",
                op_args=_canonical_json({"src": clip}),
            )
        )
    if unknown:
        log.warning(
            "%s: no muted instrument found in the question of %d record(s) (first: record "
            "%d); their muted_instrument is null",
            path,
            len(unknown),
            unknown[0],
        )
    return rows


def _m2(path: str, media: _Media) -> list[dict]:
    rows = []
    for index, sample in enumerate(official.read_confuse_m2_json(path)):
        video = _safe(sample["video_id"], path, index, "video_id")
        filename = _safe(sample["filename"], path, index, "filename")
        sound_type = project_sound_type(sample["sound_type"])
        clip = media.file(filename)
        rows.append(
            _row(
                "avconfusebench",
                "m2",
                f"m2-{index:06d}",
                source_dataset="avconfusebench",
                source_ids=[video],
                media_path=clip,
                question=sample["question"],
                options=[],
                answer=sample["annotation"],
                answer_index=-1,
                category=sound_type,
                sound_type=sound_type,
                op="verify",
                op_args=_canonical_json({"src": clip}),
            )
        )
    return rows


def import_official(
    bench: str,
    task: str,
    json_path: str | os.PathLike,
    media_dir: str | os.PathLike,
    *,
    src: str | None = None,
    media_root: str = "results/media",
) -> pa.Table:
    """The plan of ``bench/task`` from its official JSON file and media folder."""
    if task not in BENCHES.get(bench, []):
        raise ValueError(f"unknown task {bench}/{task}")
    json_path = str(json_path)
    if not Path(json_path).is_file():
        raise FileNotFoundError(f"benchmark.import.{bench}.{task}.json: {json_path} does not exist")
    if not Path(media_dir).is_dir():
        raise FileNotFoundError(
            f"benchmark.import.{bench}.{task}.media: folder {media_dir} does not exist"
        )
    media = _Media(media_dir)
    if bench == "avtrustbench":
        rows = _avtrustbench(task, json_path, media, src or DEFAULT_SRC[task], media_root)
    elif task == "m1":
        rows = _m1(json_path, media)
    else:
        rows = _m2(json_path, media)
    missing = sum(
        1
        for r in rows
        for p in json.loads(r["op_args"]).values()
        if isinstance(p, str) and not Path(p).exists()
    )
    if missing:
        log.warning(
            "%s/%s: %d referenced media files are not in %s; their samples will be rejected",
            bench,
            task,
            missing,
            media_dir,
        )
    return pa.Table.from_pylist(rows, schema=PLAN_SCHEMA)
