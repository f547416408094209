# RL-CoMM training: warm-up SFT -> Step-RR GRPO -> Ans-CO, and the GRPO
# baseline with format + accuracy rewards. Step-RR without Ans-CO is rlcomm_steprr.
# Each stage writes results/checkpoints/{method}/ (model/, log.jsonl, curve.png,
# metrics.json); resume state lives in results/train_state/{method}/ (not an output),
# and so do the TensorBoard / Weights & Biases logs of rlcomm.tracking in
# results/tracking/{method}/ (a side product: a run's logs outlive a killed job).


rule rlcomm_train:
    input:
        unpack(rlcomm_inputs_of),
    output:
        **CHECKPOINT_OUTPUTS,
    log:
        "logs/train/{method}.log",
    wildcard_constraints:
        method="|".join(RLCOMM_METHODS),
    # warm-up -> Step-RR -> Ans-CO is the longest chain after the thinker's pre-training:
    # it started 2.2 minutes after it, behind SFT/DPO/CAVPref jobs (sight-first run)
    priority: CHAIN_PRIORITY
    conda:
        "../../envs/models.yaml"
    threads: RLCOMM["threads"]
    resources:
        gpu=RLCOMM["gpus"],
        mem_mb=32000,
    params:
        job=lambda wc: stage_settings(
            RLCOMM,
            wc.method,
            config["seed"],
            config["scoring"]["rlcomm"]["embedding_instruction"],
        ),
        state_dir=lambda wc: f"results/train_state/{wc.method}",
    script:
        "../scripts/train.py"
