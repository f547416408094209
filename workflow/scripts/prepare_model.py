"""Resolve one model of the config into its folder (rule prepare_model)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.bench.samples import derive_seed
from avtrust.logs import rule_logging
from avtrust.models.registry import prepare, spec_from_config

with rule_logging(snakemake) as log:
    name = snakemake.wildcards.model
    spec = spec_from_config(name, {name: snakemake.params.entry})
    log.info(
        "%s: adapter %s, source %s, location %s",
        spec.name,
        spec.adapter,
        spec.source,
        spec.location,
    )
    seed = derive_seed(snakemake.params.seed or 0, "model", spec.name)
    prepare(spec, snakemake.output.model, seed=seed, log=log)
    log.info("ready: %s", snakemake.output.model)
