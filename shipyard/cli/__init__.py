"""The ``shipyard`` command line: one module per command group, each thin.

Commands load lazily: ``shipyard --help`` lists them from :data:`COMMANDS` (name, where
it lives, its one-line summary) without importing a single command module, and
``shipyard models list`` imports and builds only ``shipyard.cli.models``. Heavy
libraries (MLflow, pandas, SQLAlchemy, the configuration models) are imported inside the
commands that need them; the quick commands (``models list``, ``events``, ``traffic
show``, ``rollout status``, ``rollback``) never import MLflow
(``tests/cli/test_fast_commands.py``).

Help is Click's plain text, not Rich markup: help lines name settings in square brackets
(``[serving.host]``), which Rich would take for style tags and drop, and plain help needs
no Rich at start-up.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from shipyard import __version__

__all__ = ["COMMANDS", "CommandEntry", "app", "main", "run"]


@dataclass(frozen=True)
class CommandEntry:
    """A top-level command: the module attribute that implements it, and its summary.

    ``attribute`` is a ``typer.Typer`` (a command group) or a function (one command).
    ``summary`` is what ``shipyard --help`` lists; a test holds it equal to the first
    line of the command's own help.
    """

    module: str
    attribute: str
    summary: str

    def load(self, name: str) -> Any:
        """The Click command, imported and built now."""
        target = getattr(importlib.import_module(f"shipyard.cli.{self.module}"), self.attribute)
        if isinstance(target, typer.Typer):
            _plain_help(target)
            return typer.main.get_group(target)  # a group even with one command
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(name)(target)
        return typer.main.get_command(single)


COMMANDS: dict[str, CommandEntry] = {
    "init": CommandEntry(
        "project",
        "init",
        "Write a commented shipyard.yaml and a .shipyard/ workspace, and create the database.",
    ),
    "train": CommandEntry(
        "training",
        "train_cmd",
        "Snapshot → validate → train → log → register → model card, as one reproducible run.",
    ),
    "reproduce": CommandEntry(
        "training",
        "reproduce_cmd",
        "Retrain a version from its recorded params, seed and data; compare; exit 1 if it differs.",
    ),
    "evaluate": CommandEntry(
        "promotion",
        "evaluate_cmd",
        "Score a version and the champion on the golden set; exit 1 if any criterion fails.",
    ),
    "promote": CommandEntry(
        "promotion",
        "promote_cmd",
        "Move an alias to a version with a passing scorecard (and approval, if required).",
    ),
    "approve": CommandEntry(
        "promotion",
        "approve_cmd",
        "Approve a version for promotion to champion (recorded with your name).",
    ),
    "rollback": CommandEntry(
        "promotion",
        "rollback_cmd",
        "Move champion back to the previous champion (or --to an earlier one).",
    ),
    "retrain": CommandEntry(
        "ct",
        "retrain_cmd",
        "Retrain NAME now: validate → retrain → scorecard → feature skew, then a roll-out.",
    ),
    "login": CommandEntry(
        "tokens",
        "login",
        "Check a token against this project and save it to your credentials file.",
    ),
    "logout": CommandEntry(
        "tokens", "logout", "Forget the token saved for this project's database."
    ),
    "whoami": CommandEntry(
        "tokens",
        "whoami",
        "Show who acts for this project: name, role, how they authenticated, scopes, expiry.",
    ),
    "serve": CommandEntry(
        "serve",
        "serve_cmd",
        "Serve a registered model over HTTP until interrupted (Ctrl-C drains and flushes).",
    ),
    "agent": CommandEntry(
        "agent",
        "agent_cmd",
        "Advance roll-outs, run scheduled monitors and continuous training until interrupted.",
    ),
    "deploy": CommandEntry(
        "deploy", "app", "Deploy a model off one machine: Kubernetes, KServe and KEDA manifests."
    ),
    "demo": CommandEntry(
        "demo",
        "demo_cmd",
        "Train, serve (2 workers + agent), stream traffic, switch the concept, and watch the "
        "loop retrain, gate, shadow, canary and promote; then roll back a worse candidate.",
    ),
    "build": CommandEntry(
        "build",
        "build_cmd",
        "Write a container build context: Dockerfile, pinned requirements, CI with a scan.",
    ),
    "db": CommandEntry("project", "db_app", "Control-plane database: migrations."),
    "ct": CommandEntry("ct", "app", "Continuous training: the last cycles and their gates."),
    "tokens": CommandEntry(
        "tokens", "app", "API tokens: create, list, revoke and rotate (needs the admin role)."
    ),
    "config": CommandEntry(
        "config", "app", "Show the resolved configuration; generate its documentation."
    ),
    "data": CommandEntry("data", "app", "Dataset snapshots, schemas and validation."),
    "models": CommandEntry("models", "app", "Registered models, versions and lineage."),
    "events": CommandEntry("events", "app", "The event log: who changed what, when."),
    "audit": CommandEntry(
        "audit", "app", "The tamper-evident audit log: verify, checkpoint, log, proof."
    ),
    "keys": CommandEntry("keys", "app", "Signing keys for model cards."),
    "logs": CommandEntry("logs", "app", "Prediction and label logs."),
    "traffic": CommandEntry(
        "traffic",
        "app",
        "Traffic between champion, challengers and shadow (servers follow within 0.5 s).",
    ),
    "monitor": CommandEntry(
        "monitor", "app", "Drift and performance monitoring, threshold bands, alerts."
    ),
    "labels": CommandEntry("labels", "app", "Delayed labels, joined to predictions by request id."),
    "pipeline": CommandEntry(
        "pipeline",
        "app",
        "Export the continuous-training cycle to Kubeflow Pipelines, Argo Workflows or Airflow.",
    ),
    "rollout": CommandEntry(
        "rollout",
        "app",
        "Roll-outs: shadow, canary and blue/green steps, paused, aborted or promoted.",
    ),
    "experiment": CommandEntry(
        "experiment",
        "app",
        "A/B experiments: split traffic between versions and declare a winner, sequentially.",
    ),
    "features": CommandEntry(
        "features",
        "app",
        "Feature store: views, point-in-time training sets, online features, skew.",
    ),
    "llm": CommandEntry(
        "llm",
        "app",
        "LLM versions, the price table and cost, per-tenant caps, judge evaluations, traces.",
    ),
    "prompts": CommandEntry(
        "llm",
        "prompts_app",
        "The prompt registry: versions, labels (production is protected), rollback.",
    ),
    "ui": CommandEntry(
        "ui",
        "ui_cmd",
        "The web dashboard: fleet, models, versions, audit; roll back or pause from it.",
    ),
    "grafana": CommandEntry(
        "grafana", "app", "Grafana dashboards generated from the web dashboard's panels."
    ),
    "maturity": CommandEntry(
        "operations",
        "maturity_cmd",
        "Place the project at MLOps maturity level 0, 1 or 2, with evidence and ROI metrics.",
    ),
    "runbook": CommandEntry(
        "operations",
        "runbook_cmd",
        "Write the on-call runbook for a model from the configuration.",
    ),
    "incident": CommandEntry(
        "operations",
        "incident_cmd",
        "Write a postmortem draft from an incident's events: alert, decisions, MTTD, MTTR.",
    ),
}


class _LoadedOnUse(Mapping[str, Any]):
    """The root's commands by name, each imported and built the first time it is asked for."""

    def __init__(self, entries: Mapping[str, CommandEntry]) -> None:
        self._entries = entries
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            self._built[name] = self._entries[name].load(name)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class LazyGroup(TyperGroup):
    """The root command: lists :data:`COMMANDS` from their summaries, builds one on use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LoadedOnUse(COMMANDS)  # type: ignore[assignment]

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        """Every command's name, in the order of :data:`COMMANDS`."""
        return list(COMMANDS)

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        """The command list of ``--help``, from the summaries: nothing is imported."""
        from typer._click.utils import make_default_short_help

        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, make_default_short_help(entry.summary, limit))
            for name, entry in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="shipyard",
    cls=LazyGroup,
    help="Keep a trained model healthy in production: runs, registry, lineage, reproduction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
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
        str | None,
        typer.Option(
            help="Override artifact_root (a folder or s3://bucket/prefix) for this command."
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Shipyard: reproducible training runs, a registry with lineage, and more."""
    from shipyard.cli.state import CliState

    ctx.obj = CliState(
        config_path=config,
        overrides={"database_url": database_url, "artifact_root": artifact_root},
    )


def _plain_help(group: typer.Typer) -> None:
    """Plain help for ``group`` and every group under it (see the module docstring)."""
    group.rich_markup_mode = None
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _plain_help(sub.typer_instance)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code; errors print, never tracebacks."""
    from shipyard.errors import ShipyardError

    # MLflow logs database set-up at INFO; the CLI shows its own progress instead.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except ShipyardError as error:
        from shipyard.cli.output import print_error

        print_error(error)
        return error.exit_code
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def main() -> None:
    """Entry point of the ``shipyard`` script."""
    sys.exit(run())
