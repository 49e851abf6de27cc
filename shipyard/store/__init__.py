"""Control-plane state: tables, migrations, sessions and the event log."""

from shipyard.store.engine import HEAD_REVISION, create_store_engine, current_revision, upgrade
from shipyard.store.events import Event, as_utc, current_actor
from shipyard.store.store import Store
from shipyard.store.tables import (
    AliasMoveRow,
    ApprovalRow,
    Base,
    CycleRow,
    DatasetRow,
    DeploymentRow,
    EvaluationRow,
    EventRow,
    LeaseRow,
    MonitorRunRow,
    RolloutRow,
)

__all__ = [
    "HEAD_REVISION",
    "AliasMoveRow",
    "ApprovalRow",
    "Base",
    "CycleRow",
    "DatasetRow",
    "DeploymentRow",
    "EvaluationRow",
    "Event",
    "EventRow",
    "LeaseRow",
    "MonitorRunRow",
    "RolloutRow",
    "Store",
    "as_utc",
    "create_store_engine",
    "current_actor",
    "current_revision",
    "upgrade",
]
