"""One Level: its words, its order, and every place that names a level agreeing with it."""

from __future__ import annotations

from typing import get_args

import pydantic
import pytest

from shipyard.config import AlertRoute
from shipyard.levels import ALERT_LEVELS, LEVELS, is_alert_level, rank, worst
from shipyard.monitoring import PSI_BANDS
from shipyard.monitoring.alerting import SEVERITY, Signal


def test_the_words_and_their_order() -> None:
    assert LEVELS == ("unknown", "ok", "inspect", "retrain", "pause")
    assert ALERT_LEVELS == ("inspect", "retrain", "pause")
    assert [rank(level) for level in LEVELS] == sorted(rank(level) for level in LEVELS)
    assert len({rank(level) for level in LEVELS}) == len(LEVELS)
    assert rank("pause") > rank("retrain") > rank("inspect") > rank("ok") > rank("unknown")


def test_worst_picks_the_most_severe() -> None:
    assert worst(["ok", "pause", "inspect"]) == "pause"
    assert worst(["unknown", "ok"]) == "ok"
    assert worst([]) == "ok"
    assert worst([], default="unknown") == "unknown"
    assert worst(level for level in ["inspect", "retrain"]) == "retrain"


def test_an_unknown_word_is_refused() -> None:
    with pytest.raises(ValueError, match="'critical'"):
        rank("critical")  # type: ignore[arg-type]


def test_only_the_acting_bands_raise_alerts() -> None:
    assert [level for level in LEVELS if is_alert_level(level)] == list(ALERT_LEVELS)
    assert not is_alert_level("ok") and not is_alert_level(None)


def test_band_thresholds_classify_into_levels() -> None:
    found = {PSI_BANDS.classify(score) for score in (0.0, 0.12, 0.3, 0.5)}
    assert found == {"ok", "inspect", "retrain", "pause"}
    assert found <= set(LEVELS)


def test_alerting_and_config_use_the_same_levels() -> None:
    assert set(SEVERITY) == set(ALERT_LEVELS)
    with pytest.raises(ValueError, match="level must be one of"):
        Signal("churn", "1", "prediction", level="ok", score=0.1)  # type: ignore[arg-type]
    assert get_args(AlertRoute.model_fields["min_level"].annotation) == ALERT_LEVELS
    with pytest.raises(pydantic.ValidationError):
        AlertRoute(kind="webhook", url="http://127.0.0.1:9/hook", min_level="ok")  # type: ignore[arg-type]
