"""Starting the tiny thinker from the audio LLM (avtrust.pretrain.thinker_init): the
language model, audio encoder and projection carried over exactly, the vision tower
left as built, and a clear error for a model of other dimensions."""

from __future__ import annotations

import pytest
import torch
from pretrain_helpers import untrained_build

from avtrust.errors import ConfigError
from avtrust.models.registry import load
from avtrust.pretrain.thinker_init import start_from_audio_llm, thinker_name


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("thinker_init")
    return untrained_build(root / "omni", "omni"), untrained_build(root / "audio_llm", "audio_llm")


def test_thinker_starts_from_the_audio_llm_weights(builds):
    omni_dir, audio_dir = builds
    thinker = load(omni_dir).model
    before = {k: v.clone() for k, v in thinker.state_dict().items()}
    source = load(audio_dir).model.state_dict()
    report = start_from_audio_llm(thinker, audio_dir)
    after = thinker.state_dict()
    same_name = (
        "lm_head.weight",
        "model.language_model.layers.1.mlp.up_proj.weight",
        "model.language_model.embed_tokens.weight",
        "model.audio_tower.layers.0.fc1.weight",
    )
    pairs = {n: n for n in same_name}
    pairs["model.audio_tower.proj.weight"] = "model.multi_modal_projector.linear.weight"
    for dest, src in pairs.items():
        assert torch.equal(after[dest], source[src]), dest
        assert not torch.equal(after[dest], before[dest]), f"{dest} was already equal"
    # layer norms start at ones in both builds: equal either way, but carried over by name
    assert torch.equal(
        after["model.audio_tower.ln_post.bias"], source["model.audio_tower.layer_norm.bias"]
    )
    for name, tensor in after.items():  # the vision tower as built
        if name.startswith("model.visual."):
            assert torch.equal(tensor, before[name]), name
    assert report["kept"] == [
        "model.audio_tower.audio_bos_eos_token",
        "model.visual.blocks",
        "model.visual.merger",
        "model.visual.patch_embed",
    ]
    assert report["copied"] == len(source) - 1  # all but Qwen2-Audio's position table


def test_names_and_a_model_of_other_dimensions(builds):
    assert thinker_name("model.audio_tower.embed_positions.weight") is None
    assert thinker_name("model.audio_tower.layer_norm.bias") == "model.audio_tower.ln_post.bias"
    omni_dir, audio_dir = builds
    thinker = load(omni_dir).model
    thinker.resize_token_embeddings(thinker.get_input_embeddings().num_embeddings + 8)
    with pytest.raises(ConfigError, match="does not fit the thinker's .*other dimensions"):
        start_from_audio_llm(thinker, audio_dir)


def test_the_started_thinker_hears_as_the_audio_llm_does(builds, drill_wav):
    """Same prompt, same sound: the thinker started from the audio LLM gives the audio
    LLM's next-token log-probabilities (a clip within the Omni encoder's 2-s window, so
    its windowed attention sees what Qwen2-Audio's whole-clip attention sees). A wrong
    mapping (a projection or norm left as built, a renamed tensor) fails this."""
    from avtrust.pretrain import audio_llm

    omni_dir, audio_dir = builds
    llm = load(audio_dir)
    thinker = load(omni_dir)
    start_from_audio_llm(thinker.model, audio_dir)
    path, _ = drill_wav
    (audio,) = audio_llm.clip_audio(llm, [{"media_path": str(path)}])
    prompt = audio_llm.prompt_ids(llm, audio, "What do you hear?", None)
    batch = audio_llm.build_batch(llm, [audio], [prompt], ["I hear a drill."])
    batch.pop("labels")
    with torch.no_grad():
        expected = llm.model(**batch).logits.log_softmax(-1)
        got = thinker.model(**batch, use_cache=False).logits.log_softmax(-1)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=5e-3), (got - expected).abs().max()


def test_the_thinker_takes_only_the_parts_it_is_told(builds):
    """``parts=("audio_tower",)``: the audio encoder and its projection come from the audio
    LLM, the language model and output head stay the thinker's own (taught to see by the
    vision job's alignment); an unknown part is named."""
    omni_dir, audio_dir = builds
    thinker = load(omni_dir).model
    before = {k: v.clone() for k, v in thinker.state_dict().items()}
    source = load(audio_dir).model.state_dict()
    report = start_from_audio_llm(thinker, audio_dir, ("audio_tower",))
    after = thinker.state_dict()
    assert torch.equal(
        after["model.audio_tower.proj.weight"], source["model.multi_modal_projector.linear.weight"]
    )
    assert torch.equal(
        after["model.audio_tower.layers.0.fc1.weight"],
        source["model.audio_tower.layers.0.fc1.weight"],
    )
    for name in ("lm_head.weight", "model.language_model.embed_tokens.weight"):
        assert torch.equal(after[name], before[name]), name
        assert not torch.equal(after[name], source[name]), f"{name} was already equal"
    assert report["parts"] == ["audio_tower"]
    assert "model.language_model.layers" in report["kept"] and "lm_head.weight" in report["kept"]
    copied_audio = [n for n in source if n.startswith(("model.audio_tower.", "model.multi_modal"))]
    assert report["copied"] == len(copied_audio) - 1  # all but the position table
    with pytest.raises(ConfigError, match="start_parts \\['vision'\\]: name one or more of"):
        start_from_audio_llm(thinker, audio_dir, ("vision",))
