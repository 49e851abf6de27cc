"""The credentials file ``shipyard login`` writes: one token per database, for its owner only.

    {"databases": {"postgresql+psycopg://ci:***@db/shipyard": {"token": "shp_…", "id": "…",
                                                               "name": "ana", "saved_at": "…"}}}

Entries are keyed by the project's database URL with any password hidden, so one file
serves every project a person works on. The file is written atomically with mode 0600
(its folder 0700 when this creates it), and a file that others may read is refused, as
``ssh`` refuses such a key. The CLI decides which file (``security.credentials``, else
:data:`DEFAULT_CREDENTIALS`); nothing here reads the environment.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from shipyard.config import Config
from shipyard.errors import ConfigError

__all__ = [
    "DEFAULT_CREDENTIALS",
    "credentials_path",
    "database_key",
    "forget_token",
    "save_token",
    "saved_token",
]

DEFAULT_CREDENTIALS = Path("~/.config/shipyard/credentials.json")


def credentials_path(config: Config) -> Path:
    """The credentials file of ``config``: ``security.credentials``, else the default."""
    chosen = config.security.credentials or DEFAULT_CREDENTIALS
    return chosen.expanduser()


def database_key(url: str) -> str:
    """The entry key of a database URL: the URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def saved_token(path: Path, url: str) -> str | None:
    """The token saved for the database at ``url``, if any."""
    entry = _read(path).get(database_key(url))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) and token else None


def save_token(path: Path, url: str, token: str, *, token_id: str, name: str) -> None:
    """Save ``token`` as the one to use for the database at ``url``."""
    databases = _read(path)
    databases[database_key(url)] = {
        "token": token,
        "id": token_id,
        "name": name,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write(path, databases)


def forget_token(path: Path, url: str) -> bool:
    """Remove the token saved for ``url``; whether there was one."""
    databases = _read(path)
    if databases.pop(database_key(url), None) is None:
        return False
    _write(path, databases)
    return True


def _read(path: Path) -> dict[str, Any]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"The credentials file {path} may be read by other users.",
            hint=f"Make it private: chmod 600 {path}",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"The credentials file {path} cannot be read: {exc}.",
            hint="Remove it and run `shipyard login` again.",
        ) from None
    databases = data.get("databases") if isinstance(data, dict) else None
    return dict(databases) if isinstance(databases, dict) else {}


def _write(path: Path, databases: dict[str, Any]) -> None:
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
    text = json.dumps({"databases": databases}, indent=2, sort_keys=True) + "\n"
    # Written whole to a private temporary file, then renamed: never half a file, and
    # never a moment when the token sits in a file others may read.
    temporary = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    os.chmod(path, 0o600)
