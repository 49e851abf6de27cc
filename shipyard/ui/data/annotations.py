"""Audited events as chart annotations: what happened, when, and to which route arm."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from shipyard.moments import as_utc
from shipyard.store.events import Event
from shipyard.ui.views import Annotation

__all__ = ["annotations_of", "event_dict", "traffic_text"]

ArmOf = Callable[[str | None, datetime], str | None]


def annotations_of(events: Sequence[Event], arm_of: ArmOf) -> list[Annotation]:
    """One annotation per event; ``arm_of(version, time)`` names a version's arm then."""
    return [_annotation(event, arm_of) for event in events]


def _annotation(event: Event, arm_of: ArmOf) -> Annotation:
    at = as_utc(event.at)
    payload = event.payload
    kind = event.kind
    target = event.subject.split(":", 1)[-1]
    arm: str | None = None
    if kind.startswith("alias."):
        alias = target.rsplit("@", 1)[-1]
        arm = alias if alias in ("champion", "challenger") else None
        text = f"{kind.split('.', 1)[1]} {alias}: {payload.get('from_version') or '–'} → " + (
            payload.get("to_version") or "none"
        )
    elif kind == "model_version.approved":
        version = target.rsplit("/", 1)[-1]
        arm = arm_of(version, at)
        text = f"approved version {version} (by {event.actor})"
    elif kind == "traffic.changed":
        text = "traffic: " + traffic_text(payload)
        if payload.get("challengers"):
            arm = "challenger"
        elif payload.get("shadow"):
            arm = "shadow"
        else:
            arm = "champion"
    elif kind.startswith("rollout."):
        candidate = target.rsplit("/", 1)[-1]
        arm = "challenger"
        step = payload.get("step_index")
        where = f" step {int(step) + 1}" if isinstance(step, int) else ""
        text = f"roll-out of {candidate} {kind.split('.', 1)[1].replace('_', ' ')}{where}"
    elif kind == "alert.opened":
        signal = target.split("/", 1)[-1]
        found = payload.get("version")
        arm = arm_of(None if found is None else str(found), at)
        text = f"alert {payload.get('level', '')}: {signal}"
    else:
        text = kind
    if event.reason:
        text += f" — {event.reason}"
    return Annotation(time=at.isoformat(), kind=kind, text=text, arm=arm)


def traffic_text(payload: dict[str, Any]) -> str:
    """Traffic settings in a few words: ``2 at 10 %, shadow 3`` (``champion only``)."""
    parts = [
        f"{version} at {float(share) * 100:g} %"
        for version, share in (payload.get("challengers") or {}).items()
        if float(share) > 0
    ]
    if payload.get("shadow"):
        share = float(payload.get("shadow_share", 1.0))
        parts.append(f"shadow {payload['shadow']}" + ("" if share >= 1 else f" ({share:.0%})"))
    return ", ".join(parts) or "champion only"


def event_dict(event: Event) -> dict[str, Any]:
    """An event as the pages list it: time, kind, actor, subject, reason and payload."""
    return {
        "seq": event.seq,
        "at": as_utc(event.at).isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "role": event.role,
        "subject": event.subject,
        "reason": event.reason,
        "payload": event.payload,
    }
