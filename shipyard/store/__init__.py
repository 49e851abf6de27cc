"""Control-plane state: tables, migrations, sessions and the event log."""

from shipyard.store.engine import HEAD_REVISION, create_store_engine, current_revision, upgrade
from shipyard.store.event_kinds import ALL_KINDS, EventKind, kind_of
from shipyard.store.events import Event
from shipyard.store.store import Store
from shipyard.store.tables import (
    AliasMoveRow,
    ApprovalRow,
    AuditHeadRow,
    Base,
    CycleRow,
    DatasetRow,
    DeploymentRow,
    DetectorStateRow,
    EvaluationRow,
    EventRow,
    ExperimentRow,
    FeatureViewRow,
    LeaseRow,
    MaterializationRow,
    MonitorRunRow,
    RolloutRow,
    TokenRow,
    UsageRow,
)

__all__ = [
    "ALL_KINDS",
    "HEAD_REVISION",
    "AliasMoveRow",
    "ApprovalRow",
    "AuditHeadRow",
    "Base",
    "CycleRow",
    "DatasetRow",
    "DeploymentRow",
    "DetectorStateRow",
    "EvaluationRow",
    "Event",
    "EventKind",
    "EventRow",
    "ExperimentRow",
    "FeatureViewRow",
    "LeaseRow",
    "MaterializationRow",
    "MonitorRunRow",
    "RolloutRow",
    "Store",
    "TokenRow",
    "UsageRow",
    "create_store_engine",
    "current_revision",
    "kind_of",
    "upgrade",
]
