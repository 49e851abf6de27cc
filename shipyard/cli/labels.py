"""``shipyard labels``: ground truth that arrives after the predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, print_json
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
    namespace: Annotated[
        str | None,
        typer.Option(
            help="The principal whose predictions these are, when the server authenticates "
            "predictions (the log keeps their ids as <namespace>/<id>). Ids that hold a / "
            "are taken as they are."
        ),
    ] = None,
    on_conflict: Annotated[
        Literal["reject", "keep_first", "keep_last"] | None,
        typer.Option(
            help="A request labelled already: reject, keep_first or keep_last [labels.on_conflict]."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Append labels from FILE to the label log (needs labels:write; audited).

    A request that already has a label follows labels.on_conflict: by default the whole
    file is refused, naming the request ids.
    """
    from datetime import UTC, datetime

    import pandas as pd

    from shipyard.data import read_frame
    from shipyard.errors import DataError
    from shipyard.logs.label_book import LabelBook, record_labels
    from shipyard.logs.writer import LabelRecord
    from shipyard.serving.request import qualified

    state: CliState = ctx.obj
    config = state.config()
    name = model or config.model.name
    project = acting(ctx, Scope.LABELS_WRITE, name)
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
    if frame.empty:
        raise DataError(f"{file} has no rows.", hint="Give one row per labelled prediction.")
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
    who = project.principal
    records = []
    for request_id, label, at in zip(frame["request_id"], frame["label"], times, strict=True):
        text = str(request_id)
        records.append(
            LabelRecord(
                request_id=text if "/" in text else qualified(text, namespace),
                time=at.to_pydatetime(),
                model=name,
                label=label.item() if hasattr(label, "item") else label,
                sender=who.name,
                token_id=who.token_id,
                received_at=now,
            )
        )
    book = LabelBook.for_config(config, project.store)
    outcome = book.write(
        records,
        on_conflict=on_conflict or config.labels.on_conflict,
        commit=lambda done: record_labels(project.store, done),
    )
    if as_json:
        print_json(outcome.to_dict())
        return
    line = f"{len(outcome.written)} labels of {name} ingested"
    if outcome.ignored:
        line += f", {len(outcome.ignored)} ignored (labelled already: keep_first)"
    if outcome.replaced:
        line += f", {len(outcome.replaced)} re-labelled (keep_last; the old labels stay logged)"
    console.print(line + ".")
