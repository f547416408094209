rule fetch_synthetic:
    output:
        raw=directory(f"{RAW}/{{dataset}}"),
    log:
        "logs/fetch/{dataset}.log",
    params:
        fmt=lambda wc: config["datasets"][wc.dataset]["format"],
        corpus=config["corpus"],
        media=config["media"],
        seed=config["seed"],
    wildcard_constraints:
        dataset="|".join(SYNTHETIC) or "^$",
    conda:
        "../../envs/media.yaml"
    script:
        "../scripts/fetch_synthetic.py"
