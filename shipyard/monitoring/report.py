"""The monitor report: one self-contained HTML file per run.

It shows the verdict, every signal against its levels, each feature's reference and
current distributions side by side, and a heatmap of feature drift over recent runs,
so a person can see at a glance what moved, by how much, and since when.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.evaluation.plots import new_figure, to_png
from shipyard.evaluation.report import STYLE
from shipyard.levels import ALERT_LEVELS

if TYPE_CHECKING:
    from shipyard.monitoring.results import MonitorResult

__all__ = ["category_shares", "write_monitor_report"]

_COLOURS = {"ok": "#15803d", "inspect": "#b45309", "retrain": "#c2410c", "pause": "#b91c1c"}
_EXTRA_STYLE = """
header.ok { background: #15803d; } header.inspect { background: #b45309; }
header.retrain { background: #c2410c; } header.pause { background: #b91c1c; }
td.level { font-weight: 700; }
"""
_BINS = 30
_TOP = 12  # categories shown per categorical feature


def write_monitor_report(
    path: Path,
    result: MonitorResult,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    history: Sequence[tuple[datetime, dict[str, float]]],
    *,
    min_rows: int | None = None,
) -> Path:
    """Write the HTML report of ``result`` to ``path`` and return ``path``.

    ``min_rows`` (``monitoring.min_rows``) lets the header say why a window too small to
    judge shows every feature ok.
    """
    body = [_header(result, min_rows), _signals(result), _skew(result), _performance(result)]
    heatmap = _heatmap(history)
    body.append("<h2>Feature drift over time</h2>")
    body.append(
        f'<img alt="drift heatmap" src="data:image/png;base64,{heatmap}">'
        if heatmap
        else '<p class="note">Only one run so far: the heatmap starts with the next.</p>'
    )
    body.append("<h2>Distributions: reference against current</h2><div class='grid'>")
    for feature in result.features:
        name = feature["feature"]
        if name not in reference.columns or name not in current.columns:
            continue
        image = _distribution(name, reference[name], current[name])
        body.append(
            f"<section><h3>{escape(name)} — {escape(str(feature['level']))}</h3>"
            f'<img alt="{escape(name)}" src="data:image/png;base64,{image}"></section>'
        )
    body.append("</div>")
    title = f"{result.model}/{result.version} monitor, {result.window}"
    html = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}{_EXTRA_STYLE}</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def _header(result: MonitorResult, min_rows: int | None) -> str:
    """The verdict, and a summary that agrees with the signals table below it."""
    features = [s for s in result.signals if str(s.get("name", "")).startswith("feature:")]
    outside = [s for s in features if s.get("level") not in ("ok", "unknown", None)]
    held_back = (min_rows is not None and result.rows < min_rows) or (
        # The monitor withholds feature scores from a window below monitoring.min_rows.
        bool(features)
        and all(s.get("score") is None for s in features)
        and any(f.get("score") is not None for f in result.features)
    )
    if held_back:
        needed = f" of the {min_rows} needed" if min_rows is not None else ""
        what = (
            f"not enough rows to judge feature drift ({result.rows}{needed}): "
            f"{len(features)} features not scored"
        )
    else:
        what = f"{len(outside)} of {len(features)} features outside their bands"
        dataset = result.dataset or {}
        if dataset:
            verdict = "drifted" if dataset.get("drifted") else "not drifted"
            what += f"; dataset {verdict} ({dataset.get('rule')} rule)"
    return (
        f'<header class="{escape(result.level)}"><h1>{escape(result.model)}/'
        f"{escape(result.version)}, {escape(result.window)} ({result.rows} predictions)</h1>"
        f'<p class="verdict">{escape(result.level.upper())}</p><p>{escape(what)}; run at '
        f"{escape(result.created_at.strftime('%Y-%m-%d %H:%M UTC'))}</p></header>"
    )


def _signals(result: MonitorResult) -> str:
    rows = []
    for signal in result.signals:
        bands = signal.get("bands") or {}
        levels = " / ".join(_number(bands.get(k)) for k in ALERT_LEVELS if k in bands)
        level = str(signal.get("level") or "ok")
        rows.append(
            f"<tr><td>{escape(signal['name'])}</td><td>{escape(str(signal.get('method', '')))}"
            f'</td><td class="num">{_number(signal.get("score"))}</td><td class="num">'
            f'{escape(levels)}</td><td class="level" style="color:{_COLOURS.get(level, "")}">'
            f"{escape(level)}</td></tr>"
        )
    return (
        "<h2>Signals</h2><table><tr><th>signal</th><th>method</th><th>score</th>"
        "<th>inspect / retrain / pause</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
    )


def _skew(result: MonitorResult) -> str:
    """Training-serving skew: value mismatches with examples, freshness, distribution."""
    skew = result.skew
    if not skew:
        return ""
    if "value" not in skew:
        return f"<h2>Training-serving skew: not checked</h2><p>{escape(str(skew.get('error')))}</p>"
    value, freshness = skew["value"], skew["freshness"]
    rows = []
    for item in value["features"]:
        example = item["examples"][0] if item["examples"] else None
        shown = (
            f"{example['entity']} at {example['time']}: served {example['served']}, "
            f"offline {example['expected']}"
            if example
            else (item.get("note") or "")
        )
        rows.append(
            f"<tr><td>{escape(item['feature'])}</td><td class='num'>{item['mismatched']}"
            f" / {item['compared']}</td><td class='num'>{_number(item['rate'])}</td>"
            f"<td class='level'>{escape(item['level'])}</td><td>{escape(shown)}</td></tr>"
        )
    views = [
        f"<tr><td>{escape(view['view'])}</td><td class='num'>{_number(view['sla_seconds'])}"
        f"</td><td class='num'>{_number(view['stale_share'])}</td><td class='num'>"
        f"{_number(view['p50_age_seconds'])} / {_number(view['p95_age_seconds'])}</td>"
        f"<td class='level'>{escape(view['level'])}</td></tr>"
        for view in freshness["views"]
    ]
    return (
        f"<h2>Training-serving skew: {escape(skew['level'])}</h2>"
        f"<p>{escape(value.get('summary', ''))}; {value['sampled']} requests recomputed "
        f"offline as served. Distribution skew (the served columns' drift): "
        f"{escape(skew['distribution']['level'])}.</p>"
        "<table><tr><th>feature</th><th>mismatched</th><th>rate</th><th>verdict</th>"
        "<th>example</th></tr>" + "".join(rows) + "</table>"
        "<table><tr><th>view</th><th>SLA (s)</th><th>stale share</th>"
        "<th>age p50 / p95 (s)</th><th>verdict</th></tr>" + "".join(views) + "</table>"
    )


def _performance(result: MonitorResult) -> str:
    from shipyard.monitoring.performance import label_summary

    parts = ["<h2>Performance</h2>"]
    labelled = result.performance or {}
    estimated = result.estimated or {}
    # Labels first: how many, how late, and whether performance is known at all.
    parts.extend(f'<p class="note">{escape(line)}</p>' for line in label_summary(labelled))
    metrics = sorted(set(labelled.get("metrics", {})) | set(estimated))
    if not metrics:
        parts.append('<p class="note">No labelled metric and no estimate for this model.</p>')
        return "".join(parts)
    rows = []
    for metric in metrics:
        realised = labelled.get("metrics", {}).get(metric)
        estimate = estimated.get(metric) or {}
        band = (
            f"{_number(estimate.get('low'))} – {_number(estimate.get('high'))}" if estimate else ""
        )
        support = estimate.get("support")
        trust = "" if support is None else f"{support:.0%} of the window"
        if estimate.get("reliable") is False:
            trust += f" — unreliable: {estimate.get('reason') or 'scores outside the reference'}"
        rows.append(
            f"<tr><td>{escape(metric)}</td><td class='num'>{_number(realised)}</td>"
            f"<td class='num'>{_number(estimate.get('value'))}</td><td class='num'>{band}</td>"
            f"<td class='note'>{escape(trust)}</td></tr>"
        )
    parts.append(
        "<table><tr><th>metric</th><th>realised (performance window)</th>"
        "<th>estimated (CBPE, feature window)</th><th>estimate band</th>"
        "<th>reference support</th></tr>" + "".join(rows) + "</table>"
    )
    return "".join(parts)


def _distribution(name: str, reference: pd.Series, current: pd.Series) -> str:
    figure, axes = new_figure(5.2, 3.2)
    numeric = pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference)
    if numeric and reference.nunique(dropna=True) > _TOP:
        ref = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float)
        cur = pd.to_numeric(current, errors="coerce").to_numpy(dtype=float)
        finite = np.concatenate([ref[np.isfinite(ref)], cur[np.isfinite(cur)]])
        edges = list(np.histogram_bin_edges(finite, bins=_BINS)) if len(finite) else _BINS
        axes.hist(ref[np.isfinite(ref)], bins=edges, density=True, alpha=0.5, label="reference")
        axes.hist(cur[np.isfinite(cur)], bins=edges, density=True, alpha=0.5, label="current")
    else:
        categories, ref_shares, cur_shares = category_shares(reference, current)
        positions = np.arange(len(categories))
        axes.bar(positions - 0.2, ref_shares, 0.4, label="reference")
        axes.bar(positions + 0.2, cur_shares, 0.4, label="current")
        axes.set_xticks(positions, categories, rotation=45, ha="right", fontsize=8)
        axes.set_ylabel("share")
    axes.set_title(name)
    axes.legend(fontsize=8)
    return to_png(figure)


def category_shares(
    reference: pd.Series, current: pd.Series, top: int = _TOP
) -> tuple[list[str], list[float], list[float]]:
    """One category axis for both sides: labels, and each side's share of every label.

    Values are labelled by what they are, not by their dtype: the training data's integer
    code ``1`` and the prediction log's ``1.0`` are one category, ``"1"``. The reference's
    ``top`` most common come first, then the current window's own, at most ``top`` more.
    """
    ref_share = reference.map(_category).value_counts(normalize=True)
    cur_share = current.map(_category).value_counts(normalize=True)
    categories = [str(c) for c in ref_share.index[:top]]
    categories += [str(c) for c in cur_share.index[:top] if c not in categories][:top]
    return (
        categories,
        [float(ref_share.get(c, 0.0)) for c in categories],
        [float(cur_share.get(c, 0.0)) for c in categories],
    )


def _category(value: Any) -> str:
    """A value's label on the category axis: whole numbers without a trailing ``.0``."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return "missing"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def _heatmap(history: Sequence[tuple[datetime, dict[str, float]]]) -> str | None:
    if len(history) < 2:
        return None
    features = sorted({name for _, scores in history for name in scores})
    grid = np.array(
        [[scores.get(name, np.nan) for _, scores in history] for name in features], dtype=float
    )
    figure, axes = new_figure(max(5.0, 0.35 * len(history) + 2.5), 0.35 * len(features) + 1.5)
    # 1 is the retrain level; past 2 the colour saturates, so small drifts stay visible.
    image = axes.imshow(grid, aspect="auto", cmap="YlOrRd", interpolation="nearest", vmin=0, vmax=2)
    axes.set_yticks(range(len(features)), features, fontsize=8)
    labels = [moment.strftime("%m-%d %H:%M") for moment, _ in history]
    step = max(1, len(labels) // 12)
    axes.set_xticks(
        range(0, len(labels), step), labels[::step], rotation=45, ha="right", fontsize=7
    )
    figure.colorbar(image, ax=axes, label="drift score / retrain level", extend="max")
    return to_png(figure)


def _number(value: Any) -> str:
    if value is None:
        return "—"
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return escape(str(value))
