"""Exports of the built benchmark: the official JSON layouts and a `datasets` folder.

The Hugging Face folder has one configuration per task (``data/<task>.parquet``)
declared in the README's YAML header, so ``datasets.load_dataset(folder, "MCIT")``
works offline. Media paths stay relative to the workflow directory.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from avtrust.bench import official
from avtrust.bench.avconfusebench import release_sound_type
from avtrust.bench.samples import BENCHES
from avtrust.io import write_bytes_atomic, write_text_atomic

CARD_DESCRIPTION = {
    "avtrustbench": (
        "AVTrustBench (Chowdhury et al., ICCV 2025): nine tasks probing adversarial "
        "robustness (MCIT, ICIT, MVIT, MAIT), compositional reasoning (COT-Stitch, "
        "COT-Swap, CAT) and modality dependency (MAT, MVT) of audio-visual LLMs."
    ),
    "avconfusebench": (
        "AV-ConfuseBench (Ye et al., AAAI 2026): m1 mutes one visible instrument "
        "(answer: no); m2 replaces or mixes the soundtrack with wind, bird, rain, "
        "drill or thunder (describe what is seen and what is heard)."
    ),
}


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


def _card(tasks: list[str], counts: dict[str, int]) -> str:
    configs = "\n".join(
        f"- config_name: {t}\n  data_files:\n  - split: test\n    path: data/{t}.parquet"
        for t in tasks
    )
    by_bench = {b: [t for t in tasks if t in ts] for b, ts in BENCHES.items()}
    sections = []
    for bench, bench_tasks in by_bench.items():
        if bench_tasks:
            rows = "\n".join(f"| {t} | {counts[t]} |" for t in bench_tasks)
            table = f"| task | samples |\n|---|---|\n{rows}\n"
            sections.append(f"## {bench}\n\n{CARD_DESCRIPTION[bench]}\n\n{table}")
    return (
        f"---\nconfigs:\n{configs}\n---\n\n# avtrust benchmark build\n\n"
        "Built by the avtrust workflow. One configuration per task, split `test`. "
        "Columns: `id`, `task`, `media_path` (relative to the workflow directory), "
        "`question`, `options`, `answer`, `answer_index` (-1 for open answers), "
        "`category`, `source_ids`, `seed`, and for AV-ConfuseBench `instruments`, "
        "`muted_instrument`, `sound_type`, `snr_db` (null: soundtrack replaced).\n\n"
        "```python\nfrom datasets import load_dataset\n"
        'ds = load_dataset("results/bench/hf", "MCIT", split="test")\n```\n\n' + "\n".join(sections)
    )


def export_hf(task_files: dict[str, str], folder: str) -> None:
    """Copy each task's Parquet into ``folder/data`` and write the dataset card."""
    counts = {}
    for task, path in task_files.items():
        data = Path(path).read_bytes()
        write_bytes_atomic(Path(folder) / "data" / f"{task}.parquet", data)
        counts[task] = pq.read_metadata(path).num_rows
    write_text_atomic(Path(folder) / "README.md", _card(list(task_files), counts))
