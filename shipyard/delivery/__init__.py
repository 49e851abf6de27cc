"""Delivery: how live traffic is split between a model's versions, and roll-outs over it.

``SequentialTest`` compares a candidate with the champion so that checking at every poll
of a canary step does not inflate false alarms (a one-sided mixture SPRT). A ``Lease`` in
the control plane makes sure only one agent acts at a time.
"""

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
