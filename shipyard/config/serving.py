"""The ``serving`` section: the inference server and its prediction log."""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

from pydantic import Field, field_validator

from shipyard.config._section import Section

__all__ = ["ServingSettings"]


class ServingSettings(Section):
    """The inference server and its prediction log; `shipyard serve` flags override."""

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    auth: Literal["auto", "required", "off"] = Field(
        "auto",
        description="required: predictions need a token with serve:invoke. auto: required "
        "when the database is shared, off on a local SQLite project. Feedback always needs "
        "labels:write.",
    )
    metrics_auth: Literal["open", "required"] = Field(
        "open", description="required: /metrics needs a token with models:read."
    )
    verify_signatures: Literal["auto", "required", "warn", "off"] = Field(
        "auto",
        description="Check a signed version's artifact digest against its card when loading "
        "it. auto: required once the project has a signing key. required: a mismatch is "
        "refused and the previous version keeps serving; warn: served, with a warning.",
    )
    port: int = Field(8080, ge=0, le=65535, description="TCP port.")
    workers: int = Field(1, ge=1, description="Server processes sharing the port.")
    max_batch_size: int = Field(
        1, ge=1, description="Coalesce concurrent requests up to this many rows (1 = off)."
    )
    max_wait_ms: float = Field(
        0.0,
        ge=0.0,
        description="Longest a request waits for company; 0 batches only what queued while "
        "the model was busy.",
    )
    sticky_key: str | None = Field(
        None,
        pattern=r"^(header|input):\S+$",
        description="Routing key that keeps a caller on one version: header:<name> or "
        "input:<column>. Unset: each request draws at random.",
    )
    shadow_queue: int = Field(
        1000, ge=1, description="Shadow predictions that may wait; beyond this they are dropped."
    )
    max_body_mb: float = Field(
        10.0,
        gt=0,
        description="Largest request body, and largest body after gzip/deflate decompression "
        "(larger: 413).",
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A request whose body has not fully arrived after this long gets 408 and "
        "its connection is closed.",
    )
    require_log: bool = Field(
        False,
        description="Readiness turns false while prediction-log writes fail, so a load "
        "balancer stops sending traffic that could not be logged.",
    )
    log_fsync_seconds: float = Field(
        1.0,
        ge=0,
        description="How often each worker's prediction journal is fsynced: a crash of the "
        "whole machine loses at most this much (0: fsync every write). A killed worker "
        "loses nothing either way.",
    )
    poll_seconds: float = Field(
        0.5, gt=0, le=5, description="How often each worker checks for alias and traffic changes."
    )
    logs: str = Field(
        ".shipyard/logs",
        description="Root of the prediction and label logs (Parquet, partitioned by model "
        "and date): a folder, or a bucket URL (s3://bucket/prefix). Unset while "
        "artifact_root is a bucket URL: <artifact_root>/logs.",
    )
    log_roll_rows: int = Field(10_000, ge=1, description="Rows per prediction-log file at most.")
    log_roll_seconds: float = Field(
        5.0, gt=0, description="A log file is written at least this often while traffic flows."
    )

    @field_validator("logs", mode="before")
    @classmethod
    def _logs_path_as_text(cls, value: object) -> object:
        """A ``Path`` given in code is kept as its text."""
        return str(value) if isinstance(value, PurePath) else value

    @field_validator("auth", "verify_signatures", mode="before")
    @classmethod
    def _off_as_written(cls, value: object) -> object:
        """YAML reads a bare ``off`` as false (so does ``SHIPYARD_SERVING__AUTH=off``)."""
        return "off" if value is False else value
