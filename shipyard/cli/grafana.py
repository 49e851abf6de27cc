"""``shipyard grafana export``: Grafana dashboards made from the web dashboard's panel list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, print_json
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError, StorageError

__all__ = ["app", "export_cmd"]

app = typer.Typer(
    help="Grafana dashboards generated from the web dashboard's panels.",
    no_args_is_help=True,
)


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder to write the dashboards to (default: grafana/ in the project); "
            "files of the same name are replaced."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write one Grafana dashboard JSON per page (fleet, model) over the Prometheus metrics."""
    from shipyard.ui.grafana import dashboard_file, grafana_dashboards

    state: CliState = ctx.obj
    config = state.config(require_file=False)  # outside a project: the defaults (USD)
    folder = out if out is not None else config.root / "grafana"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"--out {folder} is a file, not a folder.",
            hint="Pass a folder (it is created if missing), e.g. --out grafana.",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for page, dashboard in grafana_dashboards(config).items():
            path = folder / dashboard_file(page)
            path.write_text(json.dumps(dashboard, indent=2) + "\n")
            panels = [p for p in dashboard["panels"] if p["type"] != "row"]
            written.append(
                {
                    "page": page,
                    "uid": dashboard["uid"],
                    "title": dashboard["title"],
                    "path": str(path),
                    "panels": len(panels),
                }
            )
    except OSError as error:
        raise StorageError(
            f"Cannot write the dashboards to {folder}: {error.strerror or error}.",
            hint="Pass a folder you can write to with --out.",
        ) from None
    if as_json:
        print_json({"out": str(folder), "dashboards": written})
        return
    for item in written:
        console.print(
            f"Wrote {item['path']}: {item['title']}, {item['panels']} panels.", markup=False
        )
    console.print(
        "Import them in Grafana (Dashboards > New > Import) and pick the Prometheus that "
        "scrapes the servers' /metrics as the data source.",
        markup=False,
    )
