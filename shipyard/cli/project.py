"""``shipyard init`` and ``shipyard db``: the project folder and its database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.cli.state import CliState, issue_own_token, os_user, os_user_principal
from shipyard.errors import Unauthenticated

if TYPE_CHECKING:
    from shipyard.config import Config

__all__ = ["db_app", "init"]

db_app = typer.Typer(help="Control-plane database: migrations.", no_args_is_help=True)


def init(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Project folder.")] = Path("."),
    name: Annotated[str | None, typer.Option(help="Project name (default: folder name).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (default: project name).")] = None,
    force: Annotated[
        bool, typer.Option(help="Replace an existing shipyard.yaml with the template.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a commented shipyard.yaml and a .shipyard/ workspace, and create the database.

    An existing shipyard.yaml is kept (a cloned project gets its workspace); --force
    replaces it with a fresh template.
    """
    from sqlalchemy.engine import make_url

    from shipyard.config import CONFIG_FILENAME, WORKSPACE_DIRNAME, load_config
    from shipyard.config.reference import render_template
    from shipyard.store import Store

    say: Callable[[str], None] = _silent if as_json else console.print
    state: CliState = ctx.obj
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / CONFIG_FILENAME
    kept = config_file.exists() and not force
    if kept:
        say(f"[green]✓[/] Kept existing {esc(config_file)} (--force rewrites the template)")
    else:
        project = name or folder.name
        config_file.write_text(render_template(project, model or project), encoding="utf-8")
        say(f"[green]✓[/] Wrote {esc(config_file)}")
    workspace = folder / WORKSPACE_DIRNAME
    workspace.mkdir(exist_ok=True)
    # The workspace holds databases and artifacts, never meant for git.
    (workspace / ".gitignore").write_text("*\n", encoding="utf-8")
    config = load_config(config_file, overrides=state.overrides)
    Store(config.db_url, actor=os_user()).close()
    database = make_url(config.db_url).render_as_string(hide_password=True)
    say(f"[green]✓[/] Workspace {esc(workspace)}")
    say(f"[green]✓[/] Database ready at {esc(database)}")
    token = _own_token(config, say)
    if as_json:
        print_json(
            {
                "config": str(config_file),
                "config_kept": kept,
                "workspace": str(workspace),
                "database_url": database,
                "token": token,
            }
        )
    elif config.train.entrypoint is None:
        say("Next: set train.entrypoint and train.data in shipyard.yaml, then `shipyard train`.")


def _silent(_text: str) -> None:
    """What ``init --json`` says while it works: nothing (the JSON says it at the end)."""


def _own_token(config: Config, say: Callable[[str], None]) -> str:
    """Give the OS user an admin token for a local project (or a database with none yet).

    On a laptop nobody types a token: this one is saved to the credentials file and used
    from then on. A shared database that already has tokens needs one from an admin.
    Returns what happened: ``signed-in``, ``needs-login`` or ``issued``.
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
                say(f"[green]✓[/] Signed in as {esc(who.name)} ({esc(who.role)}) from {esc(path)}")
                return "signed-in"
        if config.shared_database and count_tokens(with_tokens) > 0:
            say("This database is shared: run `shipyard login` with a token from an admin.")
            return "needs-login"
    finally:
        with_tokens.close()
    project = Project(config, os_user_principal())
    try:
        issued = issue_own_token(project)
    finally:
        project.close()
    say(
        f"[green]✓[/] Admin token for {esc(issued.info.name)} saved to {esc(path)} "
        "(`shipyard whoami` shows it)"
    )
    return "issued"


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Apply control-plane migrations (also done automatically on first use)."""
    from shipyard.store import Store, current_revision

    state: CliState = ctx.obj
    store = Store(state.config().db_url, actor=os_user(), migrate=False)
    before = current_revision(store.engine)
    from shipyard.store import upgrade

    upgrade(store.engine)
    after = current_revision(store.engine)
    if as_json:
        print_json({"revision": after, "was": before})
        return
    console.print(f"Database at revision {esc(after)} (was {esc(before or 'empty')}).")


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
    console.print(f"revision {esc(revision or 'none')} (head {HEAD_REVISION})")
