rule manipulate_shard:
    input:
        plan="results/plan/{bench}/{task}.parquet",
    output:
        results="results/media/{bench}/{task}/shards/{shard}.parquet",
    log:
        "logs/manipulate/{bench}/{task}/{shard}.log",
    params:
        shards=len(SHARDS),
        media=config["media"],
    threads: config["benchmark"]["workers_per_shard"]
    conda:
        "../../envs/media.yaml"
    script:
        "../scripts/manipulate_shard.py"
