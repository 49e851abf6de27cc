"""``shipyard maturity``, ``runbook`` and ``incident``: running a model as a team."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.moments import parse_moment

if TYPE_CHECKING:
    from shipyard.operations import MaturityReport, RoiReport

__all__ = ["incident_cmd", "maturity_cmd", "runbook_cmd"]

NameArg = Annotated[str, typer.Argument(help="Model name.")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write the Markdown here instead of printing it.")
]
_MOMENT = "an ISO time (2026-12-07T09:30:00+00:00) or a duration back from now (6h, 2d)"


def maturity_cmd(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help=f"ROI metrics since this moment: {_MOMENT}.")
    ] = None,
    period: Annotated[str, typer.Option(help="Length of each trend period: 1d, 7d, 4w.")] = "7d",
    as_json: JsonOpt = False,
) -> None:
    """Place the project at MLOps maturity level 0, 1 or 2, with evidence and ROI metrics.

    Each characteristic is judged on what the project holds (configuration, event log,
    control-plane tables, exported pipeline files); the level is the lowest any of them
    reaches. The ROI metrics come from the event log, with one value per period.
    """
    from shipyard.operations import assess_maturity, roi_metrics

    project = acting(ctx, Scope.MODELS_READ)
    moment = parse_moment(since, flag="--since") if since else None
    report = assess_maturity(project)
    roi = roi_metrics(project, since=moment, period=period)
    if as_json:
        print_json({"maturity": report.to_dict(), "roi": roi.to_dict()})
        return
    _print_maturity(report)
    _print_roi(roi)


def runbook_cmd(
    ctx: typer.Context, name: NameArg, out: OutOpt = None, as_json: JsonOpt = False
) -> None:
    """Write the on-call runbook for a model from the configuration.

    Owner and escalation (alert routes with their secrets masked), what each alert rule
    means, and the commands to inspect, pause, roll back and verify the audit log.
    """
    from shipyard.operations.runbook import write_runbook

    text = write_runbook(acting(ctx, Scope.MODELS_READ, name), name)
    _emit(text, out, as_json, {"model": name})


def incident_cmd(
    ctx: typer.Context,
    name: NameArg,
    since: Annotated[str, typer.Option(help=f"When the incident began: {_MOMENT}.")],
    until: Annotated[
        str | None, typer.Option(help=f"When it ended (default: now): {_MOMENT}.")
    ] = None,
    out: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a postmortem draft from an incident's events: alert, decisions, MTTD, MTTR.

    Alerts, decisions from the audit log (who, role, why), rollbacks, a timeline and the
    times to detect and recover are filled in; cause, impact and action items are left
    for the team.
    """
    from shipyard.operations.incident import incident_report

    project = acting(ctx, Scope.AUDIT_READ)
    start = parse_moment(since, flag="--since")
    end = parse_moment(until, flag="--until") if until else None
    report = incident_report(project, name, start, end)
    _emit(report.to_markdown(), out, as_json, report.to_dict())


def _emit(text: str, out: Path | None, as_json: bool, facts: dict[str, object]) -> None:
    """Print the Markdown, or write it to ``out``; with --json, the facts and where it went."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    if as_json:
        print_json({**facts, "out": str(out) if out else None, "markdown": text})
    elif out is None:
        typer.echo(text, nl=False)
    else:
        console.print(f"Wrote {esc(out)}")


def _print_maturity(report: MaturityReport) -> None:
    from rich.table import Table

    console.print(
        f"[bold]{esc(report.project)}: level {report.level}[/] ({esc(report.level_name)})"
    )
    table = Table()
    table.add_column("characteristic", overflow="fold")
    table.add_column("level", justify="right", no_wrap=True)
    table.add_column("evidence", overflow="fold")
    table.add_column("missing for the next level", overflow="fold")
    for item in report.characteristics:
        evidence = "\n".join(e.detail for e in item.evidence)
        table.add_row(item.name, str(item.level), evidence, item.missing or "-")
    console.print(table, markup=False)  # every cell is data
    if report.next_level is not None:
        console.print(f"For level {report.next_level}:")
        for line in report.missing:
            console.print(f"  - {esc(line)}")


def _print_roi(roi: RoiReport) -> None:
    from rich.table import Table

    table = Table(title=f"ROI (trend per {roi.period}, oldest first)")
    table.add_column("metric", overflow="fold")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("trend", overflow="fold")
    for metric in roi.metrics:
        trend = " ".join(_short(p.value, metric.unit) for p in metric.trend[-8:])
        table.add_row(metric.name, _short(metric.value, metric.unit), str(metric.n), trend)
    console.print(table, markup=False)


def _short(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        for size, suffix in ((86400, "d"), (3600, "h"), (60, "m")):
            if value >= size:
                return f"{value / size:.1f}{suffix}"
        return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"
    if unit == "ratio":
        return f"{value:.0%}"
    return f"{value:.3g} {unit.removeprefix('promotions ')}"
