"""Exports of the built benchmark: the official JSON layouts and a `datasets` folder.

The Hugging Face folder has one configuration per task (``data/<task>.parquet``)
declared in the README's YAML header, so ``datasets.load_dataset(folder, "MCIT")``
works offline; the README is the dataset card (:mod:`avtrust.bench.card`). Media paths
stay relative to the workflow directory.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from avtrust.bench import card, official
from avtrust.bench.avconfusebench import release_sound_type
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
    task_files: dict[str, str], folder: str, datasets: dict[str, dict], statistics_path: str
) -> list[dict]:
    """Copy each task's Parquet into ``folder/data``, write the dataset card
    (:mod:`avtrust.bench.card`) and the benchmark statistics CSV; returns the statistics.
    ``datasets`` is the configured datasets' {name: {format, source}}."""
    import pyarrow.csv as pacsv

    tables = {}
    for task, path in task_files.items():
        write_bytes_atomic(Path(folder) / "data" / f"{task}.parquet", Path(path).read_bytes())
        tables[task] = pq.read_table(path)
    write_text_atomic(Path(folder) / "README.md", card.dataset_card(tables, datasets))
    rows = card.statistics(tables)
    tmp = Path(statistics_path).with_suffix(".csv.part")
    pacsv.write_csv(pa.Table.from_pylist(rows), tmp)
    tmp.replace(statistics_path)
    return rows
