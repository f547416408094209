# Score stage: the train/test split, CAVPref preference pairs (corrupted video and
# audio media, CLAP similarities, AVSM, calibrated beta) and RL-CoMM's training questions
# (from the QA datasets' training files), their reference audio reasoning and the
# warm-up SFT set. Scoring is sharded (scoring.shards jobs per kind, one
# model load per job); input functions and checks are in common_score.smk.


rule split_samples:
    input:
        tables=list(all_bench_tables().values()),
    output:
        split=f"{SCORE}/split.parquet",
    log:
        "logs/score/split.log",
    conda:
        "../../envs/core.yaml"
    params:
        tables=all_bench_tables(),
        seed=config["seed"],
        train_fraction=config["scoring"]["train_fraction"],
    script:
        "../scripts/split_samples.py"


rule counterfactual_media:
    input:
        split=f"{SCORE}/split.parquet",
        samples=[f"results/bench/avtrustbench/{t}.parquet" for t in CAVPREF_TASKS],
        manifests=sorted({manifest_of("avtrustbench", t) for t in CAVPREF_TASKS}),
    output:
        results=f"{SCORE}/counterfactual/{{shard}}.parquet",
    log:
        "logs/score/counterfactual/{shard}.log",
    conda:
        "../../envs/media.yaml"
    threads: config["benchmark"]["workers_per_shard"]
    params:
        shards=len(SCORE_SHARDS),
        seed=config["seed"],
        media_root=f"{SCORE}/media",
    script:
        "../scripts/counterfactual_media.py"


rule score_pairs:
    input:
        unpack(cavpref_inputs),
    output:
        pairs=f"{SCORE}/cavpref/shards/{{shard}}.parquet",
    log:
        "logs/score/pairs/{shard}.log",
    conda:
        "../../envs/models.yaml"
    threads: config["scoring"]["threads"]
    resources:
        gpu=config["scoring"]["gpus"],
        mem_mb=16000,
    params:
        eta=config["scoring"]["cavpref"]["eta"],
        gamma=config["scoring"]["cavpref"]["gamma"],
        batch_size=config["scoring"]["batch_size"],
        device=config["scoring"]["device"],
    script:
        "../scripts/score_pairs.py"


rule cavpref_pairs:
    input:
        shards=expand(f"{SCORE}/cavpref/shards/{{shard}}.parquet", shard=SCORE_SHARDS),
        counterfactual=expand(
            f"{SCORE}/counterfactual/{{shard}}.parquet", shard=SCORE_SHARDS
        ),
    output:
        pairs=f"{SCORE}/cavpref/pairs.parquet",
        rejects=f"{SCORE}/cavpref/pairs.rejects.parquet",
    log:
        "logs/score/cavpref_pairs.log",
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/cavpref_pairs.py"


# RL-CoMM trains on a seeded subset of the QA datasets' training files, never on the
# benchmarks it is evaluated on (src/avtrust/scoring/rlcomm_questions.py).
rule rlcomm_questions:
    input:
        unpack(rlcomm_question_inputs),
    output:
        questions=f"{SCORE}/rlcomm/questions.parquet",
    log:
        "logs/score/rlcomm_questions.log",
    conda:
        "../../envs/core.yaml"
    params:
        datasets=RLCOMM_DATASETS,
        splits=RLCOMM_QUESTIONS["splits"],
        fraction=RLCOMM_QUESTIONS["fraction"],
        max_samples=RLCOMM_QUESTIONS["max_samples"],
        warmup_samples=config["scoring"]["rlcomm"]["warmup_samples"],
        seed=rlcomm_seed(),
    script:
        "../scripts/rlcomm_questions.py"


rule reference_reasoning:
    input:
        unpack(rlcomm_inputs),
    output:
        reference=f"{SCORE}/rlcomm/shards/{{shard}}.parquet",
    log:
        "logs/score/reference/{shard}.log",
    # RL-CoMM's warm-up and GRPO stages read it (rlcomm_data): it goes with their chain
    priority: CHAIN_PRIORITY
    conda:
        "../../envs/models.yaml"
    threads: config["scoring"]["threads"]
    resources:
        gpu=config["scoring"]["gpus"],
        mem_mb=32000,
    params:
        shards=len(SCORE_SHARDS),
        model_name=REFERENCE,
        max_new_tokens=config["scoring"]["rlcomm"]["max_new_tokens"],
        embedding_instruction=config["scoring"]["rlcomm"]["embedding_instruction"],
        batch_size=config["scoring"]["batch_size"],
        device=config["scoring"]["device"],
    script:
        "../scripts/reference_reasoning.py"


rule rlcomm_data:
    input:
        shards=expand(f"{SCORE}/rlcomm/shards/{{shard}}.parquet", shard=SCORE_SHARDS),
    output:
        reference=f"{SCORE}/rlcomm/reference.parquet",
        warmup=f"{SCORE}/rlcomm/warmup_sft.parquet",
    log:
        "logs/score/rlcomm_data.log",
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/rlcomm_data.py"
