# Training stage (issue 5): SFT, DPO and CAVPref on the Omni thinker, one rule per
# method family; {method} is any method declared under `training` of that family
# (ablations included). Outputs in results/checkpoints/{method}/; the resume state in
# results/train_state/{method}/ is not an output, so a killed job's cleanup keeps it
# and a rerun continues from its last checkpoint.


rule train_sft:
    input:
        model=model_dir(TRAINING.get("model", "omni")),
        split=f"{SCORE}/split.parquet",
        tables=lambda w: list(sft_tables(w).values()),
    output:
        **TRAIN_OUTPUTS,
    log:
        "logs/train/{method}.log",
    wildcard_constraints:
        method=methods_of("sft"),
    conda:
        "../../envs/models.yaml"
    threads: TRAINING.get("threads", 1)
    resources:
        gpu=TRAINING.get("gpus", 0),
        mem_mb=TRAINING.get("mem_mb", 8000),
    params:
        training=TRAINING,
        seed=config["seed"],
        tables=sft_tables,
        state_dir=lambda w: f"results/train_state/{w.method}",
    script:
        "../scripts/train.py"


rule train_dpo:
    input:
        model=model_dir(TRAINING.get("model", "omni")),
        pairs=f"{SCORE}/cavpref/pairs.parquet",
    output:
        **TRAIN_OUTPUTS,
    log:
        "logs/train/{method}.log",
    wildcard_constraints:
        method=methods_of("dpo"),
    conda:
        "../../envs/models.yaml"
    threads: TRAINING.get("threads", 1)
    resources:
        gpu=TRAINING.get("gpus", 0),
        mem_mb=TRAINING.get("mem_mb", 8000),
    params:
        training=TRAINING,
        seed=config["seed"],
        state_dir=lambda w: f"results/train_state/{w.method}",
    script:
        "../scripts/train.py"


rule train_cavpref:
    input:
        model=model_dir(TRAINING.get("model", "omni")),
        pairs=f"{SCORE}/cavpref/pairs.parquet",
    output:
        **TRAIN_OUTPUTS,
    log:
        "logs/train/{method}.log",
    wildcard_constraints:
        method=methods_of("cavpref"),
    conda:
        "../../envs/models.yaml"
    threads: TRAINING.get("threads", 1)
    resources:
        gpu=TRAINING.get("gpus", 0),
        mem_mb=TRAINING.get("mem_mb", 8000),
    params:
        training=TRAINING,
        seed=config["seed"],
        state_dir=lambda w: f"results/train_state/{w.method}",
    script:
        "../scripts/train.py"
