"""Trusted deployment pointers: the alias moves Shipyard recorded, and where MLflow disagrees.

A server follows the pointer Shipyard recorded, not MLflow's alias. Every authorised,
audited move (:func:`~shipyard.registry.aliases.move_alias`, behind promotion and
rollback) appends a row to ``shipyard_alias_moves``; the latest row of a model's alias
is its **trusted pointer**. MLflow's alias is kept in step for MLflow users, so anyone
with write access to MLflow can move it (``MlflowClient().set_registered_model_alias``,
or SQL). Such a move is **drift**: servers keep the trusted version, report the
mismatch, and a ``registry.drift`` event is recorded once per distinct drift.

    trusted_version(store, "churn", "champion")    # "2": what servers load
    model_drift(store, client, "churn")            # [AliasDrift(churn, champion, "2", "3")]

This module sits below serving, governance and the agent, which all read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from shipyard.errors import NotFoundError
from shipyard.jsonable import Record
from shipyard.registry.aliases import CHAMPION
from shipyard.registry.refs import ModelRef
from shipyard.store import AliasMoveRow, EventKind, Store
from shipyard.store.events import Event

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "AliasDrift",
    "mlflow_aliases",
    "model_drift",
    "record_drift",
    "recorded_pointers",
    "registry_drift",
    "trusted_ref",
    "trusted_version",
]

Pointer = tuple[str, str]  # (model, alias)
_PAGE = 200
_EVENTS = 200  # drift events read back per model to find each alias's latest


@dataclass(frozen=True)
class AliasDrift(Record):
    """One alias whose MLflow value is not the pointer Shipyard recorded.

    ``recorded_version`` is ``None`` when Shipyard never set the alias (or removed it);
    ``mlflow_version`` is ``None`` when MLflow has no such alias (any more).
    """

    model: str
    alias: str
    recorded_version: str | None
    mlflow_version: str | None

    @property
    def subject(self) -> str:
        """The event subject of the alias: ``model:<name>@<alias>``, as alias moves use."""
        return f"model:{self.model}@{self.alias}"

    @property
    def summary(self) -> str:
        """One line for people: what MLflow says, what Shipyard recorded."""
        said = f"points at {self.mlflow_version}" if self.mlflow_version else "has no such alias"
        kept = (
            f"Shipyard recorded {self.recorded_version}, which servers keep serving"
            if self.recorded_version
            else "Shipyard never recorded this move, so servers ignore it"
        )
        return f"{self.model}@{self.alias}: MLflow {said}, but {kept}"


def trusted_version(store: Store, model: str, alias: str) -> str | None:
    """The version ``model@alias`` points at by Shipyard's records; ``None`` if unset."""
    query = (
        select(AliasMoveRow.to_version)
        .where(AliasMoveRow.model == model, AliasMoveRow.alias == alias)
        .order_by(AliasMoveRow.id.desc())
        .limit(1)
    )
    with store.session() as session:
        return session.scalar(query)


def recorded_pointers(store: Store, model: str | None = None) -> dict[Pointer, str | None]:
    """Every recorded pointer (of ``model``, or of all models): its latest move's version."""
    latest = select(func.max(AliasMoveRow.id)).group_by(AliasMoveRow.model, AliasMoveRow.alias)
    if model is not None:
        latest = latest.where(AliasMoveRow.model == model)
    query = select(AliasMoveRow.model, AliasMoveRow.alias, AliasMoveRow.to_version).where(
        AliasMoveRow.id.in_(latest.scalar_subquery())
    )
    with store.session() as session:
        return {(row.model, row.alias): row.to_version for row in session.execute(query)}


def mlflow_aliases(client: MlflowClient, model: str | None = None) -> dict[Pointer, str]:
    """MLflow's aliases (of ``model``, or of every registered model and prompt) and versions.

    Prompts are registered models to MLflow 3, but its model searches leave them out: their
    labels (``support@production``) are read through the prompt API.
    """
    from mlflow.exceptions import MlflowException

    if model is not None:
        try:
            found = client.get_registered_model(model)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return _prompt_aliases(client, [model])
            raise
        return {(model, alias): str(v) for alias, v in (found.aliases or {}).items()}
    aliases: dict[Pointer, str] = {}
    token: str | None = None
    while True:
        page = client.search_registered_models(max_results=_PAGE, page_token=token)
        for registered in page:
            for alias, version in (registered.aliases or {}).items():
                aliases[(registered.name, alias)] = str(version)
        token = page.token
        if not token:
            break
    return {**aliases, **_prompt_aliases(client, _prompt_names(client))}


def _prompt_names(client: MlflowClient) -> list[str]:
    """The name of every prompt in MLflow's prompt registry."""
    names: list[str] = []
    token: str | None = None
    while True:
        page = client.search_prompts(max_results=_PAGE, page_token=token)
        names.extend(prompt.name for prompt in page)
        token = page.token
        if not token:
            return names


def _prompt_aliases(client: MlflowClient, names: list[str]) -> dict[Pointer, str]:
    """The labels of the prompts ``names`` (a name that is no prompt has none)."""
    from mlflow.exceptions import MlflowException

    found: dict[Pointer, str] = {}
    for name in names:
        try:
            # MLflow 3.17's version search leaves ``aliases`` empty; each version read fills it.
            numbers = [v.version for v in client.search_prompt_versions(name)]
            versions = [client.get_prompt_version(name, number) for number in numbers]
        except MlflowException:
            continue
        for version in versions:
            for alias in getattr(version, "aliases", None) or []:
                found[(name, alias)] = str(version.version)
    return found


def _compare(recorded: dict[Pointer, str | None], mlflow: dict[Pointer, str]) -> list[AliasDrift]:
    drift = []
    for model, alias in sorted(recorded.keys() | mlflow.keys()):
        ours, theirs = recorded.get((model, alias)), mlflow.get((model, alias))
        if ours != theirs:
            drift.append(AliasDrift(model, alias, ours, theirs))
    return drift


def model_drift(store: Store, client: MlflowClient, model: str) -> list[AliasDrift]:
    """``model``'s aliases where MLflow disagrees with the recorded pointer."""
    return _compare(recorded_pointers(store, model), mlflow_aliases(client, model))


def registry_drift(store: Store, client: MlflowClient) -> list[AliasDrift]:
    """Every alias of every model where MLflow disagrees with the recorded pointer.

    Covers recorded pointers that MLflow moved or dropped, and MLflow aliases that no
    recorded move ever set.
    """
    return _compare(recorded_pointers(store), mlflow_aliases(client))


def trusted_ref(store: Store, client: MlflowClient, ref: ModelRef) -> ModelRef:
    """``ref`` as a server resolves it: aliases through the recorded pointers.

    ``NAME/VERSION`` is itself. ``NAME@ALIAS`` is the version Shipyard recorded for the
    alias, refused when there is none. A bare ``NAME`` is the recorded champion, or the
    name alone (its newest version) when no champion was ever recorded.
    """
    if ref.version is not None:
        return ref
    alias = ref.alias or CHAMPION
    version = trusted_version(store, ref.name, alias)
    if version is not None:
        return ModelRef(ref.name, version=version)
    if ref.alias is None:
        return ref
    theirs = mlflow_aliases(client, ref.name).get((ref.name, alias))
    said = f" (MLflow's alias points at {theirs}, set outside Shipyard)" if theirs else ""
    raise NotFoundError(
        f"{ref} has no pointer recorded by Shipyard{said}, so it is not served.",
        hint=f"Promote a version with `shipyard promote {ref.name}/VERSION --to {alias}`, "
        f"or serve a version explicitly ({ref.name}/VERSION).",
    )


def record_drift(store: Store, model: str, drifts: Sequence[AliasDrift]) -> dict[AliasDrift, int]:
    """Record each of ``model``'s drifts once, and the end of each drift that is gone.

    ``drifts`` is everything that drifts for ``model`` now. A ``registry.drift`` event is
    written for a drift unless the latest drift event of its alias already says the
    same (several servers and the agent see the same drift); a ``registry.drift_resolved``
    event for an alias whose latest event is a drift that is gone. Returns each current
    drift's ``registry.drift`` event id.
    """
    latest = _latest_drift_events(store, model)
    ids: dict[AliasDrift, int] = {}
    for drift in drifts:
        last = latest.get(drift.alias)
        if last is not None and last.kind == EventKind.REGISTRY_DRIFT and _drift(last) == drift:
            ids[drift] = last.id
            continue
        payload = {**drift.to_dict(), "summary": drift.summary}
        ids[drift] = store.record(EventKind.REGISTRY_DRIFT, drift.subject, payload).id
    drifting = {drift.alias for drift in drifts}
    for alias, last in latest.items():
        if last.kind == EventKind.REGISTRY_DRIFT and alias not in drifting:
            store.record(
                EventKind.REGISTRY_DRIFT_RESOLVED,
                last.subject,
                {"model": model, "alias": alias, "drift_event": last.id},
            )
    return ids


def _latest_drift_events(store: Store, model: str) -> dict[str, Event]:
    """Per alias of ``model``: its latest ``registry.drift`` or ``registry.drift_resolved``."""
    prefix = f"model:{model}@"
    found = [
        event
        for kind in (EventKind.REGISTRY_DRIFT, EventKind.REGISTRY_DRIFT_RESOLVED)
        for event in store.events(kind=kind, subject=prefix, limit=_EVENTS)
    ]
    latest: dict[str, Event] = {}
    for event in sorted(found, key=lambda e: e.id):  # oldest first: the latest one stays
        latest[event.subject.removeprefix(prefix)] = event
    return latest


def _drift(event: Event) -> AliasDrift:
    payload = event.payload
    recorded, mlflow = payload.get("recorded_version"), payload.get("mlflow_version")
    return AliasDrift(
        str(payload.get("model")),
        str(payload.get("alias")),
        None if recorded is None else str(recorded),
        None if mlflow is None else str(mlflow),
    )
