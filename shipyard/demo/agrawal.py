"""River's Agrawal loan-approval benchmark as the demo's data: training files and live traffic.

Agrawal et al.'s generator draws nine applicant features from fixed distributions and
labels each row with one of ten classification functions; switching the function at a
known position is the standard *concept* drift benchmark: P(approved | features) changes
while P(features) does not. It ships with river, so the demo runs offline.

    paths = write_training_data(Path("data"))      # train/valid/golden.csv, function 0
    traffic = LiveTraffic(3000, switch_at=1500)    # function 0, then 2 from row 1500
    for request in traffic:                        # request_id, features, label, concept
        ...
    feedback = traffic.labels_for(["agrawal-0-000001"])  # {"agrawal-0-000001": 1}

Why functions 0 → 2 (``BEFORE``, ``AFTER``): function 0 approves by age band alone
(under 40, or 60 and over), function 2 by age band *and* education level, so the same
applicants get different answers. Gradient boosting (sklearn defaults; LightGBM scores
the same to 0.001) trained on 5,000 rows of function 0, scored on 5,000 fresh rows:

    label_noise    on function 0   on function 2   majority class on 2
    0.00           1.000           0.477           0.533
    0.05 (NOISE)   0.948           0.476           0.532
    0.10           0.894           0.480           0.530

The champion falls ~47 points, below always answering the majority class, while the
inputs keep their distribution. A retrain on function 2 at NOISE reaches 0.84 from 200
labelled rows, 0.92 from 500 and 0.945 from 1,000. Of all 90 ordered pairs 0 → 5 drops
further (to 0.29) but function 5 (salary + commission bands) is slower to relearn, and
pairs among 6–9 hardly drop (a model of 6 scores 0.94 on 8).

Labelled rows to detection: a model trained on ``write_training_data()`` (validation
accuracy 0.948), a sliding window over labelled rows in arrival order, alarm when its
accuracy is below 0.948 − 0.05; NOISE, abrupt switch after 2,000 rows, 100 seeds:

    window   post-switch labelled rows to alarm   seeds with a false alarm before the switch
    100      median 13, p90 21, max 31            56 of 100
    200      median 22, p90 36, max 44            9 of 100
    500      median 56, p90 72, max 87            0 of 100

So about a tenth of the window (0.05 / (0.948 − 0.47) of it); below ~500 rows a fixed
5-point margin is only 2–3 standard deviations of the window's accuracy, and checked
after every row it alarms falsely. A 500-row window needs ≤ ~90 labelled rows.

Each purpose draws its own river stream (seed ``10 × seed + k``, negatives folded), so
training, validation, golden rows, live traffic and the worse candidate never share rows;
the concept and the label noise only change labels, never features. Label noise is ours,
not river's ``perturbation``: with perturbation > 0 river 0.26 clamps ``hvalue`` to 0 or
(9 − zipcode) × 100k. Speed: river draws row by row (``eval`` per feature), 20,000 rows
in ~0.6 s on the 2-core demo machine, after ~0.9 s to import river once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from shipyard.errors import ConfigError

__all__ = [
    "AFTER",
    "BEFORE",
    "CATEGORICAL",
    "COLUMNS",
    "FEATURES",
    "NOISE",
    "TARGET",
    "Column",
    "LiveRequest",
    "LiveTraffic",
    "agrawal_frame",
    "worse_training_frame",
    "write_training_data",
]

TARGET = "approved"
BEFORE = 0  # the concept the first model learns
AFTER = 2  # the concept live traffic switches to
NOISE = 0.05  # share of labels flipped: the best model scores ~0.95, not a suspicious 1.0


@dataclass(frozen=True)
class Column:
    """One column of the Agrawal table: its dtype, kind and what river draws it from."""

    name: str
    dtype: str
    kind: Literal["numeric", "categorical", "target"]
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("salary", "float64", "numeric", "uniform 20k to 150k"),
    Column("commission", "float64", "numeric", "0 if salary >= 75k, else uniform 10k to 85k"),
    Column("age", "int64", "numeric", "uniform integer 20 to 80"),
    Column("elevel", "int64", "categorical", "education level code 0 to 4"),
    Column("car", "int64", "categorical", "car maker code 1 to 20 (no function uses it)"),
    Column("zipcode", "int64", "categorical", "zip code 0 to 8; sets the house value range"),
    Column("hvalue", "float64", "numeric", "house value, (8 - zipcode) x 50k to 150k"),
    Column("hyears", "int64", "numeric", "years the house has been owned, 1 to 30"),
    Column("loan", "float64", "numeric", "total loan, uniform 0 to 500k"),
    Column(TARGET, "int64", "target", "1 if the classification function approves the loan"),
)
FEATURES: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.kind != "target")
# Integer codes, not pandas categories: they survive CSV and JSON unchanged.
CATEGORICAL: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.kind == "categorical")
# River yields int 0 for commission and ints for hvalue under perturbation: keep one type.
_FLOATS = frozenset(c.name for c in COLUMNS if c.dtype == "float64")

# Offsets into the seed space, one per purpose, so training, validation, golden rows,
# live traffic and the worse candidate never share a draw for any two seeds.
_STREAMS = {"train": 0, "valid": 1, "golden": 2, "live": 3, "worse": 4}


def agrawal_frame(
    rows: int,
    *,
    function: int,
    seed: int,
    perturbation: float = 0.0,
    label_noise: float = 0.0,
) -> pd.DataFrame:
    """``rows`` rows of river's Agrawal stream labelled by ``function`` (0–9), as a table.

    ``perturbation`` is river's feature noise (see the module notes on ``hvalue``);
    ``label_noise`` flips that share of labels at random.
    """
    draws = _draw([function] * rows, seed=seed, perturbation=perturbation, label_noise=label_noise)
    return _frame(draws)


def write_training_data(
    folder: Path,
    *,
    rows: int = 4000,
    function: int = BEFORE,
    seed: int = 0,
    label_noise: float = NOISE,
) -> dict[str, Path]:
    """Write ``train.csv`` (``rows``), ``valid.csv`` (¼) and ``golden.csv`` (½), disjoint draws.

    Also ``columns.json``: each column's dtype, kind and description. Returns the paths
    by name (``train``, ``valid``, ``golden``, ``columns``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {"train": rows, "valid": max(rows // 4, 1), "golden": max(rows // 2, 1)}
    paths: dict[str, Path] = {}
    for name, size in sizes.items():
        frame = agrawal_frame(
            size, function=function, seed=_stream_seed(seed, name), label_noise=label_noise
        )
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    paths["columns"] = folder / "columns.json"
    description = {
        "target": TARGET,
        "function": function,
        "label_noise": label_noise,
        "columns": [asdict(column) for column in COLUMNS],
    }
    paths["columns"].write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return paths


def worse_training_frame(
    rows: int = 4000,
    *,
    function: int = AFTER,
    seed: int = 0,
    flipped_share: float = 0.3,
    label_noise: float = NOISE,
) -> pd.DataFrame:
    """Training rows with a labelling bug: ``approved`` inverted for the lowest-salary share.

    A model trained on it learns the inversion, so it is wrong on about ``flipped_share``
    of live rows whatever the training size. Gradient boosting on function 2 at NOISE,
    scored on function 2: 0.93–0.95 clean, 0.73–0.81 at 0.2, 0.64–0.69 at 0.3 (the
    default), ~0.5 at 0.5, alike from 500 to 4,000 rows and across seeds. Shuffling a
    share of labels instead is not reliably bad: with 50 % shuffled a model still scores
    0.95 from 3,000 rows. Salary is uniform and unused by functions 0 and 2, so the band
    holds that share of rows.
    """
    if not 0.0 <= flipped_share <= 1.0:
        raise ConfigError(
            f"flipped_share {flipped_share} is not between 0 and 1.",
            hint="Use e.g. 0.3 to invert the labels of the lowest-salary 30 % of rows.",
        )
    frame = agrawal_frame(
        rows, function=function, seed=_stream_seed(seed, "worse"), label_noise=label_noise
    )
    low, high = 20_000.0, 150_000.0  # river's salary range
    flipped = frame["salary"] < low + flipped_share * (high - low)
    frame.loc[flipped, TARGET] = 1 - frame.loc[flipped, TARGET]
    return frame


@dataclass(frozen=True)
class LiveRequest:
    """One live request: what the client sends, and the label that arrives later."""

    request_id: str
    features: dict[str, float | int]
    label: int
    concept: int  # the classification function that labelled it


class LiveTraffic:
    """``rows`` live requests whose concept switches from ``before`` to ``after``.

    Rows before ``switch_at`` are labelled by ``before``, rows from ``switch_at + width``
    on by ``after``; in between (a gradual switch) row ``i`` is labelled by ``after``
    with probability ``(i - switch_at + 1) / (width + 1)``. The features are the same
    draws whatever the functions, ``switch_at`` or ``width``: only labels drift.
    Deterministic for a seed; request ids are ``{id_prefix}-{row:06d}``.
    """

    def __init__(
        self,
        rows: int,
        *,
        switch_at: int,
        before: int = BEFORE,
        after: int = AFTER,
        width: int = 0,
        seed: int = 0,
        label_noise: float = NOISE,
        id_prefix: str | None = None,
    ) -> None:
        if not 0 <= switch_at <= rows:
            raise ConfigError(
                f"switch_at {switch_at} is outside the {rows} live rows.",
                hint="Choose a row between 0 and rows, e.g. rows // 2.",
            )
        if width < 0:
            raise ConfigError(
                f"width {width} is negative.",
                hint="Use 0 for an abrupt switch, or the number of rows the switch takes.",
            )
        self.switch_at = switch_at
        self.before = before
        self.after = after
        self.width = width
        self.seed = seed
        self.id_prefix = f"agrawal-{seed}" if id_prefix is None else id_prefix
        concepts = self._concepts(rows)
        draws = _draw(concepts, seed=_stream_seed(seed, "live"), label_noise=label_noise)
        self._requests = tuple(
            LiveRequest(f"{self.id_prefix}-{row:06d}", features, label, concept)
            for row, (features, label, concept) in enumerate(zip(*draws, concepts, strict=True))
        )
        self._labels = {request.request_id: request.label for request in self._requests}

    def __len__(self) -> int:
        return len(self._requests)

    def __iter__(self) -> Iterator[LiveRequest]:
        return iter(self._requests)

    def __getitem__(self, row: int) -> LiveRequest:
        return self._requests[row]

    def labels_for(self, request_ids: Iterable[str]) -> dict[str, int]:
        """The true label of each request id, in the order given (KeyError for unknown ids)."""
        return {request_id: self._labels[request_id] for request_id in request_ids}

    def to_frame(self) -> pd.DataFrame:
        """Every request as a row: ``request_id``, the features, ``approved`` and ``concept``."""
        frame = _frame(([r.features for r in self._requests], [r.label for r in self._requests]))
        frame.insert(0, "request_id", [r.request_id for r in self._requests])
        frame["concept"] = np.array([r.concept for r in self._requests], dtype="int64")
        return frame

    def _concepts(self, rows: int) -> list[int]:
        if self.width == 0:
            return [self.before if row < self.switch_at else self.after for row in range(rows)]
        # Its own generator, so that the width changes labels and never the features.
        coin = random.Random(f"concept:{self.seed}")
        return [
            self.after
            if coin.random() < (row - self.switch_at + 1) / (self.width + 1)
            else self.before
            for row in range(rows)
        ]


def _stream_seed(seed: int, purpose: str) -> int:
    # Python's Random seeds with abs(int): fold negatives onto odd numbers so -1 ≠ 1.
    folded = 2 * seed if seed >= 0 else -2 * seed - 1
    return folded * 10 + _STREAMS[purpose]


def _draw(
    functions: Sequence[int], *, seed: int, perturbation: float = 0.0, label_noise: float = 0.0
) -> tuple[list[dict[str, Any]], list[int]]:
    """River's draws, row ``i`` labelled by ``functions[i]``: features and labels."""
    synth = _river_synth()
    for function in set(functions):
        if function not in range(10):
            raise ConfigError(
                f"Agrawal has classification functions 0 to 9, not {function}.",
                hint=f"Use e.g. {BEFORE} before the switch and {AFTER} after it.",
            )
    if not 0.0 <= perturbation <= 1.0:
        raise ConfigError(
            f"perturbation {perturbation} is not between 0 and 1.",
            hint="Use 0 for exact features; river jitters each by up to that share.",
        )
    if not 0.0 <= label_noise <= 1.0:
        raise ConfigError(
            f"label_noise {label_noise} is not between 0 and 1.",
            hint=f"Use 0 for exact labels or e.g. {NOISE} to flip 5 % of them.",
        )
    first = functions[0] if functions else BEFORE
    generator = synth.Agrawal(classification_function=first, seed=seed, perturbation=perturbation)
    stream = iter(generator)
    # Its own generator, so that label noise never changes the features.
    flips = random.Random(f"label-noise:{seed}")
    features: list[dict[str, Any]] = []
    labels: list[int] = []
    for function in functions:
        # River labels a row when it is drawn, with the generator's current function (this
        # is how its own generate_drift works); the random draws never depend on it.
        generator.classification_function = function
        x, y = next(stream)
        features.append({n: float(x[n]) if n in _FLOATS else int(x[n]) for n in FEATURES})
        labels.append(int(y) ^ (flips.random() < label_noise))
    return features, labels


def _frame(draws: tuple[list[dict[str, Any]], list[int]]) -> pd.DataFrame:
    features, labels = draws
    columns = {
        column.name: np.array(
            labels if column.kind == "target" else [x[column.name] for x in features],
            dtype=column.dtype,
        )
        for column in COLUMNS
    }
    return pd.DataFrame(columns)


def _river_synth() -> Any:
    try:
        from river.datasets import synth
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"The demo data needs river, and {exc.name} is not installed.",
            hint="Install the demo extra: pip install 'shipyard-mlops[demo]'.",
        ) from None
    return synth
