"""What a server says about itself: ready or not, and what is degraded.

Readiness answers one question for a load balancer: should this worker get traffic?
A worker that is serving its model is ready, even while something around it is wrong
(the database or the bucket is unreachable, a challenger failed to load, an alias
moved outside Shipyard): it keeps answering with what it has, and says what is wrong under
``degraded``. The one exception is the prediction log with ``serving.require_log``:
then a worker whose log writes fail is taken out of rotation, because every
prediction it answered would go unrecorded.

The same reasons feed the ``shipyard_degraded{reason}`` gauge, so an alert sees what
the readiness probe sees. Liveness is separate and never depends on any of this: a
restart fixes none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.logs.writer import PredictionLogWriter
    from shipyard.serving.hot_swap import ModelSlot

__all__ = ["REASONS", "Health", "HealthCheck"]

# Every reason a server can be degraded for; the gauge reports each as 0 or 1.
REASONS = (
    "database",
    "prediction_log",
    "model_load",
    "registry_drift",
    "artifact_mismatch",
    "storage",
)


@dataclass(frozen=True)
class Health:
    """One look at a worker: ready for traffic or not, and each degraded reason's detail."""

    ready: bool
    degraded: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The readiness body's ``ready`` and ``degraded`` keys."""
        return {"ready": self.ready, "degraded": dict(self.degraded)}


class HealthCheck:
    """Looks at the slot and the log writers; ``require_log`` makes a failing log unready."""

    def __init__(
        self,
        slot: ModelSlot,
        writers: Callable[[], list[PredictionLogWriter]],
        *,
        require_log: bool = False,
    ) -> None:
        self.slot = slot
        self.writers = writers
        self.require_log = require_log

    def __call__(self) -> Health:
        """The worker's health now (cheap: no I/O)."""
        degraded: dict[str, Any] = {}
        status = dict(self.slot.status)  # the watcher writes it from its thread
        if "database" in status:
            degraded["database"] = status["database"]
        if "load_error" in status:
            degraded["model_load"] = status["load_error"]
        if "storage" in status:  # the bucket does not answer: serving what is loaded
            degraded["storage"] = status["storage"]
        details = self.slot.details()
        if "registry_drift" in details:
            degraded["registry_drift"] = details["registry_drift"]
        if "artifact_mismatch" in details:
            degraded["artifact_mismatch"] = details["artifact_mismatch"]
        failing = {
            writer.kind: problem
            for writer in self.writers()
            if (problem := log_problem(writer)) is not None
        }
        if failing:
            degraded["prediction_log"] = failing
        ready = not (self.require_log and failing)
        return Health(ready, degraded)


def log_problem(writer: PredictionLogWriter) -> dict[str, Any] | None:
    """What is wrong with ``writer``'s writes now, or None when they succeed.

    A writer with a ``health`` report (``failing``, ``reason``, lost rows …) is read
    through it; one without is failing while its last write error stands.
    """
    health = getattr(writer, "health", None)
    if health is not None:
        return dict(health.to_dict()) if health.failing else None
    error = writer.last_error
    if error is None:
        return None
    return {"failing": True, "reason": str(error).splitlines()[0], "lost_rows": writer.dropped}
