"""``shipyard tokens``, ``login``, ``logout`` and ``whoami``: API tokens and who acts."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, err_console, esc, print_json
from shipyard.cli.state import CliState, os_user
from shipyard.errors import ConfigError
from shipyard.moments import parse_duration

if TYPE_CHECKING:
    from shipyard.governance.tokens import IssuedToken, TokenInfo

__all__ = ["app", "login", "logout", "whoami"]

app = typer.Typer(
    help="API tokens: create, list, revoke and rotate (needs the admin role).",
    no_args_is_help=True,
)

ExpiresOpt = Annotated[
    str | None,
    typer.Option("--expires", help="Lifetime, e.g. 30d or 12h (default: security.token_days)."),
]


def _lifetime(text: str | None) -> timedelta | None:
    return None if text is None else parse_duration(text, flag="--expires")


def _show_once(issued: IssuedToken, as_json: bool, verb: str = "Created") -> None:
    """Print a new token: alone on stdout for a pipe, with a warning on the terminal."""
    info = issued.info
    if as_json:
        print_json({"token": issued.token, **_listing(info)})
    elif sys.stdout.isatty():
        console.print(
            f"{esc(verb)} token [bold]{esc(info.id)}[/] for {esc(info.name)} "
            f"(role {esc(info.role)}), "
            f"expires {esc(_when(info.expires_at))}:"
        )
        console.print(issued.token, markup=False, highlight=False, soft_wrap=True)
    else:
        print(issued.token, flush=True)
    err_console.print(
        f"[yellow]![/] {esc(verb)} token {esc(info.id)} for {esc(info.name)} "
        f"(role {esc(info.role)}, expires "
        f"{esc(_when(info.expires_at))}). Store it now: it will not be shown again.",
        soft_wrap=True,
    )


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who or what will use the token.")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="viewer, labeller, trainer, approver, deployer, operator or admin.",
        ),
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Narrow the role to this scope (repeatable)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Limit to models matching this pattern, e.g. 'churn*'."),
    ] = None,
    tenant: Annotated[
        list[str] | None,
        typer.Option(
            "--tenant",
            help="Make it act for this LLM tenant: its gateway requests and cost count "
            "against that tenant's caps (repeatable).",
        ),
    ] = None,
    expires: ExpiresOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print it once."""
    from shipyard.governance.tokens import issue_token

    state: CliState = ctx.obj
    issued = issue_token(
        state.project(),
        name=name,
        role=role,
        scopes=scope or None,
        models=model or None,
        tenants=tenant or None,
        expires=_lifetime(expires),
    )
    _show_once(issued, as_json)


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the project's tokens (never their secrets)."""
    from rich.table import Table

    from shipyard.access import Scope
    from shipyard.governance.tokens import list_tokens

    state: CliState = ctx.obj
    project = state.project()
    project.authorize(Scope.TOKENS_ADMIN)
    tokens = list_tokens(project.store)
    if as_json:
        print_json([_listing(info) for info in tokens])
        return
    if not tokens:
        console.print("No tokens. Create one: shipyard tokens create --name N --role R")
        return
    table = Table()
    for heading in ("id", "name", "role", "access", "expires", "last used", "status"):
        # The id is what revoke and rotate take: only free text may wrap.
        table.add_column(heading, no_wrap=heading not in ("name", "access"))
    for info in tokens:
        table.add_row(
            info.id,
            info.name,
            info.role,
            _access(info),
            _day(info.expires_at),
            _day(info.last_used_at) if info.last_used_at else "never",
            info.status() + (f", replaces {info.replaces}" if info.replaces else ""),
        )
    console.print(table, markup=False)  # every cell is data


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="Token id.")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token: it is refused from now on."""
    from shipyard.governance.tokens import revoke_token

    state: CliState = ctx.obj
    info = revoke_token(state.project(), token_id)
    assert info.revoked_at is not None
    if as_json:
        print_json(_listing(info))
        return
    console.print(
        f"Token {esc(info.id)} ({esc(info.name)}) revoked at {esc(_when(info.revoked_at))}."
    )


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="Token id.")],
    overlap: Annotated[
        str, typer.Option("--overlap", help="How long the old token stays valid.")
    ] = "24h",
    expires: ExpiresOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a token by a new one; the old one stays valid for --overlap, then expires."""
    from shipyard.governance.tokens import rotate_token

    state: CliState = ctx.obj
    issued = rotate_token(
        state.project(),
        token_id,
        overlap=parse_duration(overlap, flag="--overlap"),
        expires=_lifetime(expires),
    )
    _show_once(issued, as_json, verb="Rotated; new")
    err_console.print(f"Token {esc(token_id)} stays valid for {esc(overlap)}, then expires.")


def login(
    ctx: typer.Context,
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from standard input.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a token against this project and save it to your credentials file."""
    from shipyard.governance.credentials import credentials_path, save_token
    from shipyard.governance.tokens import authenticate
    from shipyard.store import Store

    state: CliState = ctx.obj
    config = state.config()
    if token_stdin:
        token = sys.stdin.readline().strip()
    else:
        token = typer.prompt("Token", hide_input=True).strip()
    if not token:
        raise ConfigError("No token was given.", hint="Paste the token an admin gave you.")
    store = Store(config.db_url, actor=os_user())
    try:
        principal = authenticate(store, token)
    finally:
        store.close()
    path = credentials_path(config)
    assert principal.token_id is not None
    save_token(path, config.db_url, token, token_id=principal.token_id, name=principal.name)
    if as_json:
        print_json(
            {
                "name": principal.name,
                "role": principal.role,
                "token_id": principal.token_id,
                "credentials": str(path),
            }
        )
        return
    console.print(
        f"[green]✓[/] Logged in as {esc(principal.name)} (role {esc(principal.role)}, token "
        f"{esc(principal.token_id)}); saved to {esc(path)}"
    )


def logout(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Forget the token saved for this project's database."""
    from shipyard.governance.credentials import credentials_path, database_key, forget_token

    state: CliState = ctx.obj
    config = state.config()
    path = credentials_path(config)
    forgot = forget_token(path, config.db_url)
    if as_json:
        print_json(
            {"forgot": forgot, "database": database_key(config.db_url), "credentials": str(path)}
        )
        return
    if forgot:
        console.print(f"Forgot the token for {esc(database_key(config.db_url))} in {esc(path)}.")
    else:
        console.print(f"No token was saved for {esc(database_key(config.db_url))} in {esc(path)}.")


def whoami(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show who acts for this project: name, role, how they authenticated, scopes, expiry."""
    from shipyard.governance.tokens import list_tokens

    state: CliState = ctx.obj
    project = state.project()
    who = project.principal
    expires_at = None
    if who.token_id is not None:
        found = [info for info in list_tokens(project.store) if info.id == who.token_id]
        expires_at = found[0].expires_at if found else None
    scopes = sorted(scope.value for scope in who.scopes)
    grants = [str(grant) for grant in who.grants]
    record = {
        "name": who.name,
        "role": who.role,
        "via": who.via,
        "token_id": who.token_id,
        "scopes": scopes,
        "grants": grants,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
    if as_json:
        print_json(record)
        return
    console.print(f"[bold]{esc(who.name)}[/] (role {esc(who.role)})")
    if who.token_id is None:
        console.print(f"via     {esc(who.via)}: no token (a local project lets the OS user act)")
    else:
        console.print(f"via     token {esc(who.token_id)}")
        console.print(f"expires {esc(_when(expires_at) if expires_at else 'unknown')}")
    console.print(f"scopes  {esc(', '.join(scopes))}", soft_wrap=True)
    console.print(f"grants  {esc(', '.join(grants))}", soft_wrap=True)


def _listing(info: TokenInfo) -> dict[str, object]:
    return {**info.to_dict(), "status": info.status()}


def _access(info: TokenInfo) -> str:
    """``all``, or the scopes it was narrowed to, then the model patterns it is limited to."""
    from shipyard.access import ROLES

    role = ROLES.get(info.role)
    whole = role is not None and set(info.scopes) == {scope.value for scope in role.scopes}
    scopes = "all" if whole else ", ".join(info.scopes)
    kinds = [
        (grant.split(":", 1)[0], grant.split(":", 1)[1].rsplit(":", 1)[0]) for grant in info.grants
    ]
    patterns = [pattern for kind, pattern in kinds if kind != "tenant"]
    tenants = [pattern for kind, pattern in kinds if kind == "tenant"]
    text = scopes if patterns == ["*"] else f"{scopes} on {', '.join(patterns)}"
    return text + (f" for tenant {', '.join(tenants)}" if tenants else "")


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
