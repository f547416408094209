# Training stage: SFT, DPO and CAVPref on the Omni thinker, one rule for every method
# declared under `training` (ablations included); the inputs of a method's family are
# chosen by train_inputs (common_train.smk). Outputs in results/checkpoints/{method}/,
# named as the RL-CoMM rule's; the resume state in results/train_state/{method}/ is not
# an output, so a killed job's cleanup keeps it and a rerun continues from its last
# checkpoint. Likewise the TensorBoard / Weights & Biases logs of training.tracking in
# results/tracking/{method}/ (a side product, emptied when a job starts afresh).


rule train:
    input:
        unpack(train_inputs),
    output:
        **CHECKPOINT_OUTPUTS,
    log:
        "logs/train/{method}.log",
    wildcard_constraints:
        method=one_of(TRAIN_METHODS),
    priority: TRAIN_PRIORITY
    conda:
        "../../envs/models.yaml"
    threads: TRAINING["threads"]
    resources:
        gpu=TRAINING["gpus"],
        mem_mb=TRAINING["mem_mb"],
    params:
        job=lambda wc: job_settings(TRAINING, wc.method, config["seed"], TRAIN_PROMPT),
        state_dir=lambda wc: f"results/train_state/{wc.method}",
    script:
        "../scripts/train.py"
