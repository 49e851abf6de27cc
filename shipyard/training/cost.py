"""What a training run costs: its CPU seconds (this process and its children), wall time,
GPU time where priced, and the amount in ``cost.currency``.

    meter = TrainingMeter.start()
    ...                                   # the run: data, training, logging, registering
    cost = meter.stop(config.cost)        # TrainingCost(cpu_seconds=…, amount=…, …)
    payload["cost"] = cost.to_dict()

CPU time is ``getrusage`` of ``RUSAGE_SELF`` plus ``RUSAGE_CHILDREN`` (user + system),
taken as a difference, so a training function that forks workers (joblib, a
subprocess) is counted once they are reaped. GPU time is the wall time × the GPUs a
run holds (``cost.gpus_per_training``), counted only when ``cost.gpu_hour`` is set.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.jsonable import Record

if TYPE_CHECKING:
    from shipyard.config.cost import CostSettings

__all__ = ["COST_METRIC", "CPU_METRIC", "TrainingCost", "TrainingMeter", "cpu_seconds"]

CPU_METRIC = "shipyard.cpu_seconds"
COST_METRIC = "shipyard.cost"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children so far."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass(frozen=True)
class TrainingCost(Record):
    """The compute one training run used, and its price (the ``cost`` event payload)."""

    cpu_seconds: float
    gpu_seconds: float
    wall_seconds: float
    amount: float
    currency: str


@dataclass(frozen=True)
class TrainingMeter:
    """CPU and wall clocks as a run starts; :meth:`stop` prices the difference."""

    cpu: float
    wall: float

    @classmethod
    def start(cls) -> TrainingMeter:
        """Read the clocks now."""
        return cls(cpu_seconds(), time.perf_counter())

    def stop(self, prices: CostSettings) -> TrainingCost:
        """What was used since :meth:`start`, priced with the ``cost`` section."""
        cpu = round(max(0.0, cpu_seconds() - self.cpu), 6)
        wall = round(max(0.0, time.perf_counter() - self.wall), 6)
        gpus = prices.gpus_per_training if prices.gpu_hour > 0 else 0
        gpu = round(wall * gpus, 6)
        amount = cpu * prices.cpu_hour / 3600 + gpu * prices.gpu_hour / 3600
        return TrainingCost(cpu, gpu, wall, amount, prices.currency)
