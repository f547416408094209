"""Every metric of one model, and its run record (rule model_metrics)."""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

import pyarrow.parquet as pq

from avtrust.evaluate.config import config_hash
from avtrust.evaluate.metrics import model_metrics
from avtrust.io import write_json_atomic, write_parquet_atomic
from avtrust.logs import rule_logging
from avtrust.models.registry import read_manifest

with rule_logging(snakemake) as log:
    entry = snakemake.params.entry
    predictions = []
    for path in snakemake.input.predictions:
        predictions += pq.read_table(path).to_pylist()
    verdicts = (
        pq.read_table(snakemake.input.judge).to_pylist()
        if "judge" in snakemake.input.keys()
        else []
    )
    table = model_metrics(predictions, verdicts)
    log.info("%d metric rows from %d predictions", table.num_rows, len(predictions))
    write_parquet_atomic(snakemake.output.metrics, table)
    base, checkpoint, trained = entry["registry_name"], None, None
    if entry["kind"] == "checkpoint":
        checkpoint = f"results/checkpoints/{entry['method']}/model"
        info = Path(checkpoint) / "avtrust_checkpoint.json"
        if info.is_file():
            meta = json.loads(info.read_text())
            base, trained = meta.get("base_model", base), meta.get("config_hash")
    adapter = (
        entry["adapter"]
        if entry["kind"] == "checkpoint"
        else read_manifest(f"resources/models/{base}")["adapter"]
    )
    # This evaluation's identity: its own settings and, for a checkpoint, the training
    # run's (recorded in the checkpoint), never the whole config.
    run_hash = config_hash(
        {
            "entry": entry,
            "mode": snakemake.params.mode,
            "seed": snakemake.params.seed,
            "training": trained,
        }
    )
    write_json_atomic(
        snakemake.output.run,
        {
            "model": snakemake.wildcards.model,
            "kind": entry["kind"],
            "method": entry["method"],
            "base_model": base,
            "checkpoint": checkpoint,
            "adapter": adapter,
            "config_hash": run_hash,
            "seed": snakemake.params.seed,
            "modes": snakemake.params.mode,
            "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "n_predictions": len(predictions),
        },
    )
