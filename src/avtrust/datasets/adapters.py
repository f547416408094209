"""Dataset adapters: which clips a raw folder holds, with labels and stems.

One adapter per annotation format, used for the synthetic corpus and for real
downloads alike. Each lists the clips a dataset is supposed to contain; clips the
annotations name but the folder lacks are reported as missing rather than dropped
silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from avtrust.datasets import audioset, avqa, music_avqa
from avtrust.datasets.records import load_json_records
from avtrust.errors import AnnotationError

MEDIA_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4a", ".wav", ".flac", ".mp3", ".ogg")
# Clip ids become file names of derived media: letters, digits, '_', '-', '.', no '..',
# no leading '.'. A leading '-' is allowed: YouTube ids start with one (AudioSet's
# "--PJHxphWEs", VGGSound's "-HG3Omg_89c_000030"), and a clip id only ever appears
# inside a path with its folder in front, never as a bare command-line argument.
SAFE_ID = re.compile(r"^(?!.*\.\.)[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$")


@dataclass(frozen=True)
class ClipEntry:
    """A clip a dataset should contain. ``path`` is None when the file is missing."""

    clip_id: str
    path: Path | None
    labels: list[str] = field(default_factory=list)
    stems: list[Path] = field(default_factory=list)
    needs_audio: bool = True
    needs_video: bool = True
    problem: str | None = None  # why the clip cannot be used whatever its file holds


class MediaFiles(dict):
    """Media files of a folder by stem (the clip id), plus the ids that several files
    claim (``v1.mp4`` and ``v1.mkv``): such a clip is rejected naming all of them, never
    resolved by picking one silently."""

    def __init__(self, folder: Path):
        super().__init__()
        claims: dict[str, list[Path]] = {}
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if (
                    # A symlink that leads nowhere (a loop, a missing target) is listed
                    # too: the index rejects it saying why, not "no media file found".
                    (path.is_file() or path.is_symlink())
                    and path.suffix.lower() in MEDIA_SUFFIXES
                    and not path.name.startswith(".")
                ):
                    claims.setdefault(path.stem, []).append(path)
        self.duplicates = {k: v for k, v in claims.items() if len(v) > 1}
        self.update({k: v[0] for k, v in claims.items()})

    def problem(self, clip_id: str) -> str | None:
        if clip_id not in self.duplicates:
            return None
        names = ", ".join(p.name for p in self.duplicates[clip_id])
        return f"duplicate clip id: several media files share it ({names})"


def _media_files(folder: Path) -> MediaFiles:
    return MediaFiles(folder)


def _music_avqa(raw: Path) -> list[ClipEntry]:
    """Videos, plus every video the annotations name: scenes (instruments left to right
    with their stems), solo lists (one instrument, no stems) and the QA files.

    The real release has no scene file; its videos get labels from a solo list, and
    videos the QA files ask about but the folder lacks are listed (path None).
    """
    videos = _media_files(raw / "videos")
    annotations = raw / "annotations"
    scenes_file = annotations / "scenes.json"
    scenes = {}
    if scenes_file.exists():
        for rec in load_json_records(scenes_file):
            scenes[rec["video_id"]] = rec
    question_files, solo_files = music_avqa.annotation_files(annotations)
    solos: dict[str, str] = {}
    for path in solo_files:
        solos.update(music_avqa.read_solo_videos(path))
    asked: set[str] = set()
    for path in question_files:
        asked.update(music_avqa.read_annotations(path)["video_id"])
    ids = sorted(set(videos) | set(scenes) | set(solos) | asked)
    out = []
    for vid in ids:
        scene = scenes.get(vid, {})
        labels = list(scene.get("instruments", [])) or ([solos[vid]] if vid in solos else [])
        out.append(
            ClipEntry(
                clip_id=vid,
                path=videos.get(vid),
                labels=labels,
                stems=[raw / s for s in scene.get("stems", [])],
                problem=videos.problem(vid),
            )
        )
    return out


def _avqa(raw: Path) -> list[ClipEntry]:
    videos = _media_files(raw / "videos")
    labels: dict[str, set[str]] = {}
    for ann in sorted((raw / "annotations").glob("*.json")):
        frame = avqa.read_annotations(ann)
        for vid, answer in zip(frame["video_id"], frame["answer"], strict=True):
            labels.setdefault(vid, set()).add(answer)
    ids = sorted(set(videos) | set(labels))
    return [
        ClipEntry(vid, videos.get(vid), sorted(labels.get(vid, ())), problem=videos.problem(vid))
        for vid in ids
    ]


def _audioset(raw: Path) -> list[ClipEntry]:
    videos = _media_files(raw / "videos")
    names = audioset.read_ontology(raw / "annotations" / "ontology.json")
    labels: dict[str, list[str]] = {}
    for csv in sorted((raw / "annotations").glob("*segments*.csv")):
        frame = audioset.read_segments(csv)
        for clip, mids in zip(frame["clip_id"], frame["labels"], strict=True):
            labels[clip] = [names.get(m, m) for m in mids]
    ids = sorted(set(videos) | set(labels))
    return [
        ClipEntry(cid, videos.get(cid), labels.get(cid, []), problem=videos.problem(cid))
        for cid in ids
    ]


def _folder(raw: Path) -> list[ClipEntry]:
    out = []
    for label_dir in sorted(p for p in raw.iterdir() if p.is_dir()) if raw.is_dir() else []:
        files = _media_files(label_dir)
        for stem, path in files.items():
            out.append(
                ClipEntry(
                    f"{label_dir.name}.{stem}",
                    path,
                    [label_dir.name],
                    needs_audio=True,
                    needs_video=False,
                    problem=files.problem(stem),
                )
            )
    return out


ADAPTERS = {"music_avqa": _music_avqa, "avqa": _avqa, "audioset": _audioset, "folder": _folder}


def list_clips(fmt: str, raw_dir: str | Path) -> list[ClipEntry]:
    """All clips of a raw dataset folder in format ``fmt``, sorted by id."""
    if fmt not in ADAPTERS:
        raise ValueError(f"unknown dataset format {fmt!r}; known: {sorted(ADAPTERS)}")
    # Sorted here, not only per adapter: folder ids are "<label>.<stem>", and folder
    # order ('rain' < 'rain-heavy') is not id order ('rain-heavy.x' < 'rain.x').
    return sorted(ADAPTERS[fmt](Path(raw_dir)), key=lambda entry: entry.clip_id)


def read_questions(fmt: str, raw_dir: str | Path):
    """The question annotations of a dataset as a DataFrame (formats that have them)."""
    raw = Path(raw_dir) / "annotations"
    if fmt == "music_avqa":
        files, _ = music_avqa.annotation_files(raw)
        reader = music_avqa.read_annotations
    elif fmt == "avqa":
        files = sorted(raw.glob("*.json"))
        reader = avqa.read_annotations
    else:
        raise ValueError(f"dataset format {fmt!r} has no question annotations")
    if not files:
        names = f"named {music_avqa.QUESTION_FILES} " if fmt == "music_avqa" else ""
        raise AnnotationError(f"no {fmt} question annotations {names}under {raw}")
    return pd.concat([reader(f) for f in files], ignore_index=True)
