"""``shipyard init`` and ``shipyard db``: the project folder and its database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.output import console, print_json
from shipyard.cli.state import CliState, issue_own_token, os_user, os_user_principal
from shipyard.errors import Unauthenticated

if TYPE_CHECKING:
    from shipyard.config import Config

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
    from shipyard.config import CONFIG_FILENAME, WORKSPACE_DIRNAME, load_config
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
    Store(config.db_url, actor=os_user()).close()
    console.print(f"[green]✓[/] Workspace {workspace}")
    console.print(f"[green]✓[/] Database ready at {config.db_url}")
    _own_token(config)
    if config.train.entrypoint is None:
        console.print(
            "Next: set train.entrypoint and train.data in shipyard.yaml, then `shipyard train`."
        )


def _own_token(config: Config) -> None:
    """Give the OS user an admin token for a local project (or a database with none yet).

    On a laptop nobody types a token: this one is saved to the credentials file and used
    from then on. A shared database that already has tokens needs one from an admin.
    """
    from shipyard.governance.credentials import credentials_path, saved_token
    from shipyard.governance.tokens import authenticate, count_tokens
    from shipyard.project import Project
    from shipyard.store import Store

    path = credentials_path(config)
    with_tokens = Store(config.db_url, actor=os_user())
    try:
        saved = saved_token(path, config.db_url)
        if saved is not None:
            try:
                who = authenticate(with_tokens, saved)
            except Unauthenticated:
                pass
            else:
                console.print(f"[green]✓[/] Signed in as {who.name} ({who.role}) from {path}")
                return
        if config.shared_database and count_tokens(with_tokens) > 0:
            console.print(
                "This database is shared: run `shipyard login` with a token from an admin."
            )
            return
    finally:
        with_tokens.close()
    project = Project(config, os_user_principal())
    try:
        issued = issue_own_token(project)
    finally:
        project.close()
    console.print(
        f"[green]✓[/] Admin token for {issued.info.name} saved to {path} "
        "(`shipyard whoami` shows it)"
    )


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply control-plane migrations (also done automatically on first use)."""
    from shipyard.store import Store, current_revision

    state: CliState = ctx.obj
    store = Store(state.config().db_url, actor=os_user(), migrate=False)
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
