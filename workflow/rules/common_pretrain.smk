# Pretrain stage: which models it trains and the config it reads (pretrain.smk).

PRETRAINED_MODELS = pretrained_models(config)
PRETRAIN = config.get("pretrain", {})
