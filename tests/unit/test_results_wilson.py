"""The 95% Wilson score interval (avtrust.evaluate.metrics.wilson) on hand numbers."""

from __future__ import annotations

import pytest

from avtrust.evaluate.metrics import wilson
from avtrust.results.tables import interval
from avtrust.results.views import Column


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        # z = 1.95996; 0/n: [0, z²/(n+z²)] = [0, 3.8415/13.8415]
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        (5, 10, 0.236593, 0.763407),
        (1, 10, 0.017876, 0.404150),
        (3, 4, 0.300642, 0.954413),
        (50, 100, 0.403832, 0.596168),
        (0, 1, 0.0, 0.793451),
    ],
)
def test_wilson_on_hand_numbers(k, n, lo, hi):
    assert wilson(k, n) == pytest.approx((lo, hi), abs=1e-6)


def test_wilson_edges():
    assert wilson(0, 0) is None
    lo, hi = wilson(7, 20)
    assert lo < 7 / 20 < hi
    assert wilson(7, 20, z=1.0)[1] < hi  # a lower confidence level: a narrower interval
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_interval_of_a_percentage_cell():
    assert interval(Column("Acc"), 50.0, 10) == pytest.approx((23.6593, 76.3407), abs=1e-4)
    assert interval(Column("Acc"), 8.22, 73) == pytest.approx(
        tuple(100 * x for x in wilson(6, 73))
    )  # a paper's rounded percentage: its count recovered
    assert interval(Column("A-Acc", "score"), 3.0, 10) is None
    assert interval(Column("Acc"), None, 10) is None and interval(Column("Acc"), 5.0, 0) is None
