"""Stored sequential-detector state: one row per model, version, stream and detector.

The agent's feed (:mod:`shipyard.agent.streams`) saves every stream of a version in one
transaction, with the cursor that says how far it has read the logs, so a restarted
agent resumes exactly where it stopped; the CLI reads the rows back to show them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, select

from shipyard.jsonable import Record
from shipyard.store.tables import DetectorStateRow

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

    from shipyard.store.store import Store

__all__ = ["DetectorState", "clear_detector_states", "load_detector_states", "save_detector_states"]


@dataclass(frozen=True)
class DetectorState(Record):
    """One stream's detector as stored: its state JSON and the feed's cursor."""

    model: str
    version: str
    stream: str
    detector: str
    state: Mapping[str, Any]
    cursor: Mapping[str, Any] = field(default_factory=dict)
    samples: int = 0
    alarms: int = 0
    updated_at: datetime | None = None


def load_detector_states(
    store: Store, model: str, version: str | None = None
) -> list[DetectorState]:
    """The stored detectors of ``model`` (of one version, or all), by version and stream."""
    query = select(DetectorStateRow).where(DetectorStateRow.model == model)
    if version is not None:
        query = query.where(DetectorStateRow.version == version)
    query = query.order_by(DetectorStateRow.version, DetectorStateRow.stream)
    with store.session() as session:
        return [_state(row) for row in session.scalars(query)]


def save_detector_states(
    store: Store, model: str, version: str, states: Sequence[DetectorState]
) -> None:
    """Replace the stored detectors of ``model``/``version`` by ``states``, atomically.

    Rows are updated in place where the (model, version, stream, detector) key exists,
    so a stream's row keeps its id; streams no longer watched are deleted.
    """
    with store.session() as session:
        existing = {
            (row.stream, row.detector): row
            for row in session.scalars(
                select(DetectorStateRow).where(
                    DetectorStateRow.model == model, DetectorStateRow.version == version
                )
            )
        }
        for state in states:
            row = existing.pop((state.stream, state.detector), None)
            if row is None:
                row = DetectorStateRow(
                    model=model, version=version, stream=state.stream, detector=state.detector
                )
                session.add(row)
            row.state = dict(state.state)
            row.cursor = dict(state.cursor)
            row.samples = state.samples
            row.alarms = state.alarms
        for row in existing.values():
            session.delete(row)


def clear_detector_states(store: Store, model: str, version: str | None = None) -> int:
    """Delete the stored detectors of ``model`` (one version, or all); how many rows went."""
    statement = delete(DetectorStateRow).where(DetectorStateRow.model == model)
    if version is not None:
        statement = statement.where(DetectorStateRow.version == version)
    with store.session() as session:
        result = cast("CursorResult[Any]", session.execute(statement))
        return int(result.rowcount or 0)


def _state(row: DetectorStateRow) -> DetectorState:
    return DetectorState(
        model=row.model,
        version=row.version,
        stream=row.stream,
        detector=row.detector,
        state=dict(row.state),
        cursor=dict(row.cursor or {}),
        samples=int(row.samples),
        alarms=int(row.alarms),
        updated_at=row.updated_at,
    )
