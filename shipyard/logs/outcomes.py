"""The outcome log: business outcomes of earlier predictions (revenue, a conversion, a cost).

A client posts an outcome to ``POST /v1/feedback`` as
``{"request_id": "…", "outcome": {"name": "revenue", "value": 12.5}}``; it is joined
to its prediction by request id, like a label, and A/B experiments compare arms on its
mean (``--metric outcome:revenue``). Outcomes are facts that may be revised (a refund),
so a later value for the same request and name *replaces* the earlier one for readers
(each request's latest by ``time``); every value stays in the log with who sent it.
That is why, unlike labels, there is no conflict rule: send the request's total so far.

:class:`OutcomeBook` writes each batch synchronously as one Parquet file per day under
``<root>/outcomes/model=<name>/``, then runs the caller's ``commit`` (the audit event);
if that fails the file is removed, so a batch is in the log and the audit log together
or in neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import pyarrow as pa

from shipyard.logs.batch_files import remove_files, write_day_files
from shipyard.logs.kinds import LogKind, register
from shipyard.logs.root import log_root
from shipyard.storage.location import Location

__all__ = ["OUTCOME_SCHEMA", "OutcomeBook", "OutcomeReceipt", "OutcomeRecord", "Outcomes"]

OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("model", pa.string()),
        pa.field("name", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("sender", pa.string()),
        pa.field("token_id", pa.string()),
        pa.field("received_at", pa.timestamp("us", tz="UTC")),
    ]
)
"""Columns of the outcome log: which outcome, its value, who sent it and when."""


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """One outcome of an earlier prediction, joined to it by ``request_id``."""

    request_id: str
    time: datetime
    model: str
    name: str
    value: float
    sender: str = "anonymous"
    token_id: str | None = None
    received_at: datetime | None = None


@register
class Outcomes(LogKind):
    """The outcome log: named numeric outcomes joined to predictions by ``request_id``."""

    name = "outcomes"
    schema = OUTCOME_SCHEMA
    record_types = (OutcomeRecord,)

    def to_table(self, records: Sequence[Any]) -> pa.Table:
        """One row per outcome."""
        stamp = OUTCOME_SCHEMA.field("time").type
        columns: dict[str, pa.Array] = {
            "request_id": pa.array([str(r.request_id) for r in records], pa.string()),
            "time": pa.array([r.time for r in records], stamp),
            "model": pa.array([str(r.model) for r in records], pa.string()),
            "name": pa.array([str(r.name) for r in records], pa.string()),
            "value": pa.array([float(r.value) for r in records], pa.float64()),
            "sender": pa.array([str(r.sender) for r in records], pa.string()),
            "token_id": pa.array([r.token_id for r in records], pa.string()),
            "received_at": pa.array(
                [r.time if r.received_at is None else r.received_at for r in records], stamp
            ),
        }
        return pa.Table.from_pydict(columns, schema=OUTCOME_SCHEMA)


@dataclass(frozen=True)
class OutcomeReceipt:
    """What a batch of outcomes did: how many, of which names, by whom, in which files."""

    model: str
    request_ids: tuple[str, ...]
    names: tuple[str, ...]
    files: tuple[PurePath, ...] = ()
    sender: str = "anonymous"
    token_id: str | None = None

    def audit_payload(self) -> dict[str, Any]:
        """The audit event's payload: counts, names and the first request ids."""
        return {
            "log": "outcomes",
            "count": len(self.request_ids),
            "names": list(self.names),
            "request_ids": list(self.request_ids[:5]),
            "sender": self.sender,
            "token_id": self.token_id,
            "files": [path.name for path in self.files],
        }


class OutcomeBook:
    """Synchronous writes to the outcome log under ``root`` (a folder or a bucket)."""

    def __init__(self, root: Path | Location) -> None:
        self.location = log_root(root)

    def write(
        self,
        records: Sequence[OutcomeRecord],
        *,
        commit: Callable[[OutcomeReceipt], None] | None = None,
    ) -> OutcomeReceipt:
        """Write one batch for one model, then ``commit`` it (its file removed if that fails)."""
        if not records:
            raise ValueError("no outcomes to write")
        model = records[0].model
        if any(record.model != model for record in records):
            raise ValueError("one batch of outcomes is for one model")
        files = self._write_files(model, list(records))
        receipt = OutcomeReceipt(
            model=model,
            request_ids=tuple(r.request_id for r in records),
            names=tuple(sorted({r.name for r in records})),
            files=tuple(PurePosixPath(path) for path in files),
            sender=records[0].sender,
            token_id=records[0].token_id,
        )
        try:
            if commit is not None:
                commit(receipt)
        except BaseException:
            self._remove(files)
            raise
        return receipt

    def _write_files(self, model: str, records: list[OutcomeRecord]) -> list[str]:
        """One file per day the outcomes apply to (the log's date partition)."""
        return write_day_files(self.location, Outcomes(), model, records)

    def _remove(self, paths: Sequence[str]) -> None:
        remove_files(self.location, paths)
