"""Real bearer tokens for tests: issued through ``shipyard.governance.tokens`` into the
project's own token table, so servers and the CLI check them as they would in use."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from shipyard.governance.tokens import ID_LENGTH, PREFIX, issue_token
from shipyard.project import Project

__all__ = ["token_for", "token_id"]


def token_for(
    project: Project,
    role: str,
    *,
    name: str | None = None,
    models: Iterable[str] | None = None,
    expires: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    """The secret of a new token of ``role`` in ``project``, named ``name`` (the role's
    name by default), limited to ``models`` patterns when given.

    ``expires`` and ``now`` are ``issue_token``'s: a token issued ``now`` in the past with
    a short ``expires`` is already expired.
    """
    issued = issue_token(
        project, name=name or role, role=role, models=models, expires=expires, now=now
    )
    return issued.token


def token_id(secret: str) -> str:
    """The public id inside a token's secret text: what events, listings and revocation
    name (``shp_`` then the id, then the secret and a checksum)."""
    return secret[len(PREFIX) : len(PREFIX) + ID_LENGTH]
