"""Exports of the built benchmark: the official JSON layouts and a `datasets` folder.

The Hugging Face folder has one configuration per task, its splits the workflow's
train/test split (``data/<task>/<split>.parquet``), declared in the README's YAML
header, so ``datasets.load_dataset(folder, "MCIT", split="test")`` works offline; the
README is the dataset card (:mod:`avtrust.bench.card`). Media paths are relative to the
folder, so they resolve from it while it sits in the build's results/.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from avtrust.bench import card, official
from avtrust.bench.avconfusebench import m1_question, release_m1_question, release_sound_type
from avtrust.io import write_bytes_atomic, write_text_atomic


def export_official(bench: str, task: str, samples_path: str, out_path: str) -> Path:
    """Write one task's samples in its benchmark's official JSON layout."""
    rows = pq.read_table(samples_path).to_pylist()
    if bench == "avtrustbench":
        return official.write_avtrustbench_json(rows, out_path)
    for r in rows:
        media = Path(r["media_path"])
        r["video_id"], r["filename"], r["annotation"] = media.stem, media.name, r["answer"]
    if task == "m1":
        for r in rows:
            # A question this project worded (the paper's) is written in the release's
            # prompt layout; any other (an imported release question) is kept verbatim,
            # so an imported file exports back as it was.
            muted = r.get("muted_instrument")
            if muted and r["question"] == m1_question(muted):
                r["question"] = release_m1_question(muted)
        return official.write_confuse_m1_json(rows, out_path)
    for r in rows:
        # As the release: video_id names the source video (its filename the manipulated
        # one, which the importer opens), sound types spelled its way (thunderstorm).
        r["video_id"] = (r.get("source_ids") or [r["video_id"]])[0]
        r["sound_type"] = release_sound_type(r["sound_type"])
    return official.write_confuse_m2_json(rows, out_path)


def confuse_path(root: str, setting: str) -> Path:
    return Path(root) / "AVConfuseBench" / f"avconfusebench_test_{setting}.json"


def official_paths(bench: str, sources: dict[str, str], root: str) -> list[str]:
    """Where each task's official file goes, in the order of ``sources`` (task -> dataset)."""
    if bench == "avtrustbench":
        return [str(official.avtrustbench_export_path(root, t, s)) for t, s in sources.items()]
    return [str(confuse_path(root, t)) for t in sources]


def export_hf(
    task_files: dict[str, str],
    folder: str,
    datasets: dict[str, dict],
    statistics_path: str,
    split_path: str,
) -> list[dict]:
    """Write each task's samples into ``folder/data/<task>/<split>.parquet`` — the
    workflow's train/test split (``split_path``, results/score/split.parquet) as a
    ``split`` column and one file per split, ``media_path`` relative to ``folder`` — the
    dataset card (:mod:`avtrust.bench.card`) and the benchmark statistics CSV; returns
    the statistics. ``datasets`` is the configured datasets' {name: {format, source}}."""
    import os

    import pyarrow.csv as pacsv

    split_of = {
        (r["task"], r["id"]): r["split"]
        for r in pq.read_table(split_path, columns=["task", "id", "split"]).to_pylist()
    }
    tables = {}
    for task, path in task_files.items():
        table = pq.read_table(path)
        ids = table.column("id").to_pylist()
        missing = [i for i in ids if (task, i) not in split_of]
        if missing:
            raise ValueError(
                f"{split_path}: no split for {len(missing)} sample(s) of {task} "
                f"(first: {missing[0]}); rebuild it with the benchmark"
            )
        media = [os.path.relpath(m, folder) for m in table.column("media_path").to_pylist()]
        table = table.set_column(
            table.schema.get_field_index("media_path"), "media_path", pa.array(media)
        )
        splits = [split_of[(task, i)] for i in ids]
        table = table.append_column("split", pa.array(splits, pa.string()))
        for split in card.SPLITS:
            part = table.filter(pc.equal(table.column("split"), split))
            if part.num_rows:
                sink = pa.BufferOutputStream()
                pq.write_table(part, sink)
                write_bytes_atomic(
                    Path(folder) / card.split_file(task, split), sink.getvalue().to_pybytes()
                )
        tables[task] = table
    write_text_atomic(Path(folder) / "README.md", card.dataset_card(tables, datasets))
    rows = card.statistics(tables)
    tmp = Path(statistics_path).with_suffix(".csv.part")
    pacsv.write_csv(pa.Table.from_pylist(rows), tmp)
    tmp.replace(statistics_path)
    return rows
