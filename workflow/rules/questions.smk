rule build_questions:
    input:
        plan="results/plan/{bench}/{task}.parquet",
        shards=shard_results,
    output:
        samples="results/bench/{bench}/{task}.parquet",
        rejects="results/bench/{bench}/{task}.rejects.parquet",
    log:
        "logs/build_questions/{bench}/{task}.log",
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/build_questions.py"


rule export_official:
    input:
        samples=[f for bench in BENCH_TASKS for f in bench_task_files(bench)],
    output:
        files=[f for bench in BENCH_TASKS for f in official_outputs(bench)],
    log:
        "logs/export/official.log",
    conda:
        "../../envs/core.yaml"
    params:
        tasks=BENCH_TASKS,
    script:
        "../scripts/export_official.py"


rule export_hf:
    input:
        samples=[f for bench in BENCH_TASKS for f in bench_task_files(bench)],
        # the workflow's train/test split of every sample: the export's splits
        split="results/score/split.parquet",
    output:
        card="results/bench/hf/README.md",
        data=directory("results/bench/hf/data"),
        statistics=report(
            "results/bench/statistics.csv",
            caption="../report/benchmark_statistics.rst",
            category="Benchmark",
        ),
    log:
        "logs/export/hf.log",
    conda:
        "../../envs/core.yaml"
    params:
        tasks=[t for ts in BENCH_TASKS.values() for t in ts],
        # the card names each source dataset and its licence (synthetic: none)
        datasets={
            name: {"format": d["format"], "source": d["source"]}
            for name, d in config["datasets"].items()
        },
    script:
        "../scripts/export_hf.py"


rule export_lmms_eval:
    input:
        card="results/bench/hf/README.md",
        data="results/bench/hf/data",
    output:
        tasks=directory("results/bench/lmms_eval"),
    log:
        "logs/export/lmms_eval.log",
    conda:
        "../../envs/core.yaml"
    params:
        tasks=BENCH_TASKS,
        # the replies are parsed and the prompts cut as the workflow's evaluation does
        wording=config["benchmark"]["wording"],
        max_new_tokens=config["evaluation"]["max_new_tokens"],
        max_new_tokens_open=config["evaluation"]["max_new_tokens_open"],
        # a function: PROMPTS (common_evaluate.smk) is defined after this file
        prompts=lambda wildcards: {bench: PROMPTS[bench] for bench in BENCH_TASKS},
    script:
        "../scripts/export_lmms_eval.py"
