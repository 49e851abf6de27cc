"""Test data for the feature store: the Feast oracle's driver data, a driver project, random data.

- :data:`FEAST_PIT`: the folder of Feast 0.67's point-in-time answers (see its README);
- :func:`write_driver_stats`: the oracle's ``features.csv`` as Parquet, UTC timestamps;
- :func:`driver_entities`: the oracle's ``entities.csv`` as a DataFrame, UTC timestamps;
- :func:`driver_project`: a project folder declaring entity ``driver`` and view
  ``driver_stats`` in ``shipyard.yaml``; :func:`features_py` /
  :func:`python_driver_project`: the same declared in ``features.py``;
- :func:`random_feature_data` / :func:`random_entity_rows`: random sources with ties on
  event time and a created column, for property tests of the point-in-time join.
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from shipyard.config import Config, load_config

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BASE_TIME",
    "CHURN_COLUMNS",
    "DRIVER_STATS",
    "FEAST_PIT",
    "driver_entities",
    "driver_project",
    "driver_yaml",
    "features_py",
    "log_served_churn",
    "python_driver_project",
    "random_entity_rows",
    "random_feature_data",
    "read_feast_csv",
    "register_tagged_drivers",
    "write_driver_stats",
]

FEAST_PIT = Path(__file__).resolve().parent / "feast_pit"
"""Feast 0.67's answers on the driver cases (``features.csv``, ``entities.csv``, truths),
the pinned oracle data (see its README), copied into the repository so a clean clone has it."""

DRIVER_STATS = Path("data") / "driver_stats.parquet"
"""Where :func:`driver_project` puts the driver data, relative to the project."""

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
"""The first event time of :func:`random_feature_data`."""

_TIME_COLUMNS = ("event_timestamp", "created")


def read_feast_csv(name: str) -> pd.DataFrame:
    """One CSV of :data:`FEAST_PIT` with its timestamp columns parsed as UTC."""
    import pandas as pd

    frame = pd.read_csv(FEAST_PIT / name)
    for column in _TIME_COLUMNS:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def write_driver_stats(folder: Path, name: str = "driver_stats.parquet") -> Path:
    """Write the oracle's ``features.csv`` as Parquet in ``folder``; returns the file.

    Columns: ``driver_id`` int64, ``event_timestamp`` and ``created`` timestamp[us, UTC],
    ``conv_rate`` float64, ``trips`` int64.
    """
    frame = read_feast_csv("features.csv")
    frame["driver_id"] = frame["driver_id"].astype("int64")
    frame["conv_rate"] = frame["conv_rate"].astype("float64")
    frame["trips"] = frame["trips"].astype("int64")
    for column in _TIME_COLUMNS:
        frame[column] = frame[column].astype("datetime64[us, UTC]")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_parquet(path, index=False)
    return path


def driver_entities() -> pd.DataFrame:
    """The oracle's entity rows (``driver_id``, ``event_timestamp`` in UTC, ``label``)."""
    return read_feast_csv("entities.csv")


def driver_yaml(source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``shipyard.yaml`` document of :func:`driver_project` (before overrides)."""
    return {
        "project": "drivers",
        "features": {
            "entities": [{"name": "driver", "join_keys": ["driver_id"]}],
            "views": [
                {
                    "name": "driver_stats",
                    "entities": ["driver"],
                    "source": dict(source or {"path": DRIVER_STATS.as_posix()}),
                    "timestamp_field": "event_timestamp",
                    "created_timestamp_column": "created",
                    "ttl": "2h",
                    "features": {"conv_rate": "float64", "trips": "int64"},
                }
            ],
        },
    }


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` deep-merged into a copy of ``base`` (mappings merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _write_project(root: Path, document: Mapping[str, Any]) -> Config:
    root.mkdir(parents=True, exist_ok=True)
    write_driver_stats(root / DRIVER_STATS.parent, DRIVER_STATS.name)
    (root / "shipyard.yaml").write_text(yaml.safe_dump(dict(document), sort_keys=False))
    return load_config(root / "shipyard.yaml", environ={})


def driver_project(tmp_path: Path, **yaml_overrides: Any) -> Config:
    """A project in ``tmp_path / "drivers"`` with the driver data and view in ``shipyard.yaml``.

    ``yaml_overrides`` are top-level keys deep-merged into the document (mappings merge,
    lists and values replace): ``driver_project(tmp, database_url=url)``. To change the
    view, pass ``features={"views": [...]}`` (e.g. built from :func:`driver_yaml`).
    """
    return _write_project(tmp_path / "drivers", _merge(driver_yaml(), yaml_overrides))


def features_py(
    *,
    ttl_hours: float = 2,
    source: str = f'FileSource("{DRIVER_STATS.as_posix()}")',
    features: str = 'Feature("conv_rate", "float64"), Feature("trips", "int64")',
    extra: str = "",
) -> str:
    """The text of a ``features.py`` declaring ``driver`` and ``driver_stats`` (plus ``extra``)."""
    body = f"""\
        from datetime import timedelta

        from shipyard.features import Entity, Feature, FeatureView, FileSource, SqlSource

        driver = Entity("driver", join_keys=("driver_id",))

        driver_stats = FeatureView(
            "driver_stats",
            entities=("driver",),
            source={source},
            ttl=timedelta(hours={ttl_hours}),
            created_timestamp_column="created",
            features=({features},),
        )
        """
    return textwrap.dedent(body) + textwrap.dedent(extra)


def python_driver_project(tmp_path: Path, text: str | None = None, **yaml_overrides: Any) -> Config:
    """A project in ``tmp_path / "drivers"`` whose definitions are in ``features.py``.

    ``text`` is the file (default :func:`features_py`); ``shipyard.yaml`` declares no views.
    """
    root = tmp_path / "drivers"
    root.mkdir(parents=True, exist_ok=True)
    (root / "features.py").write_text(features_py() if text is None else text)
    return _write_project(root, _merge({"project": "drivers"}, yaml_overrides))


def random_feature_data(seed: int, n_entities: int, n_rows: int) -> pd.DataFrame:
    """A random source frame for ``driver_stats``: ties on event time, distinct created times.

    Event times fall on a coarse grid (every 10 minutes over one day), so one entity
    often has several rows at the same event time; ``created`` is the event time plus a
    random delay, unique across the frame, so a tie on event time always has one
    winner. Columns as :func:`write_driver_stats` (``driver_id`` 1..n_entities).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    event_minutes = rng.integers(0, 144, n_rows) * 10
    # unique delays (in seconds) keep (entity, event, created) free of full ties
    delays = rng.permutation(n_rows) + rng.integers(0, 3, n_rows) * n_rows
    base = pd.Timestamp(BASE_TIME)
    event = base + pd.to_timedelta(event_minutes, unit="min")
    frame = pd.DataFrame(
        {
            "driver_id": rng.integers(1, n_entities + 1, n_rows).astype("int64"),
            "event_timestamp": event,
            "created": event + pd.to_timedelta(delays, unit="s"),
            "conv_rate": rng.random(n_rows).round(6),
            "trips": rng.integers(0, 1000, n_rows).astype("int64"),
        }
    )
    for column in _TIME_COLUMNS:
        frame[column] = frame[column].astype("datetime64[us, UTC]")
    return frame


def random_entity_rows(seed: int, n_entities: int, n_rows: int) -> pd.DataFrame:
    """Random entity rows for :func:`random_feature_data`'s source: some unknown entities,
    some times on the event grid exactly, some duplicated rows; a ``label`` column."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    minutes = rng.integers(-30, 26 * 60, n_rows)
    on_grid = rng.random(n_rows) < 0.3
    minutes = np.where(on_grid, (minutes // 10) * 10, minutes)
    frame = pd.DataFrame(
        {
            "driver_id": rng.integers(1, n_entities + 2, n_rows).astype("int64"),
            "event_timestamp": pd.Timestamp(BASE_TIME) + pd.to_timedelta(minutes, unit="min"),
            "label": rng.integers(0, 2, n_rows).astype("int64"),
        }
    )
    if n_rows > 1:
        frame.iloc[-1] = frame.iloc[0]  # a duplicated entity row
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")
    return frame


CHURN_COLUMNS = ("tenure_months", "monthly_charges", "contract", "support_calls", "region")
"""The churn example's model columns, in order."""


def log_served_churn(
    config: Config,
    frame: pd.DataFrame,
    start: pd.Timestamp,
    factor: float,
    *,
    role: str = "live",
    step: pd.Timedelta | None = None,
) -> None:
    """Log ``frame``'s rows as churn/1 served them from the ``customer_stats`` view, with
    ``monthly_charges`` times ``factor`` (1.0: as the offline source has it), one request
    per row from ``start`` every ``step`` (default 100 ms), keys and event times included
    the way the server logs a model served from entity keys."""
    import numpy as np
    import pandas as pd

    from shipyard.logs.writer import PredictionBatch, PredictionLogWriter

    step = pd.Timedelta(milliseconds=100) if step is None else step
    with PredictionLogWriter(config.resolve(config.serving.logs)) as writer:
        for i, row in enumerate(frame.itertuples(index=False)):
            served = [
                int(row.tenure_months),
                float(row.monthly_charges) * factor,
                row.contract,
                int(row.support_calls),
                row.region,
                int(row.customer_id),
                float(row.event_timestamp.timestamp()),
            ]
            writer.log(
                PredictionBatch(
                    request_id=f"{role}-{start.value}-{i}",
                    time=(start + step * i).to_pydatetime(),
                    model="churn",
                    version="1",
                    role=role,
                    columns=(*CHURN_COLUMNS, "customer_id", "feature_ts__customer_stats"),
                    matrix=np.array([served], dtype=object),
                    labels=np.array([0]),
                    probabilities=None,
                    latency_ms=1.0,
                    status="ok",
                )
            )


def register_tagged_drivers(config: Config) -> str:
    """Register ``drivers``: a classifier of conv_rate and trips (from ``driver_stats``)
    and the request input ``speed``, tagged as trained on that view; its version.

    Unknown drivers are served as missing (missing: null): the model imputes them."""
    import json
    import warnings

    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from shipyard.features.repo import load_repo
    from shipyard.registry import Tracking
    from shipyard.registry.tags import FEATURES

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "conv_rate": rng.uniform(0, 1, 300),
            "trips": rng.integers(0, 50, 300).astype(float),
            "speed": rng.normal(50, 10, 300),
        }
    )
    target = (frame["conv_rate"] + frame["trips"] / 50 > 1).astype(int)
    train = config.root / "data" / "drivers_train.csv"
    frame.assign(churned=target).to_csv(train, index=False)
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(frame, target)
    tracking = Tracking(config)
    with mlflow.start_run(experiment_id=tracking.experiment_id("drivers")):
        with warnings.catch_warnings():  # MLflow: "source can be interpreted in multiple ways"
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(frame, source=str(train), name="drivers")
        mlflow.log_input(dataset, context="training")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="drivers",
            signature=infer_signature(frame, model.predict(frame)),
            pip_requirements=["scikit-learn"],
            skops_trusted_types=["numpy.dtype"],  # the imputer keeps its fitted dtype
        )
    tag = {
        "features": ["driver_stats:conv_rate", "driver_stats:trips"],
        "columns": {"driver_stats:conv_rate": "conv_rate", "driver_stats:trips": "trips"},
        "views": {"driver_stats": load_repo(config).views["driver_stats"].version},
        "entity_keys": ["driver_id"],
        "request_inputs": ["speed"],
        "mode": "event_time",
    }
    version = str(info.registered_model_version)
    tracking.client.set_model_version_tag("drivers", version, FEATURES, json.dumps(tag))
    return version
