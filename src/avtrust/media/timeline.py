"""Where a clip's streams sit on its timeline, so that media are read as a player plays them.

A container can start its audio later than its pictures (an edit list, an ``-itsoffset``,
a recorder that starts the microphone late) and can turn its pictures with a display
matrix (phones film portrait as a landscape picture turned 90°). A player follows both;
ffmpeg's decoders follow the rotation by themselves (``-autorotate``, on by default) but
write audio samples back to back from the first one. This module holds what the readers
and the manipulations use to follow the timing too.
"""

from __future__ import annotations

# An ffmpeg audio filter that puts decoded audio on the clip's timeline: silence from the
# clip's start until the audio stream starts, and gaps in its timestamps filled with
# silence. Without it a soundtrack that starts 2 s into the clip would come out from 0 s,
# 2 s ahead of its pictures. ffmpeg's raw outputs start at the clip's start, the frames
# included (they repeat the first frame over a late video start), so both line up.
ON_TIMELINE = "aresample=async=1:first_pts=0"

# An audio start later than this (seconds) is carried into an output that holds the audio
# alone, as leading silence; below it nobody hears the shift (lip sync is noticed from
# about 45 ms of audio lag, ITU-R BT.1359), and a stream copy is kept.
LATE_AUDIO_S = 0.045


def starts_late(audio_offset: float | None) -> bool:
    """Whether an audio stream starting ``audio_offset`` s after its clip starts late."""
    return audio_offset is not None and audio_offset > LATE_AUDIO_S
