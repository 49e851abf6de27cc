"""The test-support helpers do what the suite relies on them for."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import PD_KEY, AlertReceiver, TrainedExamples, call, project_of, wait_for


def test_copies_of_a_trained_workspace_share_no_path_and_no_id(
    trained_examples: TrainedExamples, tmp_path: Path
) -> None:
    template = trained_examples.template({})
    copies = [trained_examples.copy(tmp_path / name, {}) for name in ("a", "b")]
    run_ids = []
    for config in copies:
        client = project_of(config).client
        run_id = str(client.get_model_version("churn", "1").run_id)
        run_ids.append(run_id)
        # MLflow caches each run's artifact location by id: a shared id would send this
        # write to whichever workspace MLflow saw first.
        client.log_text(run_id, config.root.name, "probe.txt")
        written = list(config.root.rglob("probe.txt"))
        assert [p.read_text() for p in written] == [config.root.name]
        with sqlite3.connect(config.root / ".shipyard" / "shipyard.db") as database:
            uris = [row[0] for row in database.execute("SELECT artifact_uri FROM runs")]
        assert uris and all(str(config.root) in uri for uri in uris), uris
        for path in (config.root / ".shipyard").rglob("*"):
            if path.is_file():
                assert str(template).encode() not in path.read_bytes(), path
    assert len(set(run_ids)) == 2
    assert not list(template.rglob("probe.txt"))


def test_wait_for_returns_what_held_and_names_what_never_did() -> None:
    answers = iter([0, None, "here"])
    assert wait_for(lambda: next(answers), what="an answer", every=0) == "here"
    with pytest.raises(AssertionError, match=r"waited 0\.05 s for the moon"):
        wait_for(lambda: False, what="the moon", timeout=0.05)


def test_the_pagerduty_receiver_answers_as_pagerduty_does(
    alert_receiver: Callable[..., AlertReceiver],
) -> None:
    receiver = alert_receiver("pagerduty", failures=(503,))
    event = {
        "routing_key": PD_KEY,
        "event_action": "trigger",
        "dedup_key": "shipyard/churn/x",
        "payload": {"summary": "drift", "source": "shipyard", "severity": "warning"},
    }
    headers = {"Content-Type": "application/json"}
    assert call(receiver.url, json.dumps(event).encode(), headers)[0] == 503
    assert call(receiver.url, json.dumps(event).encode(), headers)[0] == 202
    status, _, body = call(receiver.url, json.dumps(event | {"routing_key": "short"}).encode())
    assert status == 400 and "routing_key" in json.loads(body)["errors"][0]
    assert receiver.statuses == [503, 202, 400] and len(receiver.received) == 2
    receiver.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(receiver.url, data=b"{}", timeout=5)
