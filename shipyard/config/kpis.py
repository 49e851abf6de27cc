"""The ``kpis`` section: business KPIs as SQL over the team's own tables, beside model quality.

    kpis:
      - name: conversion
        sql: SELECT request_id, converted AS value FROM read_csv('outcomes.csv')
        join: request_id
        bucket: 1h
      - name: fraud_losses
        sql: SELECT day AS time, sum(amount) AS value FROM losses GROUP BY day
        join: time
        bucket: 1d
        source: postgresql://analytics@db.internal/finance
        higher_is_better: false

:mod:`shipyard.monitoring.kpis` runs each query and joins it to the prediction log.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shipyard.config._section import Section

__all__ = ["KpiSettings"]

_POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")


class KpiSettings(Section):
    """One business KPI, read with DuckDB and joined to the prediction log."""

    name: str = Field(
        ..., min_length=1, max_length=100, description="The KPI's name, as panels show it."
    )
    sql: str = Field(
        ...,
        min_length=1,
        description="One SELECT giving the KPI's values: columns request_id and value (join: "
        "request_id) or time and value (join: time). DuckDB reads files in it, e.g. "
        "read_csv('outcomes.csv') or read_parquet('kpis/*.parquet'), relative to the "
        "project folder; with source set, the query runs on that PostgreSQL database instead.",
    )
    join: Literal["request_id", "time"] = Field(
        "request_id",
        description="How values meet predictions: by request id (each value lands in its "
        "prediction's time bucket and arm), or by time bucket.",
    )
    bucket: str = Field(
        "1h",
        pattern=r"^[1-9]\d*[smhdw]$",
        description="Time bucket the KPI and model quality are averaged over (30m, 1h, 1d).",
    )
    source: str | None = Field(
        None,
        description="A PostgreSQL URL (postgresql://…) whose tables the query reads; unset: "
        "DuckDB runs the query (files, relative to the project folder).",
    )
    model: str | None = Field(
        None,
        min_length=1,
        description="The model whose predictions the KPI is joined to; unset: every model.",
    )
    timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=600,
        description="Longest a KPI query may run before it is stopped and reported as an error.",
    )
    higher_is_better: bool = Field(True, description="Whether a larger value is good.")

    @field_validator("source")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        """Only PostgreSQL is a source besides DuckDB's own file readers."""
        if value is not None and not value.startswith(_POSTGRES_SCHEMES):
            raise ValueError(
                "source must be a PostgreSQL URL (postgresql://user@host/db); for CSV or "
                "Parquet files leave source unset and read them in the sql with "
                "read_csv('…') or read_parquet('…')"
            )
        return value

    def applies_to(self, model: str) -> bool:
        """Whether this KPI is joined to ``model``'s predictions."""
        return self.model is None or self.model == model
