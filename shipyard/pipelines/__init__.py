"""Continuous training: triggers, guards against noise, gates, and the loop that runs them.

The agent ticks :class:`ContinuousTraining`; ``shipyard retrain NAME`` runs one cycle by
hand and ``shipyard ct status NAME`` shows the last cycles and their gates.
"""

from shipyard.pipelines.cycles import GATES, Cycle, active_cycle, list_cycles
from shipyard.pipelines.gates import GateResult, TrainingWindow
from shipyard.pipelines.guards import GuardDecision, PerformanceLoss, check_guards
from shipyard.pipelines.loop import ContinuousTraining
from shipyard.pipelines.triggers import DataWatch, Trigger, manual_trigger, next_fire

__all__ = [
    "GATES",
    "ContinuousTraining",
    "Cycle",
    "DataWatch",
    "GateResult",
    "GuardDecision",
    "PerformanceLoss",
    "TrainingWindow",
    "Trigger",
    "active_cycle",
    "check_guards",
    "list_cycles",
    "manual_trigger",
    "next_fire",
]
