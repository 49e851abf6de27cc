"""From signals to alerts: open, escalate or resolve; deliver with retries; act on the level.

Alert state lives in the event log, not in tables. Every event about one signal's alert
has the subject ``alert:<model>/<signal>``; the alert is open while the latest of its
``alert.opened`` / ``alert.resolved`` events is ``alert.opened``, whose payload holds
the level and the dedup key. An escalation is another ``alert.opened`` with the same key.
"""

from __future__ import annotations

import time as _time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shipyard.config import Config
from shipyard.errors import ConfigError
from shipyard.jsonable import plain
from shipyard.levels import AlertLevel, rank
from shipyard.monitoring.alerting.routes import DeliveryError, Route, routes_from_config
from shipyard.monitoring.alerting.signals import Alert, Signal
from shipyard.store import EventKind, Store
from shipyard.store.events import Event
from shipyard.store.traffic import TrafficSettings, write_traffic

__all__ = [
    "ALERT_DELIVERED",
    "ALERT_DELIVERY_FAILED",
    "ALERT_OPENED",
    "ALERT_RESOLVED",
    "MONITOR_PAUSED",
    "RETRAIN_REQUESTED",
    "AlertOutcome",
    "Alerter",
    "Delivery",
    "OpenAlert",
    "incomplete_window",
    "send_with_retries",
]

# The kinds of alerting's events (subject alert:<model>/<signal>, or model:<name> for the
# retrain request and the pause); the catalogue in shipyard/store/event_kinds.py owns them.
ALERT_OPENED = EventKind.ALERT_OPENED
ALERT_RESOLVED = EventKind.ALERT_RESOLVED
ALERT_DELIVERED = EventKind.ALERT_DELIVERED
ALERT_DELIVERY_FAILED = EventKind.ALERT_DELIVERY_FAILED
RETRAIN_REQUESTED = EventKind.RETRAIN_REQUESTED  # read by continuous training
MONITOR_PAUSED = EventKind.MONITOR_PAUSED


@dataclass(frozen=True)
class OpenAlert:
    """An open alert as the event log tells it."""

    subject: str
    level: AlertLevel
    dedup_key: str
    since: str  # ISO time the alert first opened
    version: str


@dataclass(frozen=True)
class Delivery:
    """One alert handed to one route: how many attempts it took, and the last error."""

    route: str
    alert: Alert
    attempts: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the route accepted the alert."""
        return self.error is None


@dataclass(frozen=True)
class AlertOutcome:
    """What one :meth:`Alerter.process` call changed, and how every delivery went."""

    opened: tuple[Alert, ...] = ()
    escalated: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    retrain_requested: tuple[Signal, ...] = ()
    paused: tuple[Signal, ...] = ()
    held: tuple[Signal, ...] = ()  # on a window whose log is incomplete: nothing done

    @property
    def failed(self) -> tuple[Delivery, ...]:
        """Deliveries that failed after every retry (each recorded as an event)."""
        return tuple(d for d in self.deliveries if not d.ok)


@dataclass
class _Changes:
    opened: list[Alert] = field(default_factory=list)
    escalated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    retrain_requested: list[Signal] = field(default_factory=list)
    paused: list[Signal] = field(default_factory=list)
    held: list[Signal] = field(default_factory=list)

    def freeze(self) -> AlertOutcome:
        return AlertOutcome(**{name: tuple(items) for name, items in vars(self).items()})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Alerter:
    """Turns each monitor run's signals into alerts to the model's owner, and actions.

    Per signal: a breach opens an alert when none is open, or re-notifies when its
    level rises; a repeat at the same or a lower level sends nothing. Back within bands
    (``level`` None with a score), an open alert is resolved and the routes that had it
    are told once. Reaching ``retrain`` (or ``pause``) records ``retrain_requested``
    with the evidence; reaching ``pause`` applies ``monitoring.pause_action``. Each
    delivery is retried with exponential backoff (once a route has failed, it gets a
    single attempt for the rest of the call); a failing route is recorded as
    ``alert.delivery_failed`` and never raises out of :meth:`process`.

    A signal measured on a window whose prediction log is incomplete (its evidence's
    ``log_coverage`` is not ``enough``, see ``monitoring.min_log_coverage``) is held:
    no alert opens, escalates or resolves on it, and nothing acts.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        routes: Sequence[Route] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = _time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        monitoring = config.monitoring
        if monitoring.pause_action == "fallback" and not monitoring.fallback_version:
            raise ConfigError(
                "monitoring.pause_action is fallback, but no fallback_version is set.",
                hint="Set monitoring.fallback_version to the version that takes all traffic "
                "on a pause, or set pause_action: none.",
            )
        self.routes: list[Route] = (
            list(routes)
            if routes is not None
            else list(routes_from_config(monitoring.routes, environ=environ))
        )
        self.owner = config.model.owner or None
        self.retries = monitoring.retries
        self.backoff_seconds = monitoring.backoff_seconds
        self.fallback_version = (
            monitoring.fallback_version if monitoring.pause_action == "fallback" else None
        )
        self._store = store
        self._clock = clock
        self._sleep = sleep

    def process(self, signals: Sequence[Signal]) -> AlertOutcome:
        """Open, escalate or resolve each signal's alert, deliver it and act; routes never raise."""
        changes = _Changes()
        for signal in signals:
            if incomplete_window(signal):
                changes.held.append(signal)
                continue
            current = self.open_alert(signal.model, signal.name)
            if signal.level is None:
                if current is not None and signal.score is not None:
                    self._resolve(signal, current, changes)
            elif current is None or rank(signal.level) > rank(current.level):
                self._open(signal, signal.level, current, changes)
        return changes.freeze()

    def open_alert(self, model: str, signal: str) -> OpenAlert | None:
        """The open alert of ``model``'s ``signal``, or None."""
        subject = f"alert:{model}/{signal}"
        opened = self._latest(ALERT_OPENED, subject)
        if opened is None:
            return None
        resolved = self._latest(ALERT_RESOLVED, subject)
        if resolved is not None and resolved.id > opened.id:
            return None
        payload = opened.payload
        return OpenAlert(
            subject=subject,
            level=payload["level"],
            dedup_key=payload["dedup_key"],
            since=payload["since"],
            version=payload["version"],
        )

    def _open(
        self, signal: Signal, level: AlertLevel, current: OpenAlert | None, changes: _Changes
    ) -> None:
        now = self._clock()
        previous = current.level if current is not None else None
        dedup_key = current.dedup_key if current is not None else _dedup_key(signal)
        since = current.since if current is not None else now.isoformat()
        self._store.record(
            ALERT_OPENED,
            signal.subject,
            {
                "level": level,
                "previous_level": previous,
                "dedup_key": dedup_key,
                "since": since,
                **self._facts(signal),
            },
        )
        actions = []
        if rank(level) >= rank("retrain") and (
            previous is None or rank(previous) < rank("retrain")
        ):
            self._request_retrain(signal, level, dedup_key)
            changes.retrain_requested.append(signal)
            actions.append("retrain requested")
        if level == "pause" and self.fallback_version is not None:
            if all(paused.model != signal.model for paused in changes.paused):
                self._pause(signal, self.fallback_version, dedup_key)  # once per model and call
            changes.paused.append(signal)
            actions.append(f"all traffic moved to version {self.fallback_version}")
        alert = Alert(signal, level, "opened", self.owner, dedup_key, now, previous, tuple(actions))
        (changes.opened if current is None else changes.escalated).append(alert)
        self._deliver(alert, changes)

    def _resolve(self, signal: Signal, current: OpenAlert, changes: _Changes) -> None:
        alert = Alert(
            signal, current.level, "resolved", self.owner, current.dedup_key, self._clock()
        )
        self._store.record(
            ALERT_RESOLVED,
            signal.subject,
            {
                "level": current.level,
                "dedup_key": current.dedup_key,
                "since": current.since,
                **self._facts(signal),
            },
        )
        changes.resolved.append(alert)
        self._deliver(alert, changes)

    def _request_retrain(self, signal: Signal, level: AlertLevel, dedup_key: str) -> None:
        self._store.record(
            RETRAIN_REQUESTED,
            f"model:{signal.model}",
            {
                "cause": f"monitor:{signal.name}",
                "signal": signal.name,
                "level": level,
                "dedup_key": dedup_key,
                **self._facts(signal),
            },
        )

    def _pause(self, signal: Signal, fallback: str, dedup_key: str) -> None:
        generation = write_traffic(
            self._store, signal.model, TrafficSettings(challengers={fallback: 1.0})
        )
        self._store.record(
            MONITOR_PAUSED,
            f"model:{signal.model}",
            {
                "signal": signal.name,
                "fallback_version": fallback,
                "generation": generation,
                "dedup_key": dedup_key,
                **self._facts(signal),
            },
        )

    def _deliver(self, alert: Alert, changes: _Changes) -> None:
        # A route that already failed in this call gets one attempt, not another round of
        # backoff: with PagerDuty down, a run with fifty breaches must not stall for hours.
        down = {delivery.route for delivery in changes.deliveries if not delivery.ok}
        for route in self.routes:
            if rank(alert.level) >= rank(route.min_level):
                attempts = 1 if route.name in down else self.retries + 1
                changes.deliveries.append(self._deliver_to(route, alert, attempts))

    def _deliver_to(self, route: Route, alert: Alert, attempts: int) -> Delivery:
        delivery, errors = send_with_retries(
            route, alert, attempts=attempts, backoff_seconds=self.backoff_seconds, sleep=self._sleep
        )
        if delivery.ok:
            self._record_delivery(ALERT_DELIVERED, route, alert, delivery.attempts)
        else:
            self._record_delivery(ALERT_DELIVERY_FAILED, route, alert, len(errors), errors)
        return delivery

    def _record_delivery(
        self,
        kind: EventKind,
        route: Route,
        alert: Alert,
        attempts: int,
        errors: list[str] | None = None,
    ) -> None:
        payload: dict[str, Any] = {
            "route": route.name,
            "status": alert.status,
            "level": alert.level,
            "dedup_key": alert.dedup_key,
            "attempts": attempts,
        }
        if errors:
            payload["errors"] = errors
        self._store.record(kind, alert.signal.subject, payload)

    def _facts(self, signal: Signal) -> dict[str, Any]:
        return {
            "version": signal.version,
            "score": plain(signal.score),
            "bands": asdict(signal.bands) if signal.bands is not None else None,
            "owner": self.owner,
            "evidence": plain(signal.evidence),
        }

    def _latest(self, kind: str, subject: str) -> Event | None:
        # events() matches subjects by prefix ("feature:age" also finds "feature:age2"),
        # so read until an exact match or the end of that kind's events.
        limit = 8
        while True:
            events = self._store.events(kind=kind, subject=subject, limit=limit)
            for event in events:
                if event.subject == subject:
                    return event
            if len(events) < limit:
                return None
            limit *= 4


def incomplete_window(signal: Signal) -> bool:
    """Whether ``signal`` was measured on a window below ``monitoring.min_log_coverage``."""
    coverage = signal.evidence.get("log_coverage")
    return isinstance(coverage, Mapping) and coverage.get("enough") is False


def send_with_retries(
    route: Route,
    alert: Alert,
    *,
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None],
) -> tuple[Delivery, list[str]]:
    """Send ``alert`` up to ``attempts`` times, backing off exponentially; never raises.

    A permanent error (a non-retryable :class:`DeliveryError`, e.g. a 400) stops the
    retries. Returns the delivery and every error seen, oldest first.
    """
    errors: list[str] = []
    for attempt in range(attempts):
        if attempt:
            sleep(backoff_seconds * 2 ** (attempt - 1))
        try:
            route.send(alert)
        except Exception as exc:  # any route failure is reported, never raised
            errors.append(str(exc) or type(exc).__name__)
            if isinstance(exc, DeliveryError) and not exc.retryable:
                break
        else:
            return Delivery(route.name, alert, attempt + 1), errors
    return Delivery(route.name, alert, len(errors), errors[-1] if errors else None), errors


def _dedup_key(signal: Signal) -> str:
    # One key per alert episode; PagerDuty accepts at most 255 characters.
    return f"shipyard/{signal.model}/{signal.name}"[:240] + f"/{uuid.uuid4().hex[:12]}"
