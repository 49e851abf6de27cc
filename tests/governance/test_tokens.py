"""API tokens: their text, hash-only storage, expiry, revocation, rotation, scopes, grants."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from shipyard.access import Principal, Scope
from shipyard.config import Config, load_config
from shipyard.errors import ConfigError, Forbidden, NotFoundError, Unauthenticated
from shipyard.governance.tokens import (
    PREFIX,
    IssuedToken,
    authenticate,
    count_tokens,
    issue_token,
    list_tokens,
    looks_like_token,
    revoke_token,
    rotate_token,
)
from shipyard.project import Project
from shipyard.store import EventKind, EventRow, TokenRow
from shipyard.store.audit_leaf import row_digest, row_values

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _config(folder: Path, database_url: str | None = None) -> Config:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".shipyard").mkdir(exist_ok=True)
    (folder / "shipyard.yaml").write_text("project: tokens\n", encoding="utf-8")
    overrides = {"database_url": database_url} if database_url else None
    return load_config(folder / "shipyard.yaml", environ={}, overrides=overrides)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    project = Project(_config(tmp_path / "p"), Principal("admin-ann", "test"))
    yield project
    project.close()


def _issue(project: Project, **kwargs: object) -> IssuedToken:
    settings: dict[str, object] = {"name": "ci", "role": "trainer", "now": T0} | kwargs
    return issue_token(project, **settings)  # type: ignore[arg-type]


def _refusal(project: Project, token: str, now: datetime = T0) -> str:
    with pytest.raises(Unauthenticated) as caught:
        authenticate(project.store, token, now=now)
    message = str(caught.value)
    assert token not in message
    assert len(token) < 48 or token[16:48] not in message  # nor the secret alone
    return caught.value.message


def test_token_text_has_prefix_id_secret_and_checksum(project: Project) -> None:
    issued = _issue(project)
    token = issued.token
    assert re.fullmatch(r"shp_[0-9A-Za-z]{50}", token)
    assert token[4:16] == issued.id
    assert looks_like_token(token)
    assert token not in repr(issued)
    other = _issue(project)
    assert other.token[16:48] != token[16:48]  # secrets differ


def test_a_typo_is_caught_by_the_checksum_before_any_lookup(project: Project) -> None:
    token = _issue(project).token
    for position in (5, 20, 47, len(token) - 1):  # id, secret, checksum
        swapped = "a" if token[position] != "a" else "b"
        typo = token[:position] + swapped + token[position + 1 :]
        assert not looks_like_token(typo)
        assert "checksum does not match" in _refusal(project, typo)


def test_only_the_hash_is_stored(project: Project) -> None:
    issued = _issue(project)
    authenticate(project.store, issued.token, now=T0)
    digest = hashlib.sha256(issued.token.encode()).hexdigest()
    with project.store.session() as session:
        row = session.get(TokenRow, issued.id)
        assert row is not None and row.hash == digest
        events = session.scalars(select(EventRow)).all()
        assert events, "issuing records an event"
        for event in events:
            text_of = repr(row_values(event))
            assert issued.token not in text_of and digest not in text_of
    project.store.close()
    database = project.config.db_url.removeprefix("sqlite:///")
    stored = b"".join(p.read_bytes() for p in Path(database).parent.glob("shipyard.db*"))
    assert issued.token.encode() not in stored
    assert issued.token[16:48].encode() not in stored  # not even the secret alone
    assert digest.encode() in stored


def test_authenticate_gives_the_principal_of_the_token(project: Project) -> None:
    issued = _issue(project, name="ci-bot", role="deployer")
    principal = authenticate(project.store, issued.token, now=T0)
    assert principal.name == "ci-bot" and principal.via == "token"
    assert principal.role == "deployer" and principal.token_id == issued.id
    assert principal.may(Scope.MODELS_DEPLOY, "churn")
    assert not principal.may(Scope.MODELS_APPROVE)
    assert not principal.may(Scope.TOKENS_ADMIN)


def test_refusals_are_distinct_and_never_repeat_the_token(project: Project) -> None:
    issued = _issue(project)
    token = issued.token
    messages = {
        "malformed": _refusal(project, "shp_short"),
        "other prefix": _refusal(project, "ghp_" + token[4:]),
        "checksum": _refusal(project, token[:-1] + ("x" if token[-1] != "x" else "y")),
    }
    unknown = _issue(project).token
    with project.store.session() as session:
        session.execute(text("DELETE FROM shipyard_tokens WHERE id = :id"), {"id": unknown[4:16]})
    messages["unknown"] = _refusal(project, unknown)
    expired_at = T0 + timedelta(days=project.config.security.token_days)
    messages["expired"] = _refusal(project, token, now=expired_at)
    revoke_token(project, issued.id, now=T0)
    messages["revoked"] = _refusal(project, token)
    assert "malformed" in messages["malformed"] and "malformed" in messages["other prefix"]
    assert "checksum" in messages["checksum"]
    assert "unknown" in messages["unknown"]
    assert "expired" in messages["expired"] and "2030-04-01" in messages["expired"]
    assert "revoked" in messages["revoked"] and "admin-ann" in messages["revoked"]
    assert len({messages[k] for k in ("checksum", "unknown", "expired", "revoked")}) == 4


def test_a_forged_secret_with_a_valid_checksum_is_refused(project: Project) -> None:
    from shipyard.governance.tokens import _checksum

    issued = _issue(project)
    body = issued.id + "A" * 32
    forged = PREFIX + body + _checksum(body)
    assert looks_like_token(forged)
    assert "secret does not match" in _refusal(project, forged)


def test_every_token_expires(project: Project) -> None:
    default = _issue(project)
    assert default.info.expires_at == T0 + timedelta(days=90)
    short = _issue(project, expires=timedelta(hours=1))
    assert short.info.expires_at == T0 + timedelta(hours=1)
    authenticate(project.store, short.token, now=T0 + timedelta(minutes=59))
    assert "expired" in _refusal(project, short.token, now=T0 + timedelta(hours=1))
    with pytest.raises(ConfigError, match="lifetime"):
        _issue(project, expires=timedelta(days=4000))


def test_revocation_is_immediate_and_audited(project: Project) -> None:
    issued = _issue(project)
    info = revoke_token(project, issued.id, now=T0)
    assert info.revoked_at == T0 and info.revoked_by == "admin-ann"
    assert info.status() == "revoked"
    assert "revoked" in _refusal(project, issued.token)
    again = revoke_token(project, issued.id)
    assert again.revoked_at == T0  # revoking twice changes nothing
    revoked = project.store.events(kind=EventKind.TOKEN_REVOKED)
    assert len(revoked) == 1 and revoked[0].subject == f"token:{issued.id}"
    assert revoked[0].before is not None and revoked[0].before != revoked[0].after
    with pytest.raises(NotFoundError):
        revoke_token(project, "nosuchtoken0")


def test_rotation_keeps_the_old_token_valid_for_the_overlap_only(project: Project) -> None:
    old = _issue(project, role="deployer", models=["churn*"], scopes=["models:deploy"])
    new = rotate_token(project, old.id, overlap=timedelta(hours=2), now=T0)
    assert new.info.replaces == old.id and new.id != old.id
    assert (new.info.name, new.info.role) == ("ci", "deployer")
    assert new.info.scopes == old.info.scopes and new.info.grants == old.info.grants
    inside, after = T0 + timedelta(hours=1), T0 + timedelta(hours=2, seconds=1)
    assert authenticate(project.store, old.token, now=inside).token_id == old.id
    assert "expired" in _refusal(project, old.token, now=after)
    assert authenticate(project.store, new.token, now=after).token_id == new.id
    kinds = [e.kind for e in project.store.events(subject="token:")]
    assert kinds.count(EventKind.TOKEN_ISSUED) == 2 and EventKind.TOKEN_ROTATED in kinds


def test_rotation_default_overlap_is_a_day_and_never_extends(project: Project) -> None:
    short = _issue(project, expires=timedelta(hours=3))
    rotate_token(project, short.id, now=T0)
    (info,) = [t for t in list_tokens(project.store) if t.id == short.id]
    assert info.expires_at == T0 + timedelta(hours=3)  # sooner than the 24 h overlap
    long = _issue(project)
    rotate_token(project, long.id, now=T0)
    (info,) = [t for t in list_tokens(project.store) if t.id == long.id]
    assert info.expires_at == T0 + timedelta(hours=24)
    revoke_token(project, long.id)
    with pytest.raises(Forbidden, match="revoked"):
        rotate_token(project, long.id)


def test_scopes_narrow_the_role_and_never_widen_it(project: Project) -> None:
    narrow = _issue(project, role="trainer", scopes=["models:train"])
    principal = authenticate(project.store, narrow.token, now=T0)
    assert principal.scopes == frozenset({Scope.MODELS_TRAIN})
    with pytest.raises(Forbidden) as caught:
        _issue(project, role="trainer", scopes=["tokens:admin"])
    assert "does not allow the scope tokens:admin" in caught.value.message
    assert "models:train" in (caught.value.hint or "")  # the role's own list
    with pytest.raises(ConfigError, match="no scope"):
        _issue(project, role="trainer", scopes=["models:fly"])
    with pytest.raises(Forbidden, match="no role"):
        _issue(project, role="superuser")


def test_model_patterns_become_grants_at_the_roles_level(project: Project) -> None:
    issued = _issue(project, role="trainer", models=["churn*", "fraud-eu"])
    assert issued.info.grants == ("model:churn*:EDIT", "model:fraud-eu:EDIT")
    principal = authenticate(project.store, issued.token, now=T0)
    assert principal.may(Scope.MODELS_TRAIN, "churn-v2")
    assert principal.may(Scope.MODELS_TRAIN, "fraud-eu")
    assert not principal.may(Scope.MODELS_TRAIN, "fraud-us")
    with pytest.raises(Forbidden, match="no grant on model 'fraud-us'"):
        principal.require(Scope.MODELS_TRAIN, "fraud-us")
    everything = _issue(project, role="viewer")
    assert everything.info.grants == ("*:*:READ",)


def test_issuing_needs_tokens_admin(project: Project) -> None:
    trainer = authenticate(project.store, _issue(project).token, now=T0)
    as_trainer = Project(project.config, trainer)
    with pytest.raises(Forbidden, match="tokens:admin"):
        issue_token(as_trainer, name="mine", role="admin")
    with pytest.raises(Forbidden, match="tokens:admin"):
        revoke_token(as_trainer, trainer.token_id or "")
    as_trainer.close()


def test_issue_is_an_event_that_binds_the_row(project: Project) -> None:
    issued = _issue(project, role="viewer", models=["churn*"])
    authenticate(project.store, issued.token, now=T0)  # sets last_used_at: not in the digest
    (event,) = project.store.events(kind=EventKind.TOKEN_ISSUED)
    assert event.subject == f"token:{issued.id}" and event.actor == "admin-ann"
    assert set(event.payload) == {"name", "role", "scopes", "grants", "expires_at"}
    assert event.payload["grants"] == ["model:churn*:READ"]
    with project.store.session() as session:
        row = session.get(TokenRow, issued.id)
        assert row is not None and row.last_used_at is not None
        values = {k: v for k, v in row_values(row).items() if k != "last_used_at"}
    assert event.after == row_digest(values)


def test_last_use_is_written_at_most_once_a_minute(project: Project) -> None:
    issued = _issue(project)

    def last_used() -> datetime | None:
        (info,) = [t for t in list_tokens(project.store) if t.id == issued.id]
        return info.last_used_at

    assert last_used() is None
    authenticate(project.store, issued.token, now=T0)
    assert last_used() == T0
    authenticate(project.store, issued.token, now=T0 + timedelta(seconds=30))
    assert last_used() == T0
    authenticate(project.store, issued.token, now=T0 + timedelta(seconds=61))
    assert last_used() == T0 + timedelta(seconds=61)


def test_listing_shows_no_secret(project: Project) -> None:
    issued = _issue(project)
    assert count_tokens(project.store) == 1
    (info,) = list_tokens(project.store)
    shown = repr(info.to_dict())
    assert issued.token not in shown and "hash" not in info.to_dict()
    assert info.to_dict()["expires_at"] == "2030-04-01T12:00:00+00:00"
    assert info.status(T0) == "active"


def test_names_are_checked(project: Project) -> None:
    for bad in ("", "  ", "a\nb", "x" * 201):
        with pytest.raises(ConfigError, match="needs a name"):
            _issue(project, name=bad)


def test_tokens_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    project = Project(_config(tmp_path / "pg", postgres_url), Principal("admin-ann", "test"))
    try:
        issued = _issue(project, role="approver", models=["churn*"])
        principal = authenticate(project.store, issued.token, now=T0)
        assert principal.name == "ci" and principal.may(Scope.MODELS_APPROVE, "churn")
        rotated = rotate_token(project, issued.id, overlap=timedelta(minutes=5), now=T0)
        assert "expired" in _refusal(project, issued.token, now=T0 + timedelta(minutes=6))
        revoke_token(project, rotated.id)
        assert "revoked" in _refusal(project, rotated.token)
        with project.store.session() as session:
            dumped = repr([row_values(r) for r in session.scalars(select(EventRow))])
            dumped += repr([row_values(r) for r in session.scalars(select(TokenRow))])
        assert issued.token not in dumped and rotated.token not in dumped
        later = T0 + timedelta(minutes=6)
        statuses = {t.id: t.status(later) for t in list_tokens(project.store)}
        assert statuses == {issued.id: "expired", rotated.id: "revoked"}
    finally:
        project.close()
