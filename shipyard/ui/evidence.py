"""Roll-out and CT-cycle evidence as compact rows: one line per guardrail check, one per gate.

A roll-out step records every guardrail check with its sequential test's internals (e-values,
bounds, counts); drawn as nested mappings one rolled-back step was about 2,000 px tall. The
model page draws :func:`guardrail_rows` as a table instead (guardrail | candidate | champion
| limit | verdict | samples | p) and :func:`gate_rows` as gate | status | summary, with the
full record (:func:`evidence_json`) folded away in a ``<details>``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.jsonable import to_json

__all__ = [
    "FILTERS",
    "GateRow",
    "GuardrailRow",
    "evidence_facts",
    "evidence_json",
    "gate_rows",
    "guardrail_rows",
    "tone_of",
    "trigger_text",
]


@dataclass(frozen=True)
class GuardrailRow:
    """One guardrail check of a roll-out step, written for people.

    ``verdict`` is the check's own word (ok, breach, n/a, …); ``tone`` is how it is
    coloured: good, bad or neutral. ``p`` is the always-valid p-value, or the e-value
    where the check recorded none (``e = 74.4``).
    """

    guardrail: str
    candidate: str
    champion: str
    limit: str
    verdict: str
    tone: str
    samples: str
    p: str
    reason: str
    note: str = ""  # e.g. "excused by quality"


@dataclass(frozen=True)
class GateRow:
    """One gate of a CT cycle: its name, status, when, and one line of its evidence."""

    gate: str
    status: str
    tone: str
    at: Any
    summary: str
    evidence: Any


_GOOD = {"ok", "pass", "passed", "promoted", "allowed"}
_BAD = {"breach", "fail", "failed", "error", "rolled_back", "aborted", "blocked"}


def tone_of(word: Any) -> str:
    """How a verdict or status is coloured: ``good``, ``bad`` or ``neutral``."""
    text = str(word or "").lower()
    if text in _GOOD:
        return "good"
    if text in _BAD:
        return "bad"
    return "neutral"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _measure(value: Any, unit: str) -> str:
    number = _number(value)
    if number is None:
        return "—" if value is None else str(value)
    if unit == "share":
        return f"{100 * number:.3g} %"
    if unit == "ms":
        return f"{number:.3g} ms"
    return f"{number:.3g}"


def _p(check: Mapping[str, Any]) -> str:
    found = check.get("test")
    test: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    p_value = _number(check.get("p_value"))
    if p_value is None:
        p_value = _number(test.get("p_value"))
    if p_value is not None:
        return f"{p_value:.3g}"
    e_value = _number(test.get("e_value"))
    if e_value is not None:
        return f"e = {e_value:.3g}"
    lower = _number(check.get("lower"))
    return f"lower bound {lower:.3g}" if lower is not None else "—"


def guardrail_rows(evidence: Any) -> list[GuardrailRow]:
    """The guardrail checks in a step's ``evidence`` (``{"checks": {name: check}}``), in
    their recorded order; an empty list when the step recorded none."""
    checks = evidence.get("checks") if isinstance(evidence, Mapping) else None
    if not isinstance(checks, Mapping):
        return []
    found = []
    for name, check in checks.items():
        if not isinstance(check, Mapping):
            continue
        unit = str(check.get("unit") or "")
        samples = check.get("samples")
        excused = check.get("excused_by")
        found.append(
            GuardrailRow(
                guardrail=str(name).replace("_", " "),
                candidate=_measure(check.get("value"), unit),
                champion=_measure(check.get("champion"), unit),
                limit=_measure(check.get("limit"), unit),
                verdict=str(check.get("verdict") or "—"),
                tone=tone_of(check.get("verdict")),
                samples=f"{samples:,}" if isinstance(samples, int) else "—",
                p=_p(check),
                reason=str(check.get("reason") or ""),
                note=f"excused by {excused}" if excused else "",
            )
        )
    return found


def _text(value: Any) -> str:
    """Text as it is, an ISO 8601 time as the pages write times."""
    from shipyard.ui.formatting import when

    text = str(value)
    if isinstance(value, str) and len(text) >= 19 and text[10:11] == "T":
        return when(text)
    return text


def evidence_facts(evidence: Any) -> list[tuple[str, str]]:
    """The plain values of an ``evidence`` mapping besides its checks (a note, a cycle, a
    cause, a request count), as (label, text) pairs for one line."""
    if not isinstance(evidence, Mapping):
        return [] if evidence in (None, "") else [("evidence", str(evidence))]
    facts = []
    checked = "checks" in evidence  # its reason is the step's own, shown beside the step
    for key, value in evidence.items():
        if key == "checks" or (checked and key == "reason"):
            continue
        if isinstance(value, Mapping | list | tuple):
            continue
        text = _measure(value, "") if _number(value) is not None else _text(value)
        facts.append((str(key).replace("_", " "), text))
    return facts


def _summary(gate: Mapping[str, Any]) -> str:
    from shipyard.pipelines.gates import gate_summary

    try:
        return gate_summary(dict(gate))
    except (KeyError, TypeError, ValueError, AttributeError):  # evidence of another shape
        evidence = gate.get("evidence")
        reason = evidence.get("reason") if isinstance(evidence, Mapping) else None
        return str(reason or "")


def gate_rows(gates: Any) -> list[GateRow]:
    """A cycle's recorded gates, in order, each with its one-line summary."""
    rows = []
    for gate in gates if isinstance(gates, list | tuple) else []:
        if not isinstance(gate, Mapping) or "gate" not in gate:
            continue
        rows.append(
            GateRow(
                gate=str(gate["gate"]),
                status=str(gate.get("status") or "—"),
                tone=tone_of(gate.get("status")),
                at=gate.get("at"),
                summary=_summary(gate),
                evidence=gate.get("evidence"),
            )
        )
    return rows


def trigger_text(trigger: Any) -> str:
    """What started a CT cycle, beside its cause: ``drift, level retrain, version 1``."""
    if not isinstance(trigger, Mapping):
        return "" if trigger is None else str(trigger)
    parts = [str(trigger.get("kind") or "trigger")]
    if trigger.get("level"):
        parts.append(f"level {trigger['level']}")
    if trigger.get("version"):
        parts.append(f"version {trigger['version']}")
    return ", ".join(parts)


def evidence_json(value: Any) -> str:
    """``value`` as indented JSON text (the page escapes it like any other text)."""
    if value in (None, {}, []):
        return ""
    return json.dumps(json.loads(to_json(value)), indent=2, ensure_ascii=False)


FILTERS: dict[str, Callable[..., Any]] = {
    "guardrail_rows": guardrail_rows,
    "gate_rows": gate_rows,
    "evidence_facts": evidence_facts,
    "evidence_json": evidence_json,
    "tone": tone_of,
    "trigger_text": trigger_text,
}
"""The filters :func:`shipyard.ui.rendering.templates` adds for the roll-out and cycle tables."""
