rule fetch_synthetic:
    output:
        raw=directory(f"{RAW}/{{dataset}}"),
    log:
        "logs/fetch/{dataset}.log",
    wildcard_constraints:
        dataset="|".join(SYNTHETIC) or "^$",
    conda:
        "../../envs/media.yaml"
    params:
        fmt=lambda wc: config["datasets"][wc.dataset]["format"],
        corpus=config["corpus"],
        media=config["media"],
        seed=config["seed"],
    script:
        "../scripts/fetch_synthetic.py"
