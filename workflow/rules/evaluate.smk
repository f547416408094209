# Evaluate stage: every model of evaluation.models on every benchmark task (test split)
# and the plain QA sets, evaluation.shards jobs per model, benchmark or task
# (evaluation.group_tasks), batched and resumable; then the m2 judge and the metrics of
# each model. Input functions: common_evaluate.smk.


rule qa_set:
    input:
        unpack(qa_inputs),
    output:
        samples="results/qa/{dataset}.parquet",
    log:
        "logs/evaluate/qa_set/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(QA_SETS.values()),
    conda:
        "../../envs/core.yaml"
    params:
        format=lambda wc: config["datasets"][wc.dataset]["format"],
        samples=lambda wc: EVAL["qa_sets"][wc.dataset]["samples"],
        seed=config["seed"],
    script:
        "../scripts/qa_set.py"


rule evaluate_shard:
    input:
        unpack(evaluate_inputs),
    output:
        predictions=directory("results/predictions/{model}/{group}.shards/{shard}"),
    log:
        "logs/evaluate/{model}/{group}.{shard}.log",
    wildcard_constraints:
        model=one_of(EVAL_MODELS),
        group=one_of(EVAL_GROUP_NAMES),
    conda:
        "../../envs/models.yaml"
    threads: EVAL["threads"]
    resources:
        gpu=EVAL["gpus"],
        mem_mb=16000,
    params:
        kind=lambda wc: EVAL_MODELS[wc.model].kind,
        tasks=lambda wc: eval_groups(wc.model)[wc.group],
        shards=len(EVAL_SHARDS),
        state="results/eval_state/{model}/{group}/{shard}",
        settings=lambda wc: [
            eval_settings(b, t) for b, t in eval_groups(wc.model)[wc.group]
        ],
    script:
        "../scripts/evaluate_shard.py"


# merge_predictions_<bench>: one job per (model, benchmark) joins each of its tasks'
# shards into results/predictions/<model>/<bench>/<task>.parquet (a rule per benchmark:
# its outputs are its tasks' files, one job instead of one per task).
for bench, tasks in EVAL_TASKS.items():
    if not tasks:
        continue

    rule:
        name:
            f"merge_predictions_{bench}"
        input:
            unpack(lambda wc, bench=bench: merge_inputs(wc.model, bench)),
        output:
            predictions=expand(
                f"results/predictions/{{{{model}}}}/{bench}/{{task}}.parquet",
                task=tasks,
            ),
        log:
            f"logs/evaluate/{{model}}/{bench}.merge.log",
        wildcard_constraints:
            model=one_of(EVAL_MODELS),
        conda:
            "../../envs/core.yaml"
        params:
            bench=bench,
            folders=lambda wc, bench=bench: merge_folders(wc.model, bench),
        script:
            "../scripts/merge_predictions.py"


rule judge_m2:
    input:
        unpack(judge_inputs),
    output:
        verdicts="results/judge/{model}/m2.parquet",
    log:
        "logs/evaluate/{model}/judge_m2.log",
    wildcard_constraints:
        model=one_of(EVAL_MODELS),
    conda:
        "../../envs/models.yaml"
    threads: EVAL["threads"]
    resources:
        gpu=EVAL["gpus"] if JUDGE is not None else 0,
        mem_mb=16000,
    params:
        judge=JUDGE,
        retries=EVAL["judge"]["retries"],
        retry_temperature=EVAL["judge"]["retry_temperature"],
        max_new_tokens=EVAL["judge"]["max_new_tokens"],
        device=EVAL["device"],
        seed=config["seed"],
    script:
        "../scripts/judge_m2.py"


rule model_metrics:
    input:
        unpack(metrics_inputs),
    output:
        metrics="results/metrics/{model}.parquet",
        run="results/metrics/{model}.run.json",
    log:
        "logs/evaluate/{model}/metrics.log",
    wildcard_constraints:
        model=one_of(EVAL_MODELS),
    conda:
        "../../envs/core.yaml"
    params:
        entry=lambda wc: EVAL_MODELS[wc.model].record(),
        mode=EVAL["mode"],
        seed=config["seed"],
    script:
        "../scripts/model_metrics.py"
