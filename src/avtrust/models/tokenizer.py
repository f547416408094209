"""Byte-level BPE tokenizers for the tiny models, trained offline on a fixed corpus.

The tiny models of the embedded default need tokenizers of the same classes as the real
checkpoints (``Qwen2Tokenizer`` for the Qwen family, ``RobertaTokenizer`` for CLAP's
text tower) so that every later stage tokenizes exactly as it would with real weights.
They are trained here on a fixed text (the benchmarks' typical wordings, instrument
and sound names, a few hundred common words) over a byte-level alphabet: any UTF-8
text is encodable, merges just make it shorter.

The Qwen tokenizer carries the Qwen2.5-Omni special tokens (chat markers and the
audio/vision placeholders) registered as named special tokens (``tokenizer.audio_token``,
``tokenizer.video_token_id``...), which is what ``Qwen2_5OmniProcessor`` and
``Qwen2AudioProcessor`` read.
"""

from __future__ import annotations

import json

# The special tokens of Qwen2.5-Omni's tokenizer that the thinker and the processors use,
# by the attribute name the processors read them under.
OMNI_NAMED_TOKENS = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]
ENDOFTEXT = "<|endoftext|>"
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

# General words so that prompts outside the benchmark wordings still get some merges.
_GENERAL = """
the a an of and or to in on at for with by from is are was were be been it this that
what which who where when how why many much more less first last left right middle
sound sounds hear heard listen audio video visual see seen look shows show clip scene
instrument instruments playing plays play music musical loud quiet before after then
yes no none above options option answer question describe based there here not can
mismatch missing irrelevant correct wrong order event events source sources matches
think step reason because therefore however only also both each other than longer
violin cello piano guitar flute trumpet saxophone clarinet accordion xylophone drum
erhu tuba bagpipe banjo ukulele bassoon harp dog cat car bell bird wind rain drill
thunder engine speech siren horn water applause laughter footsteps knock music
You are a helpful assistant. Instruct: Given a web search query, retrieve relevant
passages that answer the query Query: system user assistant
None of the above. Irrelevant options. Mismatch in audio and video. Audio is missing.
Visual is missing. In which order do the events happen in the video? Is there a violin
sound? Describe what you see and what you hear. Based on the video, there is a cello.
Based on the audio, there is the sound of rain falling. How many musical instruments
were heard throughout the video? What kind of musical instrument is on the left?
Think about the audio inside <a-think></a-think>, then about the video inside
<v-think></v-think>, then give the final answer inside <answer></answer>.
The correct answer is: yes. Listen to the audio only. A video showing a dog and a bell.
"""


def training_corpus() -> list[str]:
    """The fixed text the tiny tokenizers are trained on.

    Self-contained on purpose: editing a template or prompt elsewhere must not change
    the tiny models' vocabulary (and with it every score of the embedded default).
    """
    return [line.strip() for line in _GENERAL.strip().splitlines()]


def train_byte_level_bpe(vocab_size: int, special_tokens: list[str]) -> tuple[dict, list]:
    """(vocab, merges) of a byte-level BPE trained on :func:`training_corpus`.

    ``special_tokens`` take the first ids, in order.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=special_tokens,
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus(), trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def qwen_tokenizer(vocab_size: int = 1024):
    """A ``Qwen2Tokenizer`` (byte-level BPE) with the Omni special tokens."""
    from transformers import Qwen2Tokenizer

    vocab, merges = train_byte_level_bpe(vocab_size, [ENDOFTEXT])
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        extra_special_tokens=dict(OMNI_NAMED_TOKENS),
        errors="replace",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": CHAT_TOKENS})
    tokenizer.padding_side = "left"
    return tokenizer


def roberta_tokenizer(vocab_size: int = 1024):
    """A ``RobertaTokenizer`` (byte-level BPE) as CLAP's text tower uses."""
    from transformers import RobertaTokenizer

    vocab, merges = train_byte_level_bpe(vocab_size, ROBERTA_SPECIALS)
    return RobertaTokenizer(vocab=vocab, merges=merges)
