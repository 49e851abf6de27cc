"""A postmortem draft, pre-filled from the events of an incident (Markdown).

    report = incident_report(project, "churn", since=start)   # the facts, as a record
    text = write_incident(project, "churn", since=start)      # the draft, as Markdown

The draft holds what the event log knows: the alerts, the decisions people and the agent
took (from the audit log: who, with which role, why), the rollbacks, a timeline with the
time elapsed since the window began, and MTTD and MTTR over the incidents in the window
(:mod:`shipyard.operations.timings`). Cause, impact and action items are left for the
team to write. Only chosen fields of each event are shown: never a payload whole.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.access import Scope
from shipyard.errors import ConfigError
from shipyard.jsonable import Record
from shipyard.moments import as_utc
from shipyard.operations.history import load_history, require_model
from shipyard.operations.timings import Incident, incidents
from shipyard.store.events import Event

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["IncidentReport", "TimelineEntry", "incident_report", "write_incident"]

MAX_TIMELINE = 500
"""The timeline keeps the first this many events (the report says how many it left out)."""

DECISIONS = (
    "alias.promote",
    "alias.override",
    "alias.rollback",
    "model_version.approved",
    "traffic.changed",
    "rollout.started",
    "rollout.running",
    "rollout.paused",
    "rollout.promoted",
    "rollout.rolled_back",
    "rollout.aborted",
    "ct.cycle_started",
    "ct.cycle_finished",
    "monitor.paused",
    "retrain_requested",
)
ROLLBACKS = ("alias.rollback", "rollout.rolled_back", "rollout.aborted", "monitor.paused")


@dataclass(frozen=True)
class TimelineEntry(Record):
    """One event on the incident's timeline."""

    at: datetime
    elapsed_seconds: float  # since the window began
    kind: str
    subject: str
    actor: str
    role: str | None
    detail: str
    event_id: int


@dataclass(frozen=True)
class IncidentReport(Record):
    """The facts of one incident window: alerts, decisions, rollbacks, timings."""

    model: str
    since: datetime
    until: datetime
    alerts: tuple[TimelineEntry, ...]
    decisions: tuple[TimelineEntry, ...]
    rollbacks: tuple[TimelineEntry, ...]
    incidents: tuple[Incident, ...]
    timeline: tuple[TimelineEntry, ...]
    left_out: int  # timeline events beyond MAX_TIMELINE
    mttd_seconds: float | None
    mttr_seconds: float | None

    def to_markdown(self) -> str:
        """The postmortem draft."""
        return _markdown(self)


def incident_report(
    project: Project, model: str, since: datetime, until: datetime | None = None
) -> IncidentReport:
    """What the event log holds about ``model`` between ``since`` and ``until`` (now).

    Needs ``models:read`` on the model and ``audit:read`` (the decisions name people).
    """
    project.authorize(Scope.MODELS_READ, model)
    project.authorize(Scope.AUDIT_READ)
    require_model(project, model)
    start, end = as_utc(since), as_utc(until or datetime.now(UTC))
    if end <= start:
        raise ConfigError(
            f"--until {end.isoformat()} is not after --since {start.isoformat()}.",
            hint="Give --since the incident's start (e.g. 6h or an ISO time) and --until a later "
            "time, or leave --until out for now.",
        )
    history = load_history(project.store, model=model)
    inside = [e for e in history.events if start <= e.at <= end]
    entries = [_entry(event, start) for event in inside]
    found = tuple(
        i
        for i in incidents(history, model)
        if i.onset <= end and (i.recovered is None or i.recovered >= start)
    )
    detect = [t for i in found if (t := i.time_to_detect) is not None]
    recover = [t for i in found if (t := i.time_to_recover) is not None]
    return IncidentReport(
        model=model,
        since=start,
        until=end,
        alerts=tuple(e for e in entries if e.kind in ("alert.opened", "alert.resolved")),
        decisions=tuple(e for e in entries if e.kind in DECISIONS),
        rollbacks=tuple(e for e in entries if e.kind in ROLLBACKS),
        incidents=found,
        timeline=tuple(entries[:MAX_TIMELINE]),
        left_out=max(0, len(entries) - MAX_TIMELINE),
        mttd_seconds=statistics.fmean(detect) if detect else None,
        mttr_seconds=statistics.fmean(recover) if recover else None,
    )


def write_incident(
    project: Project, model: str, since: datetime, until: datetime | None = None
) -> str:
    """The postmortem draft of ``model``'s incident between ``since`` and ``until``."""
    return incident_report(project, model, since, until).to_markdown()


def _entry(event: Event, start: datetime) -> TimelineEntry:
    return TimelineEntry(
        at=event.at,
        elapsed_seconds=(event.at - start).total_seconds(),
        kind=event.kind,
        subject=event.subject,
        actor=event.actor,
        role=event.role,
        detail=_detail(event),
        event_id=event.id,
    )


def _detail(event: Event) -> str:
    """A short description of an event from chosen fields of its payload."""
    p: dict[str, Any] = event.payload
    kind = event.kind
    if kind.startswith("alias."):
        text = f"{p.get('from_version') or '-'} → {p.get('to_version') or '-'}"
    elif kind in ("alert.opened", "alert.resolved"):
        score = p.get("score")
        shown = f"{score:.4g}" if isinstance(score, int | float) else "-"
        text = f"{p.get('level')} on version {p.get('version')}, score {shown}"
    elif kind in ("alert.delivered", "alert.delivery_failed"):
        text = f"{p.get('status')} via {p.get('route')} after {p.get('attempts')} attempt(s)"
    elif kind.startswith("rollout.") and "to" in p:
        text = f"{p.get('from') or 'new'} → {p.get('to')} at step {p.get('step_index')}"
    elif kind == "rollout.started":
        text = f"{p.get('strategy')} {p.get('steps')}"
    elif kind == "monitor.ran":
        text = f"{p.get('level')} over {p.get('rows')} rows ({p.get('window')})"
    elif kind.startswith("ct."):
        parts = [f"cycle {p.get('cycle')}"]
        parts += [str(p[key]) for key in ("cause", "gate", "status", "state") if p.get(key)]
        text = ", ".join(parts)
    elif kind == "traffic.changed":
        shares = p.get("challengers") or {}
        parts = [f"challenger {version} at {share:.0%}" for version, share in shares.items()]
        if p.get("shadow"):
            parts.append(f"shadow {p['shadow']} on {p.get('shadow_share', 1.0):.0%}")
        text = ", ".join(parts) or "all traffic to the champion"
    elif kind in ("monitor.paused", "retrain_requested"):
        text = f"{p.get('signal')} at {p.get('level') or 'pause'}"
    else:
        text = ""
    reason = event.reason or ""
    return f"{text}; {reason}" if text and reason else text or reason


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else as_utc(moment).isoformat(timespec="seconds")


def _who(entry: TimelineEntry) -> str:
    return f"{entry.actor} ({entry.role})" if entry.role else entry.actor


def _markdown(report: IncidentReport) -> str:
    lines = [
        f"# Postmortem (draft): {_md(report.model)}",
        "",
        f"Window: {_when(report.since)} to {_when(report.until)} (UTC). Pre-filled by "
        f"`shipyard incident {_md(report.model)}` from the event log; the sections marked "
        "TODO are for the team.",
        "",
        "## Summary",
        "",
        f"- Alerts opened: {sum(1 for a in report.alerts if a.kind == 'alert.opened')}",
        f"- Decisions recorded: {len(report.decisions)}",
        f"- Rollbacks: {len(report.rollbacks)}",
        f"- MTTD: {_duration(report.mttd_seconds)} "
        f"(over {sum(1 for i in report.incidents if i.detected)} incident(s))",
        f"- MTTR: {_duration(report.mttr_seconds)}",
        "",
        "## Alerts",
        "",
    ]
    lines += _table(
        ("time (UTC)", "event", "signal", "detail"),
        [(_when(a.at), a.kind, a.subject.partition("/")[2], a.detail) for a in report.alerts],
        "No alert in the window.",
    )
    lines += ["## Incidents and timings", ""]
    lines += _table(
        ("kind", "signal", "onset", "detected", "recovered", "to detect", "to recover", "how"),
        [
            (
                i.kind,
                i.signal,
                _when(i.onset),
                _when(i.detected),
                _when(i.recovered),
                _duration(i.time_to_detect),
                _duration(i.time_to_recover),
                i.recovery or "ongoing",
            )
            for i in report.incidents
        ],
        "No incident (drift onset or guardrail breach) overlaps the window.",
    )
    lines += ["## Decisions (from the audit log)", ""]
    lines += _table(
        ("time (UTC)", "who (role)", "what", "subject", "detail"),
        [(_when(d.at), _who(d), d.kind, d.subject, d.detail) for d in report.decisions],
        "No decision was recorded in the window.",
    )
    lines += ["## Rollbacks", ""]
    lines += _table(
        ("time (UTC)", "who", "what", "detail"),
        [(_when(r.at), _who(r), r.kind, r.detail) for r in report.rollbacks],
        "No rollback in the window.",
    )
    lines += ["## Timeline", ""]
    lines += _table(
        ("time (UTC)", "+elapsed", "event", "subject", "who", "detail"),
        [
            (_when(t.at), _duration(t.elapsed_seconds), t.kind, t.subject, _who(t), t.detail)
            for t in report.timeline
        ],
        "No event in the window.",
    )
    if report.left_out:
        lines += [f"… and {report.left_out} later events (`shipyard audit log`).", ""]
    lines += [
        "## Cause",
        "",
        "TODO: what changed in the data, the code or the world, and why it was not caught sooner.",
        "",
        "## Impact",
        "",
        "TODO: who was affected, for how long, and what it cost (predictions served by the "
        "degraded version, business KPIs).",
        "",
        "## What went well, what did not",
        "",
        "TODO",
        "",
        "## Action items",
        "",
        "| action | owner | due |",
        "| --- | --- | --- |",
        "| TODO | | |",
        "",
        "Verify the record this draft was built from: `shipyard audit verify`.",
    ]
    return "\n".join(lines) + "\n"


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]], empty: str) -> list[str]:
    if not rows:
        return [empty, ""]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]
