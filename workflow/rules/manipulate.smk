rule manipulate_shard:
    input:
        plan="results/plan/{bench}/{task}.parquet",
    output:
        results="results/media/{bench}/{task}/shards/{shard}.parquet",
    log:
        "logs/manipulate/{bench}/{task}/{shard}.log",
    conda:
        "../../envs/media.yaml"
    threads: config["benchmark"]["workers_per_shard"]
    params:
        shards=len(SHARDS),
        media=lambda wc: media_settings(wc.bench, wc.task, config["media"]),
    script:
        "../scripts/manipulate_shard.py"
