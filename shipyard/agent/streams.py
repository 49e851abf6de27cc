"""The agent's feed of the sequential change detectors: new log rows and labels, each tick.

For the configured model's champion, a tick reads the predictions logged since the
stored cursor (feature and prediction streams, in log order) and the labels that
arrived since it (the error stream, in label-arrival order: each label is joined to its
prediction by request id, however late it came). It feeds the version's
:class:`~shipyard.monitoring.sequential.StreamBank`, stores every stream's state and the
cursor in one transaction, and turns alarms into signals for the same
:class:`~shipyard.monitoring.alerting.Alerter` as a monitor run's: ``sequential:error``
at ``monitoring.sequential.level``, ``sequential:prediction`` and
``sequential:feature:NAME`` at ``drift_level``, so alerts and retrain requests follow
as for a window's signals. An alert stays open until the champion changes.

Only rows older than ``settle_seconds`` are read (two log roll intervals by default): a
row reaches the log up to one roll after its time, and the cursor must not pass a row
still on its way. A tick reads at most ``max_rows`` of each log; the rest waits for the
next. When the champion changes, or the detector settings do, the state restarts and
``detector.reset`` is recorded. The feed runs on every agent tick, or every
``monitoring.sequential.every_seconds`` when that is set: it reads only what is new, so
a tick is cheap, and an alarm is not held back until the next window monitor.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from shipyard.access import Scope
from shipyard.errors import DataError
from shipyard.logs.reader import sql_literal
from shipyard.monitoring.sequential import Alarm, StreamBank, Task
from shipyard.store import EventKind
from shipyard.store.detector_states import (
    DetectorState,
    clear_detector_states,
    load_detector_states,
    save_detector_states,
)

if TYPE_CHECKING:
    from pathlib import Path

    from shipyard.monitoring.alerting import Signal
    from shipyard.project import Project
    from shipyard.storage.location import Location

__all__ = ["StreamWatch", "reset_detectors", "signal_name"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PREDICTIONS = """
SELECT request_id, time, output, probabilities, inputs FROM log
WHERE version = {version} AND status = 'ok' AND role = 'live'
  AND (time > {after}::TIMESTAMPTZ OR (time = {after}::TIMESTAMPTZ AND request_id > {after_id}))
  AND time <= {horizon}::TIMESTAMPTZ
ORDER BY time, request_id LIMIT {limit}
"""
_NEW_LABELS = """
SELECT request_id, coalesce(received_at, time) AS arrived FROM log
WHERE (arrived > {after}::TIMESTAMPTZ
       OR (arrived = {after}::TIMESTAMPTZ AND request_id > {after_id}))
  AND arrived <= {horizon}::TIMESTAMPTZ
ORDER BY arrived, request_id LIMIT {limit}
"""
_LABELS = """
SELECT labels.request_id, labels.label, labels.arrived, log.output
FROM (
    SELECT request_id, label, coalesce(received_at, time) AS arrived FROM labels
) AS labels
JOIN log USING (request_id)
WHERE log.version = {version} AND log.status = 'ok' AND log.role = 'live'
  AND (labels.arrived > {after}::TIMESTAMPTZ
       OR (labels.arrived = {after}::TIMESTAMPTZ AND labels.request_id > {after_id}))
  AND (labels.arrived < {upto}::TIMESTAMPTZ
       OR (labels.arrived = {upto}::TIMESTAMPTZ AND labels.request_id <= {upto_id}))
ORDER BY labels.arrived, labels.request_id
"""


def signal_name(stream: str) -> str:
    """The alert signal of a detector stream: ``sequential:error`` and so on."""
    return f"sequential:{stream}"


class StreamWatch:
    """Feeds each detector the rows and labels logged since its stored cursor."""

    def __init__(
        self,
        project: Project,
        *,
        settle_seconds: float | None = None,
        max_rows: int = 50_000,
    ) -> None:
        self.project = project
        roll = project.config.serving.log_roll_seconds
        self.settle_seconds = 2.0 * roll if settle_seconds is None else settle_seconds
        self.max_rows = max_rows
        self._next = 0.0

    def tick(self) -> list[str]:
        """One pass when due: what the detectors raised, and any restart."""
        config = self.project.config
        settings = config.monitoring.sequential
        every = settings.every_seconds
        now = time.monotonic()
        if not settings.enabled or now < self._next:
            return []
        self._next = now + (every or 0.0)
        name = config.model.name
        self.project.authorize(Scope.MONITOR_RUN, name)
        from shipyard.monitoring.run import champion_or_newest

        store = self.project.store
        version = champion_or_newest(store, self.project.client, name)
        actions = self._restart_stale(name, version)
        stored = load_detector_states(store, name, version)
        cursor = dict(stored[0].cursor) if stored else {}
        if stored and _detecting(cursor.get("settings") or {}) != _detecting(
            settings.model_dump(mode="json")
        ):
            reset_detectors(self.project, name, "monitoring.sequential settings changed")
            actions.append(f"{name}/{version}: sequential detectors restarted (settings changed)")
            stored, cursor = [], {}
        bank = self._bank(stored, cursor) if stored else self._fresh_bank(name, version)
        horizon = datetime.now(UTC) - timedelta(seconds=self.settle_seconds)
        alarms = self._feed(bank, cursor, name, version, horizon)
        cursor.update(settings=settings.model_dump(mode="json"), task=bank.task_)
        self._save(name, version, bank, cursor)
        if alarms:
            actions += self._raise(name, version, bank, alarms)
        return actions

    def _restart_stale(self, name: str, champion: str) -> list[str]:
        """Forget the detectors of versions that are no longer the champion."""
        stale = {s.version for s in load_detector_states(self.project.store, name)} - {champion}
        if not stale:
            return []
        reset_detectors(self.project, name, f"new champion {champion}")
        return [f"{name}/{champion}: sequential detectors restarted for the new champion"]

    def _fresh_bank(self, name: str, version: str) -> StreamBank:
        """A bank fitted on the version's reference: features, scores and errors."""
        from shipyard.models.served import load_served_model
        from shipyard.monitoring.references import reference_set

        config = self.project.config
        model = load_served_model(self.project.client, name, version)
        reference = reference_set(
            config, self.project.client, model, digest=config.monitoring.reference
        )
        task: Task = "regression" if model.classes is None else "classification"
        errors = None
        if reference.labels is not None and reference.scores is not None:
            if task == "regression":
                errors = np.abs(np.asarray(reference.labels, dtype=np.float64) - reference.scores)
            elif reference.probabilities is not None and reference.classes is not None:
                predicted = reference.classes[np.argmax(reference.probabilities, axis=1)]
                errors = (predicted != np.asarray(reference.labels)).astype(np.float64)
        return StreamBank(config.monitoring.sequential).fit(
            reference.reference,
            reference_predictions=reference.scores,
            reference_errors=errors,
            task=task,
        )

    def _bank(self, stored: list[DetectorState], cursor: dict[str, Any]) -> StreamBank:
        return StreamBank.from_dict(
            {
                "settings": cursor["settings"],
                "task": cursor["task"],
                "streams": {state.stream: state.state for state in stored},
            }
        )

    def _feed(
        self,
        bank: StreamBank,
        cursor: dict[str, Any],
        name: str,
        version: str,
        horizon: datetime,
    ) -> list[Alarm]:
        """Read what is new in both logs, feed it, and move the cursor past it."""
        from shipyard.logs.reader import query_log
        from shipyard.logs.root import project_log_root

        root = project_log_root(self.project.config)
        read = cursor.get("predictions") or {"time": _EPOCH.isoformat(), "id": ""}
        rows = query_log(
            root,
            name,
            since=datetime.fromisoformat(read["time"]),
            sql=_sql(_PREDICTIONS, version, read, horizon, self.max_rows),
        )
        alarms: list[Alarm] = []
        if rows.num_rows:
            outputs = [orjson.loads(text) for text in rows.column("output").to_pylist()]
            probabilities = rows.column("probabilities").to_pylist()
            alarms += bank.update(
                inputs=_inputs(rows.column("inputs")),
                predictions=_scores(outputs, probabilities),
            )
            cursor["predictions"] = _last(rows, "time")
            cursor.setdefault("first", rows.column("time")[0].as_py().isoformat())
        if "first" in cursor:  # a label can only join a prediction of this version read
            alarms += self._feed_labels(bank, cursor, root, name, version, horizon)
        return alarms

    def _feed_labels(
        self,
        bank: StreamBank,
        cursor: dict[str, Any],
        root: Path | Location,
        name: str,
        version: str,
        horizon: datetime,
    ) -> list[Alarm]:
        """Feed the errors of the labels that arrived since the cursor, in arrival order.

        The label log alone says what is new (cheap); only then are the new labels
        joined to their predictions, whose log is far larger. The cursor moves past every
        new label, also those of other versions, so none is looked at twice.
        """
        from shipyard.logs.reader import query_log

        seen = cursor.get("labels") or {"time": _EPOCH.isoformat(), "id": ""}
        new = query_log(
            root,
            name,
            kind="labels",
            sql=_sql(_NEW_LABELS, version, seen, horizon, self.max_rows),
        )
        if not new.num_rows:
            return []
        upto = _last(new, "arrived")
        labelled = query_log(
            root,
            name,
            since=datetime.fromisoformat(cursor["first"]),
            sql=_sql(_LABELS, version, seen, horizon, self.max_rows, upto=upto),
            labels_since=_EPOCH,
        )
        cursor["labels"] = upto
        if not labelled.num_rows:
            return []
        return bank.update(errors=_errors(labelled, bank.task_))

    def _save(self, name: str, version: str, bank: StreamBank, cursor: dict[str, Any]) -> None:
        states = [
            DetectorState(
                model=name,
                version=version,
                stream=stream,
                detector=held.detector.kind,
                state=held.to_dict(),
                cursor=cursor,
                samples=held.detector.samples,
                alarms=held.detector.alarms,
            )
            for stream, held in bank.streams_.items()
        ]
        save_detector_states(self.project.store, name, version, states)

    def _raise(self, name: str, version: str, bank: StreamBank, alarms: list[Alarm]) -> list[str]:
        """Record each stream's alarms and route one signal per stream through alerting."""
        from shipyard.monitoring.alerting import Alerter, Signal

        settings = self.project.config.monitoring.sequential
        by_stream: dict[str, list[Alarm]] = {}
        for alarm in alarms:
            by_stream.setdefault(alarm.stream, []).append(alarm)
        signals: list[Signal] = []
        actions = []
        for stream, raised in by_stream.items():
            last = raised[-1]
            facts = {
                **last.to_dict(),
                "alarms": len(raised),
                "samples": bank.streams_[stream].detector.samples,
            }
            self.project.store.record(
                EventKind.DETECTOR_ALARM, f"model:{name}/{version}", {"version": version, **facts}
            )
            level = settings.level if stream == "error" else settings.drift_level
            signals.append(
                Signal(
                    model=name,
                    version=version,
                    name=signal_name(stream),
                    level=level,
                    score=last.statistic,
                    evidence={"method": last.detector, **facts},
                )
            )
            actions.append(
                f"{name}/{version}: {last.detector} alarm on {stream} "
                f"(statistic {last.statistic:.3g} > {last.threshold:.3g}) -> {level}"
            )
        outcome = Alerter(self.project.config, self.project.store).process(signals)
        if outcome.retrain_requested:
            actions.append(f"{name}/{version}: retrain requested by a sequential alarm")
        return actions


def reset_detectors(project: Project, name: str, reason: str) -> list[str]:
    """Forget every stored detector of ``name``, resolve their alerts, and record why.

    The next tick starts afresh from the champion's reference and the log's beginning
    for that version. Returns the streams that were reset.
    """
    from shipyard.monitoring.alerting import Alerter, Signal

    project.authorize(Scope.MONITOR_RUN, name)
    store = project.store
    stored = load_detector_states(store, name)
    if not stored:
        return []
    clear_detector_states(store, name)
    streams = sorted({state.stream for state in stored})
    versions = sorted({state.version for state in stored})
    # An alarm marks a change in the version's streams; restarting them closes the alert.
    resolving = [
        Signal(
            model=name, version=state.version, name=signal_name(state.stream), level=None, score=0.0
        )
        for state in stored
    ]
    Alerter(project.config, store).process(resolving)
    store.record(
        EventKind.DETECTOR_RESET,
        f"model:{name}",
        {"versions": versions, "streams": streams, "reason": reason},
        reason=reason,
    )
    return streams


def _detecting(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that shape the detectors (levels only route what they raise)."""
    shaping = ("error", "prediction", "features", "false_alarm_rate", "min_samples")
    return {key: settings.get(key) for key in shaping}


def _sql(
    template: str,
    version: str,
    after: dict[str, str],
    horizon: datetime,
    limit: int,
    *,
    upto: dict[str, str] | None = None,
) -> str:
    return template.format(
        version=sql_literal(version),
        after=sql_literal(after["time"]),
        after_id=sql_literal(after["id"]),
        horizon=sql_literal(horizon.isoformat()),
        limit=int(limit),
        upto=sql_literal(upto["time"]) if upto else "",
        upto_id=sql_literal(upto["id"]) if upto else "",
    )


def _last(table: pa.Table, column: str) -> dict[str, str]:
    """The cursor just past a table's last row: its time and request id."""
    moment = table.column(column)[-1].as_py()
    return {
        "time": moment.astimezone(UTC).isoformat(),
        "id": table.column("request_id")[-1].as_py(),
    }


def _inputs(column: pa.ChunkedArray) -> pd.DataFrame:
    """The logged inputs struct as one column per input."""
    struct = column.combine_chunks()
    if not isinstance(struct, pa.StructArray) or struct.type.num_fields == 0:
        return pd.DataFrame(index=range(len(struct)))
    names = [struct.type.field(i).name for i in range(struct.type.num_fields)]
    return pd.DataFrame(
        {
            name: field.to_numpy(zero_copy_only=False)
            for name, field in zip(names, struct.flatten(), strict=True)
        }
    )


def _scores(outputs: list[Any], probabilities: list[list[float] | None]) -> np.ndarray | None:
    """One score per row: P(positive) for binary, max P for multi-class, else the value."""
    from shipyard.monitoring.log_window import probability_matrix
    from shipyard.monitoring.references import score_of

    matrix = probability_matrix(probabilities)
    try:
        return score_of(outputs, matrix)
    except (TypeError, ValueError):  # a classifier that logs no probabilities
        return None


def _errors(table: pa.Table, task: str) -> np.ndarray:
    """0/1 errors (classification) or |residual| (regression), in label-arrival order."""
    labels = [orjson.loads(text) for text in table.column("label").to_pylist()]
    outputs = [orjson.loads(text) for text in table.column("output").to_pylist()]
    if task == "regression":
        try:
            return np.abs(
                np.asarray(labels, dtype=np.float64) - np.asarray(outputs, dtype=np.float64)
            )
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"a label or prediction of a regression model is not a number: {exc}",
                hint="Send numeric labels for a regression model.",
            ) from exc
    return np.array(
        [label != output for label, output in zip(labels, outputs, strict=True)], dtype=np.float64
    )
