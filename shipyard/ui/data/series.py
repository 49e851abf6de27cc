"""The series registry: one function per model-page panel, looked up by panel id.

    chart = SERIES["latency"](ChartContext(project, "churn", window))

A test holds :data:`SERIES` equal to the model page's panels in
:mod:`shipyard.ui.panels`. A new panel is one function here and one entry below.
"""

from __future__ import annotations

from collections.abc import Callable

from shipyard.ui.data.context import ChartContext
from shipyard.ui.data.extra_charts import cost_chart, kpi_chart, traffic_chart
from shipyard.ui.data.log_charts import errors_chart, latency_chart, throughput_chart
from shipyard.ui.data.monitor_charts import (
    feature_drift_chart,
    labels_chart,
    performance_chart,
    prediction_drift_chart,
)
from shipyard.ui.views import Chart

__all__ = ["SERIES", "SeriesFunction"]

SeriesFunction = Callable[[ChartContext], Chart]

SERIES: dict[str, SeriesFunction] = {
    "throughput": throughput_chart,
    "latency": latency_chart,
    "errors": errors_chart,
    "cost": cost_chart,
    "traffic": traffic_chart,
    "feature_drift": feature_drift_chart,
    "prediction_drift": prediction_drift_chart,
    "performance": performance_chart,
    "labels": labels_chart,
    "kpi": kpi_chart,
}
"""Panel id → the function computing its chart over a :class:`ChartContext`."""
