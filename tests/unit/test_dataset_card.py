"""The Hugging Face export: every task loads with `datasets`, and the dataset card is
complete and valid metadata for the Hub (checked offline)."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from avtrust.bench.export import export_hf
from avtrust.bench.samples import BENCHES, SAMPLE_SCHEMA

SYNTHETIC = {
    "music_avqa": {"format": "music_avqa", "source": "synthetic"},
    "avqa": {"format": "avqa", "source": "synthetic"},
    "audioset": {"format": "audioset", "source": "synthetic"},
}
REAL = {
    "music_avqa": {"format": "music_avqa", "source": "local"},
    "avqa": {"format": "avqa", "source": "youtube"},
    "audioset": {"format": "audioset", "source": "youtube"},
}
DATASET_OF = {"MVIT": "avqa", "CAT": "audioset", "MAT": "music_avqa", "m1": "music_avqa"}


def task_rows(task: str, n: int) -> list[dict]:
    bench = next(b for b, ts in BENCHES.items() if task in ts)
    confuse = bench == "avconfusebench"
    return [
        {
            "id": f"{task}-{i}",
            "bench": bench,
            "task": task,
            "source_dataset": DATASET_OF[task],
            "source_ids": [f"clip{i}"],
            "media_path": f"results/media/{bench}/{task}/{i}.mp4",
            "has_audio": task != "MAT",
            "has_video": True,
            "question": "Is there a violin sound?" if confuse else "What is playing?",
            "options": ["yes", "no"] if confuse else ["a violin", "Audio is missing"],
            "answer": "no" if confuse else "Audio is missing",
            "answer_index": 1,
            "category": "Audio-Visual",
            "seed": 41,
            "instruments": ["violin", "cello"] if confuse else None,
            "muted_instrument": "violin" if confuse else None,
            "sound_type": None,
            "snr_db": None,
        }
        for i in range(n)
    ]


# The workflow's split of the samples: every even-numbered sample of a task trains.
COUNTS = {"MVIT": 3, "CAT": 2, "MAT": 4, "m1": 5}
TRAIN = {task: (n + 1) // 2 for task, n in COUNTS.items()}


@pytest.fixture
def built(tmp_path, monkeypatch):
    """Task tables of both benchmarks (MVIT: 3 samples, CAT: 2, MAT: 4, m1: 5) and their
    split, in a workflow directory (the working directory, as under Snakemake)."""
    monkeypatch.chdir(tmp_path)
    files, split = {}, []
    for task, n in COUNTS.items():
        path = tmp_path / "bench" / f"{task}.parquet"
        path.parent.mkdir(exist_ok=True)
        rows = task_rows(task, n)
        pq.write_table(pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA), path)
        files[task] = str(path)
        split += [
            {"id": r["id"], "bench": r["bench"], "task": task, "split": ("train", "test")[i % 2]}
            for i, r in enumerate(rows)
        ]
    pq.write_table(pa.Table.from_pylist(split), tmp_path / "split.parquet")
    return files


def export(built, tmp_path, datasets):
    folder = Path("results/bench/hf")
    rows = export_hf(
        built, str(folder), datasets, str(tmp_path / "statistics.csv"), "split.parquet"
    )
    return tmp_path / folder, rows


def test_every_configuration_loads_with_datasets(built, tmp_path):
    from datasets import get_dataset_config_names, load_dataset

    folder, _ = export(built, tmp_path, SYNTHETIC)
    assert get_dataset_config_names(str(folder)) == list(built)
    for task in built:
        train = load_dataset(str(folder), task, split="train")
        test = load_dataset(str(folder), task, split="test")
        # the workflow's split: what CAVPref trained on is not in `test`
        assert (train.num_rows, test.num_rows) == (TRAIN[task], COUNTS[task] - TRAIN[task])
        assert set(train["split"]) == {"train"} and set(test["split"]) == {"test"}
        assert test["id"] == [f"{task}-{i}" for i in range(1, COUNTS[task], 2)]
        assert test[0]["task"] == task and test[0]["answer_index"] == 1
        assert test.features["options"].feature.dtype == "string"
        # media paths resolve from the export folder to the build's clips
        clip = (folder / test[0]["media_path"]).resolve()
        assert clip == (tmp_path / "results" / "media" / test[0]["bench"] / task / "1.mp4")


def test_a_sample_without_a_split_is_an_error_naming_it(built, tmp_path):
    rows = pq.read_table("split.parquet").to_pylist()
    pq.write_table(pa.Table.from_pylist([r for r in rows if r["id"] != "CAT-1"]), "split.parquet")
    with pytest.raises(ValueError, match="no split for 1 sample.*CAT.*CAT-1"):
        export(built, tmp_path, SYNTHETIC)


def test_card_metadata_passes_the_hub_checks_offline(built, tmp_path):
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    folder, _ = export(built, tmp_path, REAL)
    card = DatasetCard.load(folder / "README.md")  # parses the YAML header
    assert isinstance(card.data, DatasetCardData)
    # The Hub's fields and values (what DatasetCard.validate() would send online).
    assert card.data.license == "other" and card.data.license_name
    assert card.data.size_categories == ["n<1K"]
    assert card.data.task_categories == ["visual-question-answering", "multiple-choice"]
    # A card rebuilt from its metadata alone has the same header: nothing unparsed.
    again = DatasetCard.from_template(card.data, template_str="---\n{{ card_data }}\n---\n")
    assert yaml.safe_load(str(again).split("---")[1]) == card.data.to_dict()
    # datasets' own check of the `configs` field, then one config per task.
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert list(configs) == list(built)
    assert configs["m1"]["data_files"] == [
        {"split": "train", "path": "data/m1/train.parquet"},
        {"split": "test", "path": "data/m1/test.parquet"},
    ]


def test_card_describes_tasks_fields_counts_sources_and_limits(built, tmp_path):
    folder, rows = export(built, tmp_path, REAL)
    text = (folder / "README.md").read_text()
    for heading in ("## AVTrustBench", "## AV-ConfuseBench", "## Fields", "## Known limits",
                    "## How the samples were made", "## Source datasets and licences",
                    "## Citation"):  # fmt: skip
        assert heading in text
    # every field with its type
    for name in SAMPLE_SCHEMA.names:
        assert f"| `{name}` |" in text
    assert "| `source_ids` | list<string> |" in text and "| `seed` | int64 |" in text
    # every task described, and its counts per split
    mat = '| `MAT` | modality | the clip with its audio stream removed | "Audio is missing" |'
    assert mat in text
    assert "| `MVIT` | train | 2 | avqa | 41 | 2 | 2 |" in text
    assert "| `MVIT` | test | 1 | avqa | 41 | 1 | 1 |" in text
    assert "| `MAT` | train | 2 | music_avqa | 41 | 0 | 2 |" in text
    assert "| `m1` | test | 2 | music_avqa | 41 | 2 | 2 |" in text
    # real sources: their licences as the publishers state them, and where to look
    assert "the AudioSet annotations: CC BY 4.0, the ontology: CC BY-SA 4.0" in text
    assert "VGGSound's annotations are published under CC BY 4.0" in text
    assert "see the source (https://gewu-lab.github.io/MUSIC-AVQA/" in text
    assert "eprint    = {2501.02135}" in text and "eprint    = {2511.10059}" in text
    # the statistics table of the report holds the same counts
    with open(tmp_path / "statistics.csv") as f:
        stats = list(csv.DictReader(f))
    assert [(r["task"], r["split"], int(r["samples"])) for r in stats] == [
        (task, split, n)
        for task in COUNTS
        for split, n in (("train", TRAIN[task]), ("test", COUNTS[task] - TRAIN[task]))
    ]
    assert rows[4]["task"] == "MAT" and rows[4]["with_audio"] == 0
    assert stats[-1]["bench"] == "avconfusebench"


def test_a_synthetic_build_claims_no_third_party_licence(built, tmp_path):
    folder, _ = export(built, tmp_path, SYNTHETIC)
    text = (folder / "README.md").read_text()
    sources = text.split("## Source datasets and licences")[1].split("## Citation")[0]
    assert "CC BY" not in sources
    assert sources.count("no third-party media") == 3
