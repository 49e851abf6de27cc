"""The agent's watch on the registry: page the owner when an alias moves outside Shipyard.

Each tick compares every MLflow alias with the pointer Shipyard recorded
(:func:`~shipyard.governance.pointers.alias_drift`). A drift seen on two ticks running
(a move in progress sets MLflow's alias a moment before its record) is recorded once
(``registry.drift``, shared with the servers, which record the same event) and paged
once to every route of ``monitoring.routes``: a critical alert naming the alias, the
version MLflow points at and the one servers keep serving. Each delivery is an event
(``registry.alert_delivered`` or ``registry.alert_failed``) whose dedup key names the
drift's event, so a restarted agent does not page again; a drift that ends is recorded
as ``registry.drift_resolved``. Nothing here raises: drift is reported, never fatal.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shipyard.governance.pointers import AliasDrift, alias_drift
from shipyard.monitoring.alerting import Alert, Route, Signal, routes_from_config, send_with_retries
from shipyard.registry.pointers import record_drift
from shipyard.store.event_kinds import EventKind

if TYPE_CHECKING:
    from shipyard.project import Project

logger = logging.getLogger(__name__)

__all__ = ["DriftAlert", "RegistryWatch", "drift_alert"]


@dataclass(frozen=True)
class DriftAlert(Alert):
    """An alias moved outside Shipyard, as the routes deliver it: a critical alert."""

    drift: AliasDrift | None = None

    @property
    def summary(self) -> str:
        """One line for people: which alias, what MLflow says, what is served, who owns it."""
        what = self.drift.summary if self.drift else self.signal.name
        return f"Registry drift: {what} (owner: {self.owner or 'no owner set'})"


def drift_alert(drift: AliasDrift, *, owner: str | None, dedup_key: str) -> DriftAlert:
    """The page about ``drift``."""
    served = drift.recorded_version or "no version"
    return DriftAlert(
        Signal(
            drift.model,
            drift.mlflow_version or "-",
            f"registry:{drift.alias}",
            "pause",
            None,
            None,
            {**drift.to_dict(), "summary": drift.summary},
        ),
        level="pause",
        status="opened",
        owner=owner,
        dedup_key=dedup_key,
        time=datetime.now(UTC),
        actions=(f"servers keep serving {drift.model}@{drift.alias} = {served}",),
        drift=drift,
    )


class RegistryWatch:
    """Finds registry drift each tick, records it and pages the owner once per drift."""

    def __init__(
        self,
        project: Project,
        *,
        routes: Sequence[Route] | None = None,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        self.project = project
        self.routes = routes
        self.sleep = sleep
        self._seen: frozenset[AliasDrift] = frozenset()  # last tick's, not yet confirmed
        self._drifting: set[str] = set()  # models whose drift was recorded
        self._paged: set[str] = set()  # dedup keys this agent paged (or failed to)

    def tick(self) -> list[str]:
        """One look at the registry; returns what was done, one line per page."""
        try:
            return self._tick()
        except Exception as exc:  # MLflow or the database is down: try next tick
            logger.warning("registry drift check failed: %s", str(exc).splitlines()[0])
            return []

    def _tick(self) -> list[str]:
        found = frozenset(alias_drift(self.project))
        confirmed = found & self._seen
        self._seen = found
        models = {drift.model for drift in confirmed}
        actions: list[str] = []
        for model in sorted(models | self._drifting):
            drifts = sorted((d for d in confirmed if d.model == model), key=lambda d: d.alias)
            events = record_drift(self.project.store, model, drifts)
            for drift in drifts:
                actions += self._page(drift, events[drift])
        self._drifting = models
        return actions

    def _page(self, drift: AliasDrift, event_id: int) -> list[str]:
        key = f"shipyard/{drift.model}/registry/{drift.alias}/{event_id}"
        if key in self._paged or self._paged_before(drift, key):
            return []
        self._paged.add(key)
        config, store = self.project.config, self.project.store
        label = f"{drift.model}@{drift.alias}"
        routes = self.routes
        if routes is None:
            routes = routes_from_config(config.monitoring.routes)
        if not routes:
            return [f"{label}: registry drift ({drift.summary}); no alert route is configured"]
        alert = drift_alert(drift, owner=config.model.owner or None, dedup_key=key)
        actions = []
        for route in routes:
            delivery, _ = send_with_retries(
                route,
                alert,
                attempts=config.monitoring.retries + 1,
                backoff_seconds=config.monitoring.backoff_seconds,
                sleep=self.sleep,
            )
            payload = {"route": delivery.route, "dedup_key": key, "attempts": delivery.attempts}
            if delivery.ok:
                store.record(EventKind.REGISTRY_ALERT_DELIVERED, drift.subject, payload)
                actions.append(f"{label}: registry drift paged to {delivery.route}")
            else:
                store.record(
                    EventKind.REGISTRY_ALERT_FAILED,
                    drift.subject,
                    {**payload, "errors": [delivery.error]},
                )
                actions.append(f"{label}: registry drift page to {delivery.route} failed")
        return actions

    def _paged_before(self, drift: AliasDrift, key: str) -> bool:
        """Whether an agent already paged (or tried to page) about this drift."""
        store = self.project.store
        for kind in (EventKind.REGISTRY_ALERT_DELIVERED, EventKind.REGISTRY_ALERT_FAILED):
            for event in store.events(kind=kind, subject=drift.subject, limit=50):
                if event.subject == drift.subject and event.payload.get("dedup_key") == key:
                    return True
        return False
