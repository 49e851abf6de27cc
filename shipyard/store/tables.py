"""Control-plane tables.

Every table is prefixed ``shipyard_`` because MLflow's own tables (``datasets``,
``alembic_version`` …) live in the same database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AliasMoveRow",
    "ApprovalRow",
    "AuditHeadRow",
    "Base",
    "CycleRow",
    "DatasetRow",
    "DeploymentRow",
    "DetectorStateRow",
    "EvaluationRow",
    "EventRow",
    "ExperimentRow",
    "FeatureViewRow",
    "LeaseRow",
    "LlmCapPolicyRow",
    "LlmCapUsageRow",
    "LlmEvalRow",
    "LlmPriceRow",
    "MaterializationRow",
    "MonitorRunRow",
    "RolloutRow",
    "TokenRow",
    "UsageRow",
]


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the control-plane tables."""


class EventRow(Base):
    """One state change, and one leaf of the audit log: who did what to which subject.

    ``seq`` is the leaf's position (1, 2, 3 … with no gaps); ``leaf_hash`` is the RFC 6962
    leaf hash of the row's canonical bytes (``shipyard.store.audit_leaf``).
    """

    __tablename__ = "shipyard_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    token_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    role: Mapped[str | None] = mapped_column(String(40), nullable=True)
    kind: Mapped[str] = mapped_column(String(100), nullable=False)
    subject: Mapped[str] = mapped_column(String(500), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    request_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    before: Mapped[str | None] = mapped_column(String(64), nullable=True)
    after: Mapped[str | None] = mapped_column(String(64), nullable=True)
    leaf_hash: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        Index("ix_shipyard_events_kind_at", "kind", "at"),
        Index("ix_shipyard_events_subject_at", "subject", "at"),
    )


class AuditHeadRow(Base):
    """The audit log's head (one row): its size, root and compact range.

    Appending a leaf updates this row first, so concurrent writers queue on it and each
    leaf gets the next ``seq``; the compact range makes each append O(log n).
    """

    __tablename__ = "shipyard_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    root: Mapped[str] = mapped_column(String(64), nullable=False)
    frontier: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now, nullable=False
    )


class TokenRow(Base):
    """An API token: stored only as a SHA-256 hash, with its role, scopes and grants."""

    __tablename__ = "shipyard_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the token's public part
    name: Mapped[str] = mapped_column(String(200), nullable=False)  # the principal it names
    role: Mapped[str] = mapped_column(String(40), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    grants: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    replaces: Mapped[str | None] = mapped_column(String(40), nullable=True)  # rotated from

    __table_args__ = (Index("ix_shipyard_tokens_name", "name"),)


class DatasetRow(Base):
    """A dataset snapshot known to the control plane, by content digest."""

    __tablename__ = "shipyard_datasets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    format: Mapped[str] = mapped_column(String(20), nullable=False)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False)
    columns: Mapped[int] = mapped_column(Integer, nullable=False)
    stored_uri: Mapped[str] = mapped_column(Text, nullable=False)
    dvc_md5: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dvc_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )


_ID = BigInteger().with_variant(Integer, "sqlite")


class EvaluationRow(Base):
    """A scorecard result for one model version on one golden set."""

    __tablename__ = "shipyard_evaluations"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(20), nullable=False)
    golden_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    champion_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    passed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    report_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )

    __table_args__ = (Index("ix_shipyard_evaluations_model_version", "model", "version"),)


class AliasMoveRow(Base):
    """One move of an alias (champion, challenger): who, from which version to which, why."""

    __tablename__ = "shipyard_alias_moves"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    alias: Mapped[str] = mapped_column(String(100), nullable=False)
    from_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    forced: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, nullable=False)

    __table_args__ = (Index("ix_shipyard_alias_moves_model_alias", "model", "alias", "id"),)


class ApprovalRow(Base):
    """An approval of one model version for promotion to champion."""

    __tablename__ = "shipyard_approvals"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(20), nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    comment: Mapped[str] = mapped_column(Text, nullable=False, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, nullable=False)

    __table_args__ = (Index("ix_shipyard_approvals_model_version", "model", "version"),)


class DeploymentRow(Base):
    """A model's serving generation and traffic settings, polled by servers.

    The generation is bumped on every alias move and every traffic change.
    """

    __tablename__ = "shipyard_deployments"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    traffic: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now, nullable=False
    )


class MonitorRunRow(Base):
    """One monitor run: the window it read, every signal it scored, and its report."""

    __tablename__ = "shipyard_monitor_runs"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(20), nullable=False)
    window_spec: Mapped[str] = mapped_column(String(200), nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    level: Mapped[str] = mapped_column(String(20), nullable=False)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    report_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )

    __table_args__ = (Index("ix_shipyard_monitor_runs_model", "model", "created_at"),)


class LeaseRow(Base):
    """A named lease (e.g. the agent's): its holder, its term and when it runs out.

    ``token`` goes up on every acquisition and never down (rows are never deleted), so
    it is a fencing token: a write that carries an older token comes from a stale holder.
    """

    __tablename__ = "shipyard_leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), nullable=False)
    token: Mapped[int] = mapped_column(BigInteger, nullable=False)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    renewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class RolloutRow(Base):
    """One roll-out of a candidate version: strategy, steps, where it is, and its history."""

    __tablename__ = "shipyard_rollouts"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    candidate: Mapped[str] = mapped_column(String(20), nullable=False)
    champion: Mapped[str | None] = mapped_column(String(20), nullable=True)
    strategy: Mapped[str] = mapped_column(String(20), nullable=False)
    steps: Mapped[list[float]] = mapped_column(JSON, nullable=False)
    step_index: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    step_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    min_requests: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    step_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now, nullable=False
    )

    __table_args__ = (Index("ix_shipyard_rollouts_model_state", "model", "state"),)


class CycleRow(Base):
    """One continuous-training cycle: its trigger, the gates it went through, the outcome."""

    __tablename__ = "shipyard_ct_cycles"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    cause: Mapped[str] = mapped_column(String(500), nullable=False)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    candidate: Mapped[str | None] = mapped_column(String(20), nullable=True)
    champion: Mapped[str | None] = mapped_column(String(20), nullable=True)
    rollout_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now, nullable=False
    )

    __table_args__ = (Index("ix_shipyard_ct_cycles_model_state", "model", "state"),)


class UsageRow(Base):
    """One server worker's compute over one interval for one (model, version, role).

    Written by each worker's usage recorder every ``cost.flush_seconds``: how many
    predictions it answered for the route arm, its share of the worker's CPU (and GPU)
    seconds, and what that cost in ``currency``.
    """

    __tablename__ = "shipyard_usage"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    host: Mapped[str] = mapped_column(String(200), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(20), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    cpu_seconds: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    cost: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)

    __table_args__ = (Index("ix_shipyard_usage_model_at", "model", "at"),)


class DetectorStateRow(Base):
    """The persisted state of one sequential change detector on one stream of one version.

    ``stream`` names what the detector watches (``error``, ``prediction`` or
    ``feature:NAME``); ``state`` is the detector's own ``to_dict()``; ``cursor`` says how
    far the feed has read the logs, so a restarted agent resumes where it stopped.
    """

    __tablename__ = "shipyard_detector_states"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(20), nullable=False)
    stream: Mapped[str] = mapped_column(String(300), nullable=False)
    detector: Mapped[str] = mapped_column(String(40), nullable=False)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    samples: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    alarms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now, nullable=False
    )

    __table_args__ = (
        Index(
            "ux_shipyard_detector_states_key", "model", "version", "stream", "detector", unique=True
        ),
    )


class ExperimentRow(Base):
    """One A/B experiment: its arms and split, the metric it decides on, where it is.

    ``state`` is ``running``, ``decided`` (a winner or "no difference" was declared),
    ``promoting`` (the winner is on its way through the gates), ``promoted`` or
    ``stopped``; ``decision`` holds the sequential test's last verdict and numbers.
    """

    __tablename__ = "shipyard_experiments"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    arms: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    split: Mapped[list[float]] = mapped_column(JSON, nullable=False)
    metric: Mapped[str] = mapped_column(String(200), nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    min_effect: Mapped[float | None] = mapped_column(Float, nullable=True)
    alpha: Mapped[float] = mapped_column(Float, nullable=False)
    power: Mapped[float] = mapped_column(Float, nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    winner: Mapped[str | None] = mapped_column(String(20), nullable=True)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    started_by: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now, nullable=False
    )

    __table_args__ = (
        Index("ix_shipyard_experiments_model_state", "model", "state"),
        Index("ux_shipyard_experiments_model_name", "model", "name", unique=True),
    )


class FeatureViewRow(Base):
    """One version of one feature view as applied: its definition and who applied it.

    ``version`` is the digest of ``definition``; the registry keeps every version, and
    the newest ``applied_at`` per name is the current one.
    """

    __tablename__ = "shipyard_feature_views"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # "view" | "on_demand"
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    source_schema: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    applied_by: Mapped[str] = mapped_column(String(200), nullable=False)
    applied_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )

    __table_args__ = (
        Index("ux_shipyard_feature_views_name_version", "name", "version", unique=True),
    )


class MaterializationRow(Base):
    """One materialisation of a feature view into the online store.

    It copied the rows whose event time is in ``(start_ts, end_ts]`` (``start_ts`` None:
    from the beginning) as the source held them at ``started_at``; ``max_event_ts`` is
    the newest event time it wrote. "As served" training sets replay these rows.
    """

    __tablename__ = "shipyard_materializations"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    view: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    backend: Mapped[str] = mapped_column(String(20), nullable=False)
    start_ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    max_event_ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # running | done | failed
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")

    __table_args__ = (Index("ix_shipyard_materializations_view", "view", "finished_at"),)


class LlmPriceRow(Base):
    """One price of a date-effective, versioned LLM price table.

    ``model_pattern`` is a regular expression matched against the provider's model name
    (Langfuse's convention); ``usage_type`` is ``input``, ``output`` or ``cached_input``;
    the price is per token from ``effective_from`` on. An import adds a new
    ``table_version``; old rows stay, so a cost computed earlier can be explained later.
    """

    __tablename__ = "shipyard_llm_prices"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    table_version: Mapped[int] = mapped_column(Integer, nullable=False)
    model_pattern: Mapped[str] = mapped_column(String(300), nullable=False)
    usage_type: Mapped[str] = mapped_column(String(20), nullable=False)
    price_per_token: Mapped[float] = mapped_column(Float, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)  # manual, litellm:<digest> …
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )

    __table_args__ = (Index("ix_shipyard_llm_prices_version", "table_version", "usage_type"),)


class LlmCapPolicyRow(Base):
    """A stored per-tenant cap: ``quota`` requests or cents per ``window_seconds``."""

    __tablename__ = "shipyard_llm_cap_policies"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    tenant: Mapped[str] = mapped_column(String(200), nullable=False)  # "*" for every tenant
    unit: Mapped[str] = mapped_column(String(20), nullable=False)  # request | cents
    quota: Mapped[float] = mapped_column(Float, nullable=False)
    window_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )

    __table_args__ = (Index("ix_shipyard_llm_cap_policies_model", "model", "tenant"),)


class LlmCapUsageRow(Base):
    """What a tenant used in one window of one cap, summed over every worker."""

    __tablename__ = "shipyard_llm_cap_usage"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    tenant: Mapped[str] = mapped_column(String(200), nullable=False)
    unit: Mapped[str] = mapped_column(String(20), nullable=False)
    window_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)

    __table_args__ = (
        Index(
            "ux_shipyard_llm_cap_usage_window",
            "model",
            "tenant",
            "unit",
            "window_seconds",
            "window_start",
            unique=True,
        ),
    )


class LlmEvalRow(Base):
    """One judge run over a gold set or a production sample, for one LLM version.

    ``scores`` holds the mean judge score per rubric criterion (1-5) and overall;
    ``result`` the whole typed result (per-item verdicts, agreement with human labels).
    """

    __tablename__ = "shipyard_llm_evals"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(20), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # gold | production
    gold_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    judge: Mapped[str] = mapped_column(String(300), nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    guardrail_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    hallucination_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    kappa: Mapped[float | None] = mapped_column(Float, nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, nullable=False
    )

    __table_args__ = (Index("ix_shipyard_llm_evals_model_version", "model", "version", "kind"),)
