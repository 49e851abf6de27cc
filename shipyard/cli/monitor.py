"""``shipyard monitor``: drift, performance and alerts for a served model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, parse_interval
from shipyard.cli.output import console, esc, print_json, steps
from shipyard.cli.state import CliState
from shipyard.levels import ALERT_LEVELS

if TYPE_CHECKING:
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
        bands = calibrate_bands(reference.reference, size, false_alarm_rate=false_alarm_rate)
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


def _print(result: MonitorResult) -> None:
    from rich.table import Table

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
    if result.report_path:
        console.print(f"Report: {esc(result.report_path)}")
