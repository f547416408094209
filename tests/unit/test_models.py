"""The model registry, the tiny builds and the adapters, loaded through the real path.

The tiny models are built once per session into a temporary folder by
``registry.prepare`` (what the ``models`` stage runs) and opened with
``registry.load`` (``from_pretrained`` / ``SentenceTransformer(path)``), as every later
stage opens real checkpoints.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avtrust.errors import ConfigError  # noqa: E402
from avtrust.models import registry  # noqa: E402
from avtrust.models.media import frame_indices, smart_resize  # noqa: E402
from avtrust.models.omni_inputs import (  # noqa: E402
    audio_token_count,
    group_by_streams,
    interleaved_placeholder,
    patchify,
)
from avtrust.models.registry import ModelError  # noqa: E402
from avtrust.models.tokenizer import OMNI_NAMED_TOKENS  # noqa: E402

MODELS = {
    "omni": {
        "adapter": "qwen2_5_omni_thinker",
        "source": "tiny",
        "location": "Qwen/Qwen2.5-Omni-3B",
    },
    "audio_llm": {"adapter": "qwen2_audio", "source": "tiny", "location": "Qwen/Qwen2-Audio-7B"},
    "clap": {"adapter": "clap", "source": "tiny", "location": "laion/clap-htsat-unfused"},
    "embedder": {"adapter": "qwen3_embedding", "source": "tiny", "location": "Qwen/Qwen3-Emb"},
}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for name in MODELS:
        registry.prepare(registry.spec_from_config(name, MODELS), root / name, seed=3)
    return root


@pytest.fixture(scope="session")
def omni(tiny_models):
    return registry.load(tiny_models / "omni")


# -- registry ---------------------------------------------------------------------------


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ModelError, match=r"unknown model 'clapp'.*audio_llm, clap, embedder, omni"):
        registry.spec_from_config("clapp", MODELS)


def test_missing_local_path_is_named(tmp_path):
    models = {"mine": {"adapter": "clap", "source": "local", "location": str(tmp_path / "nope")}}
    spec = registry.spec_from_config("mine", models)
    with pytest.raises(
        ModelError, match=r"local path '.*nope' does not exist \(models.mine.location\)"
    ):
        registry.prepare(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    models["mine"]["location"] = str(tmp_path / "empty")
    with pytest.raises(ModelError, match="no config.json"):
        registry.prepare(registry.spec_from_config("mine", models), tmp_path / "out")


def test_local_model_is_loaded_from_its_folder_and_vanishing_is_reported(tiny_models, tmp_path):
    models = {"mine": {"adapter": "clap", "source": "local", "location": str(tiny_models / "clap")}}
    folder = registry.prepare(registry.spec_from_config("mine", models), tmp_path / "mine")
    assert sorted(p.name for p in folder.iterdir()) == ["avtrust_model.json"]  # no copy
    clap = registry.load(folder)
    assert clap.embed_text(["a violin"]).shape == (1, 16)
    manifest = json.loads((folder / "avtrust_model.json").read_text())
    manifest["path"] = str(tmp_path / "gone")
    (folder / "avtrust_model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="gone' does not exist"):
        registry.load(folder)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"adapter": "clip", "source": "tiny", "location": "x"}, "models.m.adapter = 'clip'"),
        ({"adapter": "clap", "source": "ftp", "location": "x"}, "models.m.source = 'ftp'"),
        ({"adapter": "clap", "source": "http", "location": "http://h"}, "source 'http' goes with"),
        (
            {"adapter": "openai_http", "source": "http", "location": "http://h"},
            "models.m.model is required",
        ),
        ({"adapter": "openai_http", "source": "tiny", "location": "x"}, "source 'http' goes with"),
    ],
)
def test_bad_entries_name_the_key(entry, message):
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        registry.spec_from_config("m", {"m": entry})


def test_config_references_are_checked():
    with pytest.raises(ConfigError, match="scoring.clap_model = 'clip' is not a model"):
        registry.check_config(MODELS, {"scoring.clap_model": ("clip", "clap")})
    with pytest.raises(ConfigError, match="scoring.clap_model = 'omni' has adapter"):
        registry.check_config(MODELS, {"scoring.clap_model": ("omni", "clap")})
    registry.check_config(MODELS, {"scoring.clap_model": ("clap", "clap")})


def test_hub_models_are_downloaded_into_the_folder(tiny_models, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub

    calls = []

    def fake_download(repo_id, revision=None, local_dir=None):
        calls.append((repo_id, revision))
        shutil.copytree(tiny_models / "clap", local_dir, dirs_exist_ok=True)
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    models = {"clap": {"adapter": "clap", "source": "hub", "location": "laion/clap-htsat-unfused"}}
    models["clap"]["revision"] = "abc123"
    folder = registry.prepare(registry.spec_from_config("clap", models), tmp_path / "clap")
    assert calls == [("laion/clap-htsat-unfused", "abc123")]
    assert registry.read_manifest(folder)["source"] == "hub"
    assert registry.load(folder).embed_text(["rain"]).shape == (1, 16)


def test_unprepared_models_are_reported(tmp_path):
    with pytest.raises(ModelError, match="has not been prepared"):
        registry.load_by_name("clap", MODELS, root=tmp_path)
    with pytest.raises(ModelError, match="not a prepared model folder"):
        registry.load(tmp_path)


# -- tiny builds ------------------------------------------------------------------------


def test_tiny_builds_are_saved_models_of_the_real_classes(tiny_models):
    classes = {
        "omni": "Qwen2_5OmniThinkerForConditionalGeneration",
        "audio_llm": "Qwen2AudioForConditionalGeneration",
        "clap": "ClapModel",
    }
    for name, cls in classes.items():
        config = json.loads((tiny_models / name / "config.json").read_text())
        assert config["architectures"] == [cls]
        manifest = json.loads((tiny_models / name / "avtrust_model.json").read_text())
        assert manifest["tiny"]["class"] == cls and manifest["trust_remote_code"] is False
    assert (tiny_models / "embedder" / "modules.json").is_file()
    assert (tiny_models / "clap" / "processor_config.json").is_file()


def test_tokenizer_has_the_omni_special_tokens(omni):
    tok = omni.tokenizer
    ids = {name: tok.convert_tokens_to_ids(token) for name, token in OMNI_NAMED_TOKENS.items()}
    assert len(set(ids.values())) == len(ids)
    assert tok.audio_token == "<|AUDIO|>" and tok.video_token_id == ids["video_token"]
    text = "<|im_start|>user\n<|vision_bos|><|VIDEO|><|vision_eos|>Is there a violin?<|im_end|>"
    enc = tok(text)["input_ids"]
    assert tok.decode(enc) == text
    assert enc.count(ids["video_token"]) == 1
    assert omni.model.config.video_token_id == ids["video_token"]


def test_tiny_builds_are_reproducible(tmp_path):
    spec = registry.spec_from_config("clap", MODELS)
    a = registry.prepare(spec, tmp_path / "a", seed=5)
    b = registry.prepare(spec, tmp_path / "b", seed=5)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()


# -- Omni thinker inputs without torchvision ----------------------------------------------


def test_geometry_helpers():
    assert smart_resize(48, 64, 28, 56 * 56, 112 * 112) == (56, 56)
    assert smart_resize(96, 128, 28, 56 * 56, 112 * 112) == (84, 140)
    assert frame_indices(16, 8.0, 2.0, 2, 4, 768) == [0, 5, 10, 15]  # linspace, rounded
    assert frame_indices(11, 4.0, 2.0, 2, 4, 768) == [0, 3, 7, 10]  # 3.33, 6.67 rounded
    assert frame_indices(1, 8.0, 2.0, 2, 4, 768) == [0]
    assert audio_token_count(200) == 50 and audio_token_count(150) == 37


def test_patchify_follows_the_qwen2_vl_layout():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(3, 3, 56, 84)).astype(np.float32)  # odd T: last frame repeated
    flat, grid = patchify(frames, 14, 2, 2)
    assert grid == (2, 4, 6) and flat.shape == (2 * 4 * 6, 3 * 2 * 14 * 14)

    def patch(t, h, w):  # (C, temporal, 14, 14) of frames[2t:2t+2] at patch (h, w)
        fr = np.concatenate([frames, frames[-1:]])[2 * t : 2 * t + 2]
        return fr[:, :, 14 * h : 14 * h + 14, 14 * w : 14 * w + 14].transpose(1, 0, 2, 3)

    # Rows run over 2x2 merge groups: (0,0) (0,1) (1,0) (1,1), then the next group.
    for row, (t, h, w) in enumerate([(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 0, 2)]):
        np.testing.assert_array_equal(flat[row], patch(t, h, w).reshape(-1))
    np.testing.assert_array_equal(flat[24], patch(1, 0, 0).reshape(-1))


def test_interleaving_puts_video_then_audio_per_two_second_chunk():
    tokens = {
        "audio_bos_token": "<",
        "audio_eos_token": ">",
        "video_token": "V",
        "audio_token": "A",
    }
    # 3 s of video at 2 fps: 3 temporal patches of 1 s; 2 tokens each after merging.
    text = interleaved_placeholder((3, 2, 4), 2, 1.0, 75, tokens)
    assert text == "<" + "V" * 4 + "A" * 50 + "V" * 2 + "A" * 25 + ">"


def test_omni_forward_with_audio_in_video(omni, clips):
    paths = [clips["violin"].path, clips["cello"].path]
    batch = omni.inputs(paths, ["Is there a violin?", "What plays?"], ["yes", "a cello"])
    assert batch["use_audio_in_video"] is True
    ids = batch["input_ids"]
    cfg = omni.model.config
    # 1.5 s, 64x48 -> 4 frames of 56x56 -> grid (2, 4, 4) -> 8 video tokens per clip;
    # ~150 mel frames (AAC adds a little) -> ~37 audio tokens per clip.
    assert batch["video_grid_thw"].tolist() == [[2, 4, 4], [2, 4, 4]]
    assert (ids == cfg.video_token_id).sum().item() == 16
    frames = batch["feature_attention_mask"].sum(-1).tolist()
    assert all(150 <= f <= 160 for f in frames)
    assert (ids == cfg.audio_token_id).sum().item() == sum(audio_token_count(f) for f in frames)
    out = omni.forward(batch)
    assert out.logits.shape[:2] == ids.shape and torch.isfinite(out.loss)
    out.loss.backward()  # trainable through the real forward
    logp = omni.sequence_logprobs({k: v for k, v in batch.items()})
    assert logp.shape == (2,) and torch.all(logp < 0)
    separate = omni.inputs(paths, ["Is there a violin?", "What plays?"], use_audio_in_video=False)
    assert separate["use_audio_in_video"] is False
    assert omni.forward(separate).logits.shape[0] == 2


def test_full_omni_checkpoint_loads_its_thinker(tiny_models, tmp_path, clips):
    """A Hub-layout Qwen2.5-Omni checkpoint (thinker + talker config): the thinker is
    loaded, the talker never built."""
    import shutil

    from transformers import (
        Qwen2_5OmniConfig,
        Qwen2_5OmniForConditionalGeneration,
        Qwen2_5OmniThinkerConfig,
    )

    thinker = Qwen2_5OmniThinkerConfig.from_pretrained(tiny_models / "omni")
    config = Qwen2_5OmniConfig(thinker_config=thinker.to_dict(), enable_audio_output=False)
    Qwen2_5OmniForConditionalGeneration(config).save_pretrained(tmp_path / "full")
    torch.save({}, tmp_path / "full" / "spk_dict.pt")  # the speakers file of the release
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy(tiny_models / "omni" / name, tmp_path / "full" / name)
    models = {"o": {"adapter": "qwen2_5_omni_thinker", "source": "local", "location": ""}}
    models["o"]["location"] = str(tmp_path / "full")
    omni = registry.load(registry.prepare(registry.spec_from_config("o", models), tmp_path / "o"))
    assert type(omni.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    batch = omni.inputs([clips["violin"].path], ["What plays?"], ["a violin"])
    assert torch.isfinite(omni.forward(batch).loss)


def test_omni_single_stream_clips_and_generation(omni, clips):
    audio_only, video_only = clips["audio_only"].path, clips["video_only"].path
    for path in (audio_only, video_only):
        batch = omni.inputs([path], ["What is it?"], ["a flute"])
        assert torch.isfinite(omni.forward(batch).loss)
    assert "pixel_values_videos" not in omni.inputs([audio_only], ["q"])
    assert "input_features" not in omni.inputs([video_only], ["q"])
    with pytest.raises(ValueError, match="group_by_streams"):
        omni.inputs([audio_only, video_only], ["q", "q"])
    paths = [clips["violin"].path, audio_only, video_only, clips["cello"].path]
    assert group_by_streams(paths) == {"av": [0, 3], "a": [1], "v": [2]}
    answers = omni.generate(paths, ["q1", "q2", "q3", "q4"], max_new_tokens=3)
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)


# -- the other adapters -------------------------------------------------------------------


def test_clap_embeddings(tiny_models, clips):
    clap = registry.load(tiny_models / "clap")
    text = clap.embed_text(["a violin", "a violin", "rain falling"])
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(text[0], text[1], atol=1e-6)
    audio = clap.embed_audio_files([clips["violin"].path, clips["video_only"].path])
    assert audio[1] is None and audio[0].shape == (16,)
    assert np.linalg.norm(audio[0]) == pytest.approx(1.0, abs=1e-5)
    again = clap.embed_audio_files([clips["violin"].path])
    np.testing.assert_allclose(again[0], audio[0], atol=1e-6)  # no random crop


def test_qwen2_audio_generates(tiny_models, clips):
    llm = registry.load(tiny_models / "audio_llm")
    waves = [llm.read(clips["violin"].path), llm.read(clips["audio_only"].path)]
    assert llm.read(clips["video_only"].path) is None
    out = llm.generate(waves, ["What do you hear?", "Describe it."], max_new_tokens=4)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    assert "<|audio_bos|><|AUDIO|><|audio_eos|>" in llm.chat_text("q")


def test_tiny_audio_llm_has_whisper_positions_as_the_omni_encoder(tiny_models):
    """The real Qwen2-Audio keeps Whisper's sinusoidal position table; the tiny build
    too (transformers leaves it random), and it is the Omni encoder's fixed one."""
    table = registry.load(tiny_models / "audio_llm").model.model.audio_tower.embed_positions
    omni = registry.load(tiny_models / "omni").model.model.audio_tower.positional_embedding
    length = table.weight.shape[0]
    torch.testing.assert_close(table.weight, omni.positional_embedding[:length])
    assert table.weight[1, 0].item() == pytest.approx(math.sin(1.0))


def test_qwen3_embedding_similarity(tiny_models):
    from avtrust.models.embedding import EMBEDDING_INSTRUCTION
    from avtrust.train.rewards import StepRewards

    emb = registry.load(tiny_models / "embedder")
    # the semantic-similarity instruction, not the web-search "query" prompt
    assert emb.instruction == EMBEDDING_INSTRUCTION
    assert "web search" not in EMBEDDING_INSTRUCTION
    assert EMBEDDING_INSTRUCTION.startswith("Instruct: ")
    assert EMBEDDING_INSTRUCTION.endswith("\nQuery:")
    text = ["a cello is heard"]
    direct = emb.model.encode(text, prompt=EMBEDDING_INSTRUCTION, normalize_embeddings=True)
    np.testing.assert_allclose(emb.embed(text), direct, atol=1e-6)
    bare = emb.model.encode(text, normalize_embeddings=True)
    assert np.abs(emb.embed(text) - bare).max() > 1e-4  # the instruction reaches the model
    # reference (score stage) and completion (reward) embedded the same way: cos = 1
    ref = emb.embed(text)[0]
    completion = "<a-think>a cello is heard</a-think> <v-think>x</v-think> <answer>no</answer>"
    sim = StepRewards(emb).score([completion], ["no"], [ref.tolist()])["sim_reference"]
    assert sim[0] == pytest.approx(1.0, abs=1e-5)
    other = StepRewards(emb, instruction="Instruct: Classify\nQuery:")
    assert other.score([completion], ["no"], [ref.tolist()])["sim_reference"][0] < 1 - 1e-5
    assert emb.model.tokenizer.padding_side == "left"
    sims = emb.similarity(["the violin plays", "rain"], ["the violin plays", "a drill"])
    assert sims[0] == pytest.approx(1.0, abs=1e-5) and -1 <= sims[1] <= 1
