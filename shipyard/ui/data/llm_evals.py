"""Judge runs and prompt history for the model page's LLM section, read from the store.

Judge runs are the stored :class:`~shipyard.store.tables.LlmEvalRow` rows (one per run
over the gold set or a production sample, per version). The three LLM signals and judge
drift are H7's :func:`~shipyard.llm.signals.llm_signals` (the champion's gold run is the
baseline; DESIGN's bands in ``llm.bands``): this module only reads them for the page,
with the values measured and their baselines for the charts' band lines.

Prompt history is the audited ``prompt.registered`` and ``prompt.labelled`` events of the
model's prompts: they become annotations on every LLM chart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.config.llm import LlmBands
from shipyard.jsonable import Record
from shipyard.levels import Level, rank
from shipyard.moments import as_utc
from shipyard.store.events import Event, event_of
from shipyard.store.tables import EventRow, LlmEvalRow
from shipyard.ui.views import Annotation

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = [
    "PROMPT_KINDS",
    "EvalPoint",
    "Signal",
    "eval_points",
    "prompt_annotations",
    "prompt_events",
    "signals",
]

PROMPT_KINDS = ("prompt.registered", "prompt.labelled")
_LIMIT = 2000


@dataclass(frozen=True)
class EvalPoint(Record):
    """One stored judge run: when, which version, over what, and what it found."""

    at: datetime
    version: str
    kind: str  # gold | production
    rows: int
    score: float | None
    guardrail_rate: float | None
    hallucination_rate: float | None
    kappa: float | None
    judge: str


@dataclass(frozen=True)
class Signal(Record):
    """One LLM signal of one version against its bands (from :func:`shipyard.llm.signals.
    llm_signals`): what was measured, its baseline, the change the bands judge, the level."""

    signal: str  # llm:judge | llm:guardrail | llm:hallucination | llm:kappa
    version: str
    value: float | None  # the score, rate or kappa measured
    baseline: float | None  # what it is compared with
    change: float | None  # what the bands judge: a fall, a relative rise, a rise in points
    bands: tuple[float, float, float]
    level: Level


def eval_points(
    store: Store, model: str, since: datetime | None, until: datetime | None
) -> list[EvalPoint]:
    """``model``'s stored judge runs in ``[since, until)``, oldest first."""
    query = select(LlmEvalRow).where(LlmEvalRow.model == model)
    if since is not None:
        query = query.where(LlmEvalRow.created_at >= since)
    if until is not None:
        query = query.where(LlmEvalRow.created_at < until)
    query = query.order_by(LlmEvalRow.created_at, LlmEvalRow.id).limit(_LIMIT)
    with store.session() as session:
        return [
            EvalPoint(
                at=as_utc(row.created_at),
                version=str(row.version),
                kind=row.kind,
                rows=row.rows,
                score=row.score,
                guardrail_rate=row.guardrail_rate,
                hallucination_rate=row.hallucination_rate,
                kappa=row.kappa,
                judge=row.judge,
            )
            for row in session.scalars(query)
        ]


def signals(
    store: Store,
    bands: LlmBands,
    model: str,
    versions: Iterable[str],
    moves: Sequence[tuple[datetime, str | None]],
) -> list[Signal]:
    """Each of ``versions``' LLM signals (H7's :func:`~shipyard.llm.signals.llm_signals`:
    the champion's gold run is the baseline), the most severe first."""
    from shipyard.llm.signals import llm_signals

    champion = moves[-1][1] if moves else None
    previous = next((v for _, v in reversed(moves[:-1]) if v != champion), None)
    found: list[Signal] = []
    for version in sorted(set(versions), key=_number):
        for signal in llm_signals(
            store, bands, model, version, champion=champion, previous_champion=previous
        ):
            value, baseline = _measured(signal.name, signal.evidence)
            found.append(
                Signal(
                    signal.name, version, value, baseline, signal.value, signal.bands, signal.level
                )
            )
    return sorted(found, key=lambda s: -rank(s.level))


_MEASURED = {
    "llm:judge": ("score", "baseline"),
    "llm:hallucination": ("rate", "baseline"),
    "llm:guardrail": ("rate", "previous"),
    "llm:kappa": ("kappa", "baseline"),
}


def _measured(name: str, evidence: dict[str, Any]) -> tuple[float | None, float | None]:
    keys = _MEASURED.get(name)
    if keys is None:
        return None, None
    value, baseline = (evidence.get(key) for key in keys)
    return (
        None if value is None else float(value),
        None if baseline is None else float(baseline),
    )


def _number(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)


def prompt_events(
    store: Store, prompts: Iterable[str], since: datetime | None, until: datetime | None
) -> list[Event]:
    """The audited registrations and label moves of ``prompts`` in ``[since, until)``, oldest
    first (an event is about a prompt when its subject or payload names it)."""
    names = {name for name in prompts if name}
    if not names:
        return []
    query = select(EventRow).where(EventRow.kind.in_(PROMPT_KINDS))
    if since is not None:
        query = query.where(EventRow.at >= since)
    if until is not None:
        query = query.where(EventRow.at < until)
    query = query.order_by(EventRow.seq.desc()).limit(_LIMIT)
    with store.session() as session:
        events = [event_of(row) for row in reversed(list(session.scalars(query)))]
    return [event for event in events if _prompt_name(event) in names]


def _prompt_name(event: Event) -> str:
    payload = event.payload or {}
    for key in ("prompt", "name"):
        if isinstance(payload.get(key), str) and payload[key]:
            return str(payload[key]).split("@", 1)[0].split("/", 1)[0]
    target = event.subject.split(":", 1)[-1]
    return target.split("@", 1)[0].split("/", 1)[0]


def prompt_annotations(events: Iterable[Event]) -> list[Annotation]:
    """Prompt registrations and label moves as chart annotations."""
    return [
        Annotation(time=as_utc(e.at).isoformat(), kind=e.kind, text=prompt_text(e)) for e in events
    ]


def prompt_text(event: Event) -> str:
    """``prompt assistant-system: production 1 → 2 — judge regression`` in a few words."""
    payload: dict[str, Any] = event.payload or {}
    name = _prompt_name(event)
    if event.kind == "prompt.registered":
        text = f"prompt {name}: version {_first(payload, 'version', 'to_version')} registered"
    else:
        label = _first(payload, "label", "alias") or event.subject.rsplit("@", 1)[-1]
        before = _first(payload, "from_version", "before", "previous") or "–"
        after = _first(payload, "to_version", "after", "version") or "none"
        text = f"prompt {name}: {label} {before} → {after}"
    if event.reason:
        text += f" — {event.reason}"
    return text


def _first(payload: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = payload.get(key)
        if isinstance(value, dict):  # {"before": {"version": 1}} shapes
            value = value.get("version")
        if value not in (None, ""):
            return str(value)
    return ""
