"""Experiments as stored, on SQLite and PostgreSQL: one row, its history, audited changes
that move traffic in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.errors import NotFoundError
from shipyard.store import EventKind, ExperimentRow, Store
from shipyard.store.audit_leaf import row_digest, row_values
from shipyard.store.experiments import (
    active_experiment,
    change_experiment,
    find_experiment,
    insert_experiment,
    list_experiments,
)
from shipyard.store.traffic import TrafficSettings, read_traffic

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store(f"sqlite:///{tmp_path}/control.db", actor="tester")
    return Store(request.getfixturevalue("postgres_url"), actor="tester")


def _row(name: str) -> ExperimentRow:
    return ExperimentRow(
        model="churn",
        name=name,
        arms=["3", "4"],
        split=[0.5, 0.5],
        metric="accuracy",
        source="labels",
        min_effect=0.02,
        alpha=0.05,
        power=0.8,
        state="running",
        winner=None,
        decision={"direction": "higher_is_better"},
        history=[],
        started_by="tester",
        created_at=T0,
        updated_at=T0,
    )


def test_an_experiment_is_stored_changed_and_audited(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no experiment"):
        find_experiment(store, "churn")
    started = insert_experiment(
        store, _row("e1"), TrafficSettings(challengers={"4": 0.5}), reason="started"
    )
    assert active_experiment(store, "churn") == started
    assert read_traffic(store, "churn")[1].challengers == {"4": 0.5}
    event = store.events(kind="experiment.started")[0]
    assert event.subject == "model:churn/experiment:e1" and event.payload["arms"] == ["3", "4"]

    decided = change_experiment(
        store,
        started.id,
        EventKind.EXPERIMENT_DECIDED,
        state="decided",
        reason="arm 4 is better",
        evidence={"means": {"3": 0.8, "4": 0.9}},
        winner="4",
        decision={"outcome": "winner"},
    )
    assert (decided.state, decided.winner, decided.decision) == (
        "decided",
        "4",
        {"outcome": "winner"},
    )
    assert read_traffic(store, "churn")[1].challengers == {"4": 0.5}  # traffic untouched
    stopped = change_experiment(
        store,
        started.id,
        EventKind.EXPERIMENT_STOPPED,
        state="stopped",
        reason="by hand",
        traffic=TrafficSettings(),
    )
    assert not stopped.active and active_experiment(store, "churn") is None
    assert read_traffic(store, "churn")[1].empty
    assert [h["to"] for h in stopped.history] == ["decided", "stopped"]
    # Each event's leaf vouches for the row as it was before and after the change.
    first, second = (
        store.events(kind="experiment.decided")[0],
        store.events(kind="experiment.stopped")[0],
    )
    assert second.before == first.after
    with store.session() as session:
        row = session.get(ExperimentRow, started.id)
        assert row is not None and second.after == row_digest(row_values(row))
    assert find_experiment(store, "churn").name == "e1"  # the latest, when none is active
    insert_experiment(store, _row("e2"), TrafficSettings(challengers={"4": 0.1}), reason="again")
    assert find_experiment(store, "churn").name == "e2"
    assert find_experiment(store, "churn", "e1").state == "stopped"
    assert [e.name for e in list_experiments(store)] == ["e2", "e1"]
    assert [e.name for e in list_experiments(store, active_only=True)] == ["e2"]
    assert list_experiments(store, model="other") == []
