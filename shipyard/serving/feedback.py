"""``POST /v1/feedback``: labels that arrive after the prediction, joined later by request id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shipyard.errors import RequestError
from shipyard.logs.writer import LabelRecord

__all__ = ["MAX_FEEDBACK_ITEMS", "parse_feedback"]

MAX_FEEDBACK_ITEMS = 10_000


def parse_feedback(payload: Any, model: str) -> list[LabelRecord]:
    """``{"request_id", "label"}`` or a list of them → label records (400 naming the item)."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise RequestError('feedback is empty: send {"request_id": …, "label": …} or a list')
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise RequestError(
            f"feedback has {len(items)} items; send at most {MAX_FEEDBACK_ITEMS} per request"
        )
    now = datetime.now(UTC)
    records = []
    for index, item in enumerate(items):
        where = f"item {index}" if isinstance(payload, list) else "feedback"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object with request_id and label")
        request_id = item.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise RequestError(f"{where}: request_id must be a non-empty string")
        if "label" not in item:
            raise RequestError(f"{where}: label is missing")
        unknown = set(item) - {"request_id", "label"}
        if unknown:
            raise RequestError(
                f"{where}: unknown fields {sorted(unknown)}; only request_id and label are accepted"
            )
        records.append(
            LabelRecord(request_id=request_id, time=now, model=model, label=item["label"])
        )
    return records
