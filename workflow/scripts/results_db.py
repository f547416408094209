"""Bring the results database up to date, incrementally (rule results_db)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.logs import rule_logging
from avtrust.results.db import ingest, publish

with rule_logging(snakemake) as log:
    i, p = snakemake.input, snakemake.params
    by_model = {
        "predictions": {m: [f for f in i.predictions if f.split("/")[2] == m] for m in p.models},
        "judgements": {m: [f for f in i.judge if f.split("/")[2] == m] for m in p.models},
        "metrics": {m: [f"results/metrics/{m}.parquet"] for m in p.models},
        "runs": {m: [f"results/metrics/{m}.run.json"] for m in p.models},
    }
    samples = dict(zip(p.tables, ([f] for f in i.samples), strict=True))
    if not i.judge:
        by_model.pop("judgements")
    Path(p.cache).parent.mkdir(parents=True, exist_ok=True)
    changed = ingest(p.cache, {"samples": samples, **by_model}, log=log)
    log.info("re-ingested: %s", changed or "nothing")
    publish(p.cache, snakemake.output.db)
