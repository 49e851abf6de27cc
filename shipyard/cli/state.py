"""Global CLI options, who acts, and the ``Project`` they resolve to, built once per command.

Who acts is decided here and nowhere below the CLI:

1. a token in ``SHIPYARD_TOKEN``, else the one ``shipyard login`` saved for this
   project's database, is authenticated and names the principal;
2. without one, on a local SQLite project (``security.require_token: auto``, the
   default) or with ``require_token: never``, the operating-system user acts as admin;
3. otherwise the command is refused (``Unauthenticated``, exit code 6).

A local SQLite project that has no token at all (one created before tokens existed)
gets an admin token for the OS user on its first command, saved to the credentials
file, as ``shipyard init`` does for a new project.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.access import Principal
from shipyard.errors import Unauthenticated

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.governance.tokens import IssuedToken
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = [
    "TOKEN_VARIABLE",
    "CliState",
    "Identity",
    "ensure_own_token",
    "issue_own_token",
    "os_user",
    "os_user_principal",
    "resolve_identity",
    "resolve_principal",
]

TOKEN_VARIABLE = "SHIPYARD_TOKEN"
RETIRED_VARIABLE = "SHIPYARD_USER"  # named the actor before tokens; now only warned about


def os_user(environ: Mapping[str, str] | None = None) -> str:
    """The operating-system user's login name (as ``getpass.getuser`` finds it)."""
    environ = os.environ if environ is None else environ
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if environ.get(name):
            return environ[name]
    try:
        import pwd  # not on Windows, where USERNAME is set

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return "unknown"


def os_user_principal(environ: Mapping[str, str] | None = None) -> Principal:
    """The OS user acting as admin: a local project without a token, or the demo."""
    return Principal(os_user(environ), "os-user")


def os_user_may_act(config: Config) -> bool:
    """Whether this project lets the OS user act without a token."""
    policy = config.security.require_token
    return policy == "never" or (policy == "auto" and not config.shared_database)


@dataclass(frozen=True)
class Identity:
    """Who acts, and the saved token that was refused when a local project fell back."""

    principal: Principal
    refused: Unauthenticated | None = None
    refused_token: str | None = field(default=None, repr=False)


def resolve_identity(
    config: Config, environ: Mapping[str, str] | None = None, *, store: Store | None = None
) -> Identity:
    """Who runs this command (see the module docstring); ``store`` is used for the lookup."""
    from shipyard.governance.credentials import credentials_path, saved_token
    from shipyard.governance.tokens import authenticate

    environ = os.environ if environ is None else environ
    opened: list[Store] = []

    def lookup() -> Store:
        if store is not None:
            return store
        from shipyard.store import Store

        opened.append(Store(config.db_url, actor=os_user(environ)))
        return opened[0]

    try:
        explicit = environ.get(TOKEN_VARIABLE, "").strip()
        if explicit:
            return Identity(authenticate(lookup(), explicit))
        saved = saved_token(credentials_path(config), config.db_url)
        if saved is not None:
            try:
                return Identity(authenticate(lookup(), saved))
            except Unauthenticated as error:
                if not os_user_may_act(config):
                    raise
                return Identity(os_user_principal(environ), error, saved)
        if os_user_may_act(config):
            return Identity(os_user_principal(environ))
        raise _needs_token(config)
    finally:
        for own in opened:
            own.close()


def resolve_principal(
    config: Config, environ: Mapping[str, str] | None = None, *, store: Store | None = None
) -> Principal:
    """Who runs this command: the token's principal, or the OS user where one may act."""
    return resolve_identity(config, environ, store=store).principal


def _needs_token(config: Config) -> Unauthenticated:
    hint = f"Run `shipyard login` or set {TOKEN_VARIABLE}."
    if config.shared_database:
        first = " (`shipyard init` gives a new shared database its first admin token)"
        return Unauthenticated(
            "This project's database is shared: commands need a token.", hint[:-1] + first + "."
        )
    return Unauthenticated(
        "This project needs a token (security.require_token: always).", hint=hint
    )


def ensure_own_token(project: Project, refused_token: str | None = None) -> IssuedToken | None:
    """Issue an admin token for the acting OS user and save it, when the project needs one.

    It does when the database holds no token at all (a new project, or one from before
    tokens), or when the saved token was refused because it expired or is unknown here
    (the database was re-created). A revoked token is left refused: an admin meant it.
    Returns the new token, or ``None`` when there was nothing to do.
    """
    from shipyard.governance.tokens import count_tokens, list_tokens

    store = project.store
    if count_tokens(store) > 0:
        if refused_token is None:
            return None
        known = {info.id: info for info in list_tokens(store)}
        previous = known.get(refused_token[4:16])
        if previous is not None and previous.status() != "expired":
            return None
    return issue_own_token(project)


def issue_own_token(project: Project) -> IssuedToken:
    """Issue an admin token named after the acting principal and save it for this database."""
    from shipyard.governance.credentials import credentials_path, save_token
    from shipyard.governance.tokens import issue_token

    config, user = project.config, project.principal.name
    issued = issue_token(project, name=user, role="admin")
    save_token(credentials_path(config), config.db_url, issued.token, token_id=issued.id, name=user)
    return issued


@dataclass
class CliState:
    """What the root command's flags said; the project is resolved on first use."""

    config_path: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] | None = None
    _config: Config | None = None
    _project: Project | None = None

    def config(self, *, require_file: bool = True) -> Config:
        """The resolved configuration (defaults < file < environment < flags)."""
        if self._config is None:
            from shipyard.config import load_config

            self._config = load_config(
                self.config_path, overrides=self.overrides, require_file=require_file
            )
        return self._config

    def project(self, *, existing_database: bool = False) -> Project:
        """The project of the resolved configuration, acting as this command's principal.

        With ``existing_database``, a SQLite file that does not exist is an error (a
        mistyped path) rather than a new, empty database.
        """
        if self._project is None:
            if existing_database:
                from shipyard.store.engine import require_existing

                require_existing(self.config().db_url)
            self._project = self._resolve()
        return self._project

    def store(self) -> Store:
        """The control-plane store of the project."""
        return self.project().store

    def _resolve(self) -> Project:
        from shipyard.cli.output import err_console, esc
        from shipyard.governance.credentials import credentials_path
        from shipyard.project import Project
        from shipyard.store import Store

        config = self.config()
        environ = os.environ if self.environ is None else self.environ
        if environ.get(RETIRED_VARIABLE):
            err_console.print(
                f"[yellow]![/] {RETIRED_VARIABLE} is ignored: a token (or, on a local "
                "project, the OS user) says who acts. Unset it.",
                soft_wrap=True,
            )
        if not environ.get(TOKEN_VARIABLE, "").strip() and not os_user_may_act(config):
            # Nothing to authenticate: refuse before connecting. The saved token, if
            # any, is read by resolve_identity below.
            from shipyard.governance.credentials import saved_token

            if saved_token(credentials_path(config), config.db_url) is None:
                raise _needs_token(config)
        # One store serves authentication and the command.
        store = Store(config.db_url, actor=os_user(environ))
        try:
            identity = resolve_identity(config, environ, store=store)
        except BaseException:
            store.close()
            raise
        principal = identity.principal
        store.actor, store.token_id, store.role = principal.name, principal.token_id, principal.role
        project = Project(config, principal)
        project.__dict__["store"] = store  # Project.store is a cached property
        if principal.via != "os-user":
            return project
        local = not config.shared_database  # a shared database's tokens come from an admin
        issued = ensure_own_token(project, identity.refused_token) if local else None
        if issued is not None:
            path = credentials_path(config)
            err_console.print(
                f"[green]✓[/] Created an admin token for {esc(principal.name)} "
                f"(id {esc(issued.id)}) and "
                f"saved it to {esc(path)}; Shipyard uses it from now on.",
                soft_wrap=True,
            )
        elif identity.refused is not None:
            err_console.print(
                f"[yellow]![/] The token saved for this project was refused: "
                f"{esc(identity.refused.message)} Acting as the OS user {esc(principal.name)}; "
                "`shipyard logout` forgets the saved token.",
                soft_wrap=True,
            )
        return project
