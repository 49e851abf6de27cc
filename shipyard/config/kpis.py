"""The ``kpis`` section: business KPIs as SQL over the team's own tables, beside model quality."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["KpiSettings"]


class KpiSettings(Section):
    """One business KPI, read with DuckDB and joined to the prediction log."""

    name: str = Field(
        ..., min_length=1, max_length=100, description="The KPI's name, as panels show it."
    )
    sql: str = Field(
        ...,
        min_length=1,
        description="The query giving the KPI's values: columns request_id and value (join: "
        "request_id) or time and value (join: time). DuckDB reads files in it, e.g. "
        "read_csv('outcomes.csv') or read_parquet('kpis/*.parquet'); with source set, "
        "the query runs on that PostgreSQL database instead.",
    )
    join: Literal["request_id", "time"] = Field(
        "request_id",
        description="How values meet predictions: by request id, or by time bucket.",
    )
    bucket: str = Field(
        "1h", pattern=r"^\d+[smhd]$", description="Time bucket the KPI is averaged over."
    )
    source: str | None = Field(
        None,
        description="A PostgreSQL URL (postgresql://…) whose table the query reads; unset: "
        "DuckDB runs the query (files, relative to the project folder).",
    )
    higher_is_better: bool = Field(True, description="Whether a larger value is good.")
