"""Delivery: how live traffic is split between a model's versions, and roll-outs over it.

``SequentialTest`` compares a candidate with the champion so that checking at every poll
of a canary step does not inflate false alarms (a one-sided mixture SPRT).
"""

from shipyard.delivery.sequential import (
    Decision,
    MeanStats,
    ProportionStats,
    SequentialTest,
)
from shipyard.delivery.traffic import TrafficSettings, read_traffic, write_traffic

__all__ = [
    "Decision",
    "MeanStats",
    "ProportionStats",
    "SequentialTest",
    "TrafficSettings",
    "read_traffic",
    "write_traffic",
]
