"""Served models predict exactly what the library object predicts, on both input paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.config import Config, load_config
from shipyard.errors import NotFoundError
from shipyard.models.served import load_served_model
from shipyard.models.signature import dump_json
from shipyard.registry import Tracking
from shipyard.serving.protocols import decode_v1
from tests.support import register_numeric


def test_text_columns_take_the_frame_path(trained_project: Config) -> None:
    client = Tracking(trained_project).client
    served = load_served_model(client, "churn", "1")
    assert served.needs_frame and served.flavour == "sklearn"
    golden = pd.read_csv(trained_project.root / "data" / "golden.csv").head(50)
    inputs = golden.drop(columns=["churned"])
    matrix = decode_v1(dump_json({"instances": inputs.to_dict("records")}), served.spec)
    got = served.predict(matrix)
    expected = served.model.predict_proba(inputs)
    np.testing.assert_array_equal(got.probabilities, expected)
    np.testing.assert_array_equal(got.labels, served.model.predict(inputs))


def test_numeric_models_take_the_matrix_path(initialised_example: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    config = load_config(initialised_example / "shipyard.yaml", environ={})
    model = LogisticRegression(max_iter=500)
    X = register_numeric(config, "numeric", model.fit, "sklearn")
    served = load_served_model(Tracking(config).client, "numeric", "1")
    assert not served.needs_frame
    got = served.predict(X.to_numpy()[:20])
    np.testing.assert_array_equal(got.probabilities, model.predict_proba(X.head(20)))


def test_unknown_version(trained_project: Config) -> None:
    with pytest.raises(NotFoundError):
        load_served_model(Tracking(trained_project).client, "churn", "99")


def test_boosters_predict_single_threaded_with_identical_results(initialised_example: Path) -> None:
    import lightgbm

    config = load_config(initialised_example / "shipyard.yaml", environ={})
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1)
    X = register_numeric(config, "boosted", model.fit, "lightgbm")
    served = load_served_model(Tracking(config).client, "boosted", "1")
    assert served.model.get_params()["n_jobs"] == 1
    got = served.predict(X.to_numpy())
    np.testing.assert_array_equal(got.probabilities, model.predict_proba(X))


def test_the_probe_learns_what_the_model_refuses(initialised_example: Path) -> None:
    import lightgbm
    from sklearn.linear_model import LogisticRegression

    config = load_config(initialised_example / "shipyard.yaml", environ={})
    booster = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1)
    register_numeric(config, "hist", booster.fit, "lightgbm")
    register_numeric(config, "logistic", LogisticRegression(max_iter=500).fit, "sklearn")
    client = Tracking(config).client
    hist = load_served_model(client, "hist", "1").spec  # takes NaN (missing values)
    assert all(hist.allow_nan)
    logistic = load_served_model(client, "logistic", "1").spec  # refuses NaN, takes 1e39
    assert not any(logistic.allow_nan) and logistic.max_abs is None


def test_the_feature_name_warning_is_filtered_once_not_per_call(
    initialised_example: Path,
) -> None:
    import warnings

    from sklearn.linear_model import LogisticRegression

    config = load_config(initialised_example / "shipyard.yaml", environ={})
    register_numeric(config, "named", LogisticRegression(max_iter=500).fit, "sklearn")
    served = load_served_model(Tracking(config).client, "named", "1")
    rows = np.zeros((1, len(served.spec.columns)))
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")  # the model itself warns: fitted with names
        served.model.predict_proba(rows)
    assert any("valid feature names" in str(w.message) for w in raw)
    with warnings.catch_warnings(record=True) as caught:  # the filters as load left them
        served.predict(rows)
        warnings.warn("another warning still shows", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another warning still shows"]
