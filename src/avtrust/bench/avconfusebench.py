"""AV-ConfuseBench: m1 (a visible instrument is muted) and m2 (the soundtrack is replaced).

m1 needs scenes with per-instrument stems, so the ground truth is exact: the muted
stem is simply left out of the mix. m2 replaces (or, beyond the paper, mixes at a
chosen SNR) the soundtrack with an environmental sound.
"""

from __future__ import annotations

from avtrust import data_files
from avtrust.bench.samples import TaskContext

# Tasks whose builders read the dataset's question annotations: none, both use the manifest.
USES_QUESTIONS: set[str] = set()

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"]


def _join(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def m1(ctx: TaskContext) -> list[dict]:
    template = data_files.load("templates")["avconfusebench"]["m1"]
    min_k = ctx.params.get("min_instruments", 2)
    labels, stems = ctx.clip_labels, ctx.clip_stems
    scenes = [
        c for c in ctx.clip_ids if len(labels[c]) >= min_k and len(stems[c]) == len(labels[c])
    ]
    rows = []
    for i, k in enumerate(ctx.pick(len(scenes))):
        clip = scenes[k]
        instruments = list(labels[clip])
        muted = int(ctx.rng.integers(len(instruments)))
        rows.append(
            ctx.row(
                i,
                source_ids=[clip],
                question=template["question"].format(instrument=instruments[muted]),
                options=list(template["options"]),
                answer=template["answer"],
                category=NUMBER_WORDS[len(instruments)],
                op="mute_stem",
                op_args={
                    "video_src": ctx.clip_path(clip),
                    "stems": list(stems[clip]),
                    "muted": muted,
                },
                instruments=instruments,
                muted_instrument=instruments[muted],
            )
        )
    return rows


def m2(ctx: TaskContext) -> list[dict]:
    template = data_files.load("templates")["avconfusebench"]["m2"]
    types, snrs = ctx.params["sound_types"], ctx.params["snr_db"]
    sound_paths = dict(zip(ctx.sounds.index, map(str, ctx.sounds["path"]), strict=True))
    sound_labels = dict(zip(ctx.sounds.index, ctx.sounds["labels"], strict=True))
    by_type = {t: sorted(s for s, ls in sound_labels.items() if t in ls) for t in types}
    missing = [t for t, clips in by_type.items() if not clips]
    if missing:
        raise ValueError(
            f"m2: no usable sounds of type {missing} in dataset {ctx.params['sounds']!r}"
        )
    clips = [c for c in ctx.clip_ids if len(ctx.clip_labels[c]) > 0]
    rows = []
    for i, k in enumerate(ctx.pick(len(clips))):
        clip = clips[k]
        # Balanced design: every sound type, and within it every SNR, equally often.
        sound_type = types[i % len(types)]
        snr = snrs[(i // len(types)) % len(snrs)]
        sound = by_type[sound_type][int(ctx.rng.integers(len(by_type[sound_type])))]
        instruments = list(ctx.clip_labels[clip])
        annotation = template["replaced" if snr is None else "mixed"].format(
            visual=_join([f"a {x}" for x in instruments]),
            sound=template["sound_names"][sound_type],
            instrument_sound=_join([f"the {x}" for x in instruments]),
        )
        rows.append(
            ctx.row(
                i,
                source_ids=[clip, sound],
                question=template["question"],
                options=[],
                answer=annotation,
                category=sound_type,
                op="replace_soundtrack",
                op_args={
                    "video_src": ctx.clip_path(clip),
                    "sound_src": sound_paths[sound],
                    "snr_db": snr,
                },
                instruments=instruments,
                sound_type=sound_type,
                snr_db=snr,
            )
        )
    return rows


BUILDERS = {"m1": m1, "m2": m2}
