"""The ``shipyard`` command line: one module per command group, each thin.

Heavy libraries (MLflow, pandas) are imported inside the commands that need them, so
``shipyard --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from shipyard import __version__
from shipyard.cli import agent as agent_cmd
from shipyard.cli import audit as audit_cmd
from shipyard.cli import config as config_cmd
from shipyard.cli import ct as ct_cmd
from shipyard.cli import data as data_cmd
from shipyard.cli import demo as demo_cmd
from shipyard.cli import events as events_cmd
from shipyard.cli import keys as keys_cmd
from shipyard.cli import labels as labels_cmd
from shipyard.cli import logs as logs_cmd
from shipyard.cli import models as models_cmd
from shipyard.cli import monitor as monitor_cmd
from shipyard.cli import project as project_cmd
from shipyard.cli import promotion as promotion_cmd
from shipyard.cli import rollout as rollout_cmd
from shipyard.cli import serve as serve_cmd
from shipyard.cli import tokens as tokens_cmd
from shipyard.cli import traffic as traffic_cmd
from shipyard.cli import training as training_cmd
from shipyard.cli.output import print_error
from shipyard.cli.state import CliState
from shipyard.errors import ShipyardError

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="shipyard",
    help="Keep a trained model healthy in production: runs, registry, lineage, reproduction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Path to shipyard.yaml (default: nearest one)."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Override database_url for this command.")
    ] = None,
    artifact_root: Annotated[
        Path | None, typer.Option(help="Override artifact_root for this command.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Shipyard: reproducible training runs, a registry with lineage, and more."""
    ctx.obj = CliState(
        config_path=config,
        overrides={"database_url": database_url, "artifact_root": artifact_root},
    )


project_cmd.register(app)
training_cmd.register(app)
promotion_cmd.register(app)
ct_cmd.register(app)
tokens_cmd.register(app)
app.command("serve")(serve_cmd.serve_cmd)
app.command("agent")(agent_cmd.agent_cmd)
app.command("demo")(demo_cmd.demo_cmd)
app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.add_typer(models_cmd.app, name="models")
app.add_typer(events_cmd.app, name="events")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(logs_cmd.app, name="logs")
app.add_typer(traffic_cmd.app, name="traffic")
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(labels_cmd.app, name="labels")
app.add_typer(rollout_cmd.app, name="rollout")


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code; errors print, never tracebacks."""
    # MLflow logs database set-up at INFO; the CLI shows its own progress instead.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except ShipyardError as error:
        print_error(error)
        return error.exit_code
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def main() -> None:
    """Entry point of the ``shipyard`` script."""
    sys.exit(run())
