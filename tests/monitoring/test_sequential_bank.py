"""The StreamBank: its streams, their scales, the shared false-alarm budget, stored state."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.config.sequential import SequentialSettings
from shipyard.errors import DataError
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.sequential import Alarm, StreamBank, make_detector

COLUMNS = ["age", "income", "visits"]


def reference(seed: int = 0, rows: int = 4000) -> Reference:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.standard_normal((rows, 3)), columns=COLUMNS)
    frame["region"] = rng.choice(["north", "south"], rows)  # categorical: no stream
    frame["constant"] = 1.0  # no spread: no stream
    return Reference.from_frame(frame)


def settings(**changes: object) -> SequentialSettings:
    return SequentialSettings.model_validate(changes)


def traffic(rng: np.random.Generator, rows: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    inputs = pd.DataFrame(rng.standard_normal((rows, 3)), columns=COLUMNS)
    return inputs, rng.random(rows), rng.binomial(1, 0.2, rows).astype(float)


def test_one_stream_per_numeric_feature_plus_errors_and_predictions() -> None:
    bank = StreamBank(settings(false_alarm_rate=6e-5)).fit(reference())
    assert list(bank.streams_) == [
        "error",
        "prediction",
        "feature:age",
        "feature:income",
        "feature:visits",
    ]
    kinds = {name: stream.detector.kind for name, stream in bank.streams_.items()}
    assert kinds["error"] == "adwin" and kinds["prediction"] == "page_hinkley"
    assert kinds["feature:age"] == "cusum"
    # Bonferroni: each of the 5 streams gets 6e-5 / 5 (ADWIN: delta = share x clock).
    assert bank.streams_["error"].detector.settings()["delta"] == pytest.approx(1.2e-5 * 32)
    expected = make_detector("cusum", false_alarm_rate=1.2e-5, reference_rows=4000)
    assert bank.streams_["feature:age"].detector.settings() == expected.settings()


def test_streams_set_to_off_are_left_out_and_features_can_be_chosen() -> None:
    bank = StreamBank(settings(error="off", prediction="off")).fit(reference(), features=["income"])
    assert list(bank.streams_) == ["feature:income"]
    with pytest.raises(DataError) as info:
        StreamBank().fit(reference(), features=["salary"])
    assert "salary" in info.value.message and info.value.hint


def test_a_shifted_feature_is_flagged_within_5000_rows_on_every_seed() -> None:
    for seed in range(10):
        rng = np.random.default_rng(seed)
        bank = StreamBank().fit(reference(seed))
        inputs, scores, errors = traffic(rng, 30_000)
        inputs.loc[20_000:, "income"] += 0.2
        alarms = []
        for start in range(0, 30_000, 250):
            alarms += bank.update(
                inputs.iloc[start : start + 250],
                scores[start : start + 250],
                errors[start : start + 250],
            )
        flagged = [
            a.position for a in alarms if a.stream == "feature:income" and a.position >= 20_000
        ]
        assert flagged and flagged[0] - 20_000 <= 5000, (seed, alarms)


def test_alarms_say_where_they_fired_in_the_batch_and_in_the_stream() -> None:
    bank = StreamBank(settings(prediction="off", features="off", error="cusum", min_samples=10))
    bank.fit(reference(), reference_errors=np.tile([0.0, 1.0], 5000))  # mean 0.5, sd 0.5
    quiet = np.tile([1.0, 0.0], 100)  # ends on a 0: the upper CUSUM is back at 0
    assert bank.update(errors=quiet) == []
    burst = np.ones(400)
    burst[:3] = np.nan  # missing values are skipped, but indices count them
    alarms = bank.update(errors=burst)
    first = alarms[0]
    assert isinstance(first, Alarm) and first.stream == "error" and first.detector == "cusum"
    # Each 1 adds (1 - 0.5) / 0.5 - k = 0.9 to the upper CUSUM.
    crossing = int(np.floor(first.threshold / 0.9)) + 1
    assert first.index == 3 + crossing - 1
    assert first.position == 200 + crossing - 1
    assert first.statistic > first.threshold
    assert first.to_dict()["stream"] == "error"


def test_without_a_reference_a_stream_learns_its_scale_first() -> None:
    bank = StreamBank(settings(features="off", error="off", min_samples=100)).fit(reference())
    stream = bank.streams_["prediction"]
    assert stream.center is None
    rng = np.random.default_rng(1)
    assert bank.update(predictions=rng.normal(5.0, 2.0, 60)) == []
    assert stream.center is None and len(stream.pending) == 60
    bank.update(predictions=rng.normal(5.0, 2.0, 60))
    assert stream.center == pytest.approx(5.0, abs=0.6)
    assert stream.spread == pytest.approx(2.0, rel=0.3)
    assert stream.pending == [] and stream.detector.samples == 120
    shifted = bank.update(predictions=rng.normal(9.0, 2.0, 500))
    assert shifted and shifted[0].index < 100


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_restored_bank_continues_exactly(task: str) -> None:
    rng = np.random.default_rng(3)
    never_stopped = StreamBank(settings(min_samples=50)).fit(reference(), task=task)  # type: ignore[arg-type]
    restored = StreamBank(settings(min_samples=50)).fit(reference(), task=task)  # type: ignore[arg-type]
    inputs, scores, errors = traffic(rng, 6000)
    inputs.loc[3000:, "age"] += 0.5
    scores[4000:] += 0.3
    errors[2000:] = rng.binomial(1, 0.5, 4000)
    for start in range(0, 6000, 700):
        window = slice(start, start + 700)
        expected = never_stopped.update(inputs.iloc[window], scores[window], errors[window])
        restored = StreamBank.from_dict(json.loads(json.dumps(restored.to_dict())))
        assert restored.update(inputs.iloc[window], scores[window], errors[window]) == expected
    assert restored.to_dict() == never_stopped.to_dict()
    assert restored.streams_["feature:age"].detector.alarms > 0


def test_one_value_per_row_is_required() -> None:
    bank = StreamBank().fit(reference())
    with pytest.raises(DataError) as info:
        bank.update(predictions=np.ones((5, 2)))
    assert info.value.hint and "score" in info.value.hint
