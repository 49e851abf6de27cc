"""``shipyard monitor``: drift, performance and alerts for a served model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, parse_interval
from shipyard.cli.output import console, esc, print_json, steps
from shipyard.cli.state import CliState
from shipyard.levels import ALERT_LEVELS

if TYPE_CHECKING:
    from shipyard.monitoring.kpis import KpiResult
    from shipyard.monitoring.run import MonitorResult

__all__ = ["app"]

app = typer.Typer(
    help="Drift and performance monitoring, threshold bands, alerts.", no_args_is_help=True
)

_COLOURS = {"ok": "green", "inspect": "yellow", "retrain": "dark_orange", "pause": "red"}
WindowOpt = Annotated[
    str | None,
    typer.Option(help="last:N, since:6h or range:START/END [monitoring.window]."),
]
VersionOpt = Annotated[str | None, typer.Option(help="Version to monitor (default: champion).")]


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    window: WindowOpt = None,
    version: VersionOpt = None,
    performance_window: Annotated[
        str | None,
        typer.Option(
            help="Labelled predictions performance is measured on: last:N or since:7d "
            "[monitoring.performance_window]."
        ),
    ] = None,
    alerts: Annotated[bool, typer.Option(help="Send alerts to the configured routes.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Score one window of NAME's predictions against its training reference."""
    from shipyard.monitoring.run import run_monitor

    state: CliState = ctx.obj
    with steps(quiet=as_json) as step:
        result = run_monitor(
            state.project(),
            name,
            version=version,
            window=window,
            performance_window=performance_window,
            alerts=alerts,
            step=step,
        )
    if as_json:
        print_json(result.to_dict())
        return
    _print(result)


@app.command("watch")
def watch_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    every: Annotated[str, typer.Option(help="Interval between runs, e.g. 30s, 5m, 1h.")] = "5m",
    window: WindowOpt = None,
    runs: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many runs (default: forever).")
    ] = None,
) -> None:
    """Run the monitor on a schedule until interrupted."""
    from shipyard.errors import ShipyardError
    from shipyard.monitoring.run import run_monitor

    state: CliState = ctx.obj
    seconds = parse_interval(every, flag="--every")
    done = 0
    while runs is None or done < runs:
        started = time.monotonic()
        try:
            result = run_monitor(state.project(), name, window=window)
            _print(result)
        except ShipyardError as error:  # one bad window must not stop the watch
            console.print(f"[yellow]{esc(error.message)}[/]")
        done += 1
        if runs is None or done < runs:
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))


@app.command("calibrate")
def calibrate_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    window_size: Annotated[
        int | None,
        typer.Option(min=10, help="Rows per monitored window (default: monitoring.window's N)."),
    ] = None,
    false_alarm_rate: Annotated[
        float,
        typer.Option(min=0.0001, max=0.5, help="Share of no-drift windows allowed to inspect."),
    ] = 0.01,
    version: VersionOpt = None,
    floor: Annotated[
        bool,
        typer.Option(
            help="Never set a level below the shipped table (only quieten noisy features); "
            "--no-floor gives the levels monitoring calibrates on its own (inspect at the "
            "rate, retrain/pause at a tenth/hundredth of it, at least the shipped levels)."
        ),
    ] = True,
    write: Annotated[
        bool, typer.Option(help="Write the levels to bands.yaml and point config at it.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set per-feature levels from the reference by bootstrap, for review."""
    from datetime import UTC, datetime

    import yaml

    from shipyard.models.served import load_served_model
    from shipyard.monitoring.calibrate import calibrate_bands
    from shipyard.monitoring.log_window import WindowSpec
    from shipyard.monitoring.references import reference_set
    from shipyard.monitoring.run import champion_or_newest

    project = acting(ctx, Scope.MONITOR_RUN, name)
    config, client = project.config, project.client
    size = window_size or WindowSpec.parse(config.monitoring.window).count or 5000
    with steps(quiet=as_json) as step:
        version = version or champion_or_newest(project.store, client, name)
        step(f"Loading {name}/{version} and its reference")
        model = load_served_model(client, name, version)
        reference = reference_set(config, client, model, digest=config.monitoring.reference)
        step(f"Bootstrapping windows of {size} rows")
        bands = calibrate_bands(
            reference.reference,
            size,
            false_alarm_rate=false_alarm_rate,
            never_below_defaults=floor,
        )
    if as_json:
        print_json(bands)
    else:
        from rich.table import Table

        table = Table(title=f"{esc(name)}/{esc(version)}: levels for windows of {size} rows")
        for header in ("feature", "method", *ALERT_LEVELS):
            table.add_column(header, justify="left" if header in ("feature", "method") else "right")
        for feature, levels in bands.items():
            table.add_row(
                feature,
                str(levels["method"]),
                *(f"{levels[k]:.4g}" for k in ALERT_LEVELS),
            )
        console.print(table, markup=False)  # every cell is data
    if not write:
        return
    declared = config.monitoring.bands
    path = (
        config.resolve(declared) if not isinstance(declared, dict) else config.root / "bands.yaml"
    )
    header = (
        f"# Feature bands for {name}/{version}, calibrated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"# by `shipyard monitor calibrate`: windows of {size} rows, false-alarm rate "
        f"{false_alarm_rate:g}. Review before committing.\n"
    )
    path.write_text(header + yaml.safe_dump(bands, sort_keys=False), encoding="utf-8")
    console.print(f"Wrote {esc(path)}.")
    if isinstance(declared, dict):
        _point_config_at(config.root / "shipyard.yaml", path.name, bool(declared))


@app.command("kpis")
def kpis_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    since: Annotated[
        str, typer.Option(help="From this time on: 2026-11-24, or a duration back (24h, 7d).")
    ] = "24h",
    until: Annotated[str | None, typer.Option(help="Up to this time (default: now).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show NAME's business KPIs per time bucket and arm, beside its realised quality."""
    from shipyard.cli.options import parse_moment
    from shipyard.monitoring.kpis import evaluate_kpis

    state: CliState = ctx.obj
    start = parse_moment(since)
    stop = parse_moment(until, flag="--until") if until else None
    results = evaluate_kpis(state.project(), name, start, stop)
    if as_json:
        print_json([result.to_dict() for result in results])
    elif not results:
        console.print(
            f"No KPI is declared for {esc(name)}: add one under `kpis:` in shipyard.yaml "
            "(see docs/kpis.md)."
        )
    for result in [] if as_json else results:
        _print_kpi(result)
    if any(result.error for result in results):
        raise typer.Exit(1)  # every KPI was shown; a failed one still fails the command


@app.command("detectors")
def detectors_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    reset: Annotated[
        bool, typer.Option("--reset", help="Forget their state; the agent starts afresh (audited).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show NAME's sequential change detectors: stream, detector, samples, alarms."""
    from shipyard.agent.streams import reset_detectors
    from shipyard.store.detector_states import load_detector_states

    if reset:
        project = acting(ctx, Scope.MONITOR_RUN, name)
        streams = reset_detectors(project, name, "reset by hand")
        if as_json:
            print_json({"model": name, "reset": streams})
        else:
            console.print(f"Reset {len(streams)} detector stream(s) of {esc(name)}.")
        return
    project = acting(ctx, Scope.MODELS_READ, name)
    last: dict[tuple[str, str], dict[str, object]] = {}
    for event in project.store.events(kind="detector.alarm", subject=f"model:{name}/", limit=500):
        key = (str(event.payload.get("version")), str(event.payload.get("stream")))
        last.setdefault(key, {"at": event.at.isoformat(), **event.payload})  # newest first
    rows = [
        {**state.to_dict(), "last_alarm": last.get((state.version, state.stream))}
        for state in load_detector_states(project.store, name)
    ]
    if as_json:
        print_json([{k: v for k, v in row.items() if k not in ("state", "cursor")} for row in rows])
        return
    _print_detectors(name, rows)


reference_app = typer.Typer(
    help="The data a version is monitored against, when it is not its training snapshot.",
    no_args_is_help=True,
)
app.add_typer(reference_app, name="reference")


@reference_app.command("set")
def reference_set_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME/VERSION, e.g. churn/3.")],
    path: Annotated[Path, typer.Argument(help="Reference data: a CSV or Parquet file or folder.")],
    as_json: JsonOpt = False,
) -> None:
    """Monitor NAME/VERSION against the data in FILE (snapshotted, audited)."""
    from shipyard.errors import NotFoundError
    from shipyard.monitoring.references import set_reference
    from shipyard.registry import parse_ref

    parsed = parse_ref(ref)
    if not parsed.version:
        raise NotFoundError(f"{ref!r} names no version.", hint="Write NAME/VERSION, e.g. churn/3.")
    state: CliState = ctx.obj
    with steps(quiet=as_json) as step:
        step(f"Snapshotting {path} as the reference of {parsed}")
        change = set_reference(state.project(), parsed.name, parsed.version, path)
    if as_json:
        print_json(change.to_dict())
        return
    replaced = f" (was {change.previous[:12]})" if change.previous else ""
    console.print(
        f"{esc(change.model)}/{esc(change.version)} is now monitored against snapshot "
        f"{esc(change.digest[:12])}{esc(replaced)}: {esc(change.rows)} rows from "
        f"{esc(change.source)}."
    )


def _point_config_at(config_file: Path, bands_file: str, had_inline: bool) -> None:
    """Add ``monitoring: bands: FILE`` to shipyard.yaml when it is safe to do so."""
    import yaml

    text = config_file.read_text(encoding="utf-8") if config_file.is_file() else ""
    data = yaml.safe_load(text) or {}
    if "monitoring" not in data:
        addition = f"\nmonitoring:\n  bands: {bands_file}\n"
        config_file.write_text(text.rstrip("\n") + "\n" + addition, encoding="utf-8")
        console.print(f"Set monitoring.bands: {esc(bands_file)} in {esc(config_file.name)}.")
        return
    what = "replace the inline monitoring.bands with" if had_inline else "add"
    console.print(
        f"[yellow]{esc(config_file.name)} has a monitoring section: {esc(what)} "
        f"`bands: {esc(bands_file)}` under it to use these levels.[/]"
    )


def _print_detectors(name: str, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not rows:
        console.print(
            f"No sequential detector of {esc(name)} has run yet: the agent starts them for "
            "the champion (monitoring.sequential.enabled)."
        )
        return
    table = Table()
    for column in ("version", "stream", "detector", "samples", "alarms", "last alarm"):
        table.add_column(column, justify="right" if column in ("samples", "alarms") else "left")
    for row in rows:
        alarm = row["last_alarm"]
        when = "—" if alarm is None else f"{alarm['at'][:19]} at sample {alarm['position']:,}"
        table.add_row(
            esc(row["version"]),
            esc(row["stream"]),
            esc(row["detector"]),
            f"{row['samples']:,}",
            f"{row['alarms']:,}",
            esc(when),
        )
    console.print(table)


def _print(result: MonitorResult) -> None:
    from rich.table import Table

    from shipyard.monitoring.performance import label_summary

    colour = _COLOURS.get(result.level, "white")
    console.print(
        f"[bold]{esc(result.model)}/{esc(result.version)}[/], {esc(result.window)} "
        f"({esc(result.rows)} predictions): [bold {colour}]{esc(result.level.upper())}[/]"
    )
    table = Table()
    table.add_column("signal", no_wrap=True)
    table.add_column("method")
    table.add_column("score", justify="right")
    table.add_column("inspect / retrain / pause", justify="right")
    table.add_column("verdict")
    for signal in result.signals:
        bands = signal.get("bands") or {}
        levels = " / ".join(f"{bands[k]:.3g}" for k in ALERT_LEVELS if k in bands)
        score = signal.get("score")
        level = str(signal.get("level") or "ok")
        table.add_row(
            esc(signal["name"]),
            str(signal.get("method") or ""),
            "—" if score is None else f"{score:.4g}",
            levels,
            f"[{_COLOURS.get(level, 'white')}]{level}[/]",
        )
    console.print(table)
    dataset = result.dataset or {}
    if dataset:
        verdict = "DRIFTED" if dataset.get("drifted") else "not drifted"
        acting = ", ".join(dataset.get("acting_features") or []) or "none"
        console.print(
            f"Dataset {verdict} ({esc(dataset.get('rule'))} rule): "
            f"{dataset.get('share', 0):.0%} of {esc(dataset.get('tested'))} features drifted; "
            f"at retrain or worse: {esc(acting)}."
        )
    for line in label_summary(result.performance or {}):
        style = "yellow" if line.startswith("Performance UNKNOWN") else "white"
        console.print(f"[{style}]{esc(line)}[/]")
    if result.report_path:
        console.print(f"Report: {esc(result.report_path)}")


def _print_kpi(result: KpiResult) -> None:
    from rich.table import Table

    if result.error:
        console.print(f"[red]{esc(result.error)}[/]")
        return
    r = "—" if result.correlation is None else f"{result.correlation:+.2f}"
    console.print(
        f"[bold]{esc(result.name)}[/] ({esc(result.join)} join, {esc(result.bucket)} buckets; "
        f"{esc(result.rows)} rows, {esc(result.matched)} matched in the window): r = {esc(r)} with "
        f"{esc(result.quality_metric or 'quality')} over {esc(result.n)} buckets"
    )
    arms = sorted(result.per_arm) if len(result.per_arm) > 1 else []  # one arm: the KPI itself
    table = Table()
    table.add_column("bucket (UTC)", no_wrap=True)
    table.add_column(esc(result.name), justify="right")
    table.add_column("n", justify="right")
    table.add_column(esc(result.quality_metric or "quality"), justify="right")
    for arm in arms:
        versions = ",".join(result.arm_versions.get(arm, []))
        table.add_column(esc(f"{arm} ({versions})" if versions else arm), justify="right")
    quality = {point.time: point.value for point in result.quality}
    by_arm = {arm: {p.time: p.value for p in result.per_arm[arm]} for arm in arms}
    times = sorted({p.time for p in result.points} | set(quality))
    counts = {point.time: point.n for point in result.points}
    for moment in times:
        value = next((p.value for p in result.points if p.time == moment), None)
        table.add_row(
            moment.strftime("%Y-%m-%d %H:%M"),
            _number(value),
            str(counts.get(moment, 0)),
            _number(quality.get(moment)),
            *(_number(by_arm[arm].get(moment)) for arm in arms),
        )
    console.print(table)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"
