# Aggregate stage: the results database (incremental: only changed models are
# re-ingested), the papers' tables, the plots and their report captions.


rule results_db:
    input:
        unpack(aggregate_inputs),
    output:
        db="results/results.duckdb",
    log:
        "logs/aggregate/results_db.log",
    conda:
        "../../envs/core.yaml"
    params:
        cache="results/cache/results.duckdb",
        models=list(EVAL_MODELS),
        tables=[f"{b}/{t}" for b, ts in EVAL_TASKS.items() for t in ts],
        split=EVAL["split"],
        # the views live in the database: a new or changed one reruns the ingest
        views=views_digest(),
    script:
        "../scripts/results_db.py"


rule tables:
    input:
        db="results/results.duckdb",
    output:
        md=expand("results/tables/{view}.md", view=VIEWS),
        tex=expand("results/tables/{view}.tex", view=VIEWS),
        csv=report(
            expand("results/tables/{view}.csv", view=VIEWS),
            caption="../report/tables.rst",
            category="Tables",
        ),
        breakdowns=report(
            BREAKDOWN_TABLES,
            caption="../report/breakdowns.rst",
            category="Breakdowns",
        ),
        checks=report(
            CHECKS_TABLE,
            caption="../report/benchmark_checks.rst",
            category="Benchmark",
        ),
    log:
        "logs/aggregate/tables.log",
    conda:
        "../../envs/core.yaml"
    params:
        views=VIEWS,
        breakdowns=list(BREAKDOWNS),
    script:
        "../scripts/tables.py"


rule plots:
    input:
        db="results/results.duckdb",
        logs=list(training_logs().values()),
    output:
        tasks=report(
            "results/plots/task_accuracy.png",
            caption="../report/task_accuracy.rst",
            category="Plots",
        ),
        yes_rate=report(
            "results/plots/m1_yes_rate.png",
            caption="../report/m1_yes_rate.rst",
            category="Plots",
        ),
        curves=report(
            "results/plots/training_curves.png",
            caption="../report/training_curves.rst",
            category="Plots",
        ),
        breakdowns=report(
            BREAKDOWN_PLOTS,
            caption="../report/breakdown_plots.rst",
            category="Breakdowns",
        ),
    log:
        "logs/aggregate/plots.log",
    conda:
        "../../envs/core.yaml"
    params:
        logs=training_logs(),
    script:
        "../scripts/plots.py"
