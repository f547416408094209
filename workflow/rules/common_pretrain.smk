# Pretrain stage: which models it trains and the config it reads (pretrain.smk).

PRETRAINED_MODELS = pretrained_models(config)
PRETRAIN = config.get("pretrain", {})


def pretrain_config():
    """What the pre-training reads: its section, the world's geometry, the seeds."""
    return {
        key: config.get(key)
        for key in ("seed", "corpus", "media", "models", "pretrain")
    }
