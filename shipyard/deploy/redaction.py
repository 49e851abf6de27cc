"""What never reaches an image: the project's settings without secrets, and a last check.

:func:`sanitised_config` is the project's ``shipyard.yaml`` as an image may carry it;
:func:`refuse_secrets` searches a written folder for the database password and the
private signing key, and fails the build if either is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import yaml

from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["SECRET_WORDS", "refuse_secrets", "sanitised_config"]

# Settings that hold a secret, or a path on the building machine, and never reach an image.
_DROPPED = (
    ("database_url",),
    ("signing", "private_key"),
    ("security", "credentials"),
    ("monitoring", "routes"),  # alert routes carry webhook URLs, routing keys, headers
)
# Settings whose names mention a secret but hold none: they say how secrets are used.
_ABOUT_SECRETS = frozenset({"require_token", "token_days"})
SECRET_WORDS = ("password", "secret", "token", "credential", "passphrase", "routing_key")


def sanitised_config(project: Project) -> tuple[str, list[str]]:
    """The project's ``shipyard.yaml`` for an image, and the project files it needs.

    The database URL, alert routes (their URLs and keys are secrets), the private key's
    and the credentials file's paths are dropped, and so is any setting whose name says
    it is a secret. The public key and the scorecard are listed to copy along, so the
    image verifies signed versions and reports the scorecard's bounds as a laptop does.
    """
    config = project.config
    file = config.root / "shipyard.yaml"
    data: dict[str, Any] = {}
    if file.is_file():
        loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        data = loaded if isinstance(loaded, dict) else {}
    for path in _DROPPED:
        _drop(data, path)
    data = _without_secrets(data)
    header = (
        "# Written by `shipyard build` from the project's shipyard.yaml, without secrets.\n"
        "# The database URL comes from SHIPYARD_DATABASE_URL (a Secret) at run time.\n"
    )
    text = header + (yaml.safe_dump(data, sort_keys=False) if data else "")
    copied = []
    for setting in (config.signing.public_key, config.evaluation.scorecard):
        if not isinstance(setting, Path):  # unset, or a scorecard written inline
            continue
        candidate = config.resolve(setting)
        try:
            relative = candidate.relative_to(config.root.resolve())
        except ValueError:
            continue
        if candidate.is_file():
            copied.append(str(relative))
    return text, copied


def _drop(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = data
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_secrets(item)
            for key, item in value.items()
            if not _secret_name(str(key)) and not _has_userinfo(item)
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value if not _has_userinfo(item)]
    return value


def _secret_name(key: str) -> bool:
    """A setting named like a credential (``api_token``, ``password``), not one about them."""
    name = key.lower()
    return name not in _ABOUT_SECRETS and any(word in name for word in SECRET_WORDS)


def _has_userinfo(value: Any) -> bool:
    """A URL with a password in it (``scheme://user:password@host``)."""
    return isinstance(value, str) and "://" in value and urlparse(value).password is not None


def refuse_secrets(project: Project, folder: Path) -> None:
    """Fail if any file in ``folder`` holds one of the project's secrets (:func:`_secrets`)."""
    needles = list(_secrets(project))
    if not needles:
        return
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for label, needle in needles:
                if needle in data:
                    raise ShipyardError(
                        f"Refused to write the build context: {path.relative_to(folder)} "
                        f"holds the {label}.",
                        hint="Remove the secret from that file; secrets reach a container "
                        "from the environment (a Kubernetes Secret), never from its image.",
                    )


def _secrets(project: Project) -> Iterator[tuple[str, bytes]]:
    """The secrets a context is searched for: the database password, the signing key, and
    the PII hashing key (a container reads it from a mounted Secret, never from a layer)."""
    config = project.config
    password = urlparse(config.db_url).password
    if password:
        yield "database password", password.encode()
    from shipyard.governance.cards import private_key_path

    for label, path in (
        ("private signing key", private_key_path(config)),
        ("PII hashing key", config.resolve(config.pii.secret)),
    ):
        try:
            lines = path.read_bytes().splitlines() if path.is_file() else []
        except OSError:
            continue
        for line in lines:  # PEM body lines, or the hex key: each long enough to be unique
            line = line.strip()
            if len(line) >= 16 and not line.startswith(b"-----"):
                yield label, line
