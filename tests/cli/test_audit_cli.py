"""``shipyard audit verify | checkpoint | log | proof``, and key changes in the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from shipyard.cli import run
from shipyard.config import load_config
from shipyard.store import EventKind, Store
from shipyard.store.merkle import verify_inclusion

Capture = pytest.CaptureFixture[str]


def cli(capsys: Capture, *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(initialised_example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(initialised_example)
    monkeypatch.setenv("SHIPYARD_SIGNING__PRIVATE_KEY", str(tmp_path / "keys" / "k.pem"))
    return initialised_example


def _log(capsys: Capture, *args: str) -> list[dict[str, object]]:
    code, out, err = cli(capsys, "audit", "log", "--json", *args)
    assert code == 0, err
    return list(json.loads(out))


def test_keys_checkpoints_verify_log_and_proof(project: Path, capsys: Capture) -> None:
    assert cli(capsys, "keys", "init")[0] == 0
    (created,) = _log(capsys, "--kind", "keys.created")
    fingerprint = str(created["payload"]["fingerprint"])  # type: ignore[index]
    assert created["after"] == fingerprint.removeprefix("sha256:") and created["before"] is None
    assert cli(capsys, "keys", "init", "--force")[0] == 0
    (replaced,) = _log(capsys, "--kind", "keys.replaced")
    assert replaced["before"] == created["after"] and replaced["after"] != created["after"]

    code, out, err = cli(capsys, "audit", "checkpoint")
    assert code == 0, err
    assert "checkpoint of" in out and "Copy it off this host" in out
    files = sorted((project / ".shipyard" / "audit").glob("checkpoint-*.json"))
    assert len(files) == 1 and str(files[0]) in out.replace("\n", "")

    code, out, err = cli(capsys, "audit", "verify")
    assert code == 0, err
    size = len(_log(capsys, "--limit", "1000"))
    assert f"verified: {size} leaves, root " in out and ", 1 checkpoint" in out
    code, out, _ = cli(capsys, "audit", "verify", "--checkpoint", str(files[0]), "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["proofs"][0]["new"] == "head"

    code, out, _ = cli(capsys, "audit", "proof", "2", "--json")
    proof = json.loads(out)
    assert code == 0 and (proof["seq"], proof["index"], proof["tree_size"]) == (2, 1, size)
    path = [bytes.fromhex(node) for node in proof["path"]]
    leaf, root = bytes.fromhex(proof["leaf_hash"]), bytes.fromhex(proof["root"])
    assert verify_inclusion(leaf, 1, size, path, root)
    code, out, _ = cli(capsys, "audit", "proof", "2")
    assert code == 0 and "the path leads from the leaf to the root" in out
    code, _, err = cli(capsys, "audit", "proof", str(size + 5))
    assert code == 3 and f"holds seq 1 to {size}" in err and "Traceback" not in err

    mine = _log(capsys, "--actor", "tester", "--since", "1h")
    assert mine and {event["actor"] for event in mine} == {"tester"}
    seqs = [int(str(event["seq"])) for event in mine]
    assert seqs == sorted(seqs, reverse=True)
    code, out, _ = cli(capsys, "audit", "log", "--kind", "audit.checkpoint")
    assert code == 0 and "audit.checkpoint" in out


def test_a_tampered_log_exits_7_naming_the_first_bad_row(project: Path, capsys: Capture) -> None:
    store = Store(load_config(project / "shipyard.yaml", environ={}).db_url, actor="tester")
    for subject in ("run:a", "run:b", "run:c"):
        store.record(EventKind.RUN_FINISHED, subject, {})
    seq = _log(capsys, "--subject", "run:b")[0]["seq"]
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE shipyard_events SET actor = 'mallory' WHERE seq = :seq"), {"seq": seq}
        )
    store.close()
    code, out, err = cli(capsys, "audit", "verify")
    assert code == 7
    assert f"row seq {seq} (event id" in err and "was edited" in err and "Traceback" not in err
    assert "[edited]" in out and "Restore the database" in err
    code, out, _ = cli(capsys, "audit", "verify", "--json")
    report = json.loads(out)
    assert code == 7 and report["ok"] is False and report["first"]["seq"] == seq
    assert any(f["problem"] == "edited" for f in report["findings"])


def test_reading_needs_audit_read_and_a_checkpoint_audit_write(
    project: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(capsys, "keys", "init")[0] == 0
    code, out, err = cli(capsys, "tokens", "create", "--name", "val", "--role", "viewer")
    assert code == 0, err
    monkeypatch.setenv("SHIPYARD_TOKEN", out.strip().splitlines()[-1].strip())
    code, out, _ = cli(capsys, "audit", "verify")
    assert code == 0 and "verified:" in out
    code, _, err = cli(capsys, "audit", "checkpoint")
    assert code == 6 and "audit:write" in err
