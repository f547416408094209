# Models stage: every model under `models` resolved into resources/models/<name>/
# (built tiny, downloaded from the Hub, or pointing at a local folder / an endpoint).
# With pretrain.enabled, the pretrain stage (pretrain.smk) writes the folders of the
# models it trains instead.

MODELS = [m for m in config["models"] if m not in PRETRAINED_MODELS]


rule prepare_model:
    output:
        model=directory("resources/models/{model}"),
    log:
        "logs/models/{model}.log",
    wildcard_constraints:
        model=one_of(MODELS),
    conda:
        "../../envs/models.yaml"
    resources:
        mem_mb=8000,
    params:
        # a tiny model's weights derive from the seed; other sources ignore it
        entry=lambda wc: config["models"][wc.model],
        seed=lambda wc: (
            config["seed"] if config["models"][wc.model]["source"] == "tiny" else None
        ),
    script:
        "../scripts/prepare_model.py"
