# Pretrain stage: which models it trains and the config it reads (pretrain.smk).

PRETRAINED_MODELS = pretrained_models(config)
PRETRAIN = config.get("pretrain", {})


# The thinker's decode-once cache of the corpus (rule decode_pretrain_clips).
DECODED_CORPUS = "resources/pretrain/decoded/{model}/index.parquet"


def pretrain_start(wildcards):
    """What a pre-training starts from: the trained model of pretrain.thinker.start_from,
    the thinker's pre-trained vision tower (pretrain.vision_tower), and for a thinker
    the corpus decoded once by the thinker (rule decode_pretrain_clips) for the thinker
    and the audio LLM, which hears its soundtracks."""
    start = start_model(config, wildcards.model)
    out = {} if start is None else {"start": f"resources/models/{start}"}
    if vision_tower_trained(config, wildcards.model):
        out["vision"] = f"resources/pretrain/vision_tower/{wildcards.model}"
    decoder = corpus_decoder(config, wildcards.model)
    if decoder is not None:
        out["decoded"] = DECODED_CORPUS.format(model=decoder)
    return out


# The thinker's pre-training is the default run's longest chain (corpus -> audio LLM and
# vision tower -> thinker -> everything that trains or evaluates it): its jobs go first
# on a busy machine, CLAP and the embedder (read by the score stage only) after them.
CHAIN_PRIORITY = 50
# The vision job is the longest of the thinker's inputs (~3.4 min against the audio
# LLM's ~1.9): when the decode job ends with one core free, it starts first (at equal
# priority the audio LLM did, and the thinker started 1.7 min later).
VISION_PRIORITY = CHAIN_PRIORITY + 1


def pretrain_priority(wildcards):
    """The thinker's and its starting model's jobs first (CHAIN_PRIORITY), others 0."""
    name = wildcards.model
    starts = {start_model(config, m) for m in PRETRAINED_MODELS}
    return CHAIN_PRIORITY if is_thinker(config, name) or name in starts else 0
