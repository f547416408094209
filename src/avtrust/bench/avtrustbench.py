"""The nine AVTrustBench tasks: which clips each sample uses, its question and answer.

Adversarial (MCIT, ICIT, MVIT, MAIT) and the compositional order tasks ask the
source dataset's own question under a manipulation whose correct answer is an
abstention; MAT/MVT do the same for a missing modality. CAT tests attribute binding on
two-event clips. Pairing rules are in ``samples.PartnerPool``.

Options are of the answer's kind (``answer_kinds``): AVQA questions keep their own four
options; a question without options (MUSIC-AVQA) gets its answer and distractors of the
answer's kind drawn from the dataset's answers (MCIT, MVIT, MAIT; MAT/MVT add the
abstention to the answer and two distractors); ICIT's irrelevant options come from
questions of the same type whose options are of the answer's kind. Where a kind has
fewer values than asked for (yes/no, sides, indoor/outdoor), the list is shorter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avtrust import data_files
from avtrust.bench.answer_kinds import Distractors, kind_of, related
from avtrust.bench.samples import PartnerPool, Survivors, TaskContext

# Tasks whose builders read the dataset's question annotations.
USES_QUESTIONS = {"MCIT", "ICIT", "MVIT", "MAIT", "MAT", "MVT"}


@dataclass
class Questions:
    """The question annotations about the manifest's clips, one plain list per column.

    Builders index these lists per sample; a pandas row lookup per sample would cost
    more than everything else a builder does.
    """

    video_id: list[str]
    question: list[str]
    options: list[list[str] | None]  # AVQA; None: open answer (MUSIC-AVQA)
    answer_index: list[int]  # AVQA
    question_type: list[str]  # AVQA's question type; MUSIC-AVQA's category
    answer: list[str]
    category: list[str]  # MUSIC-AVQA
    template: list[str]  # MUSIC-AVQA's question_content, else the question

    def __len__(self) -> int:
        return len(self.video_id)

    def answer_of(self, k: int) -> str:
        """The answer of question ``k`` (AVQA: its option at answer_index)."""
        if self.options[k] is not None and self.answer[k] is None:
            return self.options[k][self.answer_index[k]]
        return self.answer[k]

    def distractors(self) -> Distractors:
        """Same-kind distractors drawn from this dataset's answers."""
        if not hasattr(self, "_distractors"):
            answers = [self.answer_of(k) for k in range(len(self))]
            self._distractors = Distractors(answers, self.template)
        return self._distractors

    def own_options(self, k: int, rng: np.random.Generator, n: int = 3) -> list[str]:
        """Question ``k``'s options: AVQA's own, else its answer and ``n`` distractors of
        the answer's kind (fewer where the kind has fewer values), shuffled."""
        if self.options[k] is not None:
            return list(self.options[k])
        answer = self.answer[k]
        chosen = self.distractors().draw(answer, n, rng, template=self.template[k])
        options = [answer, *chosen]
        return [options[j] for j in rng.permutation(len(options)).tolist()]


def _questions(ctx: TaskContext) -> Questions:
    """``ctx.questions`` restricted to clips of the manifest, in annotation order."""
    q = ctx.questions
    q = q[q["video_id"].isin(ctx.clips.index)]

    def column(name: str, default: str | None = None) -> list:
        if name in q:
            return q[name].tolist()
        return column(default) if default else [None] * len(q)

    options = [None if o is None else list(o) for o in column("options")]
    return Questions(
        video_id=column("video_id"),
        question=column("question"),
        options=options,
        answer_index=column("answer_index"),
        question_type=column("question_type", "category"),
        answer=column("answer"),
        category=column("category"),
        template=column("question_content", "question"),
    )


def mcit(ctx: TaskContext) -> list[dict]:
    """Missing choice: the correct option is removed; the answer is "None of the above"."""
    q = _questions(ctx)
    none = ctx.wording["none_of_the_above"]
    rows = []
    for i, k in enumerate(ctx.pick(len(q))):
        answer = q.answer_of(k)
        wrong = [o for o in q.own_options(k, ctx.rng) if o != answer]
        rows.append(
            ctx.row(
                i,
                source_ids=[q.video_id[k]],
                question=q.question[k],
                options=[*ctx.shuffled(wrong), none],
                answer=none,
                category=q.question_type[k],
                op="none",
                op_args={"src": ctx.clip_path(q.video_id[k])},
            )
        )
    return rows


def option_group(option: str) -> str:
    """ICIT pools options by question type and this: the option's kind, instruments
    and events together (they fit each other, ``answer_kinds.RELATED``)."""
    kind = kind_of(option)
    return "event" if kind in related(["event"]) else kind


class IrrelevantOptions:
    """ICIT distractors: options of same-type questions about *other* clips that are
    neither among the question's own options nor the clip's labels (case-insensitive),
    and of the kind of the question's answer (``option_group``).

    Per (question type, kind) the distinct options are sorted once; a question's pool is
    that list minus (a) options that only questions about its own clip have and (b)
    options matching its own options or labels, addressed by rank through ``Survivors``
    so no per-sample scan of the question table is needed. A question without options
    (MUSIC-AVQA) contributes its answer.
    """

    def __init__(self, q: Questions):
        # (type, kind) -> option -> its sole video, or None when several videos have it
        videos_of: dict[tuple[str, str], dict[str, str | None]] = {}
        for k, (video, qtype) in enumerate(zip(q.video_id, q.question_type, strict=True)):
            options = q.options[k] if q.options[k] is not None else [q.answer[k]]
            for o in options:
                owner = videos_of.setdefault((qtype, option_group(o)), {})
                owner[o] = video if owner.get(o, video) == video else None
        self.sorted: dict[tuple[str, str], list[str]] = {}
        self._by_lower: dict[tuple[str, str], dict[str, list[int]]] = {}
        self._only_in: dict[tuple[str, str], dict[str, list[int]]] = {}
        for qtype, owner in videos_of.items():
            self.sorted[qtype] = ordered = sorted(owner)
            by_lower = self._by_lower[qtype] = {}
            only_in = self._only_in[qtype] = {}
            for p, o in enumerate(ordered):
                by_lower.setdefault(o.lower(), []).append(p)
                if owner[o] is not None:
                    only_in.setdefault(owner[o], []).append(p)

    def pool(self, key: tuple[str, str], video: str, own: set[str]) -> Survivors:
        """Ranks into ``self.sorted[key]`` (key: question type, ``option_group`` of the
        answer) of the usable options; ``own`` is lower-case."""
        if key not in self.sorted:
            return Survivors(0, [])
        removed = set(self._only_in[key].get(video, ()))
        for o in own:
            removed.update(self._by_lower[key].get(o, ()))
        return Survivors(len(self.sorted[key]), sorted(removed))


def icit(ctx: TaskContext) -> list[dict]:
    """Inconsistent choices: every option comes from questions about unrelated clips.

    A question whose kind has fewer than 3 irrelevant options (a yes/no question, a side
    or indoor/outdoor one) is skipped; no question with enough is an error.
    """
    q = _questions(ctx)
    irrelevant = ctx.wording["irrelevant_options"]
    distractors = IrrelevantOptions(q)
    rows, i = [], 0
    for k in ctx.pick(len(q)):
        video, qtype = q.video_id[k], q.question_type[k]
        own_options = q.options[k] if q.options[k] is not None else [q.answer[k]]
        own = {o.lower() for o in own_options} | {x.lower() for x in ctx.clip_labels[video]}
        key = (qtype, option_group(q.answer_of(k)))
        pool = distractors.pool(key, video, own)
        if len(pool) < 3:
            continue
        ordered = distractors.sorted[key]
        chosen = [ordered[pool[j]] for j in ctx.rng.choice(len(pool), size=3, replace=False)]
        rows.append(
            ctx.row(
                i,
                source_ids=[video],
                question=q.question[k],
                options=[*chosen, irrelevant],
                answer=irrelevant,
                category=qtype,
                op="none",
                op_args={"src": ctx.clip_path(video)},
            )
        )
        i += 1
    if not rows:
        raise ValueError(
            f"ICIT: no question of dataset {ctx.dataset!r} has 3 irrelevant options of its "
            "answer's kind"
        )
    return rows


def _mismatched(ctx: TaskContext, audio_from_question_clip: bool) -> list[dict]:
    """MVIT/MAIT: the question's clip keeps one modality, a disjoint clip gives the other."""
    q = _questions(ctx)
    mismatch = ctx.wording["mismatch"]
    partners = PartnerPool(ctx.clip_ids, ctx.clip_labels)
    rows, i = [], 0
    for k, other in ctx.pick_pairs(q.video_id, partners):
        own = q.video_id[k]
        # MVIT: audio of clip 1 on the video of clip 2; MAIT: video of clip 1, audio of clip 2.
        video, audio = (other, own) if audio_from_question_clip else (own, other)
        rows.append(
            ctx.row(
                i,
                source_ids=[own, other],
                question=q.question[k],
                options=[*q.own_options(k, ctx.rng), mismatch],
                answer=mismatch,
                category=q.question_type[k],
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


def _order_task(ctx: TaskContext, swap: bool) -> list[dict]:
    """COT-Stitch (answer: the true order) and COT-Swap (answer: mismatch)."""
    template = data_files.load("templates")["avtrustbench"][ctx.task]
    mismatch = ctx.wording["mismatch"]
    labels = ctx.clip_labels
    labelled = [c for c in ctx.clip_ids if len(labels[c]) > 0]
    # Single-event clips make the order unambiguous; fall back to all labelled clips.
    single = [c for c in labelled if len(labels[c]) == 1] or labelled
    all_labels = sorted({lab for c in labelled for lab in labels[c]})
    label_rank = {lab: r for r, lab in enumerate(all_labels)}
    partners = PartnerPool(single, labels)
    duration = None  # each clip's duration, as the index probed it
    if "duration" in ctx.clips.columns:
        duration = dict(zip(ctx.clip_ids, ctx.clips["duration"], strict=True))
    rows, i = [], 0
    for k, second in ctx.pick_pairs(single, partners):
        first = single[k]
        a, b = " and ".join(labels[first]), " and ".join(labels[second])
        # A third event for the distractor order: any label neither clip has.
        used = sorted({label_rank[lab] for lab in (*labels[first], *labels[second])})
        others = Survivors(len(all_labels), used)
        c = all_labels[others[int(ctx.rng.integers(len(others)))]] if others else None
        order = template["order_option"]
        content = [order.format(first=a, second=b), order.format(first=b, second=a)]
        if c is not None:
            content.append(
                order.format(first=a, second=c)
                if ctx.rng.random() < 0.5
                else order.format(first=c, second=b)
            )
        options = [*ctx.shuffled(content), mismatch]
        op_args = {
            "src1": ctx.clip_path(first),
            "src2": ctx.clip_path(second),
            # Decided here from the manifest so the shard need not probe the clips.
            "copy": ctx.joinable_by_copy(first, second),
        }
        if not swap and op_args["copy"] and duration is not None:
            # where a copy join places the second clip (COT-Swap joins halves it makes)
            op_args["durations"] = [float(duration[c]) for c in (first, second)]
        rows.append(
            ctx.row(
                i,
                source_ids=[first, second],
                question=template["question"],
                options=options,
                answer=mismatch if swap else content[0],
                category="swap" if swap else "stitch",
                op="swap_stitch" if swap else "concat",
                op_args=op_args,
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
    for c in ctx.clip_ids:
        labels = [lab for lab in ctx.clip_labels[c] if lab in attrs]
        if len(labels) >= 2:
            (n1, v1), (n2, v2) = ((attrs[x]["noun"], attrs[x]["verb"]) for x in labels[:2])
            if n1 != n2 and v1 != v2:  # otherwise the swap is not a different statement
                eligible.append((c, n1, v1, n2, v2))
    verbs = sorted({a["verb"] for a in attrs.values()})
    say = template["binding_option"]
    foreign_to: dict[tuple[str, str], list[str]] = {}  # verbs of neither source
    rows = []
    for i, k in enumerate(ctx.pick(len(eligible))):
        clip, n1, v1, n2, v2 = eligible[k]
        if (v1, v2) not in foreign_to:
            foreign_to[v1, v2] = [v for v in verbs if v not in (v1, v2)]
        foreign = foreign_to[v1, v2]
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
    q = _questions(ctx)
    abstain = ctx.wording["audio_missing" if missing == "audio" else "visual_missing"]
    distractors = q.distractors()
    rows = []
    for i, k in enumerate(ctx.pick(len(q))):
        answer = q.answer[k]
        # Two distractors of the answer's kind (a yes/no question has one: 3 options).
        wrong = distractors.draw(answer, 2, ctx.rng, template=q.template[k])
        rows.append(
            ctx.row(
                i,
                source_ids=[q.video_id[k]],
                question=q.question[k],
                options=[*ctx.shuffled([answer, *wrong]), abstain],
                answer=abstain,
                category=q.category[k],
                op="strip_audio" if missing == "audio" else "strip_video",
                op_args={"src": ctx.clip_path(q.video_id[k])},
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
