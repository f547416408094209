# Constants and input functions of the decode stage (decode.smk): the decode-once cache
# of the evaluated clips (per bench/task) and of the training clips (per training table),
# read by evaluate_shard, train and rlcomm_train (their input functions add the index).

# The cache's folder, or None when evaluation.decode_cache is null (no decode stage).
DECODED = (EVAL.get("decode_cache") or {}).get("dir")
OMNI_ADAPTER = "qwen2_5_omni_thinker"


def settings_dir(name):
    """The folder model ``name``'s input settings are read from: a pre-trained tiny
    model's untrained build, whose preprocessing configs its pre-training copies
    unchanged (avtrust.pretrain.thinker.save; tested), so that the clips are decoded
    while it trains instead of after; any other model's prepared folder."""
    if name in PRETRAINED_MODELS:
        return f"resources/pretrain/untrained/{name}"
    return model_dir(name)


def decoding_models(bench):
    """The Omni model folders whose input settings the decode cache of ``bench``
    serves: zero-shot ones, and the base model that checkpoints are trained from (a
    checkpoint with other settings simply misses the cache and decodes)."""
    names = {
        m.registry_name
        for m in EVAL_MODELS.values()
        if m.adapter == OMNI_ADAPTER and bench in m.benches
    }
    return sorted(settings_dir(n) for n in names)


def decode_inputs(wildcards):
    return {
        **samples_inputs(wildcards.bench, wildcards.task),
        "models": decoding_models(wildcards.bench),
    }


def rlcomm_source(method):
    """The training-cache name of an RL-CoMM stage's data (warmup_sft, reference)."""
    table = os.path.basename(RLCOMM_DATA[method]).removesuffix(".parquet")
    return f"rlcomm_{table}"


# Training tables whose clips are decoded once for every method reading them: SFT's
# training-split benchmark rows, the CAVPref pairs (clean clip, V' and A'), RL-CoMM data.
TRAIN_DECODE = {
    "sft": {
        "split": f"{SCORE}/split.parquet",
        "tables": [
            f"results/bench/avtrustbench/{t}.parquet"
            for t in BENCH_TASKS["avtrustbench"]
        ],
        "models": [settings_dir(TRAINING["model"])],
    },
    "pairs": {
        "data": [f"{SCORE}/cavpref/pairs.parquet"],
        "models": [settings_dir(TRAINING["model"])],
    },
    **{
        rlcomm_source(m): {
            "data": [RLCOMM_DATA[m]],
            "models": [settings_dir(RLCOMM["policy"])],
        }
        for m in RLCOMM_METHODS
    },
}


def training_index(source):
    return f"{DECODED}/train/{source}/index.parquet"


def decode_training_inputs(wildcards):
    return TRAIN_DECODE[wildcards.source]


def decode_training_priority(wildcards):
    """RL-CoMM's tables at its chain's priority, the other trainings' at theirs: with
    the trainings before everything of priority 0, Step-RR and GRPO-acc waited 1.5
    minutes after the warm-up for their decode job (48b79a6's default run)."""
    rl_sources = {rlcomm_source(m) for m in RLCOMM_METHODS}
    return CHAIN_PRIORITY if wildcards.source in rl_sources else TRAIN_PRIORITY
