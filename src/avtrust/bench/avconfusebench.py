"""AV-ConfuseBench: m1 (a visible instrument is muted) and m2 (the soundtrack is replaced).

m1 needs scenes with per-instrument stems, so the ground truth is exact: the muted
stem is simply left out of the mix. m2 replaces (or, beyond the paper, mixes at a
chosen SNR) the soundtrack with an environmental sound.
"""

from __future__ import annotations

import re

from avtrust import data_files
from avtrust.bench.samples import TaskContext

# Tasks whose builders read the dataset's question annotations: none, both use the manifest.
USES_QUESTIONS: set[str] = set()

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"]


# Words starting with a vowel letter but a consonant sound ("a ukulele", "a euphonium",
# "a one-man band"): u read as "yoo" before these letters, eu, ew, one.
_CONSONANT_SOUND = re.compile(r"^(?:u(?:k|ni|s[aeiu]|t[aeiu]|r[aeio]|bi|ga)|eu|ew|one)")


def indefinite_article(name: str) -> str:
    """The article ("a" or "an") before an instrument name, by its first sound as spelled.

    Rule: "an" before a vowel letter (a, e, i, o, u), except where the letter is read
    as a consonant: u as "yoo" (uk-, uni-, usa-, use-, usu-, ut-, ura-, ure-, ... so
    "a ukulele", "a unison"), eu/ew ("a euphonium") and one. Every other word takes
    "a" (a silent h, as in "an hour", does not occur among instrument names). So:
    "an accordion", "an acoustic_guitar", "an erhu", "an electric_bass", "an oboe",
    "a ukulele", "a violin", "a xylophone".
    """
    word = name.strip().lower()
    if word[:1] in ("a", "e", "i", "o", "u") and not _CONSONANT_SOUND.match(word):
        return "an"
    return "a"


def m1_question(instrument: str) -> str:
    """The m1 question about ``instrument``, in the paper's wording."""
    template = data_files.load("templates")["avconfusebench"]["m1"]["question"]
    return template.format(article=indefinite_article(instrument), instrument=instrument)


def release_m1_question(instrument: str) -> str:
    """The m1 question about ``instrument`` as the release words it (its prompt layout:
    "... muted. Please answer:\\n Is there a violin sound? \\nYour answer can only be
    'yes' or 'no'"), with "there" as its later records spell it and the right article."""
    template = data_files.load("templates")["avconfusebench"]["m1"]["release_question"]
    return template.format(article=indefinite_article(instrument), instrument=instrument)


def release_sound_type(sound_type: str) -> str:
    """The m2 sound type as the release spells it (``thunder`` -> ``thunderstorm``)."""
    names = data_files.load("templates")["avconfusebench"]["m2"]["release_sound_types"]
    return names.get(sound_type, sound_type)


def project_sound_type(released: str) -> str:
    """This project's name of a released m2 sound type (``thunderstorm`` -> ``thunder``)."""
    names = data_files.load("templates")["avconfusebench"]["m2"]["release_sound_types"]
    ours = {r: o for o, r in names.items()}
    key = released.strip().lower()
    return ours.get(key, key)


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
                question=m1_question(instruments[muted]),
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
            visual=_join([f"{indefinite_article(x)} {x}" for x in instruments]),
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
