# Decode stage: every evaluated and every training clip decoded once into model-ready
# arrays (frames sampled and resized as the Omni models' processors want them, 16 kHz
# audio), one cache folder per evaluated (bench, task) and per training table under
# evaluation.decode_cache.dir, read by every evaluation and training job of it
# (avtrust.models.decode_cache). Input functions: common_decode.smk.


# null evaluation.decode_cache: no decode stage; every job decodes its own clips.
if DECODED:

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
        script:
            "../scripts/decode_clips.py"

    rule decode_training_clips:
        input:
            unpack(decode_training_inputs),
        output:
            index=f"{DECODED}/train/{{source}}/index.parquet",
        log:
            "logs/decode/train/{source}.log",
        wildcard_constraints:
            source=one_of(TRAIN_DECODE),
        priority: decode_training_priority
        conda:
            "../../envs/models.yaml"
        threads: EVAL["threads"]
        resources:
            mem_mb=8000,
        script:
            "../scripts/decode_clips.py"
