"""``shipyard features import-feast``: a Feast repo's definitions as a ``features`` section.

Feast runs in its own venv (``--python``, else ``SHIPYARD_FEAST_PYTHON``); Shipyard never
imports it. See :mod:`shipyard.features.feast_import`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.cli.state import CliState

__all__ = ["FEAST_PYTHON_VARIABLE", "register"]

FEAST_PYTHON_VARIABLE = "SHIPYARD_FEAST_PYTHON"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``features`` group."""
    app.command("import-feast")(import_feast_cmd)


def import_feast_cmd(
    ctx: typer.Context,
    repo: Annotated[Path, typer.Argument(help="Folder with feature_store.yaml.")],
    python: Annotated[
        str | None,
        typer.Option(
            help="Python of a venv with Feast installed [env SHIPYARD_FEAST_PYTHON].",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the features: block to this file.")
    ] = None,
    write: Annotated[
        bool,
        typer.Option("--write", help="Merge into the project's shipyard.yaml."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read a Feast repo's entities, feature views and sources into Shipyard definitions.

    Prints a ``features:`` block for shipyard.yaml (or writes it with --out, or merges it
    into shipyard.yaml with --write). What cannot be imported is listed, never dropped.
    """
    from shipyard.config.loading import find_config_file, load_config
    from shipyard.features.feast_import import import_feast, merge_into_config

    if out is not None and write:
        raise ConfigError("--out and --write both say where to write.", hint="Give one of them.")
    state: CliState = ctx.obj
    environ = os.environ if state.environ is None else state.environ
    interpreter = python or environ.get(FEAST_PYTHON_VARIABLE)
    if not interpreter:
        raise ConfigError(
            "No Python with Feast given.",
            hint=f'Pass --python (a venv with "feast[duckdb]") or set {FEAST_PYTHON_VARIABLE}.',
        )
    # The variable is not a setting; until the loader skips it (requests.md), leave it out.
    config = load_config(
        state.config_path,
        overrides=state.overrides,
        environ={k: v for k, v in environ.items() if k != FEAST_PYTHON_VARIABLE},
        require_file=write,
    )
    imported = import_feast(repo, interpreter, config.root)
    written: str | None = None
    if write:
        config_file = state.config_path or find_config_file() or config.root / "shipyard.yaml"
        how = merge_into_config(Path(config_file), imported)
        written = f"{how} {'to' if how == 'appended' else 'into'} {config_file}"
    elif out is not None:
        out.write_text(imported.to_yaml(), encoding="utf-8")
        written = f"written to {out}"
    if as_json:
        print_json({**imported.to_dict(), "written": written})
        return
    if written is None:
        typer.echo(imported.to_yaml(), nl=False)
        return
    console.print(
        f"Imported {len(imported.entities)} entities and {len(imported.views)} feature views "
        f"from {esc(str(repo))}: {esc(written)}."
    )
    for item in imported.unsupported:
        console.print(f"[yellow]Left out[/] {esc(item.kind)} {esc(item.name)}: {esc(item.reason)}")
