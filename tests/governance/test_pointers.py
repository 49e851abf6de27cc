"""Trusted pointers: the recorded alias moves, and the MLflow aliases that drift from them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.config import Config
from shipyard.errors import NotFoundError
from shipyard.governance.pointers import AliasDrift, alias_drift, trusted_version
from shipyard.project import Project
from shipyard.registry.aliases import move_alias
from shipyard.registry.pointers import record_drift, registry_drift, trusted_ref
from shipyard.registry.refs import ModelRef
from tests.support import TrainedExamples, project_of


@pytest.fixture
def project(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """churn/1 and churn/2, with churn/1 promoted to champion through Shipyard."""
    config: Config = trained_examples.copy(tmp_path_factory.mktemp("pointers") / "churn", {}, {})
    project = project_of(config)
    move_alias(project.store, project.client, "churn", "champion", "1", action="promote")
    yield project
    project.close()


def test_the_trusted_pointer_is_the_latest_recorded_move(project: Project) -> None:
    store, client = project.store, project.client
    assert trusted_version(store, "churn", "champion") == "1"
    assert trusted_version(store, "churn", "challenger") is None
    assert trusted_version(store, "nobody", "champion") is None

    move_alias(store, client, "churn", "challenger", "2", action="promote")
    move_alias(store, client, "churn", "champion", "2", action="promote")
    move_alias(store, client, "churn", "challenger", None, action="promote")
    assert trusted_version(store, "churn", "champion") == "2"
    assert trusted_version(store, "churn", "challenger") is None
    assert alias_drift(project) == []  # every move went through Shipyard

    # A plain MLflow move changes nothing Shipyard trusts.
    client.set_registered_model_alias("churn", "champion", "1")
    assert trusted_version(store, "churn", "champion") == "2"


def test_alias_drift_lists_every_mismatch(project: Project) -> None:
    client = project.client
    client.set_registered_model_alias("churn", "champion", "2")  # moved outside Shipyard
    client.set_registered_model_alias("churn", "staging", "1")  # never recorded at all

    assert alias_drift(project) == [
        AliasDrift("churn", "champion", recorded_version="1", mlflow_version="2"),
        AliasDrift("churn", "staging", recorded_version=None, mlflow_version="1"),
    ]
    drift = alias_drift(project)[0]
    assert drift.summary == (
        "churn@champion: MLflow points at 2, but Shipyard recorded 1, which servers keep serving"
    )
    assert drift.to_dict() == {
        "model": "churn",
        "alias": "champion",
        "recorded_version": "1",
        "mlflow_version": "2",
    }

    # Deleting MLflow's alias is drift too; a Shipyard move of the alias ends it.
    client.delete_registered_model_alias("churn", "staging")
    client.delete_registered_model_alias("churn", "champion")
    assert alias_drift(project) == [AliasDrift("churn", "champion", "1", None)]
    move_alias(project.store, client, "churn", "champion", "2", action="promote")
    assert registry_drift(project.store, client) == []


def test_each_drift_is_recorded_once_and_its_end_too(project: Project) -> None:
    store = project.store
    drift = AliasDrift("churn", "champion", "1", "2")
    first = record_drift(store, "churn", [drift])
    again = record_drift(store, "churn", [drift])  # another server, or the agent
    assert first == again
    assert [e.id for e in store.events(kind="registry.drift")] == [first[drift]]

    other = AliasDrift("churn", "champion", "1", "3")  # moved once more: a new drift
    record_drift(store, "churn", [other])
    record_drift(store, "churn", [])
    record_drift(store, "churn", [])
    events = store.events(kind="registry.drift")
    assert [e.payload["mlflow_version"] for e in events] == ["3", "2"]
    assert events[0].subject == "model:churn@champion"
    (resolved,) = store.events(kind="registry.drift_resolved")
    assert resolved.payload == {"model": "churn", "alias": "champion", "drift_event": events[0].id}


def test_servers_resolve_aliases_through_the_records(project: Project) -> None:
    store, client = project.store, project.client
    client.set_registered_model_alias("churn", "champion", "2")
    assert trusted_ref(store, client, ModelRef("churn")) == ModelRef("churn", version="1")
    assert trusted_ref(store, client, ModelRef("churn", alias="champion")).version == "1"
    assert trusted_ref(store, client, ModelRef("churn", version="2")).version == "2"

    client.set_registered_model_alias("churn", "challenger", "2")
    with pytest.raises(NotFoundError, match=r"MLflow's alias points at 2, set outside Shipyard"):
        trusted_ref(store, client, ModelRef("churn", alias="challenger"))


def test_alias_drift_needs_audit_read(project: Project) -> None:
    from shipyard.errors import Forbidden
    from shipyard.project import Principal

    nobody = Project(project.config, Principal("nobody", "test", scopes=frozenset()))
    with pytest.raises(Forbidden):
        alias_drift(nobody)
