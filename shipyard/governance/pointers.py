"""What servers trust: the pointers Shipyard recorded, and the aliases that drifted from them.

The pointers themselves (and :class:`AliasDrift`) live in :mod:`shipyard.registry.pointers`,
below serving; this module is the project-level entry point that ``shipyard audit
verify`` and the agent call:

    for drift in alias_drift(project):
        print(drift.summary)   # churn@champion: MLflow points at 3, but Shipyard recorded 1, …
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.access import Scope
from shipyard.registry.pointers import AliasDrift, registry_drift, trusted_version

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["AliasDrift", "alias_drift", "trusted_version"]


def alias_drift(project: Project) -> list[AliasDrift]:
    """Every alias where MLflow disagrees with the pointer Shipyard recorded, by model and alias.

    Lists recorded pointers that MLflow moved or dropped, and MLflow aliases that no
    recorded (audited) move ever set. Needs ``audit:read``.
    """
    project.authorize(Scope.AUDIT_READ)
    return registry_drift(project.store, project.client)
