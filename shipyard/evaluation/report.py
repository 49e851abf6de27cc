"""The evaluation report: one self-contained HTML file a reviewer can open anywhere.

Plots are embedded as base64 PNG and the styles inline, so the file needs no network
and no other file: it can be attached to a run, mailed, or opened from a CI artifact.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.evaluation import plots
from shipyard.evaluation.scorecard import UNITS, format_value

if TYPE_CHECKING:
    from shipyard.evaluation.measure import Measurements
    from shipyard.evaluation.scorecard import ScorecardResult

__all__ = ["render_report", "write_report"]

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937;
       max-width: 1100px; margin: 0 auto; padding: 0 24px 48px; }
header { padding: 20px 24px; margin: 24px 0; border-radius: 8px; color: #fff; }
header.pass { background: #15803d; } header.fail { background: #b91c1c; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .verdict { font-size: 28px; font-weight: 700; letter-spacing: .04em; margin: 0; }
header p { margin: 4px 0 0; opacity: .92; }
h2 { border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; margin-top: 36px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e5e7eb; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.pass td.result { color: #15803d; font-weight: 700; }
tr.fail { background: #fef2f2; } tr.fail td.result { color: #b91c1c; font-weight: 700; }
.detail { color: #6b7280; font-size: 12px; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; }
.grid section { flex: 1 1 480px; }
img { max-width: 100%; }
.note { color: #6b7280; }
"""


def write_report(
    path: Path,
    *,
    title: str,
    result: ScorecardResult,
    candidate: Measurements,
    champion: Measurements | None,
) -> Path:
    """Write the HTML report of ``result`` to ``path`` and return ``path``."""
    html = render_report(title=title, result=result, candidate=candidate, champion=champion)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def render_report(
    *,
    title: str,
    result: ScorecardResult,
    candidate: Measurements,
    champion: Measurements | None,
) -> str:
    """The self-contained HTML report of ``result`` (to store anywhere: a folder, a bucket)."""
    body = [
        _header(title, result, candidate, champion),
        _criteria(result),
        _metrics(candidate, champion),
    ]
    figures: list[tuple[str, str, str | None, str]] = []
    if candidate.task == "classification":
        has_scores = candidate.predictions.scores is not None
        missing = "The model gives no probabilities."
        for anchor, heading, draw in (
            ("roc", "ROC curve", plots.roc_curves),
            ("pr", "Precision–recall curve", plots.pr_curves),
            ("calibration", "Calibration (reliability diagram)", plots.reliability_diagram),
        ):
            figures.append(
                (anchor, heading, draw(candidate, champion) if has_scores else None, missing)
            )
    else:
        figures.append(
            (
                "predicted-vs-actual",
                "Predicted against actual",
                plots.predicted_vs_actual(candidate, champion),
                "",
            )
        )
        figures.append(
            ("residuals", "Residuals", plots.residual_histogram(candidate, champion), "")
        )
    items = _slice_items(candidate, champion)
    figures.append(
        (
            "slices",
            "Slices and groups",
            plots.slice_bars(items) if items else None,
            "The scorecard has no slices or fairness groups.",
        )
    )
    latency = plots.latency_histogram(candidate, champion) if candidate.latency else None
    figures.append(("latency", "Latency", latency, "The scorecard has no latency criterion."))
    body.append('<div class="grid">')
    body.extend(_figure_section(*figure) for figure in figures)
    body.append("</div>")
    html = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    return html


def _header(
    title: str, result: ScorecardResult, candidate: Measurements, champion: Measurements | None
) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    failing = len(result.failing)
    summary = (
        f"all {len(result.rows)} criteria pass"
        if result.passed
        else f"{failing} of {len(result.rows)} criteria fail"
    )
    against = (
        "compared with the champion" if champion is not None else "no champion to compare with"
    )
    facts = (
        f"{candidate.task}, {candidate.rows} golden rows, target {candidate.target}, "
        f"flavour {candidate.flavour}, {candidate.size_mb:.2f} MB, "
        f"loaded in {candidate.load_seconds:.3f} s; {against}. "
        f"Evaluated {result.created_at:%Y-%m-%d %H:%M:%S %Z}."
    )
    return (
        f'<header class="{"pass" if result.passed else "fail"}">\n'
        f"<h1>{escape(title)}</h1>\n"
        f'<p class="verdict">{verdict}</p>\n<p>{escape(summary)}</p>\n<p>{escape(facts)}</p>\n'
        "</header>"
    )


def _criteria(result: ScorecardResult) -> str:
    lines = [
        '<section id="criteria">\n<h2>Criteria</h2>\n<table>',
        "<tr><th>criterion</th><th>candidate</th><th>champion</th><th>delta</th>"
        "<th>bound</th><th>result</th></tr>",
    ]
    for row in result.rows:
        unit = UNITS.get(row.kind, "")
        detail = f'<div class="detail">{escape(row.detail)}</div>' if row.detail else ""
        status = "pass" if row.passed else "fail"
        lines.append(
            f'<tr class="{status}"><td>{escape(row.name)}{detail}</td>'
            f'<td class="num">{format_value(row.candidate, unit)}</td>'
            f'<td class="num">{format_value(row.champion, unit)}</td>'
            f'<td class="num">{format_value(row.delta, unit, signed=True)}</td>'
            f"<td>{escape(row.bound)}</td>"
            f'<td class="result">{status.upper()}</td></tr>'
        )
    lines.append("</table>\n</section>")
    return "\n".join(lines)


def _metrics(candidate: Measurements, champion: Measurements | None) -> str:
    lines = [
        '<section id="metrics">\n<h2>Metrics on every golden row</h2>\n<table>',
        "<tr><th>metric</th><th>candidate</th><th>champion</th><th>delta</th></tr>",
    ]
    for name in candidate.metrics:
        mine = candidate.value(name)
        theirs = champion.value(name) if champion else None
        delta = mine - theirs if mine is not None and theirs is not None else None
        lines.append(
            f'<tr><td>{escape(name)}</td><td class="num">{format_value(mine)}</td>'
            f'<td class="num">{format_value(theirs)}</td>'
            f'<td class="num">{format_value(delta, signed=True)}</td></tr>'
        )
    lines.append("</table>\n</section>")
    return "\n".join(lines)


def _slice_items(
    candidate: Measurements, champion: Measurements | None
) -> list[tuple[str, float | None, float | None]]:
    items: list[tuple[str, float | None, float | None]] = []
    for label, part in candidate.slices.items():
        for metric in part.metrics:
            theirs = champion.value(metric, label) if champion else None
            items.append((f"{metric} · {label}", candidate.value(metric, label), theirs))
    for name, groups in candidate.fairness.items():
        other = champion.fairness.get(name) if champion else None
        for group, value in groups.groups.items():
            theirs = other.groups.get(group) if other else None
            items.append((f"{groups.metric} · {groups.column} = {group}", value, theirs))
    return items


def _figure_section(anchor: str, heading: str, image: str | None, missing: str) -> str:
    if image is None:
        content = f'<p class="note">{escape(missing)}</p>'
    else:
        content = f'<img alt="{escape(heading)}" src="data:image/png;base64,{image}">'
    return f'<section id="{anchor}">\n<h2>{escape(heading)}</h2>\n{content}\n</section>'
