rule plan_task:
    input:
        unpack(plan_inputs),
    output:
        plan="results/plan/{bench}/{task}.parquet",
        # requested, supply (distinct candidates) and planned sample counts
        supply="results/plan/{bench}/{task}.supply.json",
    log:
        "logs/plan/{bench}/{task}.log",
    wildcard_constraints:
        task=one_of(t for ts in BUILT_TASKS.values() for t in ts),
    conda:
        "../../envs/core.yaml"
    params:
        settings=lambda wc: task_settings(wc.bench, wc.task, config),
    script:
        "../scripts/plan_task.py"


# A task under benchmark.import is planned from its official JSON file instead (the
# manipulate and build_questions stages then run as for a generated task). The file
# and media folder are not inputs, so that a dry run does not need them; the job
# names whichever is missing.
rule import_official:
    output:
        plan="results/plan/{bench}/{task}.parquet",
    log:
        "logs/plan/{bench}/{task}.log",
    wildcard_constraints:
        task=one_of(t for ts in IMPORTS.values() for t in ts),
    conda:
        "../../envs/core.yaml"
    params:
        spec=lambda wc: IMPORTS[wc.bench][wc.task],
        src=lambda wc: task_source(wc.task, IMPORTS[wc.bench][wc.task]),
    script:
        "../scripts/import_official.py"
