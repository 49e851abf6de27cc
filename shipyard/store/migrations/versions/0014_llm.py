"""LLM workloads: price tables, per-tenant caps and their usage, judge evaluations.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shipyard_llm_prices",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("table_version", sa.Integer, nullable=False),
        sa.Column("model_pattern", sa.String(300), nullable=False),
        sa.Column("usage_type", sa.String(20), nullable=False),
        sa.Column("price_per_token", sa.Float, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("effective_from", _TS, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index(
        "ix_shipyard_llm_prices_version", "shipyard_llm_prices", ["table_version", "usage_type"]
    )
    op.create_table(
        "shipyard_llm_cap_policies",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("quota", sa.Float, nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index(
        "ix_shipyard_llm_cap_policies_model", "shipyard_llm_cap_policies", ["model", "tenant"]
    )
    op.create_table(
        "shipyard_llm_cap_usage",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False),
        sa.Column("window_start", _TS, nullable=False),
        sa.Column("used", sa.Float, nullable=False),
    )
    op.create_index(
        "ux_shipyard_llm_cap_usage_window",
        "shipyard_llm_cap_usage",
        ["model", "tenant", "unit", "window_seconds", "window_start"],
        unique=True,
    )
    op.create_table(
        "shipyard_llm_evals",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("gold_digest", sa.String(64), nullable=True),
        sa.Column("judge", sa.String(300), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("guardrail_rate", sa.Float, nullable=True),
        sa.Column("hallucination_rate", sa.Float, nullable=True),
        sa.Column("kappa", sa.Float, nullable=True),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index(
        "ix_shipyard_llm_evals_model_version", "shipyard_llm_evals", ["model", "version", "kind"]
    )


def downgrade() -> None:
    op.drop_index("ix_shipyard_llm_evals_model_version", "shipyard_llm_evals")
    op.drop_table("shipyard_llm_evals")
    op.drop_index("ux_shipyard_llm_cap_usage_window", "shipyard_llm_cap_usage")
    op.drop_table("shipyard_llm_cap_usage")
    op.drop_index("ix_shipyard_llm_cap_policies_model", "shipyard_llm_cap_policies")
    op.drop_table("shipyard_llm_cap_policies")
    op.drop_index("ix_shipyard_llm_prices_version", "shipyard_llm_prices")
    op.drop_table("shipyard_llm_prices")
