"""The nine AVTrustBench tasks: which clips each sample uses, its question and answer.

Adversarial (MCIT, ICIT, MVIT, MAIT) and the compositional order tasks ask the
source dataset's own question under a manipulation whose correct answer is an
abstention; MAT/MVT do the same for a missing modality. CAT tests attribute binding on
two-event clips. Pairing rules are in ``samples.disjoint_partner``.
"""

from __future__ import annotations

from avtrust import data_files
from avtrust.bench.samples import TaskContext, disjoint_partner


def _avqa_questions(ctx: TaskContext):
    q = ctx.questions
    return q[q["video_id"].isin(ctx.clips.index)].reset_index(drop=True)


def mcit(ctx: TaskContext) -> list[dict]:
    """Missing choice: the correct option is removed; the answer is "None of the above"."""
    q = _avqa_questions(ctx)
    none = ctx.wording["none_of_the_above"]
    rows = []
    for i, k in enumerate(ctx.pick(len(q))):
        rec = q.iloc[k]
        wrong = [o for j, o in enumerate(rec["options"]) if j != rec["answer_index"]]
        rows.append(
            ctx.row(
                i,
                source_ids=[rec["video_id"]],
                question=rec["question"],
                options=[*ctx.shuffled(wrong), none],
                answer=none,
                category=rec["question_type"],
                op="none",
                op_args={"src": ctx.clip_path(rec["video_id"])},
            )
        )
    return rows


def icit(ctx: TaskContext) -> list[dict]:
    """Inconsistent choices: every option comes from questions about unrelated clips."""
    q = _avqa_questions(ctx)
    irrelevant = ctx.wording["irrelevant_options"]
    rows = []
    for i, k in enumerate(ctx.pick(len(q))):
        rec = q.iloc[k]
        own = {o.lower() for o in rec["options"]} | {
            x.lower() for x in ctx.clips.at[rec["video_id"], "labels"]
        }
        # Options of the same question type about other clips, none of which appear in
        # this clip's own options or labels.
        same_type = q[
            (q["question_type"] == rec["question_type"]) & (q["video_id"] != rec["video_id"])
        ]
        pool = sorted({o for opts in same_type["options"] for o in opts if o.lower() not in own})
        if len(pool) < 3:
            raise ValueError(f"ICIT: fewer than 3 irrelevant options for {rec['video_id']}")
        chosen = [pool[j] for j in ctx.rng.choice(len(pool), size=3, replace=False)]
        rows.append(
            ctx.row(
                i,
                source_ids=[rec["video_id"]],
                question=rec["question"],
                options=[*chosen, irrelevant],
                answer=irrelevant,
                category=rec["question_type"],
                op="none",
                op_args={"src": ctx.clip_path(rec["video_id"])},
            )
        )
    return rows


def _mismatched(ctx: TaskContext, audio_from_question_clip: bool) -> list[dict]:
    """MVIT/MAIT: the question's clip keeps one modality, a disjoint clip gives the other."""
    q = _avqa_questions(ctx)
    mismatch = ctx.wording["mismatch"]
    clip_ids = list(ctx.clips.index)
    rows, i = [], 0
    for k in ctx.pick(len(q)):
        rec = q.iloc[k]
        own = rec["video_id"]
        other = disjoint_partner(ctx, own, clip_ids)
        if other is None:
            continue
        # MVIT: audio of clip 1 on the video of clip 2; MAIT: video of clip 1, audio of clip 2.
        video, audio = (other, own) if audio_from_question_clip else (own, other)
        rows.append(
            ctx.row(
                i,
                source_ids=[own, other],
                question=rec["question"],
                options=[*rec["options"], mismatch],
                answer=mismatch,
                category=rec["question_type"],
                op="combine",
                op_args={"video_src": ctx.clip_path(video), "audio_src": ctx.clip_path(audio)},
            )
        )
        i += 1
    return rows


def mvit(ctx: TaskContext) -> list[dict]:
    return _mismatched(ctx, audio_from_question_clip=True)


def mait(ctx: TaskContext) -> list[dict]:
    return _mismatched(ctx, audio_from_question_clip=False)


def _event_name(ctx: TaskContext, clip_id: str) -> str:
    return " and ".join(ctx.clips.at[clip_id, "labels"])


def _order_task(ctx: TaskContext, swap: bool) -> list[dict]:
    """COT-Stitch (answer: the true order) and COT-Swap (answer: mismatch)."""
    template = data_files.load("templates")["avtrustbench"][ctx.task]
    mismatch = ctx.wording["mismatch"]
    labelled = [c for c in ctx.clips.index if len(ctx.clips.at[c, "labels"]) > 0]
    # Single-event clips make the order unambiguous; fall back to all labelled clips.
    single = [c for c in labelled if len(ctx.clips.at[c, "labels"]) == 1] or labelled
    all_labels = sorted({lab for c in labelled for lab in ctx.clips.at[c, "labels"]})
    rows, i = [], 0
    for k in ctx.pick(len(single)):
        first = single[k]
        second = disjoint_partner(ctx, first, single)
        if second is None:
            continue
        a, b = _event_name(ctx, first), _event_name(ctx, second)
        used = set(ctx.clips.at[first, "labels"]) | set(ctx.clips.at[second, "labels"])
        others = [lab for lab in all_labels if lab not in used]
        c = others[int(ctx.rng.integers(len(others)))] if others else None
        order = template["order_option"]
        content = [order.format(first=a, second=b), order.format(first=b, second=a)]
        if c is not None:
            content.append(
                order.format(first=a, second=c)
                if ctx.rng.random() < 0.5
                else order.format(first=c, second=b)
            )
        options = [*ctx.shuffled(content), mismatch]
        rows.append(
            ctx.row(
                i,
                source_ids=[first, second],
                question=template["question"],
                options=options,
                answer=mismatch if swap else content[0],
                category="swap" if swap else "stitch",
                op="swap_stitch" if swap else "concat",
                op_args={"src1": ctx.clip_path(first), "src2": ctx.clip_path(second)},
            )
        )
        i += 1
    return rows


def cot_stitch(ctx: TaskContext) -> list[dict]:
    return _order_task(ctx, swap=False)


def cot_swap(ctx: TaskContext) -> list[dict]:
    return _order_task(ctx, swap=True)


def cat(ctx: TaskContext) -> list[dict]:
    """Attribute binding on two-event clips: the true binding vs. swapped and foreign verbs."""
    template = data_files.load("templates")["avtrustbench"]["CAT"]
    attrs = data_files.load("attributes")
    eligible = []
    for c in ctx.clips.index:
        labels = [lab for lab in ctx.clips.at[c, "labels"] if lab in attrs]
        if len(labels) >= 2:
            (n1, v1), (n2, v2) = ((attrs[x]["noun"], attrs[x]["verb"]) for x in labels[:2])
            if n1 != n2 and v1 != v2:  # otherwise the swap is not a different statement
                eligible.append((c, n1, v1, n2, v2))
    verbs = sorted({a["verb"] for a in attrs.values()})
    say = template["binding_option"]
    rows = []
    for i, k in enumerate(ctx.pick(len(eligible))):
        clip, n1, v1, n2, v2 = eligible[k]
        foreign = [v for v in verbs if v not in (v1, v2)]
        v3 = foreign[int(ctx.rng.integers(len(foreign)))]
        correct = say.format(noun1=n1, verb1=v1, noun2=n2, verb2=v2)
        content = [
            correct,
            say.format(noun1=n1, verb1=v2, noun2=n2, verb2=v1),
            say.format(noun1=n1, verb1=v3, noun2=n2, verb2=v2),
            say.format(noun1=n1, verb1=v1, noun2=n2, verb2=v3),
        ]
        rows.append(
            ctx.row(
                i,
                source_ids=[clip],
                question=template["question"],
                options=ctx.shuffled(content),
                answer=correct,
                category="binding",
                op="none",
                op_args={"src": ctx.clip_path(clip)},
            )
        )
    return rows


def _missing_modality(ctx: TaskContext, missing: str) -> list[dict]:
    """MAT/MVT: a MUSIC-AVQA question about a clip whose audio (video) was removed."""
    q = ctx.questions[ctx.questions["video_id"].isin(ctx.clips.index)].reset_index(drop=True)
    abstain = ctx.wording["audio_missing" if missing == "audio" else "visual_missing"]
    answers_by_cat = q.groupby("category")["answer"].agg(lambda s: sorted(set(s))).to_dict()
    all_answers = sorted(set(q["answer"]))
    rows = []
    for i, k in enumerate(ctx.pick(len(q))):
        rec = q.iloc[k]
        pool = [a for a in answers_by_cat[rec["category"]] if a != rec["answer"]]
        if len(pool) < 2:
            pool = [a for a in all_answers if a != rec["answer"]]
        distractors = [pool[j] for j in ctx.rng.choice(len(pool), size=2, replace=False)]
        src = ctx.clip_path(rec["video_id"])
        rows.append(
            ctx.row(
                i,
                source_ids=[rec["video_id"]],
                question=rec["question"],
                options=[*ctx.shuffled([rec["answer"], *distractors]), abstain],
                answer=abstain,
                category=rec["category"],
                op="strip_audio" if missing == "audio" else "strip_video",
                op_args={"src": src},
                ext="mp4" if missing == "audio" else "m4a",
            )
        )
    return rows


def mat(ctx: TaskContext) -> list[dict]:
    return _missing_modality(ctx, "audio")


def mvt(ctx: TaskContext) -> list[dict]:
    return _missing_modality(ctx, "video")


BUILDERS = {
    "MCIT": mcit,
    "ICIT": icit,
    "MVIT": mvit,
    "MAIT": mait,
    "COT-Stitch": cot_stitch,
    "COT-Swap": cot_swap,
    "CAT": cat,
    "MAT": mat,
    "MVT": mvt,
}
