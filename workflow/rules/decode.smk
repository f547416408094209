# Decode stage: every evaluated clip decoded once into model-ready arrays (frames sampled
# and resized as the Omni models' processors want them, 16 kHz audio), one cache folder
# per (bench, task) under evaluation.decode_cache.dir, read by every evaluation job of
# that task (avtrust.models.decode_cache). Input functions: common_evaluate.smk.


rule decode_clips:
    input:
        unpack(decode_inputs),
    output:
        index=f"{DECODED}/{{bench}}/{{task}}/index.parquet",
    log:
        "logs/decode/{bench}/{task}.log",
    wildcard_constraints:
        bench=one_of(EVAL_TASKS),
        task=one_of(t for ts in EVAL_TASKS.values() for t in ts),
    conda:
        "../../envs/models.yaml"
    threads: EVAL["threads"]
    resources:
        mem_mb=8000,
    params:
        split=lambda wc: EVAL["split"] if wc.bench != QA_BENCH else None,
        shard_clips=(EVAL.get("decode_cache") or {}).get("shard_clips", 256),
    script:
        "../scripts/decode_clips.py"
