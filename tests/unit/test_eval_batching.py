"""Batched evaluation on the tiny Omni thinker gives what one sample at a time gives.

Left padding in ``OmniThinker.generate`` (a batch of prompts of different lengths
continues each from its own last token), each clip decoded once per batch and once for
all options in log-likelihood mode (its tensors repeated per option), clips decoded in
parallel, and the shared per-clip cache (:mod:`avtrust.models.media_cache`).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from avtrust.evaluate.infer import Predictor, Settings, run_shard  # noqa: E402
from avtrust.models import registry  # noqa: E402
from avtrust.models.media_cache import cache_decoding, clear_cache  # noqa: E402

SHORT = "What plays?"
LONG = "Listen to the clip and watch it closely: which of the instruments is being played now?"


@pytest.fixture(scope="module")
def thinker(tmp_path_factory):
    spec = registry.ModelSpec("omni", "qwen2_5_omni_thinker", "tiny", "Qwen/Qwen2.5-Omni-3B")
    return registry.load(registry.prepare(spec, tmp_path_factory.mktemp("omni"), seed=3))


def new_tokens(thinker, batch, n):
    with torch.inference_mode():
        ids = thinker.model.generate(**batch, max_new_tokens=n, do_sample=False)
    return ids[:, batch["input_ids"].shape[1] :].tolist()


def test_batched_generation_pads_left_and_matches_each_prompt_alone(thinker, clips):
    paths = [clips["violin"].path, clips["cello"].path]
    tok = thinker.tokenizer
    side = tok.padding_side
    tok.padding_side = "right"  # the default of many tokenizers: wrong for generation
    try:
        batch = thinker.generation_inputs(paths, [SHORT, LONG])
        mask = batch["attention_mask"]
        assert mask[0, 0] == 0 and mask[0, -1] == 1 and mask[1].all()  # short row: left pad
        batched = new_tokens(thinker, batch, 8)
        for i, question in enumerate([SHORT, LONG]):
            alone = new_tokens(thinker, thinker.generation_inputs([paths[i]], [question]), 8)[0]
            assert batched[i][: len(alone)] == alone
        texts = thinker.generate(paths, [SHORT, LONG], max_new_tokens=8, batch_size=2)
        assert texts == [thinker.generate([p], [q], max_new_tokens=8)[0]
                         for p, q in zip(paths, [SHORT, LONG], strict=True)]  # fmt: skip
        assert tok.padding_side == "right"  # restored for training's label layout
        right = thinker.inputs(paths, [SHORT, LONG])["attention_mask"]
        assert right[0, 0] == 1 and right[0, -1] == 0
    finally:
        tok.padding_side = side


def test_repeated_and_parallel_decoding_give_the_same_tensors(thinker, clips):
    builder = thinker.builder
    a, b = clips["violin"].path, clips["cello"].path
    alone = {p: thinker.inputs([p], [SHORT], ["a violin"]) for p in (a, b)}
    builder.workers = 2
    try:
        batch = thinker.inputs([a, a, b, a], [SHORT] * 4, ["a violin", "a cello", "x", "y"])
    finally:
        builder.workers = 1
    rows = [a, a, b, a]
    for key in ("input_features", "feature_attention_mask"):
        for i, p in enumerate(rows):
            assert torch.equal(batch[key][i], alone[p][key][0])
    per_clip = alone[a]["pixel_values_videos"].shape[0]
    expected = torch.cat([alone[p]["pixel_values_videos"] for p in rows])
    assert batch["pixel_values_videos"].shape[0] == 4 * per_clip
    assert torch.equal(batch["pixel_values_videos"], expected)
    assert batch["video_grid_thw"].tolist() == alone[a]["video_grid_thw"].tolist() * 4
    # a repeated clip's rows score exactly as the clip alone does
    with torch.inference_mode():
        lp = thinker.sequence_logprobs(batch)
        ref = thinker.sequence_logprobs(alone[a])
    assert lp[0].item() == pytest.approx(ref.item(), abs=1e-4)


def rows_for(clips):
    def row(i, name, question, options, answer):
        return {"id": f"s{i}", "bench": "avtrustbench", "task": "MCIT", "category": None,
                "media_path": str(clips[name].path), "has_audio": name != "video_only",
                "has_video": name != "audio_only", "question": question,
                "options": options, "answer": options[answer],
                "answer_index": answer}  # fmt: skip

    return [
        row(0, "violin", SHORT, ["violin", "cello", "Audio is missing"], 0),
        row(1, "cello", LONG, ["a cello being bowed slowly", "piano"], 0),
        row(2, "violin", "Is there a violin sound?", ["yes", "no"], 0),
        row(3, "audio_only", SHORT, ["flute", "drum", "none of the above"], 0),
        row(4, "cello", "Which one?", ["violin", "cello"], 1),
    ]


def test_batched_predictions_equal_one_by_one_and_each_clip_is_decoded_once(
    thinker, clips, tmp_path
):
    rows = rows_for(clips)
    unique = len({r["media_path"] for r in rows})
    tables = {}
    for size in (1, 4):
        predictor = Predictor(thinker, threads=2, cache=8)
        clear_cache(thinker.builder)
        settings = Settings(modes=("generate", "loglik"), batch_size=size, max_new_tokens=6)
        table = run_shard(
            predictor, rows, settings, model_id="tiny", state_dir=tmp_path / f"{size}"
        )
        tables[size] = {(r["id"], r["mode"]): r for r in table.to_pylist()}
        # both modes, every option: each clip probed and decoded once
        assert thinker.builder.read_clip.misses == unique
    one, batched = tables[1], tables[4]
    assert sorted(one) == sorted(batched) and len(one) == 2 * len(rows)
    for key, r in one.items():
        assert (batched[key]["raw"], batched[key]["parsed_index"]) == (r["raw"], r["parsed_index"])
        if key[1] == "loglik":
            assert batched[key]["option_tokens"] == r["option_tokens"]
            assert batched[key]["option_logprobs"] == pytest.approx(r["option_logprobs"], abs=1e-4)
    # the option scores are what each (clip, prompt, option) gives in a forward of its own
    r = batched[("s1", "loglik")]
    with torch.inference_mode():
        for option, lp in zip(rows[1]["options"], r["option_logprobs"], strict=True):
            alone = thinker.inputs([rows[1]["media_path"]], [r["prompt"]], [option])
            assert thinker.sequence_logprobs(alone).item() == pytest.approx(lp, abs=1e-4)


def test_cache_is_shared_and_cleared(thinker, clips):
    builder = cache_decoding(thinker.builder, 4)
    assert cache_decoding(builder, 4) is builder  # idempotent: one wrapper
    clear_cache(builder)
    thinker.inputs([clips["violin"].path], [SHORT])
    thinker.inputs([clips["violin"].path], [LONG])
    assert builder.read_clip.misses == 1 and builder.feature_extractor.memo.misses == 1
    clear_cache(builder)
    assert builder.read_clip.misses == 0 and not builder.read_clip.entries
