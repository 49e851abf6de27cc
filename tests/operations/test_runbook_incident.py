"""The runbook and the postmortem draft, written from a real history; and the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shipyard.config import Config
from shipyard.errors import ConfigError, NotFoundError
from shipyard.moments import as_utc
from shipyard.operations import write_incident, write_runbook
from shipyard.operations.incident import incident_report
from shipyard.registry import Tracking
from shipyard.registry.aliases import rollback
from shipyard.store import Store
from tests.support.operations import SECRETS, Built, build_history


@pytest.fixture
def lived(two_versions: tuple[Config, Store, Tracking]) -> Iterator[Built]:
    config, _store, _tracking = two_versions
    built = build_history(config.root)
    yield built
    built.project.close()


def _shipyard(root: Path, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def _no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def test_the_runbook_names_owner_routes_rules_and_commands(lived: Built) -> None:
    text = write_runbook(lived.project, "churn")
    assert "# On-call runbook: churn" in text
    assert "- Owner: growth-analytics" in text and "- Team: growth" in text
    assert "| 1 | pagerduty | inspect | http://127.0.0.1:9/v2/enqueue | *** | - |" in text
    assert "https://hooks.slack.com/***" in text
    assert "http://ops:***@127.0.0.1:9/hook" in text and "Authorization: ***" in text
    _no_secret(text)
    for command in (
        'shipyard rollout pause churn --reason "<why>"',
        'shipyard rollback churn --reason "<why>"',
        "shipyard rollout status churn",
        "shipyard monitor run churn --no-alerts",
        "shipyard audit verify",
    ):
        assert command in text
    # The monitor's bands and every alerting rule shipped in deploy/prometheus/alerts.yaml.
    assert "| categorical feature (PSI) | 0.1 | 0.25 | 0.4 |" in text
    import yaml

    from shipyard.operations.runbook import find_rules

    rules = find_rules(lived.config.root)
    assert rules is not None
    shipped = yaml.safe_load(rules.read_text())["groups"]
    names = [r["alert"] for g in shipped for r in g["rules"] if "alert" in r]
    assert len(names) >= 10
    for name in names:
        assert f"### {name} (" in text
    assert "- Champion when this was written: 1" in text  # after the rollback by hand


def test_an_unknown_model_is_refused_with_the_models_there_are(lived: Built) -> None:
    with pytest.raises(NotFoundError, match="no model 'fraud'") as caught:
        write_runbook(lived.project, "fraud")
    assert caught.value.hint == "Models: churn."


def test_the_postmortem_draft_is_filled_from_the_events(lived: Built) -> None:
    store = lived.project.store
    first = min(as_utc(e.at) for e in store.events(limit=1000))
    rollback(store, lived.project.client, "churn", to="2", reason="<script>x</script>|pipe")
    report = incident_report(lived.project, "churn", since=first - timedelta(seconds=1))
    (alert,) = [a for a in report.alerts if a.kind == "alert.opened"]
    assert alert.subject == "alert:churn/feature:tenure" and "retrain on version 1" in alert.detail
    kinds = [d.kind for d in report.decisions]
    assert "model_version.approved" in kinds and "alias.promote" in kinds
    assert [r.kind for r in report.rollbacks] == [
        "rollout.rolled_back",
        "alias.rollback",
        "alias.rollback",
    ]
    assert [i.kind for i in report.incidents] == ["drift", "guardrail"]
    assert report.mttd_seconds is not None and report.mttr_seconds is not None
    text = report.to_markdown()
    assert "bob (approver)" in text  # the approval, with who gave it and their role
    assert "| rollout.rolled_back |" in text and "error rate up" in text
    assert "- MTTD: " in text and "- MTTD: unknown" not in text
    for section in ("## Cause", "## Impact", "## Action items", "## Timeline"):
        assert section in text
    assert "&lt;script>x&lt;/script>\\|pipe" in text and "<script>" not in text
    _no_secret(text)
    assert write_incident(lived.project, "churn", first).startswith("# Postmortem (draft): churn")


def test_a_window_that_ends_before_it_begins_is_refused(lived: Built) -> None:
    first = min(as_utc(e.at) for e in lived.project.store.events(limit=1000))
    with pytest.raises(ConfigError, match="is not after --since"):
        incident_report(lived.project, "churn", since=first, until=first - timedelta(hours=1))
    quiet = incident_report(lived.project, "churn", since=first - timedelta(days=3),
                            until=first - timedelta(days=2))  # fmt: skip
    assert quiet.timeline == () and quiet.mttd_seconds is None
    assert "No alert in the window." in quiet.to_markdown()


def test_the_commands_answer_in_json_and_in_a_pipe(lived: Built, tmp_path: Path) -> None:
    root = lived.config.root
    code, out, err = _shipyard(root, "maturity", "--json", "--period", "1d")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["maturity"]["level"] == 2 and len(answer["maturity"]["characteristics"]) == 7
    metrics = {m["key"]: m for m in answer["roi"]["metrics"]}
    assert set(metrics) == {
        "iteration_time", "deployment_frequency", "change_failure_rate", "mttd", "mttr",
        "retraining_cost", "retrain_ship_rate",
    }  # fmt: skip
    assert metrics["retrain_ship_rate"]["value"] == 1.0 and answer["roi"]["period"] == "1d"
    code, out, err = _shipyard(root, "maturity")
    assert code == 0, err
    assert "churn-example: level 2" in out and "Roll-outs are staged" in out
    assert "\x1b[" not in out  # plain in a pipe

    runbook = tmp_path / "out" / "runbook.md"
    code, out, err = _shipyard(root, "runbook", "churn", "--out", str(runbook), "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["out"] == str(runbook) and answer["markdown"] == runbook.read_text()
    _no_secret(out)

    code, out, err = _shipyard(root, "incident", "churn", "--since", "1h", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["model"] == "churn" and answer["mttd_seconds"] is not None
    assert [a["kind"] for a in answer["alerts"]] == ["alert.opened"]
    assert answer["markdown"].startswith("# Postmortem (draft): churn")
    _no_secret(out)

    code, out, err = _shipyard(root, "incident", "churn", "--since", "last tuesday")
    assert code != 0 and "neither an ISO time nor a duration" in err
    assert "Traceback" not in err
    code, out, err = _shipyard(root, "runbook", "fraud")
    assert code == 3 and "no model 'fraud'" in err and "Traceback" not in err
