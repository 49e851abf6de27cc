"""Calibrated bands keep their stated false-alarm rate (issue 16, item 4).

Each case draws many independent (reference, window) pairs from the *true* distribution,
never from the reference: a reference of 3,000 rows is calibrated for the window size,
then fresh windows from the same population are scored against it, and the share that
reaches inspect is compared with the nominal 1 %.

Tolerances. The rate a reference gives its windows varies from reference to reference
(from about 0.5 % to 2.5 % for the Zipf feature at 1,000 rows), so the error is set by
the number of references, not of windows. The numerics use 60 references per case
(standard error about 0.15 % per case, 0.09 % pooled over the three window sizes): each
case must lie in 0.25–2.0 % and the pooled rate in the issue's 0.5–1.5 %. The Zipf
feature is slower to calibrate and uses 30 (about 0.4 % per case at 1,000 rows, 0.17 %
pooled): each case within 0.25–3.0 %, pooled at most 1.75 %. Measured with 150
references per case (3,000 windows), its rate is 1.07 %, 1.37 % and 1.33 % at windows of
150, 300 and 1,000: inside the issue's bound, with less margin than this test's error.
Windows are scored on
count vectors with the detectors' bin rule; ``test_null_model`` checks that rule against
the detectors themselves. ``n_boot`` is 1,000 here (monitoring uses 5,000) to keep the
file near 20 s.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from shipyard.monitoring import Reference
from shipyard.monitoring.binning import quantile_edges, reference_histogram
from shipyard.monitoring.calibrate import calibrate_bands
from shipyard.monitoring.null_model import masked_statistic

RATE = 0.01
REFERENCE_ROWS = 3000
WINDOWS = (150, 300, 1000)
REFERENCES = {"_zipf": 30, "_zero_inflated": 60, "_student_t2": 60}  # per window size
PER_REFERENCE = 150  # windows scored against each reference
ZIPF = 1.0 / np.arange(1, 201)
ZIPF /= ZIPF.sum()

Draw = Callable[[np.random.Generator, tuple[int, ...] | int], np.ndarray]


def _zipf(rng: np.random.Generator, size: tuple[int, ...] | int) -> np.ndarray:
    return rng.choice(200, size=size, p=ZIPF)


def _zero_inflated(rng: np.random.Generator, size: tuple[int, ...] | int) -> np.ndarray:
    return np.where(rng.random(size) < 0.6, 0.0, rng.lognormal(0.0, 1.0, size))


def _student_t2(rng: np.random.Generator, size: tuple[int, ...] | int) -> np.ndarray:
    return rng.standard_t(2, size)


def _alarm_rate(draw: Draw, window: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    categorical = draw is _zipf
    alarms = 0
    references = REFERENCES[draw.__name__]
    for _ in range(references):
        sample = draw(rng, REFERENCE_ROWS)
        frame = pd.DataFrame({"x": sample.astype(str) if categorical else sample})
        reference = Reference.from_frame(frame)
        bands = calibrate_bands(
            reference,
            window,
            false_alarm_rate=RATE,
            n_boot=1000,
            seed=int(rng.integers(1 << 31)),
            never_below_defaults=False,
        )["x"]
        windows = draw(rng, (PER_REFERENCE, window))
        if categorical:
            # Value by value: a level counts when either side holds it (unseen ones too).
            ref = np.bincount(sample, minlength=200)
            current = np.stack([np.bincount(w, minlength=200) for w in windows])
            present = (ref > 0) | (current > 0)
        else:
            column = reference["x"]
            edges = quantile_edges(column.values, column.counts, 10)
            ref = reference_histogram(column.values, column.cumulative, edges)
            current = np.stack(
                [
                    np.bincount(np.searchsorted(edges, w, side="right"), minlength=len(edges) + 1)
                    for w in windows
                ]
            )
            present = np.ones_like(current, dtype=bool)
        ref_rows = np.broadcast_to(ref, current.shape)
        scores = masked_statistic(bands["method"], ref_rows, current, present)
        alarms += int((scores >= bands["inspect"]).sum())
    return alarms / (references * PER_REFERENCE)


@pytest.mark.parametrize(
    ("draw", "seed"),
    [(_zipf, 16), (_zero_inflated, 17), (_student_t2, 18)],
    ids=["zipf-200", "zero-inflated", "student-t2"],
)
def test_no_drift_windows_reach_inspect_at_the_stated_rate(draw: Draw, seed: int) -> None:
    rates = {window: _alarm_rate(draw, window, seed + window) for window in WINDOWS}
    pooled = sum(rates.values()) / len(rates)
    print(f"{draw.__name__}: inspect rate at nominal {RATE:.0%}: {rates}, pooled {pooled:.4f}")
    zipf = draw is _zipf
    assert 0.005 <= pooled <= (0.0175 if zipf else 0.015), rates
    assert all(0.0025 <= rate <= (0.03 if zipf else 0.02) for rate in rates.values()), rates
