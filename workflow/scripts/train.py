"""One training job (rules train and rlcomm_train): run spec, resume state, launch, save."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # this checkout's package

from avtrust.logs import rule_logging
from avtrust.train.job import make_spec, train_job

with rule_logging(snakemake) as log:
    files = dict(snakemake.input.items())
    base_dir, init_dir = files.pop("model"), files.pop("start", None)
    # the decode-once cache changes how clips are read, not what is trained: it stays
    # out of the inputs (and so of the run's identity)
    decoded = files.pop("decoded", None)
    if "tables" in files:  # SFT: the benchmark table of each task, named by its file
        files["tables"] = {Path(p).stem: p for p in snakemake.input.tables}
    spec = make_spec(
        job=snakemake.params.job,
        base_dir=base_dir,
        init_dir=init_dir,
        inputs=files,
        outputs=dict(snakemake.output.items()),
        state_dir=snakemake.params.state_dir,
        threads=snakemake.threads,
    )
    spec["decoded"] = str(Path(decoded).parent) if decoded else None
    train_job(spec, log)
