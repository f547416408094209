"""The deterministic train/test split of the benchmark samples.

AVTrustBench's tables are the samples SFT, DPO and CAVPref train on, so training and
evaluation share them through one split: a sample is in ``train`` when

    derive_seed(seed, "split", bench, id) / 2**63  <  train_fraction

i.e. a SHA-256 hash of (master seed, bench, sample id) read as a number in [0, 1). The
split of a sample never depends on the other samples, on the shard count or on the
order of the table, and every stage can recompute it; ``results/score/split.parquet``
records it for all samples. AV-ConfuseBench is an evaluation benchmark: nothing trains
on it (RL-CoMM trains on the QA datasets' training questions,
:mod:`avtrust.scoring.rlcomm_questions`), so all of its samples are ``test``, as the
paper evaluates all of it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.bench.samples import derive_seed

SPLIT_SCHEMA = pa.schema(
    [("id", pa.string()), ("bench", pa.string()), ("task", pa.string()), ("split", pa.string())]
)


def hash_unit(seed: int, bench: str, sample_id: str) -> float:
    """A number in [0, 1) fixed by (seed, bench, id)."""
    return derive_seed(seed, "split", bench, sample_id) / 2**63


# the benchmarks whose samples a training draws from (avtrust.train.data.sft_rows, the
# CAVPref pairs); the others' samples are all evaluated
TRAINED_BENCHES = ("avtrustbench",)


def split_of(seed: int, bench: str, sample_id: str, train_fraction: float) -> str:
    if bench not in TRAINED_BENCHES:
        return "test"
    return "train" if hash_unit(seed, bench, sample_id) < train_fraction else "test"


def split_table(tables: dict[tuple[str, str], str], seed: int, train_fraction: float) -> pa.Table:
    """The split of every sample of the benchmark tables ``{(bench, task): path}``."""
    rows = []
    for (bench, task), path in sorted(tables.items()):
        for sample_id in pq.read_table(path, columns=["id"])["id"].to_pylist():
            rows.append(
                {
                    "id": sample_id,
                    "bench": bench,
                    "task": task,
                    "split": split_of(seed, bench, sample_id, train_fraction),
                }
            )
    return pa.Table.from_pylist(rows, schema=SPLIT_SCHEMA)


def train_ids(split_path: str, bench: str, task: str) -> set[str]:
    t = pq.read_table(split_path).to_pylist()
    return {
        r["id"] for r in t if r["bench"] == bench and r["task"] == task and r["split"] == "train"
    }
