"""Which codecs an output container takes, so a stream is copied only where it can be.

Users' folders hold mkv, webm, avi and mov next to mp4; the manipulations write mp4 (m4a
for audio alone), which does not take every codec. Planning asks :func:`unfit` with the
codecs the manifest recorded and plans a re-encode of just those streams; the rest are
copied. The sets are what the standards (and so the players) accept, not everything
ffmpeg will mux: ffmpeg 5.1 also writes Vorbis into mp4, which hardly anything plays.
"""

from __future__ import annotations

import os

# Codecs by ffprobe's codec_name. A container not listed here takes everything (Matroska,
# used for intermediate files).
TAKES: dict[str, dict[str, frozenset[str]]] = {
    "mp4": {
        "video": frozenset({"h264", "hevc", "mpeg4", "av1", "vp9"}),
        "audio": frozenset({"aac", "mp3", "opus", "alac", "ac3", "eac3"}),
    },
    # The iPod/m4a muxer: no MP3 or Opus.
    "m4a": {"video": frozenset(), "audio": frozenset({"aac", "alac", "ac3", "eac3"})},
    "mov": {
        "video": frozenset({"h264", "hevc", "mpeg4", "prores", "mjpeg"}),
        "audio": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"}),
    },
}


def container_of(path_or_ext: str | os.PathLike) -> str:
    """``"mp4"`` for ``x/y.mp4``, ``.mp4`` or ``mp4``."""
    text = os.fspath(path_or_ext)
    return text.rsplit(".", 1)[-1].lower()


def takes(container: str, kind: str, codec: str | None) -> bool:
    """Whether ``container`` can hold a ``kind`` ("video"/"audio") stream of ``codec`` as it
    is. No stream (``codec`` None) needs nothing."""
    accepted = TAKES.get(container_of(container))
    return codec is None or accepted is None or codec in accepted[kind]


def unfit(container: str, video_codec: str | None, audio_codec: str | None) -> list[str]:
    """The kinds ("video", "audio", in that order) whose codec ``container`` does not take:
    the streams to re-encode instead of copying."""
    return [
        kind
        for kind, codec in (("video", video_codec), ("audio", audio_codec))
        if not takes(container, kind, codec)
    ]
