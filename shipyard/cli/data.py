"""``shipyard data``: snapshots, schema inference and validation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.output import console, esc, print_json
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(help="Dataset snapshots, schemas and validation.", no_args_is_help=True)
schema_app = typer.Typer(help="Infer a pandera schema from data.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")

PathArg = Annotated[Path, typer.Argument(help="CSV or Parquet file, or a folder of them.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("snapshot")
def snapshot_cmd(ctx: typer.Context, path: PathArg, as_json: JsonOpt = False) -> None:
    """Record a content digest, a stored copy and a profile of PATH."""
    from shipyard.data import record_snapshot, snapshot
    from shipyard.storage import artifact_location

    state: CliState = ctx.obj
    config = state.config(require_file=False)
    with console.status(f"Snapshotting {path}…"):
        snap = snapshot(path, artifact_location(config))
        is_new = record_snapshot(acting(ctx, Scope.MODELS_TRAIN).store, snap)
    if as_json:
        print_json({**snap.to_dict(), "new": is_new})
        return
    verb = "Stored" if is_new else "Already stored"
    console.print(
        f"[green]✓[/] {esc(verb)} snapshot [bold]{esc(snap.digest[:12])}[/] "
        f"({snap.rows:,} rows × {esc(len(snap.columns))} columns) at {esc(snap.location.url)}"
    )
    if snap.dvc is not None:
        console.print(f"  DVC: md5 {esc(snap.dvc.md5)} ({esc(snap.dvc.path)})")


@schema_app.command("infer")
def schema_infer(
    path: PathArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Schema file to write.")] = Path(
        "schema.yaml"
    ),
    null_tolerance: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Extra null fraction tolerated per column.")
    ] = 0.0,
    range_margin: Annotated[
        float, typer.Option(min=0.0, help="Widen numeric ranges by this share of their span.")
    ] = 0.0,
    force: Annotated[bool, typer.Option(help="Overwrite an existing schema file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a pandera schema (YAML) inferred from PATH, meant to be committed to git."""
    from shipyard.data import infer_schema, read_frame, write_schema

    if output.exists() and not force:
        raise ConfigError(f"{output} already exists.", hint="Pass --force to overwrite it.")
    frame = read_frame(path)
    schema = infer_schema(frame, null_tolerance=null_tolerance, range_margin=range_margin)
    write_schema(schema, output)
    if as_json:
        print_json({"schema": str(output), "columns": [str(c) for c in frame.columns]})
        return
    console.print(
        f"[green]✓[/] Wrote schema for {esc(len(frame.columns))} columns to {esc(output)}. "
        "Review it, then commit it."
    )


@app.command("validate")
def validate_cmd(
    ctx: typer.Context,
    path: PathArg,
    schema: Annotated[
        Path | None, typer.Option(help="Schema file (default: train.schema in shipyard.yaml).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check PATH against its schema; list every failed check and exit 1 on failure."""
    from shipyard.data import load_schema, read_frame, validate

    state: CliState = ctx.obj
    if schema is None:
        config = state.config(require_file=False)
        if config.train.data_schema is None:
            raise ConfigError(
                "No schema given.",
                hint="Pass --schema FILE, or set train.schema in shipyard.yaml "
                "(create one with `shipyard data schema infer`).",
            )
        schema = config.resolve(config.train.data_schema)
    report = validate(read_frame(path), load_schema(schema))
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(f"[green]✓[/] {esc(path)} satisfies {esc(schema)} ({report.rows:,} rows).")
    else:
        console.print(report.render(), markup=False)  # checks such as ^[a-z]+$, as written
        console.print(f"[red]✗[/] {esc(len(report.failures))} checks failed for {esc(path)}.")
    if not report.ok:
        raise typer.Exit(1)
