"""``shipyard tokens``, ``login``, ``logout``, ``whoami``, and who a command acts as."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import update

from shipyard.cli import run
from shipyard.cli.state import resolve_principal
from shipyard.config import load_config
from shipyard.governance.credentials import database_key
from shipyard.store import Store, TokenRow
from tests.support import token_id

Capture = pytest.CaptureFixture[str]


def cli(capsys: Capture, *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _credentials() -> Path:
    return Path(os.environ["SHIPYARD_SECURITY__CREDENTIALS"])


def _saved() -> dict[str, dict[str, str]]:
    return dict(json.loads(_credentials().read_text())["databases"])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _project(folder: Path, monkeypatch: pytest.MonkeyPatch, database_url: str = "") -> Path:
    folder.mkdir(parents=True)
    lines = ["project: tokens"] + ([f"database_url: {database_url}"] if database_url else [])
    (folder / "shipyard.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.chdir(folder)
    return folder


def _initialised(folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture) -> Path:
    """A new project at ``folder``, the working directory, after ``shipyard init``."""
    _project(folder, monkeypatch)
    assert cli(capsys, "init")[0] == 0
    return folder


def _create(capsys: Capture, *args: str) -> str:
    code, out, err = cli(capsys, "tokens", "create", *args)
    assert code == 0, err
    return out.strip()


def _login_with(monkeypatch: pytest.MonkeyPatch, capsys: Capture, token: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    code, out, err = cli(capsys, "login", "--token-stdin")
    return code, out + err


def test_init_saves_an_admin_token_for_the_os_user(tmp_path: Path, capsys: Capture) -> None:
    code, out, _ = cli(capsys, "init", str(tmp_path / "proj"))
    assert code == 0 and "Admin token for tester saved to" in out
    ((key, entry),) = _saved().items()
    assert key.startswith("sqlite:///") and key.endswith("/proj/.shipyard/shipyard.db")
    assert entry["name"] == "tester" and entry["token"] not in out
    assert _mode(_credentials()) == 0o600 and _mode(_credentials().parent) == 0o700
    code, out, _ = cli(capsys, "--config", str(tmp_path / "proj" / "shipyard.yaml"), "whoami")
    assert code == 0 and "tester (role admin)" in out and f"token {entry['id']}" in out
    code, out, _ = cli(capsys, "init", str(tmp_path / "proj"))  # again: keeps the token
    assert code == 0 and "Signed in as tester (admin)" in out
    assert len(_saved()) == 1


def test_create_prints_the_token_once_and_list_never_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    folder = _project(tmp_path / "proj", monkeypatch)
    assert cli(capsys, "init", str(folder))[0] == 0
    code, out, err = cli(
        capsys, "tokens", "create", "--name", "ci", "--role", "trainer", "--model", "churn*"
    )
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token.startswith("shp_")  # alone on stdout: a pipe
    assert "will not be shown again" in err and token not in err
    code, listed, _ = cli(capsys, "tokens", "list")
    assert code == 0 and token_id(token) in listed and "trainer" in listed and "churn*" in listed
    code, as_json, _ = cli(capsys, "tokens", "list", "--json")
    rows = {row["id"]: row for row in json.loads(as_json)}
    assert rows[token_id(token)]["grants"] == ["model:churn*:EDIT"]
    assert rows[token_id(token)]["status"] == "active"
    assert all("hash" not in row and "token" not in row for row in rows.values())
    assert token not in listed + as_json
    database = (folder / ".shipyard").glob("shipyard.db*")
    assert all(token.encode() not in path.read_bytes() for path in database)


def test_create_refuses_a_scope_outside_the_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    _initialised(tmp_path / "proj", monkeypatch, capsys)
    code, out, err = cli(
        capsys, "tokens", "create", "--name", "x", "--role", "viewer", "--scope", "models:train"
    )
    assert code == 6 and out == "" and "Traceback" not in err
    assert "does not allow the scope models:train" in err and "models:read" in err
    code, _, err = cli(
        capsys, "tokens", "create", "--name", "x", "--role", "viewer", "--expires", "0d"
    )
    assert code == 2 and "not a duration" in err


def test_login_checks_the_token_and_writes_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    _initialised(tmp_path / "proj", monkeypatch, capsys)
    token = _create(capsys, "--name", "ana", "--role", "approver")
    own = tmp_path / "home" / ".config" / "shipyard" / "credentials.json"
    monkeypatch.setenv("SHIPYARD_SECURITY__CREDENTIALS", str(own))
    code, said = _login_with(monkeypatch, capsys, token[:-1] + "0")
    assert code == 6 and "checksum" in said and not own.exists()
    code, said = _login_with(monkeypatch, capsys, token)
    assert code == 0 and "Logged in as ana (role approver" in said and token not in said
    assert _mode(own) == 0o600 and _mode(own.parent) == 0o700
    assert [entry["token"] for entry in _saved().values()] == [token]
    code, out, _ = cli(capsys, "whoami", "--json")
    who = json.loads(out)
    assert (who["name"], who["role"], who["via"]) == ("ana", "approver", "token")
    assert who["token_id"] == token_id(token) and who["expires_at"]
    assert "models:approve" in who["scopes"] and "models:deploy" not in who["scopes"]
    code, out, _ = cli(capsys, "logout")
    assert code == 0 and "Forgot the token" in out and _saved() == {}
    assert "No token was saved" in cli(capsys, "logout")[1]


def test_revoke_and_rotate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    _initialised(tmp_path / "proj", monkeypatch, capsys)
    first = _create(capsys, "--name", "bot", "--role", "viewer")
    code, out, err = cli(capsys, "tokens", "rotate", token_id(first), "--overlap", "1h")
    assert code == 0, err
    second = out.strip()
    assert second.startswith("shp_") and second != first and "valid for 1h" in err
    monkeypatch.setenv("SHIPYARD_TOKEN", first)  # inside the overlap: still valid
    assert json.loads(cli(capsys, "whoami", "--json")[1])["token_id"] == token_id(first)
    monkeypatch.delenv("SHIPYARD_TOKEN")
    code, out, _ = cli(capsys, "tokens", "revoke", token_id(first))
    assert code == 0 and "revoked" in out
    monkeypatch.setenv("SHIPYARD_TOKEN", first)
    code, _, err = cli(capsys, "whoami")
    assert code == 6 and "was revoked" in err and first not in err
    monkeypatch.setenv("SHIPYARD_TOKEN", second)
    assert cli(capsys, "whoami")[0] == 0
    code, _, err = cli(capsys, "tokens", "revoke", "nosuchtoken0")
    assert code == 6 and "lacks the scope tokens:admin" in err  # a viewer may not
    monkeypatch.delenv("SHIPYARD_TOKEN")
    code, _, err = cli(capsys, "tokens", "revoke", "nosuchtoken0")
    assert code == 3 and "no token 'nosuchtoken0'" in err


def test_shipyard_user_does_not_change_who_acts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    _initialised(tmp_path / "proj", monkeypatch, capsys)
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    code, out, err = cli(capsys, "whoami", "--json")
    assert code == 0 and json.loads(out)["name"] == "tester"
    assert "SHIPYARD_USER is ignored" in err


def test_a_shared_database_refuses_commands_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture, postgres_url: str
) -> None:
    _project(tmp_path / "proj", monkeypatch, postgres_url)
    code, out, err = cli(capsys, "init")  # a database with no token: its first admin
    assert code == 0 and "Admin token for tester saved" in out, err
    (entry,) = _saved().values()
    admin = entry["token"]
    assert database_key(postgres_url) in _saved()

    monkeypatch.setenv("SHIPYARD_SECURITY__CREDENTIALS", str(tmp_path / "other" / "c.json"))
    for command in (["whoami"], ["events"], ["tokens", "list"]):
        code, out, err = cli(capsys, *command)
        assert code == 6 and out == "", command
        assert "This project's database is shared: commands need a token." in err
        assert "shipyard login" in err and "SHIPYARD_TOKEN" in err
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    assert cli(capsys, "whoami")[0] == 6  # naming someone is not a credential

    monkeypatch.setenv("SHIPYARD_TOKEN", admin)
    code, out, err = cli(capsys, "whoami", "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == "tester" and json.loads(out)["via"] == "token"
    assert cli(capsys, "events")[0] == 0
    deployer = _create(capsys, "--name", "cd", "--role", "deployer")
    monkeypatch.setenv("SHIPYARD_TOKEN", deployer)
    code, _, err = cli(capsys, "tokens", "create", "--name", "y", "--role", "admin")
    assert code == 6 and "lacks the scope tokens:admin" in err
    monkeypatch.setenv("SHIPYARD_TOKEN", "shp_" + "x" * 50)
    code, _, err = cli(capsys, "whoami")
    assert code == 6 and "checksum" in err

    monkeypatch.delenv("SHIPYARD_TOKEN")
    code, out, _ = cli(capsys, "init")  # a second person: tokens exist, so no new admin
    assert code == 0 and "shipyard login" in out and not (tmp_path / "other" / "c.json").exists()
    monkeypatch.setenv("SHIPYARD_SECURITY__REQUIRE_TOKEN", "never")  # a team's explicit choice
    code, out, _ = cli(capsys, "whoami", "--json")
    assert code == 0 and json.loads(out)["via"] == "os-user"
    assert not (tmp_path / "other" / "c.json").exists()  # no token made on a shared database


def test_resolve_principal_reads_only_the_environ_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    folder = _initialised(tmp_path / "proj", monkeypatch, capsys)
    token = _create(capsys, "--name", "ci", "--role", "viewer")
    config = load_config(folder / "shipyard.yaml")
    by_token = resolve_principal(config, {"SHIPYARD_TOKEN": token, "LOGNAME": "bob"})
    assert (by_token.name, by_token.via, by_token.token_id) == ("ci", "token", token_id(token))
    saved = resolve_principal(config, {"LOGNAME": "bob"})  # the token init saved
    assert (saved.name, saved.via) == ("tester", "token")
    monkeypatch.setenv("SHIPYARD_SECURITY__CREDENTIALS", str(tmp_path / "none.json"))
    laptop = resolve_principal(load_config(folder / "shipyard.yaml"), {"LOGNAME": "bob"})
    assert (laptop.name, laptop.via, laptop.role) == ("bob", "os-user", "admin")


def test_a_project_from_before_tokens_gets_its_admin_token_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    folder = _project(tmp_path / "proj", monkeypatch)
    (folder / ".shipyard").mkdir()
    Store(f"sqlite:///{folder}/.shipyard/shipyard.db", actor="someone").close()  # no token
    code, out, err = cli(capsys, "whoami", "--json")
    assert code == 0 and json.loads(out)["via"] == "os-user"
    assert "Created an admin token for tester" in err
    (entry,) = _saved().values()
    assert entry["token"] not in err
    code, out, err = cli(capsys, "whoami", "--json")
    assert json.loads(out)["token_id"] == entry["id"] and err == ""  # said once


def test_an_expired_laptop_token_is_renewed_but_a_revoked_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    folder = _initialised(tmp_path / "proj", monkeypatch, capsys)
    (first,) = _saved().values()
    store = Store(f"sqlite:///{folder}/.shipyard/shipyard.db", actor="test")
    with store.session() as session:
        session.execute(
            update(TokenRow)
            .where(TokenRow.id == first["id"])
            .values(expires_at=TokenRow.created_at)
        )
    store.close()
    code, out, err = cli(capsys, "whoami", "--json")
    assert code == 0 and "Created an admin token for tester" in err
    (second,) = _saved().values()
    assert second["id"] != first["id"]
    assert cli(capsys, "tokens", "revoke", second["id"])[0] == 0
    code, out, err = cli(capsys, "whoami", "--json")
    assert code == 0 and json.loads(out)["via"] == "os-user"
    assert "was refused" in err and "revoked" in err and "shipyard logout" in err
    assert _saved()[next(iter(_saved()))]["id"] == second["id"]  # left as it was


def test_a_bad_explicit_token_is_refused_even_on_a_laptop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    _initialised(tmp_path / "proj", monkeypatch, capsys)
    monkeypatch.setenv("SHIPYARD_TOKEN", "not-a-token")
    code, _, err = cli(capsys, "whoami")
    assert code == 6 and "malformed" in err and "not-a-token" not in err


def test_require_token_always_holds_on_a_laptop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    _project(tmp_path / "proj", monkeypatch)
    monkeypatch.setenv("SHIPYARD_SECURITY__REQUIRE_TOKEN", "always")
    code, _, err = cli(capsys, "whoami")
    assert code == 6 and "require_token: always" in err
    assert cli(capsys, "init")[0] == 0  # init signs the OS user in
    assert json.loads(cli(capsys, "whoami", "--json")[1])["via"] == "token"


def test_a_credentials_file_others_can_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    _initialised(tmp_path / "proj", monkeypatch, capsys)
    _credentials().chmod(0o644)
    code, _, err = cli(capsys, "whoami")
    assert code == 2 and "may be read by other users" in err and "chmod 600" in err
