"""Delivery: how live traffic is split between a model's versions, and roll-outs over it.

``SequentialTest`` compares a candidate with the champion so that checking at every poll
of a canary step does not inflate false alarms (a one-sided mixture SPRT). A ``Lease`` in
the control plane makes sure only one agent acts at a time.

The names are re-exported lazily (PEP 562): ``shipyard rollout status`` imports
:mod:`shipyard.delivery.rollout` without paying for SciPy, which only the guardrails and
the sequential test need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.delivery.guardrails import GuardrailReport, evaluate_guardrails
    from shipyard.delivery.lease import Lease, LeaseKeeper, LeaseState
    from shipyard.delivery.rollout import (
        Rollout,
        abort_rollout,
        active_rollout,
        advance,
        complete_rollout,
        pause_rollout,
        resume_rollout,
        start_rollout,
    )
    from shipyard.delivery.sequential import (
        Decision,
        MeanStats,
        ProportionStats,
        SequentialTest,
    )
    from shipyard.store.traffic import TrafficSettings, read_traffic, write_traffic

_HOMES = {
    "GuardrailReport": "shipyard.delivery.guardrails",
    "evaluate_guardrails": "shipyard.delivery.guardrails",
    "Lease": "shipyard.delivery.lease",
    "LeaseKeeper": "shipyard.delivery.lease",
    "LeaseState": "shipyard.delivery.lease",
    "Rollout": "shipyard.delivery.rollout",
    "abort_rollout": "shipyard.delivery.rollout",
    "active_rollout": "shipyard.delivery.rollout",
    "advance": "shipyard.delivery.rollout",
    "complete_rollout": "shipyard.delivery.rollout",
    "pause_rollout": "shipyard.delivery.rollout",
    "resume_rollout": "shipyard.delivery.rollout",
    "start_rollout": "shipyard.delivery.rollout",
    "Decision": "shipyard.delivery.sequential",
    "MeanStats": "shipyard.delivery.sequential",
    "ProportionStats": "shipyard.delivery.sequential",
    "SequentialTest": "shipyard.delivery.sequential",
    "TrafficSettings": "shipyard.store.traffic",
    "read_traffic": "shipyard.store.traffic",
    "write_traffic": "shipyard.store.traffic",
}

__all__ = [
    "Decision",
    "GuardrailReport",
    "Lease",
    "LeaseKeeper",
    "LeaseState",
    "MeanStats",
    "ProportionStats",
    "Rollout",
    "SequentialTest",
    "TrafficSettings",
    "abort_rollout",
    "active_rollout",
    "advance",
    "complete_rollout",
    "evaluate_guardrails",
    "pause_rollout",
    "read_traffic",
    "resume_rollout",
    "start_rollout",
    "write_traffic",
]


def __getattr__(name: str) -> Any:
    """Import a re-exported name from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shipyard.delivery' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
