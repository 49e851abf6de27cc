"""Generated golden sets and small in-process models for the evaluation tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.tree import DecisionTreeRegressor

from shipyard.config import Scorecard
from shipyard.evaluation import LoadedModel, Measurements, measure

FEATURES = ["x1", "x2", "x3"]


def binary_frame(rows: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Three numeric features, a region (with a 12-row group) and a 0/1 target ``y``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in FEATURES})
    regions = rng.choice(["north", "south", "west"], size=rows)
    regions[:12] = "east"  # too small for a fairness group of 20 rows
    frame["region"] = regions
    logit = 1.5 * frame["x1"] - 1.0 * frame["x2"] + 0.5 * frame["x3"]
    frame["y"] = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return frame


def multiclass_frame(rows: int = 3000, seed: int = 1) -> pd.DataFrame:
    """Three numeric features and a target ``y`` with the string classes a, b, c."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in FEATURES})
    logits = np.column_stack([frame["x1"], frame["x2"], -frame["x1"] - frame["x2"]]) * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    draws = (proba.cumsum(axis=1) < rng.random(rows)[:, None]).sum(axis=1)
    frame["y"] = np.array(["a", "b", "c"])[draws]
    return frame


def regression_frame(rows: int = 3000, seed: int = 2) -> pd.DataFrame:
    """Three numeric features, a region and a positive numeric target ``y``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in FEATURES})
    frame["region"] = rng.choice(["north", "south"], size=rows)
    frame["y"] = 10.0 + 3.0 * frame["x1"] - 2.0 * frame["x2"] + rng.normal(scale=0.5, size=rows)
    return frame


def loaded(
    model: Any,
    columns: list[str] | None = None,
    *,
    load_seconds: float = 0.05,
    size_bytes: int = 2_000_000,
) -> LoadedModel:
    """An in-memory model as evaluation sees a logged one."""
    return LoadedModel(
        model=model,
        flavour="sklearn",
        load_seconds=load_seconds,
        size_bytes=size_bytes,
        input_columns=columns if columns is not None else list(FEATURES),
    )


def logistic(frame: pd.DataFrame, columns: list[str] | None = None, **kw: Any) -> LoadedModel:
    """A logistic regression on ``columns`` (all features by default)."""
    columns = columns or list(FEATURES)
    return loaded(LogisticRegression().fit(frame[columns], frame["y"]), columns, **kw)


def ridge(frame: pd.DataFrame) -> LoadedModel:
    """A classifier without predict_proba."""
    return loaded(RidgeClassifier().fit(frame[FEATURES], frame["y"]))


def tree_regressor(frame: pd.DataFrame, depth: int = 4, **kw: Any) -> LoadedModel:
    """A small decision tree regressor."""
    model = DecisionTreeRegressor(max_depth=depth, random_state=0)
    return loaded(model.fit(frame[FEATURES], frame["y"]), **kw)


def card(**fields: Any) -> Scorecard:
    """A scorecard from plain data, as YAML would give it."""
    return Scorecard.model_validate(fields)


def measured(
    model: LoadedModel, frame: pd.DataFrame, scorecard: Scorecard, task: str = "classification"
) -> Measurements:
    """``measure`` with the tests' target column."""
    return measure(model, frame, target="y", scorecard=scorecard, task=task)  # type: ignore[arg-type]
