"""Tiny, randomly initialised models of the real classes, built offline.

The embedded default has no weights to download, so the ``models`` stage builds each
model from a small config of the *same* transformers classes as the real checkpoint,
with a byte-level BPE tokenizer of the same class (``avtrust.models.tokenizer``), and
saves both with ``save_pretrained``. Every later stage then loads them exactly like real
weights (``from_pretrained`` / ``SentenceTransformer(path)``), so the tiny run exercises
the real loading, preprocessing and forward paths; only the numbers are meaningless.

Sizes (hidden 32, 2 layers for the language models) keep a forward pass in
milliseconds on a CPU. Initialisation is seeded, so a build is reproducible.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from avtrust.models.omni_inputs import CLIP_MEAN, CLIP_STD, VIDEO_SAMPLING_FILE
from avtrust.models.tokenizer import qwen_tokenizer, roberta_tokenizer

PathLike = str | os.PathLike

TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 8192,
}
WHISPER_ENCODER = {
    "num_mel_bins": 128,
    "encoder_layers": 1,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "d_model": 16,
    "max_source_positions": 1500,
}
# Qwen2-Audio's encoder takes exactly max_source_positions * 2 feature frames (100 a
# second): the real model's 30 s window. The synthetic clips last seconds, and over a
# padded 30 s window the tiny encoder was ~75 % of a pre-training step, so the tiny
# build's processor and encoder use a shorter one (longer audio is cut, as at 30 s).
AUDIO_LLM_WINDOW_S = 10
# The tiny Omni thinker sees few pixels: a 128x96 clip becomes 84x140 (6x10 patches).
TINY_VIDEO = {"min_pixels": 56 * 56, "max_pixels": 112 * 112, "fps": 2.0}


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed % 2**31)


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_omni_thinker(out: Path, seed: int) -> dict:
    """``Qwen2_5OmniThinkerForConditionalGeneration`` + Qwen2 tokenizer + the processor's
    preprocessing configs (Whisper features with 128 mel bins, Qwen2-VL video)."""
    from transformers import (
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )

    tok = qwen_tokenizer()
    token_id = tok.convert_tokens_to_ids
    head_dim = TEXT["hidden_size"] // TEXT["num_attention_heads"]
    config = Qwen2_5OmniThinkerConfig(
        audio_config={**WHISPER_ENCODER, "output_dim": TEXT["hidden_size"], "n_window": 100},
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": TEXT["hidden_size"],
            "fullatt_block_indexes": [1],
            "window_size": 112,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        text_config={
            **TEXT,
            "vocab_size": len(tok),
            # 3-D RoPE: temporal/height/width sections of head_dim / 2 rotary pairs.
            # Base 1e4, not the real checkpoint's 1e6: with head dim 8 only one of the
            # four rotary pairs turns faster than once in a thousand tokens at 1e6, so
            # the tiny model can hardly tell positions apart (bench/README.md,
            # "lookup_probe.py"; the RL-CoMM warm-up learnt its tag order only at 1e4).
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [head_dim // 4, head_dim // 8, head_dim // 8],
            },
        },
        audio_token_index=token_id("<|AUDIO|>"),
        image_token_index=token_id("<|IMAGE|>"),
        video_token_index=token_id("<|VIDEO|>"),
        audio_start_token_id=token_id("<|audio_bos|>"),
        audio_end_token_id=token_id("<|audio_eos|>"),
        vision_start_token_id=token_id("<|vision_bos|>"),
        vision_end_token_id=token_id("<|vision_eos|>"),
        user_token_id=tok("user")["input_ids"][0],
        pad_token_id=tok.pad_token_id,
        eos_token_id=token_id("<|im_end|>"),
    )
    _seed(seed)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = token_id("<|im_end|>")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    # What Qwen2_5OmniProcessor reads: Whisper features + Qwen2-VL image/video settings.
    features = WhisperFeatureExtractor(feature_size=128).to_dict()
    features.pop("mel_filters", None)
    vision = {
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": list(CLIP_MEAN),
        "image_std": list(CLIP_STD),
        "size": {
            "shortest_edge": TINY_VIDEO["min_pixels"],
            "longest_edge": TINY_VIDEO["max_pixels"],
        },
        "do_resize": True,
        "do_rescale": True,
        "do_normalize": True,
        "do_convert_rgb": True,
        "rescale_factor": 1 / 255,
        "processor_class": "Qwen2_5OmniProcessor",
    }
    _write_json(
        out / "preprocessor_config.json",
        {**features, **vision, "image_processor_type": "Qwen2VLImageProcessor"},
    )
    _write_json(
        out / "video_preprocessor_config.json",
        {**vision, "fps": TINY_VIDEO["fps"], "video_processor_type": "Qwen2VLVideoProcessor"},
    )
    # Videos are sampled with the tiny budget, not qwen-omni-utils' 128-768 tokens a frame.
    _write_json(out / VIDEO_SAMPLING_FILE, TINY_VIDEO)
    return {"class": type(model).__name__, "parameters": _count(model)}


def whisper_positions(encoder) -> None:
    """Set a Qwen2-Audio encoder's (frozen) position table to Whisper's sinusoids, as the
    real checkpoint has them from Whisper-large-v3; transformers leaves it random on a
    fresh build. They are the sinusoids the Omni audio encoder computes, so weights
    copied from the audio LLM into the thinker (avtrust.pretrain.thinker_init) see the
    positions they were trained with."""
    import torch
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import (
        SinusoidsPositionEmbedding,
    )

    table = encoder.embed_positions.weight
    with torch.no_grad():
        table.copy_(SinusoidsPositionEmbedding(*table.shape).positional_embedding)


def build_qwen2_audio(out: Path, seed: int) -> dict:
    """``Qwen2AudioForConditionalGeneration`` + ``Qwen2AudioProcessor`` (Whisper, 128 mels)."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tok = qwen_tokenizer()
    config = Qwen2AudioConfig(
        audio_config={**WHISPER_ENCODER, "max_source_positions": AUDIO_LLM_WINDOW_S * 50},
        text_config={"model_type": "qwen2", **TEXT, "vocab_size": len(tok)},
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
        pad_token_id=tok.pad_token_id,
    )
    _seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    whisper_positions(model.model.audio_tower)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model.save_pretrained(out)
    features = WhisperFeatureExtractor(feature_size=128, chunk_length=AUDIO_LLM_WINDOW_S)
    processor = Qwen2AudioProcessor(feature_extractor=features, tokenizer=tok)
    processor.save_pretrained(out)
    return {"class": type(model).__name__, "parameters": _count(model)}


def build_clap(out: Path, seed: int) -> dict:
    """``ClapModel`` (HTSAT audio tower, unfused; RoBERTa text tower) + ``ClapProcessor``.

    The audio tower keeps CLAP's input geometry (spec_size 256, 64 mel bins at 48 kHz),
    so the real feature extractor's output fits it unchanged.
    """
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    tok = roberta_tokenizer()
    config = ClapConfig(
        # The caption tower: 32 wide, 2 layers (16 / 1 pre-trained to 53-77 % held-out
        # top-1 over five seeds, this to 70-80 %; bench/README.md, clap_probe.py).
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "projection_dim": 16,
            "max_position_embeddings": 514,
        },
        audio_config={
            "depths": [1, 1],
            "num_attention_heads": [1, 2],
            "patch_embeds_hidden_size": 8,
            "hidden_size": 16,
            "projection_dim": 16,
            "window_size": 8,
            "spec_size": 256,
            "num_mel_bins": 64,
            "enable_fusion": False,
        },
        projection_dim=16,
    )
    _seed(seed)
    model = ClapModel(config)
    model.save_pretrained(out)
    features = ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad")
    ClapProcessor(feature_extractor=features, tokenizer=tok).save_pretrained(out)
    return {"class": type(model).__name__, "parameters": _count(model)}


QWEN3_EMBEDDING_PROMPTS = {
    "query": "Instruct: Given a web search query, retrieve relevant passages that answer "
    "the query\nQuery:",
    "document": "",
}


def build_qwen3_embedding(out: Path, seed: int) -> dict:
    """A ``Qwen3Model`` wrapped as Qwen3-Embedding is: sentence-transformers with
    last-token pooling, L2 normalisation, left padding and the "query" prompt."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )
    from transformers import Qwen3Config, Qwen3Model

    tok = qwen_tokenizer()
    config = Qwen3Config(
        **TEXT,
        vocab_size=len(tok),
        head_dim=TEXT["hidden_size"] // TEXT["num_attention_heads"],
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
    )
    _seed(seed)
    base = out / "_base"
    model = Qwen3Model(config)
    model.save_pretrained(base)
    tok.save_pretrained(base)
    transformer = Transformer(str(base), processor_kwargs={"padding_side": "left"})
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="lasttoken")
    st = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        prompts=dict(QWEN3_EMBEDDING_PROMPTS),
        device="cpu",
    )
    st.save(str(out))
    for path in sorted(base.iterdir(), reverse=True):
        path.unlink()
    base.rmdir()
    return {"class": type(model).__name__, "parameters": _count(model)}


BUILDERS = {
    "qwen2_5_omni_thinker": build_omni_thinker,
    "qwen2_audio": build_qwen2_audio,
    "clap": build_clap,
    "qwen3_embedding": build_qwen3_embedding,
}


def build_tiny(adapter: str, out: PathLike, seed: int = 0) -> dict:
    """Build the tiny model of ``adapter`` into the folder ``out``; returns its summary."""
    if adapter not in BUILDERS:
        raise ValueError(f"no tiny build for adapter {adapter!r} ({', '.join(BUILDERS)})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return BUILDERS[adapter](out, seed)
