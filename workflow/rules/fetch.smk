# The fetch stage: one rule per `source` of datasets.<name>, each ending in the raw
# folder resources/raw/<dataset>/ that the index stage reads (see
# src/avtrust/datasets/download/__init__.py). Downloads are cached under
# resources/downloads/<dataset>/, so a failed or rerun job resumes instead of starting over.


rule fetch_synthetic:
    output:
        raw=directory(f"{RAW}/{{dataset}}"),
    log:
        "logs/fetch/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(SYNTHETIC),
    conda:
        "../../envs/media.yaml"
    params:
        fmt=lambda wc: config["datasets"][wc.dataset]["format"],
        settings=lambda wc: synthetic_settings(
            config["datasets"][wc.dataset]["format"], config["corpus"], config["media"]
        ),
        seed=config["seed"],
    script:
        "../scripts/fetch_synthetic.py"


# A folder the user already has: linked in, never copied or modified. Deliberately not
# an input, so that a dry run plans the workflow before the data is there; the job
# says where to get a missing folder.
rule fetch_local:
    output:
        raw=directory(f"{RAW}/{{dataset}}"),
    log:
        "logs/fetch/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(LOCAL),
    conda:
        "../../envs/media.yaml"
    params:
        fmt=lambda wc: config["datasets"][wc.dataset]["format"],
        spec=lambda wc: config["datasets"][wc.dataset],
        cache=lambda wc: f"{DOWNLOADS}/{wc.dataset}",
    script:
        "../scripts/fetch_local.py"


# Files by URL with a pinned sha256 (resumable; a checksum mismatch leaves nothing).
rule fetch_http:
    output:
        raw=directory(f"{RAW}/{{dataset}}"),
    log:
        "logs/fetch/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(HTTP),
    conda:
        "../../envs/media.yaml"
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
        cache=lambda wc: f"{DOWNLOADS}/{wc.dataset}",
    script:
        "../scripts/fetch_http.py"


# YouTube clips: the annotations first (they say which segments to cut), then the
# segments in `shards` jobs, then the raw folder with the failures table.
rule fetch_youtube_list:
    output:
        annotations=directory(f"{DOWNLOADS}/{{dataset}}/annotations"),
        segments=f"{DOWNLOADS}/{{dataset}}/segments.parquet",
    log:
        "logs/fetch/{dataset}/list.log",
    wildcard_constraints:
        dataset=one_of(YOUTUBE),
    conda:
        "../../envs/media.yaml"
    params:
        fmt=lambda wc: config["datasets"][wc.dataset]["format"],
        spec=lambda wc: config["datasets"][wc.dataset],
        cache=lambda wc: f"{DOWNLOADS}/{wc.dataset}",
    script:
        "../scripts/fetch_youtube_list.py"


rule fetch_youtube_shard:
    input:
        segments=f"{DOWNLOADS}/{{dataset}}/segments.parquet",
    output:
        status=f"{DOWNLOADS}/{{dataset}}/shards/{{shard}}.parquet",
    log:
        "logs/fetch/{dataset}/shard-{shard}.log",
    wildcard_constraints:
        dataset=one_of(YOUTUBE),
    conda:
        "../../envs/media.yaml"
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
        shards=lambda wc: config["datasets"][wc.dataset]["shards"],
        cache=lambda wc: f"{DOWNLOADS}/{wc.dataset}",
        media=config["media"],
    script:
        "../scripts/fetch_youtube_shard.py"


rule fetch_youtube:
    input:
        annotations=f"{DOWNLOADS}/{{dataset}}/annotations",
        status=youtube_shards,
    output:
        raw=directory(f"{RAW}/{{dataset}}"),
    log:
        "logs/fetch/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(YOUTUBE),
    conda:
        "../../envs/media.yaml"
    script:
        "../scripts/fetch_youtube.py"


# AV-ConfuseBench scenes from another dataset's solo clips (its manifest: only clips
# that indexed cleanly), laid out like the synthetic corpus's scenes.
rule compose_scenes:
    input:
        solos=solo_manifest,
    output:
        raw=directory(f"{RAW}/{{dataset}}"),
    log:
        "logs/fetch/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(COMPOSED),
    conda:
        "../../envs/media.yaml"
    threads: 4
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
        media=config["media"],
        seed=config["seed"],
    script:
        "../scripts/compose_scenes.py"
