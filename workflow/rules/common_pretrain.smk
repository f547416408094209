# Pretrain stage: which models it trains and the config it reads (pretrain.smk).

PRETRAINED_MODELS = pretrained_models(config)
PRETRAIN = config.get("pretrain", {})


def pretrain_start(wildcards):
    """What a pre-training starts from: the trained model of pretrain.thinker.start_from
    and the thinker's pre-trained vision tower (pretrain.vision_tower)."""
    start = start_model(config, wildcards.model)
    out = {} if start is None else {"start": f"resources/models/{start}"}
    if vision_tower_trained(config, wildcards.model):
        out["vision"] = f"resources/pretrain/vision_tower/{wildcards.model}"
    return out
