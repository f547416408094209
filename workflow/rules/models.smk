# Models stage: every model under `models` resolved into resources/models/<name>/
# (built tiny, downloaded from the Hub, or pointing at a local folder / an endpoint).

MODELS = list(config["models"])


rule prepare_model:
    output:
        model=directory("resources/models/{model}"),
    log:
        "logs/models/{model}.log",
    wildcard_constraints:
        model="|".join(MODELS) or "^$",
    conda:
        "../../envs/models.yaml"
    resources:
        mem_mb=8000,
    params:
        models=config["models"],
        seed=config["seed"],
    script:
        "../scripts/prepare_model.py"
