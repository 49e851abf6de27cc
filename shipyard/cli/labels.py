"""``shipyard labels``: ground truth that arrives after the predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.output import console
from shipyard.cli.state import CliState

__all__ = ["app"]

app = typer.Typer(help="Delayed labels, joined to predictions by request id.", no_args_is_help=True)


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="CSV or Parquet with request_id, label and optionally time.")
    ],
    model: Annotated[
        str | None, typer.Option(help="Model the labels belong to [model.name].")
    ] = None,
) -> None:
    """Append labels from FILE to the label log."""
    from datetime import UTC, datetime

    import pandas as pd

    from shipyard.data import read_frame
    from shipyard.errors import DataError
    from shipyard.logs.writer import LabelRecord, PredictionLogWriter

    state: CliState = ctx.obj
    config = state.config()
    name = model or config.model.name
    frame = read_frame(file)
    missing = [c for c in ("request_id", "label") if c not in frame.columns]
    if missing:
        raise DataError(
            f"{file} has no column {', '.join(map(repr, missing))}.",
            hint="Give one row per prediction: request_id, label, and optionally time (ISO).",
        )
    if frame["request_id"].isna().any():
        row = int(frame["request_id"].isna().to_numpy().argmax())
        raise DataError(f"{file}, row {row}: request_id is empty.", hint="Every label needs one.")
    now = datetime.now(UTC)
    times = (
        pd.to_datetime(frame["time"], utc=True, errors="coerce")
        if "time" in frame.columns
        else pd.Series([now] * len(frame))
    )
    if times.isna().any():
        row = int(times.isna().to_numpy().argmax())
        raise DataError(
            f"{file}, row {row}: time is not an ISO time.", hint="E.g. 2026-11-24T09:30:00Z."
        )
    writer = PredictionLogWriter(config.resolve(config.serving.logs), kind="labels")
    with writer:
        for request_id, label, at in zip(frame["request_id"], frame["label"], times, strict=True):
            value = label.item() if hasattr(label, "item") else label
            writer.log(LabelRecord(str(request_id), at.to_pydatetime(), name, value))
    console.print(f"{writer.written} labels of {name} ingested, {writer.dropped} dropped.")
