"""The monitor report says what its table says, on one category axis."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.monitoring.references import set_reference
from shipyard.monitoring.report import category_shares, write_monitor_report
from shipyard.monitoring.results import MonitorResult
from shipyard.monitoring.run import run_monitor
from tests.support import NUMERIC, TrainedExamples, project_of, register_numeric

FEATURES = ["a", "b", "c", "d", "e"]


def result_of(rows: int, feature_level: str, signal_scores: bool) -> MonitorResult:
    """Five features all scored at ``feature_level``; signals as the monitor reports them."""
    features = [
        {"feature": f, "method": "kl", "score": 10.04, "level": feature_level, "bands": None}
        for f in FEATURES
    ]
    signals = [
        {
            "name": f"feature:{f}",
            "method": "kl",
            "score": 10.04 if signal_scores else None,
            "level": feature_level if signal_scores else "ok",
            "bands": None,
        }
        for f in FEATURES
    ]
    return MonitorResult(
        model="churn",
        version="1",
        window="last:5000",
        rows=rows,
        created_at=datetime(2026, 12, 7, tzinfo=UTC),
        features=features,
        signals=signals,
        level="ok" if not signal_scores else "pause",
    )


def header_of(path: Path) -> str:
    html = path.read_text()
    return html[html.index("<header") : html.index("</header>")]


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = pd.DataFrame({f: np.arange(300) % 3 for f in FEATURES})
    current = pd.DataFrame({f: [0.0, 1.0] for f in FEATURES})
    return reference, current


def test_a_window_below_min_rows_says_not_enough_rows_not_outside_bands(tmp_path: Path) -> None:
    # What the issue saw: 2 predictions, every feature's raw score past pause, table ok.
    reference, current = frames()
    result = result_of(rows=2, feature_level="pause", signal_scores=False)

    path = write_monitor_report(tmp_path / "r.html", result, reference, current, [], min_rows=200)

    header = header_of(path)
    assert "not enough rows" in header and "(2 of the 200 needed)" in header
    assert "outside their bands" not in header
    assert ">OK<" in header


def test_without_min_rows_a_held_back_window_still_says_not_enough_rows(tmp_path: Path) -> None:
    reference, current = frames()
    result = result_of(rows=2, feature_level="pause", signal_scores=False)

    header = header_of(write_monitor_report(tmp_path / "r.html", result, reference, current, []))

    assert "not enough rows" in header and "outside their bands" not in header


def test_a_judged_window_counts_the_features_the_table_shows_outside(tmp_path: Path) -> None:
    reference, current = frames()
    result = result_of(rows=5000, feature_level="pause", signal_scores=True)

    path = write_monitor_report(tmp_path / "r.html", result, reference, current, [], min_rows=200)

    assert "5 of 5 features outside their bands" in header_of(path)


def test_an_unreliable_estimate_says_so_beside_its_band(tmp_path: Path) -> None:
    reference, current = frames()
    result = result_of(rows=5000, feature_level="ok", signal_scores=True)
    result.estimated = {
        "accuracy": {
            "value": 0.9,
            "low": 0.7,
            "high": 0.99,
            "support": 0.62,
            "reliable": False,
            "reason": "38% of scores where the reference has few",
        },
        "roc_auc": {
            "value": 0.8,
            "low": 0.78,
            "high": 0.82,
            "support": 1.0,
            "reliable": True,
            "reason": None,
        },
    }

    html = write_monitor_report(tmp_path / "r.html", result, reference, current, []).read_text()

    rows = {cell.split("</td>")[0]: cell for cell in html.split("<tr><td>")[1:]}
    assert "unreliable: 38% of scores where the reference has few" in rows["accuracy"]
    assert "62% of the window" in rows["accuracy"]
    assert "unreliable" not in rows["roc_auc"] and "100% of the window" in rows["roc_auc"]


def test_integer_codes_share_one_axis_with_their_float_copies() -> None:
    # Training data holds 0, 1, 2; the prediction log holds them as 0.0, 1.0, 2.0.
    reference = pd.Series([0, 1, 2, 2, 1, 2], dtype="int64")
    current = pd.Series([0.0, 2.0, 2.0, 2.0, np.nan, 0.5])

    categories, ref_shares, cur_shares = category_shares(reference, current)

    assert categories[:3] == ["2", "1", "0"]  # the reference's, most common first
    assert sorted(categories[3:]) == ["0.5", "missing"]  # then the window's own
    assert dict(zip(categories, ref_shares, strict=True)) == {
        "2": 0.5,
        "1": 2 / 6,
        "0": 1 / 6,
        "missing": 0.0,
        "0.5": 0.0,
    }
    assert dict(zip(categories, cur_shares, strict=True)) == {
        "2": 0.5,
        "1": 0.0,
        "0": 1 / 6,
        "missing": 1 / 6,
        "0.5": 1 / 6,
    }


def test_strings_and_booleans_keep_their_labels() -> None:
    categories, _, cur_shares = category_shares(
        pd.Series(["basic", "pro", "pro"]), pd.Series(["pro", "team"])
    )
    assert categories == ["pro", "basic", "team"] and cur_shares == [0.5, 0.0, 0.5]
    booleans = category_shares(pd.Series([True, True, False]), pd.Series([1.0]))[0]
    assert booleans == ["True", "False", "1"]


def test_a_two_prediction_window_end_to_end(
    trained_examples: TrainedExamples, tmp_path: Path
) -> None:
    # The run: 2 logged predictions, raw drift scores far past pause for every
    # feature, the table ok. The header must agree with the table.
    from sklearn.linear_model import LogisticRegression

    config = trained_examples.copy(tmp_path / "churn")
    register_numeric(config, "small", lambda X, y: LogisticRegression().fit(X, y), "sklearn")
    project = project_of(config)
    set_reference(project, "small", "1", Path("data/train.csv"))
    with PredictionLogWriter(config.resolve(config.serving.logs)) as writer:
        for i in range(2):
            writer.log(
                PredictionBatch(
                    request_id=f"tiny-{i}",
                    time=datetime.now(UTC),
                    model="small",
                    version="1",
                    role="live",
                    columns=tuple(NUMERIC),
                    matrix=np.array([[1000.0 + i, 9999.0, 50.0]]),
                    labels=np.array([1]),
                    probabilities=np.array([[0.1, 0.9]]),
                    latency_ms=1.0,
                    status="ok",
                )
            )

    result = run_monitor(project, "small", version="1", window="last:2", alerts=False)

    assert result.rows == 2 and result.rows < config.monitoring.min_rows
    assert {f["level"] for f in result.features} != {"ok"}  # the raw scores breach
    header = header_of(Path(result.report_path or ""))
    assert "not enough rows" in header and "outside their bands" not in header
