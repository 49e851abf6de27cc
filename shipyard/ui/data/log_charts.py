"""Throughput, latency and errors over time, from one pass over the prediction log."""

from __future__ import annotations

import math

import numpy as np

from shipyard.errors import ShipyardError
from shipyard.ui.data.context import ChartContext
from shipyard.ui.data.log_stats import QUANTILES
from shipyard.ui.panels import panel_named
from shipyard.ui.views import Chart, Series

__all__ = ["errors_chart", "latency_chart", "throughput_chart"]


def _grouped(ctx: ChartContext, values: np.ndarray, fill: float) -> dict[tuple[str, str], list]:
    """``values`` (one per stats row) laid on the bucket grid per (version, arm)."""
    stats = ctx.log
    grids = {group: np.full(ctx.grid.count, fill, dtype=np.float64) for group in stats.groups}
    inside = (stats.bucket >= 0) & (stats.bucket < ctx.grid.count)
    for i in np.flatnonzero(inside):
        grids[(stats.version[i], stats.arm[i])][stats.bucket[i]] = values[i]
    return {group: _plain(column) for group, column in grids.items()}


def _plain(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values.tolist()]


def _unreadable(ctx: ChartContext, panel_id: str) -> Chart | None:
    """The panel with the log's read error on it, or None when the log reads."""
    try:
        _ = ctx.log
    except ShipyardError as exc:
        return Chart(panel_named(panel_id), annotations=ctx.annotations, error=str(exc))
    return None


def throughput_chart(ctx: ChartContext) -> Chart:
    """Answered predictions per second, per bucket, by version and arm."""
    if (failed := _unreadable(ctx, "throughput")) is not None:
        return failed
    stats = ctx.log
    seconds = np.array([ctx.grid.seconds(i) for i in range(ctx.grid.count)])
    counts = _grouped(ctx, stats.ok.astype(np.float64), 0.0)
    x = ctx.grid.labels()
    series = [
        Series(
            f"{version} {arm}",
            x,
            [None if v is None else v / s for v, s in zip(ys, seconds, strict=True)],
            arm=arm,
        )
        for (version, arm), ys in counts.items()
    ]
    return Chart(panel_named("throughput"), series=series, annotations=ctx.annotations)


def latency_chart(ctx: ChartContext) -> Chart:
    """p50 / p95 / p99 of answered requests' server time (ms), per bucket, by version and arm."""
    if (failed := _unreadable(ctx, "latency")) is not None:
        return failed
    x = ctx.grid.labels()
    series = []
    for k, q in enumerate(QUANTILES):
        for (version, arm), ys in _grouped(ctx, ctx.log.latency[:, k], math.nan).items():
            series.append(
                Series(f"{version} {arm} p{round(q * 100)}", x, ys, arm=arm, dash=q != 0.99)
            )
    return Chart(
        panel_named("latency"), series=series, annotations=ctx.annotations, note="milliseconds"
    )


def errors_chart(ctx: ChartContext) -> Chart:
    """Share of predictions answered with an error, per bucket, by version and arm."""
    if (failed := _unreadable(ctx, "errors")) is not None:
        return failed
    stats = ctx.log
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(stats.requests > 0, 1.0 - stats.ok / stats.requests, np.nan)
    x = ctx.grid.labels()
    series = [
        Series(f"{version} {arm}", x, ys, arm=arm)
        for (version, arm), ys in _grouped(ctx, share, math.nan).items()
    ]
    return Chart(panel_named("errors"), series=series, annotations=ctx.annotations)
