rule plan_task:
    input:
        unpack(plan_inputs),
    output:
        plan="results/plan/{bench}/{task}.parquet",
    log:
        "logs/plan/{bench}/{task}.log",
    params:
        datasets=task_datasets,
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/plan_task.py"
