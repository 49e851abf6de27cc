"""Retention per PII tag: ``shipyard logs prune`` and the agent remove what is past its time,
and every prune is an audited event naming what went.

Real Parquet logs and raw store on disk, a real SQLite store, the CLI with real tokens.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from shipyard.access import Principal, role_named
from shipyard.agent.control_loop import Agent
from shipyard.cli import run
from shipyard.config import Config, load_config
from shipyard.logs.pii import PiiPolicy, read_raw_pii
from shipyard.logs.prune import prune_logs, record_prune
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.project import Project
from shipyard.store.event_kinds import EventKind
from tests.support import project_of, token_for, token_id

Capture = pytest.CaptureFixture[str]
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)  # past 30 days, within 180
ANCIENT = NOW - timedelta(days=400)  # past every retention
ADMIN = Principal("root", "test", "admin", role_named("admin").scopes)


def batch(request_id: str, at: datetime) -> PredictionBatch:
    matrix = np.array([["ada@example.com", 94107, 31]], dtype=object)
    return PredictionBatch(
        request_id, at, "churn", "1", "live", ("email", "zip", "age"), matrix,
        np.array([1]), None, 1.0, "ok",
    )  # fmt: skip


def with_pii(folder: Path) -> Config:
    """The example project with email pii (30 days), zip a quasi-identifier (180 days)."""
    settings = folder / "shipyard.yaml"
    document = yaml.safe_load(settings.read_text(encoding="utf-8"))
    document["pii"] = {
        "columns": {"email": "pii", "zip": "quasi_identifier"},
        "retain_raw": True,
        "retention_days": {"pii": 30, "quasi_identifier": 180},
    }
    settings.write_text(yaml.safe_dump(document), encoding="utf-8")
    return load_config(settings)


def write_days(config: Config) -> Path:
    logs = config.resolve(config.serving.logs)
    with PredictionLogWriter(logs, pii=PiiPolicy.from_config(config)) as writer:
        for request_id, at in (("new", NOW), ("old", OLD), ("ancient", ANCIENT)):
            writer.log(batch(request_id, at))
    return logs


def inputs_by_id(logs: Path) -> dict[str, set[str]]:
    """Each request's input fields, as its own file holds them (not as readers union them)."""
    found: dict[str, set[str]] = {}
    for path in logs.rglob("*.parquet"):
        table = pq.read_table(path)
        fields = {field.name for field in table.schema.field("inputs").type}
        for request_id in table.column("request_id").to_pylist():
            found[request_id] = fields
    return found


def cli_project(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The example project at ``folder`` with pii and logged days, as the CLI run there sees it."""
    config = with_pii(folder)
    write_days(config)
    monkeypatch.chdir(folder)
    return project_of(config)


def test_prune_removes_each_tag_past_its_retention(initialised_example: Path) -> None:
    config = with_pii(initialised_example)
    logs = write_days(config)
    policy = PiiPolicy.from_config(config)
    assert {r["request_id"] for r in read_raw_pii(policy, "churn", ADMIN).to_pylist()} == {
        "new",
        "old",
        "ancient",
    }
    dry = prune_logs(policy, logs, dry_run=True)
    assert dry.changed and inputs_by_id(logs)["ancient"] == {"email", "zip", "age"}

    report = prune_logs(policy, logs)
    raw = {r["request_id"]: r for r in read_raw_pii(policy, "churn", ADMIN).to_pylist()}
    assert raw["new"]["email"] == "ada@example.com"
    assert raw["old"]["email"] is None and raw["old"]["zip"] == 94107  # pii gone, zip kept
    assert "ancient" not in raw
    kept = inputs_by_id(logs)
    assert kept["new"] == {"email", "zip", "age"}
    assert kept["old"] == {"zip", "age"}
    assert kept["ancient"] == {"age"}  # the rest of the row stays for monitoring
    read = {row["request_id"]: row["inputs"] for row in query_log(logs, "churn").to_pylist()}
    assert read["old"]["email"] is None and read["ancient"]["age"] == 31
    assert all(not p.name.endswith(".tmp") for p in logs.rglob("*"))
    assert report.cutoffs == {
        "pii": (NOW - timedelta(days=30)).date().isoformat(),
        "quasi_identifier": (NOW - timedelta(days=180)).date().isoformat(),
    }
    described = {(item.where, item.tag) for item in report.pruned}
    assert described == {("raw", "pii"), ("raw", "quasi_identifier"), ("log", "pii"),
                         ("log", "quasi_identifier")}  # fmt: skip
    assert not prune_logs(policy, logs).changed  # done once

    project = project_of(config)
    record_prune(project.store, report)
    (event,) = project.store.events(kind=EventKind.LOGS_PRUNED.value)
    assert event.subject == "logs:pii" and event.payload["rows"] == report.to_dict()["rows"]
    assert {(p["where"], p["tag"], p["model"]) for p in event.payload["pruned"]} >= {
        ("raw", "pii", "churn")
    }
    record_prune(project.store, prune_logs(policy, logs))  # nothing pruned: no event
    assert len(project.store.events(kind=EventKind.LOGS_PRUNED.value)) == 1
    project.close()


def test_untagged_days_and_files_without_tagged_columns_stay(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with PredictionLogWriter(logs) as writer:  # no policy: nothing tagged
        writer.log(batch("plain", ANCIENT))
    before = {p: p.read_bytes() for p in logs.rglob("*.parquet")}
    policy = PiiPolicy(columns={"ssn": "pii"}, retention_days={"pii": 1})
    assert not prune_logs(policy, logs).changed
    assert {p: p.read_bytes() for p in logs.rglob("*.parquet")} == before
    (path,) = before
    assert pq.read_table(path).num_rows == 1


def test_shipyard_logs_prune_needs_logs_prune_and_is_audited(
    initialised_example: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    project = cli_project(initialised_example, monkeypatch)
    viewer = token_for(project, "viewer", name="vic")
    operator = token_for(project, "operator", name="ops")

    monkeypatch.setenv("SHIPYARD_TOKEN", viewer)
    assert run(["logs", "prune"]) == 6
    assert "logs:prune" in capsys.readouterr().err
    assert project.store.events(kind=EventKind.LOGS_PRUNED.value) == []

    monkeypatch.setenv("SHIPYARD_TOKEN", operator)
    assert run(["logs", "prune", "--dry-run"]) == 0
    assert "Would remove raw pii values of churn" in capsys.readouterr().out
    assert project.store.events(kind=EventKind.LOGS_PRUNED.value) == []
    assert run(["logs", "prune", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows"] > 0 and not printed["dry_run"]
    (event,) = project.store.events(kind=EventKind.LOGS_PRUNED.value)
    assert event.actor == "ops" and event.token_id == token_id(operator)
    assert event.payload == printed
    assert run(["logs", "prune"]) == 0
    assert "Nothing is past its retention" in capsys.readouterr().out
    project.close()


def test_logs_query_never_shows_raw_values_and_raw_pii_needs_pii_read(
    initialised_example: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    project = cli_project(initialised_example, monkeypatch)
    operator = token_for(project, "operator", name="ops")
    admin = token_for(project, "admin", name="dpo")

    monkeypatch.setenv("SHIPYARD_TOKEN", operator)
    assert run(["logs", "query", "churn", "--json"]) == 0
    shown = capsys.readouterr().out
    assert "ada@example.com" not in shown and "94107" not in shown and len(json.loads(shown)) == 3
    assert run(["logs", "query", "churn", "--raw-pii"]) == 6
    assert "pii:read" in capsys.readouterr().err
    assert project.store.events(kind=EventKind.PII_RAW_READ.value) == []

    monkeypatch.setenv("SHIPYARD_TOKEN", admin)
    assert run(["logs", "query", "churn", "--raw-pii", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["email"] for row in rows} == {"ada@example.com"}
    (event,) = project.store.events(kind=EventKind.PII_RAW_READ.value)
    assert event.actor == "dpo" and event.payload["rows"] == 3
    project.close()


def test_the_agent_enforces_retention_as_itself(initialised_example: Path) -> None:
    config = with_pii(initialised_example)
    logs = write_days(config)
    agent = Agent(Project(config, Principal("agent", "service", "operator",
                                            role_named("operator").scopes)))  # fmt: skip
    actions = agent.tick().actions
    assert any(a.startswith("pruned raw pii values of churn") for a in actions), actions
    assert inputs_by_id(logs)["old"] == {"zip", "age"}
    (event,) = agent.store.events(kind=EventKind.LOGS_PRUNED.value)
    assert event.actor == "agent" and event.role == "operator"
    agent.tick()  # within the hour: not again
    assert len(agent.store.events(kind=EventKind.LOGS_PRUNED.value)) == 1
    agent.project.close()
