"""Similarities, AVSM, calibrated β and the train/test split on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from avtrust.io import write_parquet_atomic
from avtrust.scoring.similarity import (
    avsm,
    beta_from_similarity,
    calibrated_beta,
    cosine,
    cosine_matrix,
    dissimilarity,
    modality_similarity,
    visual_caption,
)
from avtrust.scoring.split import split_of, split_table


def test_cosine_of_identical_orthogonal_and_opposite_vectors():
    x = np.array([0.3, -1.2, 2.0, 0.5])
    y = np.array([1.0, 0.0, 0.0, 0.0])
    z = np.array([0.0, 1.0, 0.0, 0.0])
    assert cosine(x, x)[0] == pytest.approx(1.0)
    assert cosine(5 * x, x)[0] == pytest.approx(1.0)  # scale does not matter
    assert cosine(y, z)[0] == pytest.approx(0.0, abs=1e-12)
    assert cosine(x, -x)[0] == pytest.approx(-1.0)
    rows = cosine(np.stack([x, y, y]), np.stack([x, z, -y]))
    np.testing.assert_allclose(rows, [1.0, 0.0, -1.0], atol=1e-12)


def test_cosine_matrix_matches_rowwise_cosine():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 8)), rng.normal(size=(3, 8))
    m = cosine_matrix(a, b)
    assert m.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            assert m[i, j] == pytest.approx(cosine(a[i], b[j])[0])


def test_cosine_rejects_zero_vectors_and_shape_mismatch():
    with pytest.raises(ValueError, match="zero vector"):
        cosine(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="shapes differ"):
        cosine(np.ones((2, 3)), np.ones((3, 3)))


def test_modality_similarity_conventions():
    e = np.array([1.0, 2.0, 3.0])
    assert modality_similarity(e, e) == pytest.approx(1.0)
    assert modality_similarity(None, None) == 1.0  # absent in both: identical
    assert modality_similarity(e, None) == 0.0  # present vs absent: unrelated
    assert modality_similarity(np.array([1.0, 0]), np.array([-1.0, 0])) == 0.0  # clipped


def test_avsm_is_the_product_of_audio_and_visual_similarity():
    a1, a2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    v1, v2 = np.array([1.0, 1.0]), np.array([1.0, 0.0])
    assert avsm(a1, a1, v1, v1) == pytest.approx(1.0)  # identical clips
    assert avsm(a1, a2, v1, v1) == pytest.approx(0.0)  # orthogonal soundtracks
    assert avsm(a1, a1, v1, v2) == pytest.approx(np.sqrt(0.5))  # only the video differs
    assert avsm(None, a1, v1, v1) == 0.0  # audio removed vs present
    assert avsm(None, None, v1, v2) == pytest.approx(np.sqrt(0.5))  # silent pair


def test_beta_range_endpoints_and_monotonicity():
    delta = np.linspace(-0.5, 1.5, 401)
    beta = calibrated_beta(delta)
    assert beta.min() == pytest.approx(0.1) and beta.max() == pytest.approx(1.0)
    assert np.all((beta >= 0.1 - 1e-12) & (beta <= 1.0 + 1e-12))
    assert np.all(np.diff(beta) >= 0)  # non-decreasing in ΔS
    inside = calibrated_beta(np.linspace(0, 1, 101))
    assert np.all(np.diff(inside) > 0)  # strictly increasing on [0, 1]
    assert calibrated_beta(0.0) == pytest.approx(0.1)
    assert calibrated_beta(1.0) == pytest.approx(1.0)
    assert calibrated_beta(0.5) == pytest.approx(0.9 * 0.5 + 0.1)


def test_beta_from_similarity_small_for_close_pairs():
    s = np.linspace(-1, 1, 201)
    beta = beta_from_similarity(s)
    assert np.all(np.diff(beta) <= 0)  # more similar -> smaller beta
    assert beta_from_similarity(1.0) == pytest.approx(0.1)  # identical
    assert beta_from_similarity(0.0) == pytest.approx(1.0)  # orthogonal
    assert beta_from_similarity(-0.7) == pytest.approx(1.0)  # opposite counts as unrelated
    assert dissimilarity(0.25) == pytest.approx(0.75)


def test_visual_caption():
    assert visual_caption([["violin", "cello"]]) == "A video showing violin and cello."
    assert visual_caption([["Dog"], []]) == "A video showing Dog, then something."
    assert visual_caption([]) is None


def test_split_is_deterministic_and_independent_of_order(tmp_path):
    ids = [f"MAT-{i:06d}" for i in range(400)]
    parts = [split_of(7, "avtrustbench", i, 0.5) for i in ids]
    assert parts == [split_of(7, "avtrustbench", i, 0.5) for i in ids]
    assert 150 < parts.count("train") < 250
    assert {split_of(7, "avtrustbench", i, 0.0) for i in ids} == {"test"}
    assert {split_of(7, "avtrustbench", i, 1.0) for i in ids} == {"train"}
    assert parts != [split_of(8, "avtrustbench", i, 0.5) for i in ids]  # seeded
    # A larger fraction only moves samples from test to train.
    more = [split_of(7, "avtrustbench", i, 0.7) for i in ids]
    assert all(m == "train" for p, m in zip(parts, more, strict=True) if p == "train")
    for name, order in (("a", ids), ("b", ids[::-1])):
        write_parquet_atomic(tmp_path / f"{name}.parquet", pa.table({"id": order}))
    a = split_table({("avtrustbench", "MAT"): str(tmp_path / "a.parquet")}, 7, 0.5)
    b = split_table({("avtrustbench", "MAT"): str(tmp_path / "b.parquet")}, 7, 0.5)
    assert dict(zip(a["id"].to_pylist(), a["split"].to_pylist(), strict=True)) == dict(
        zip(b["id"].to_pylist(), b["split"].to_pylist(), strict=True)
    )


def test_every_av_confusebench_sample_is_evaluated(tmp_path):
    # nothing trains on AV-ConfuseBench (RL-CoMM trains on the QA sets): the paper
    # evaluates all of it, and a half of m1's 24 questions would be a noisier Yes-rate
    ids = [f"m1-{i:06d}" for i in range(40)]
    assert {split_of(7, "avconfusebench", i, 0.5) for i in ids} == {"test"}
    write_parquet_atomic(tmp_path / "m1.parquet", pa.table({"id": ids}))
    table = split_table({("avconfusebench", "m1"): str(tmp_path / "m1.parquet")}, 7, 1.0)
    assert set(table["split"].to_pylist()) == {"test"} and table.num_rows == 40
