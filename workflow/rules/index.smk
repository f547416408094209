rule index_dataset:
    input:
        raw=f"{RAW}/{{dataset}}",
    output:
        manifest="results/manifest/{dataset}.parquet",
        rejects="results/manifest/{dataset}.rejects.parquet",
    log:
        "logs/index/{dataset}.log",
    conda:
        "../../envs/media.yaml"
    threads: config["index"]["workers"]
    params:
        fmt=lambda wc: config["datasets"][wc.dataset]["format"],
        decode_check=config["index"]["decode_check"],
    script:
        "../scripts/index_dataset.py"
