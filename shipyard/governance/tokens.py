"""API tokens: issued once, stored only as a hash, every one of them expiring.

A token reads ``shp_`` + a 12-character public id + a 32-character secret + a
6-character checksum, all base62::

    shp_3kT9xQb1LmZa  Vd0…(32)…  1a2B3c
        public id     secret     CRC32 of id + secret

The prefix lets secret scanners recognise a leaked token, and the checksum lets them
(and :func:`authenticate`) tell a real token from a typo without a database lookup, the
way GitHub's tokens work. The database keeps the public id and the SHA-256 of the whole
token, never the token; checks compare hashes in constant time.

    issued = issue_token(project, name="ci", role="trainer", models=["churn*"])
    print(issued.token)                      # shown once
    principal = authenticate(store, issued.token)
    rotate_token(project, issued.id)         # the old one stays valid for 24 h
    revoke_token(project, issued.id)

Issuing, rotating and revoking need ``tokens:admin``, and each is an audited event
whose ``after`` digest binds the token's row (its secret never enters the log).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update

from shipyard.access import ROLES, Grant, Permission, Principal, Scope, role_named
from shipyard.errors import ConfigError, Forbidden, NotFoundError, Unauthenticated
from shipyard.jsonable import Record
from shipyard.moments import as_utc
from shipyard.store import EventKind, Store, TokenRow
from shipyard.store.audit_leaf import row_digest, row_values

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.orm import Session

    from shipyard.project import Project

__all__ = [
    "DEFAULT_OVERLAP",
    "PREFIX",
    "IssuedToken",
    "TokenInfo",
    "authenticate",
    "count_tokens",
    "issue_token",
    "list_tokens",
    "looks_like_token",
    "revoke_token",
    "rotate_token",
]

PREFIX = "shp_"
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_LIFETIME = timedelta(days=3650)
# last_used_at is written at most this often, so a busy token costs no write per call.
USE_RESOLUTION = timedelta(minutes=1)

_BODY = ID_LENGTH + SECRET_LENGTH
_SHAPE = re.compile(rf"^{PREFIX}[0-9A-Za-z]{{{_BODY + CHECKSUM_LENGTH}}}$")
_LOGIN_HINT = "Check SHIPYARD_TOKEN, or run `shipyard login` with a token an admin gave you."
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")  # as shipyard.llm.cap_policies
_VOLATILE = frozenset({"last_used_at"})  # changes on use, so no event vouches for it


@dataclass(frozen=True)
class TokenInfo(Record):
    """What a listing shows of a token: everything but its secret and hash."""

    id: str
    name: str
    role: str
    scopes: tuple[str, ...]
    grants: tuple[str, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    replaces: str | None = None

    def status(self, now: datetime | None = None) -> str:
        """``revoked``, ``expired`` or ``active`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"


@dataclass(frozen=True)
class IssuedToken:
    """A newly issued token: :attr:`token` is its secret text, shown once and never again."""

    token: str = field(repr=False)
    info: TokenInfo

    @property
    def id(self) -> str:
        """The token's public id (what listings, events and revocation name)."""
        return self.info.id


def looks_like_token(text: str) -> bool:
    """Whether ``text`` has a token's shape and a matching checksum (no database needed)."""
    return (
        bool(_SHAPE.match(text))
        and _checksum(text[len(PREFIX) : len(PREFIX) + _BODY]) == (text[-CHECKSUM_LENGTH:])
    )


def issue_token(
    project: Project,
    *,
    name: str,
    role: str,
    scopes: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
    tenants: Iterable[str] | None = None,
    expires: timedelta | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Issue a token naming ``name`` with ``role``; the principal needs ``tokens:admin``.

    ``scopes`` narrows the role's scopes (a scope the role lacks is refused); ``models``
    limits it to the models matching those patterns, at the role's permission level.
    ``tenants`` makes it act for those LLM tenants only (grants of kind ``tenant``: the
    gateway counts its requests and cost against them, see ``shipyard.llm.caps``).
    ``expires`` defaults to ``security.token_days``: every token expires.
    """
    project.authorize(Scope.TOKENS_ADMIN)
    now = _now(now)
    lifetime = expires or timedelta(days=project.config.security.token_days)
    row = _new_row(
        name=name,
        role=role,
        scopes=scopes,
        models=models,
        tenants=tenants,
        lifetime=lifetime,
        created_by=project.store.actor,
        now=now,
    )
    token = _token_text(row.id)
    row.hash = _hash(token)
    with project.store.session() as session:
        session.add(row)
        session.flush()
        _record(project.store, session, EventKind.TOKEN_ISSUED, row)
    return IssuedToken(token, _info(row))


def authenticate(store: Store, token: str, *, now: datetime | None = None) -> Principal:
    """The principal ``token`` stands for; ``Unauthenticated`` says why when it stands for none.

    Checked in order: shape, checksum, a known id, the secret (constant-time), not
    revoked, not expired. No message repeats the token.
    """
    now = _now(now)
    if not isinstance(token, str) or not _SHAPE.match(token.strip()):
        raise Unauthenticated(
            f"The token is malformed: a Shipyard token is {PREFIX} followed by "
            f"{_BODY + CHECKSUM_LENGTH} letters and digits.",
            hint=_LOGIN_HINT,
        )
    token = token.strip()
    body = token[len(PREFIX) : len(PREFIX) + _BODY]
    if _checksum(body) != token[-CHECKSUM_LENGTH:]:
        raise Unauthenticated(
            "The token's checksum does not match: it was mistyped or cut short.",
            hint="Copy the whole token again. " + _LOGIN_HINT,
        )
    token_id = body[:ID_LENGTH]
    with store.session() as session:
        row = session.get(TokenRow, token_id)
        if row is None:
            raise Unauthenticated(f"Token {token_id} is unknown to this project.", hint=_LOGIN_HINT)
        if not hmac.compare_digest(row.hash.encode(), _hash(token).encode()):
            raise Unauthenticated(
                f"Token {token_id}'s secret does not match.",
                hint="Copy the whole token again. " + _LOGIN_HINT,
            )
        if row.revoked_at is not None:
            raise Unauthenticated(
                f"Token {token_id} ({row.name}) was revoked on {_day(row.revoked_at)}"
                f" by {row.revoked_by}.",
                hint="Ask an admin for a new token (`shipyard tokens create`).",
            )
        if as_utc(row.expires_at) <= now:
            raise Unauthenticated(
                f"Token {token_id} ({row.name}) expired on {_day(row.expires_at)}.",
                hint="Ask an admin for a new token; rotate tokens before they expire "
                "(`shipyard tokens rotate`).",
            )
        if row.last_used_at is None or as_utc(row.last_used_at) <= now - USE_RESOLUTION:
            _touch(session, token_id, now)
        return _principal(row)


def revoke_token(project: Project, token_id: str, *, now: datetime | None = None) -> TokenInfo:
    """Revoke a token at once; revoking a revoked token changes nothing."""
    project.authorize(Scope.TOKENS_ADMIN)
    store = project.store
    with store.session() as session:
        row = _row(session, token_id)
        if row.revoked_at is not None:
            return _info(row)
        before = _digest(row)
        row.revoked_at = _now(now)
        row.revoked_by = store.actor
        session.flush()
        _record(store, session, EventKind.TOKEN_REVOKED, row, before=before)
        return _info(row)


def rotate_token(
    project: Project,
    token_id: str,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    expires: timedelta | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Replace a token by a new one with the same name, role, scopes and grants.

    The old token stays valid for ``overlap`` (then expires), so whatever holds it can
    switch without an outage; the new token's ``replaces`` names the old one.
    """
    project.authorize(Scope.TOKENS_ADMIN)
    store = project.store
    now = _now(now)
    if overlap < timedelta(0):
        raise ConfigError("The overlap cannot be negative.", hint="Write e.g. --overlap 24h.")
    lifetime = expires or timedelta(days=project.config.security.token_days)
    with store.session() as session:
        old = _row(session, token_id)
        if old.revoked_at is not None or as_utc(old.expires_at) <= now:
            raise Forbidden(
                f"Token {token_id} is {_info(old).status(now)} and cannot be rotated.",
                hint=f"Issue a new one: shipyard tokens create --name {old.name} "
                f"--role {old.role}.",
            )
        before = _digest(old)
        old.expires_at = min(as_utc(old.expires_at), now + overlap)
        new = _new_row(
            name=old.name,
            role=old.role,
            scopes=old.scopes,
            models=None,
            lifetime=lifetime,
            created_by=store.actor,
            now=now,
        )
        new.grants = list(old.grants)
        new.replaces = old.id
        token = _token_text(new.id)
        new.hash = _hash(token)
        session.add(new)
        session.flush()
        _record(store, session, EventKind.TOKEN_ROTATED, old, before=before, extra={"by": new.id})
        _record(store, session, EventKind.TOKEN_ISSUED, new, extra={"replaces": old.id})
        return IssuedToken(token, _info(new))


def list_tokens(store: Store) -> list[TokenInfo]:
    """Every token of the project, oldest first (revoked and expired ones included)."""
    with store.session() as session:
        rows = session.scalars(select(TokenRow).order_by(TokenRow.created_at, TokenRow.id))
        return [_info(row) for row in rows]


def count_tokens(store: Store) -> int:
    """How many tokens the project has ever issued."""
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(TokenRow)) or 0)


# --- rows -----------------------------------------------------------------------------


def _new_row(
    *,
    name: str,
    role: str,
    scopes: Iterable[str] | None,
    models: Iterable[str] | None,
    lifetime: timedelta,
    created_by: str,
    now: datetime,
    tenants: Iterable[str] | None = None,
) -> TokenRow:
    name = name.strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise ConfigError(
            "A token needs a name: who or what will use it (at most 200 printable characters).",
            hint="Pass e.g. --name ci-pipeline.",
        )
    chosen = role_named(role)
    if lifetime <= timedelta(0) or lifetime > MAX_LIFETIME:
        raise ConfigError(
            "A token's lifetime must be positive and at most 3650 days.",
            hint="Pass e.g. --expires 90d.",
        )
    return TokenRow(
        id=_random(ID_LENGTH),
        name=name,
        role=chosen.name,
        scopes=_narrowed(chosen.name, scopes),
        grants=[str(grant) for grant in _grants(chosen.permission, models) + _tenants(tenants)],
        hash="",
        created_by=created_by,
        created_at=now,
        expires_at=now + lifetime,
    )


def _narrowed(role: str, scopes: Iterable[str] | None) -> list[str]:
    allowed = ROLES[role].scopes
    if scopes is None:
        return sorted(scope.value for scope in allowed)
    wanted = list(dict.fromkeys(scopes))
    if not wanted:
        raise ConfigError("A token needs at least one scope.", hint="Leave --scope out for all.")
    listed = ", ".join(sorted(scope.value for scope in allowed))
    for text in wanted:
        if text not in Scope._value2member_map_:
            raise ConfigError(f"There is no scope {text!r}.", hint=f"Role {role} allows: {listed}.")
        if Scope(text) not in allowed:
            raise Forbidden(
                f"Role {role} does not allow the scope {text}.",
                hint=f"Role {role} allows: {listed}. Pick another --role for {text}.",
            )
    return sorted(wanted)


def _grants(level: Permission, models: Iterable[str] | None) -> tuple[Grant, ...]:
    patterns = [pattern.strip() for pattern in models or ()]
    if any(not pattern for pattern in patterns):
        raise ConfigError("A --model pattern cannot be empty.", hint="Write e.g. --model 'churn*'.")
    if not patterns:
        return (Grant("*", "*", level),)
    return tuple(Grant("model", pattern, level) for pattern in dict.fromkeys(patterns))


def _tenants(tenants: Iterable[str] | None) -> tuple[Grant, ...]:
    names = [tenant.strip() for tenant in tenants or ()]
    for name in names:
        if not _TENANT.match(name):
            raise ConfigError(
                f"--tenant {name[:60]!r} is not a tenant name.",
                hint="Letters, digits and . _ : @ -, at most 200 characters, e.g. --tenant acme.",
            )
    return tuple(Grant("tenant", name, Permission.USE) for name in dict.fromkeys(names))


def _parse_grant(text: str) -> Grant:
    kind, rest = text.split(":", 1)
    pattern, level = rest.rsplit(":", 1)
    return Grant(kind, pattern, Permission[level])


def _principal(row: TokenRow) -> Principal:
    return Principal(
        row.name,
        "token",
        role=row.role,
        scopes=frozenset(Scope(scope) for scope in row.scopes),
        grants=tuple(_parse_grant(grant) for grant in row.grants),
        token_id=row.id,
    )


def _row(session: Session, token_id: str) -> TokenRow:
    row = session.get(TokenRow, token_id.strip())
    if row is None:
        raise NotFoundError(
            f"There is no token {token_id!r}.", hint="`shipyard tokens list` shows their ids."
        )
    return row


def _touch(session: Session, token_id: str, now: datetime) -> None:
    # Conditional, so concurrent calls within the minute write once between them.
    session.execute(
        update(TokenRow)
        .where(TokenRow.id == token_id)
        .where(or_(TokenRow.last_used_at.is_(None), TokenRow.last_used_at <= now - USE_RESOLUTION))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=row.role,
        scopes=tuple(row.scopes),
        grants=tuple(row.grants),
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        expires_at=as_utc(row.expires_at),
        last_used_at=_utc_or_none(row.last_used_at),
        revoked_at=_utc_or_none(row.revoked_at),
        revoked_by=row.revoked_by,
        replaces=row.replaces,
    )


def _digest(row: TokenRow) -> str:
    values = {key: value for key, value in row_values(row).items() if key not in _VOLATILE}
    return row_digest(values)


def _record(
    store: Store,
    session: Session,
    kind: EventKind,
    row: TokenRow,
    *,
    before: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    payload = {
        "name": row.name,
        "role": row.role,
        "scopes": list(row.scopes),
        "grants": list(row.grants),
        "expires_at": as_utc(row.expires_at).isoformat(),
        **(extra or {}),
    }
    store.record(
        kind, f"token:{row.id}", payload, before=before, after=_digest(row), session=session
    )


# --- token text -----------------------------------------------------------------------


def _random(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode("ascii"))
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def _token_text(token_id: str) -> str:
    body = token_id + _random(SECRET_LENGTH)
    return PREFIX + body + _checksum(body)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _day(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _now(moment: datetime | None) -> datetime:
    return datetime.now(UTC) if moment is None else as_utc(moment)


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)
