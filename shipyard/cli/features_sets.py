"""Commands of ``shipyard features`` (see :mod:`shipyard.cli.features`): training-set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.errors import ConfigError

__all__ = ["register"]


def training_set_cmd(
    ctx: typer.Context,
    entities: Annotated[
        Path,
        typer.Option(
            help="CSV or Parquet file of entity rows: join keys, a timestamp column, any "
            "request inputs (other columns, e.g. a label, are carried through)."
        ),
    ],
    features: Annotated[
        str, typer.Option(help="Feature refs view:feature,view:feature (view:* for all).")
    ],
    mode: Annotated[
        str,
        typer.Option(
            help="event_time (the latest value at or before each row's time), as_known_at "
            "(also written by then) or as_served (what the online store held then)."
        ),
    ] = "event_time",
    timestamp_column: Annotated[
        str, typer.Option(help="The entity rows' timestamp column.")
    ] = "event_timestamp",
    full_names: Annotated[
        bool,
        typer.Option(help="Name the columns view__feature (needed when two views share a name)."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Also write the training set to this file (.parquet or .csv)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a point-in-time training set: each entity row with its features as of its time.

    The result is snapshotted like any dataset (its digest is printed); nothing is joined
    when a feature is unknown, a column is missing or a view changed since apply.
    """
    from shipyard.features.training_set import training_set

    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(
            f"--out {out} is neither .parquet nor .csv.", hint="Name a .parquet file."
        )
    project = acting(ctx, Scope.MODELS_TRAIN)
    result = training_set(
        project,
        entities.resolve(),
        features,
        mode=mode,  # type: ignore[arg-type]  # checked by training_set
        timestamp_column=timestamp_column,
        full_names=full_names,
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            result.frame.to_csv(out, index=False)
        else:
            result.frame.to_parquet(out, index=False)
    summary = result.to_dict()
    if out is not None:
        summary["out"] = str(out)
    if as_json:
        print_json(summary)
        return
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    snap = summary["snapshot"]
    console.print(
        f"{summary['rows']} rows × {len(summary['output_columns'])} columns "
        f"({esc(summary['mode'])}), snapshot {esc(snap['digest'][:12])}"
    )
    console.print(f"columns: {esc(', '.join(summary['output_columns']))}")
    table = Table("feature", "column", "nulls", "view version")
    for ref in summary["features"]:
        view = ref.split(":", 1)[0]
        column = summary["columns"][ref]
        table.add_row(ref, column, str(summary["null_counts"][column]), summary["views"][view])
    console.print(table, markup=False)  # every cell is data
    if summary["request_inputs"]:
        console.print(f"request inputs: {esc(', '.join(summary['request_inputs']))}")
    if "out" in summary:
        console.print(f"written to {esc(summary['out'])}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``features`` group."""
    app.command("training-set")(training_set_cmd)
