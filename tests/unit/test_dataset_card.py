"""The Hugging Face export: every task loads with `datasets`, and the dataset card is
complete and valid metadata for the Hub (checked offline)."""

from __future__ import annotations

import csv

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


@pytest.fixture
def built(tmp_path):
    """Task tables of both benchmarks (MVIT: 3 samples, CAT: 2, MAT: 4, m1: 5)."""
    files = {}
    for task, n in {"MVIT": 3, "CAT": 2, "MAT": 4, "m1": 5}.items():
        path = tmp_path / "bench" / f"{task}.parquet"
        path.parent.mkdir(exist_ok=True)
        pq.write_table(pa.Table.from_pylist(task_rows(task, n), schema=SAMPLE_SCHEMA), path)
        files[task] = str(path)
    return files


def export(built, tmp_path, datasets):
    folder = tmp_path / "hf"
    rows = export_hf(built, str(folder), datasets, str(tmp_path / "statistics.csv"))
    return folder, rows


def test_every_configuration_loads_with_datasets(built, tmp_path):
    from datasets import get_dataset_config_names, load_dataset

    folder, _ = export(built, tmp_path, SYNTHETIC)
    assert get_dataset_config_names(str(folder)) == list(built)
    for task, path in built.items():
        ds = load_dataset(str(folder), task, split="test")
        assert ds.num_rows == pq.read_metadata(path).num_rows
        assert ds[0]["task"] == task and ds[0]["answer_index"] == 1
        assert ds.features["options"].feature.dtype == "string"


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
    assert configs["m1"]["data_files"] == [{"split": "test", "path": "data/m1.parquet"}]


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
    assert "| `MVIT` | test | 3 | avqa | 41 | 3 | 3 |" in text
    assert "| `MAT` | test | 4 | music_avqa | 41 | 0 | 4 |" in text
    assert "| `m1` | test | 5 | music_avqa | 41 | 5 | 5 |" in text
    # real sources: their licences as the publishers state them, and where to look
    assert "the AudioSet annotations: CC BY 4.0, the ontology: CC BY-SA 4.0" in text
    assert "VGGSound's annotations are published under CC BY 4.0" in text
    assert "see the source (https://gewu-lab.github.io/MUSIC-AVQA/" in text
    assert "eprint    = {2501.02135}" in text and "eprint    = {2511.10059}" in text
    # the statistics table of the report holds the same counts
    with open(tmp_path / "statistics.csv") as f:
        stats = list(csv.DictReader(f))
    assert [(r["task"], int(r["samples"])) for r in stats] == [
        ("MVIT", 3),
        ("CAT", 2),
        ("MAT", 4),
        ("m1", 5),
    ]
    assert rows[2]["with_audio"] == 0 and stats[3]["bench"] == "avconfusebench"


def test_a_synthetic_build_claims_no_third_party_licence(built, tmp_path):
    folder, _ = export(built, tmp_path, SYNTHETIC)
    text = (folder / "README.md").read_text()
    sources = text.split("## Source datasets and licences")[1].split("## Citation")[0]
    assert "CC BY" not in sources
    assert sources.count("no third-party media") == 3
