# Pretrain stage: which models it trains and the config it reads (pretrain.smk).

PRETRAINED_MODELS = pretrained_models(config)
PRETRAIN = config.get("pretrain", {})


def pretrain_start(wildcards):
    """The trained model a pre-training starts from (pretrain.thinker.start_from)."""
    start = start_model(config, wildcards.model)
    return {} if start is None else {"start": f"resources/models/{start}"}
