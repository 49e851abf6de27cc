"""Traffic settings in the control plane: challenger weights and the shadow copy.

The champion is never named here: it is whatever the ``champion`` alias points at, and
it takes the share the challengers leave. So a promotion or a rollback needs no traffic
change, and a challenger that becomes champion simply stops being a challenger.
Writing settings bumps the model's serving generation, so every server picks them up
within one polling interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError
from shipyard.jsonable import Record
from shipyard.store.event_kinds import EventKind

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["TrafficSettings", "read_traffic", "write_traffic"]


@dataclass(frozen=True)
class TrafficSettings(Record):
    """Challenger versions with their live shares, and an optional shadow version."""

    challengers: dict[str, float] = field(default_factory=dict)
    shadow: str | None = None
    shadow_share: float = 1.0  # of requests copied to the shadow, when there is one

    def __post_init__(self) -> None:
        for version, weight in self.challengers.items():
            if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
                raise ConfigError(
                    f"Challenger {version} has weight {weight}.",
                    hint="Give each challenger a share between 0 and 1, e.g. 0.1 for 10 %.",
                )
        total = math.fsum(self.challengers.values())
        if total > 1.0 + 1e-9:
            raise ConfigError(
                f"Challenger weights add up to {total:g}, more than all traffic.",
                hint="Keep the challengers' shares at 1 or less; the champion gets the rest.",
            )
        if not (math.isfinite(self.shadow_share) and 0.0 <= self.shadow_share <= 1.0):
            raise ConfigError(
                f"Shadow share {self.shadow_share} is not between 0 and 1.",
                hint="Use e.g. 1.0 to copy every request to the shadow, 0.25 for a quarter.",
            )

    @property
    def empty(self) -> bool:
        """True when all traffic goes to the champion and nothing is shadowed."""
        return not any(self.challengers.values()) and (self.shadow is None or not self.shadow_share)

    def versions(self) -> set[str]:
        """Every version these settings send traffic to, live or shadow."""
        found = {v for v, weight in self.challengers.items() if weight > 0}
        if self.shadow is not None and self.shadow_share > 0:
            found.add(self.shadow)
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrafficSettings:
        """Settings from :meth:`to_dict`'s form; ``None`` means all traffic to the champion."""
        if not data:
            return cls()
        return cls(
            challengers={str(k): float(v) for k, v in (data.get("challengers") or {}).items()},
            shadow=None if data.get("shadow") is None else str(data["shadow"]),
            shadow_share=float(data.get("shadow_share", 1.0)),
        )


def read_traffic(store: Store, model: str) -> tuple[int, TrafficSettings]:
    """``model``'s serving generation and traffic settings."""
    generation, stored = store.deployment(model)
    return generation, TrafficSettings.from_dict(stored)


def write_traffic(store: Store, model: str, settings: TrafficSettings) -> int:
    """Store ``settings`` for ``model``, bump its generation and record an event."""
    generation = store.bump_generation(
        model, traffic=None if settings.empty else settings.to_dict()
    )
    store.record(
        EventKind.TRAFFIC_CHANGED,
        f"model:{model}",
        {**settings.to_dict(), "generation": generation},
    )
    return generation
