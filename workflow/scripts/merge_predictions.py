"""Each task of one (model, benchmark) as one predictions table, from its evaluation
shards (rule merge_predictions_<bench>): a shard's folder holds a task as
<bench>/<task>.parquet; the outputs are the benchmark's tasks in order."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.evaluate.groups import shard_file
from avtrust.evaluate.infer import merge_shards
from avtrust.io import write_parquet_atomic
from avtrust.logs import rule_logging

with rule_logging(snakemake) as log:
    bench, folders = snakemake.params.bench, snakemake.params.folders
    outputs = snakemake.output.predictions
    for (task, task_folders), output in zip(folders.items(), outputs, strict=True):
        shards = [shard_file(folder, bench, task) for folder in task_folders]
        table = merge_shards(shards)
        log.info("%s/%s: %d predictions from %d shards", bench, task, table.num_rows, len(shards))
        write_parquet_atomic(output, table)
