rule plan_task:
    input:
        unpack(plan_inputs),
    output:
        plan="results/plan/{bench}/{task}.parquet",
    log:
        "logs/plan/{bench}/{task}.log",
    conda:
        "../../envs/core.yaml"
    params:
        datasets=task_datasets,
    script:
        "../scripts/plan_task.py"
