"""``shipyard init`` and ``shipyard db``: the project folder and its database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.output import console, print_json
from shipyard.cli.state import CliState, resolve_principal
from shipyard.config import CONFIG_FILENAME, WORKSPACE_DIRNAME, load_config

__all__ = ["db_app", "register"]

db_app = typer.Typer(help="Control-plane database: migrations.", no_args_is_help=True)


def init(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Project folder.")] = Path("."),
    name: Annotated[str | None, typer.Option(help="Project name (default: folder name).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (default: project name).")] = None,
    force: Annotated[
        bool, typer.Option(help="Replace an existing shipyard.yaml with the template.")
    ] = False,
) -> None:
    """Write a commented shipyard.yaml and a .shipyard/ workspace, and create the database.

    An existing shipyard.yaml is kept (a cloned project gets its workspace); --force
    replaces it with a fresh template.
    """
    from shipyard.config.reference import render_template
    from shipyard.store import Store

    state: CliState = ctx.obj
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / CONFIG_FILENAME
    if config_file.exists() and not force:
        console.print(f"[green]✓[/] Kept existing {config_file} (--force rewrites the template)")
    else:
        project = name or folder.name
        config_file.write_text(render_template(project, model or project), encoding="utf-8")
        console.print(f"[green]✓[/] Wrote {config_file}")
    workspace = folder / WORKSPACE_DIRNAME
    workspace.mkdir(exist_ok=True)
    # The workspace holds databases and artifacts, never meant for git.
    (workspace / ".gitignore").write_text("*\n", encoding="utf-8")
    config = load_config(config_file, overrides=state.overrides)
    Store(config.db_url, actor=resolve_principal().name).close()
    console.print(f"[green]✓[/] Workspace {workspace}")
    console.print(f"[green]✓[/] Database ready at {config.db_url}")
    if config.train.entrypoint is None:
        console.print(
            "Next: set train.entrypoint and train.data in shipyard.yaml, then `shipyard train`."
        )


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply control-plane migrations (also done automatically on first use)."""
    from shipyard.store import Store, current_revision

    state: CliState = ctx.obj
    store = Store(state.config().db_url, actor=resolve_principal().name, migrate=False)
    before = current_revision(store.engine)
    from shipyard.store import upgrade

    upgrade(store.engine)
    after = current_revision(store.engine)
    console.print(f"Database at revision {after} (was {before or 'empty'}).")


@db_app.command("current")
def db_current(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Show the applied control-plane migration."""
    from shipyard.store import HEAD_REVISION, create_store_engine, current_revision

    state: CliState = ctx.obj
    revision = current_revision(create_store_engine(state.config().db_url))
    if as_json:
        print_json({"revision": revision, "head": HEAD_REVISION})
        return
    console.print(f"revision {revision or 'none'} (head {HEAD_REVISION})")


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("init")(init)
    app.add_typer(db_app, name="db")
