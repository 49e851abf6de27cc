"""``POST /v1/feedback``: labels that arrive after the prediction, joined later by request id.

Feedback needs ``labels:write`` (the route guard puts the principal in
``request.scope["shipyard.principal"]``; without one the sender is anonymous). Each label
is kept with who sent it (principal and token id) and when the server took it.

When the server authenticates predictions, each prediction's request id is logged in its
caller's namespace (:func:`~shipyard.serving.request.namespaced`), and feedback is read
in its sender's: a client labels its own predictions, never another's that happens to
share an ``X-Request-ID``. When predictions are anonymous (``serving.auth: off``), they
share one namespace, and so do the labels sent for them.

A label for a request that already has one follows ``labels.on_conflict``
(:mod:`shipyard.logs.label_book`): ``reject`` answers 409 naming the request ids and
writes nothing. Every accepted batch is one ``labels.written`` event in the audit log,
recorded as the sender, in the same step as the file (one fails, neither stays).

An item may carry a business outcome instead of (or beside) a label:
``{"request_id": "…", "outcome": {"name": "revenue", "value": 12.5}}``. ``name`` is
1–100 letters, digits and ``. _ : -``; ``value`` a finite number. Outcomes go to the
outcome log (:mod:`shipyard.logs.outcomes`: no conflict rule, readers take each
request's latest value of a name), with who sent them, and each accepted batch is a
``labels.written`` event with ``"log": "outcomes"``, recorded as the sender like
labels. Labels of a mixed batch are written first: a 409 on them writes nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard.access import Principal, Scope
from shipyard.errors import RequestError
from shipyard.logs.label_book import LabelBook, LabelOutcome, OnConflict, record_labels
from shipyard.logs.outcomes import OutcomeBook, OutcomeReceipt, OutcomeRecord
from shipyard.logs.writer import LabelRecord, PredictionLogWriter
from shipyard.models.signature import dump_json, load_json
from shipyard.serving.protocols import check_size
from shipyard.serving.request import ANONYMOUS, JSON, MAX_REQUEST_ID_LENGTH
from shipyard.serving.request import namespaced as in_namespace

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = [
    "FEEDBACK_ID_PATTERN",
    "MAX_FEEDBACK_ITEMS",
    "OUTCOME_NAME_PATTERN",
    "PRINCIPAL_SCOPE_KEY",
    "Feedback",
    "FeedbackDesk",
    "LabelAudit",
    "StoreAudit",
    "feedback_desk",
    "parse_feedback",
]

MAX_FEEDBACK_ITEMS = 10_000
MAX_LABEL_DEPTH = 32
PRINCIPAL_SCOPE_KEY = "shipyard.principal"  # where the authenticate stage leaves who asks
REQUEST_ID_SCOPE_KEY = "shipyard.request_id"  # the request's own id, set by the middleware

# A request id as the client knows it, maybe with the row suffix of a multi-row request.
FEEDBACK_ID_PATTERN = rf"^[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID_LENGTH}}}(:[0-9]{{1,9}})?$"
_FEEDBACK_ID = re.compile(FEEDBACK_ID_PATTERN)
OUTCOME_NAME_PATTERN = r"^[A-Za-z0-9._:-]{1,100}$"
_OUTCOME_NAME = re.compile(OUTCOME_NAME_PATTERN)


@dataclass(frozen=True)
class Feedback:
    """One feedback body, parsed: the labels and the outcomes it carries."""

    labels: list[LabelRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)


def parse_feedback(
    payload: Any,
    model: str,
    *,
    principal: Principal | None = None,
    namespaced: bool = True,
    now: datetime | None = None,
) -> Feedback:
    """``{"request_id", "label" and/or "outcome"}`` or a list of them → records (400
    naming the item and field).

    Each record carries who sent it and ``now`` (the server's clock); with ``namespaced``,
    its request id is taken in ``principal``'s namespace.
    """
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise RequestError('feedback is empty: send {"request_id": …, "label": …} or a list')
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise RequestError(
            f"feedback has {len(items)} items; send at most {MAX_FEEDBACK_ITEMS} per request"
        )
    now = now or datetime.now(UTC)
    sender = ANONYMOUS if principal is None else principal.name
    token_id = None if principal is None else principal.token_id
    parsed = Feedback()
    for index, item in enumerate(items):
        where = f"item {index}" if isinstance(payload, list) else "feedback"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object with request_id and label or outcome")
        request_id = item.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise RequestError(f"{where}: request_id must be a non-empty string")
        if _FEEDBACK_ID.fullmatch(request_id) is None:
            raise RequestError(
                f"{where}: request_id must be the id a prediction was answered with "
                f"(X-Request-ID: up to {MAX_REQUEST_ID_LENGTH} letters, digits and . _ : -, "
                "and :<row> for one row of a batch)"
            )
        unknown = set(item) - {"request_id", "label", "outcome"}
        if unknown:
            raise RequestError(
                f"{where}: unknown fields {sorted(unknown)}; only request_id, label and "
                "outcome are accepted"
            )
        if "label" not in item and "outcome" not in item:
            raise RequestError(f"{where}: label is missing (or send an outcome)")
        keyed = in_namespace(request_id, principal if namespaced else None)
        if "label" in item:
            if _deeper_than(item["label"], MAX_LABEL_DEPTH):
                raise RequestError(
                    f"{where}: label is nested deeper than {MAX_LABEL_DEPTH} levels; send the "
                    "label the model predicts (a value, or a short list or object of values)"
                )
            parsed.labels.append(
                LabelRecord(
                    request_id=keyed,
                    time=now,
                    model=model,
                    label=item["label"],
                    sender=sender,
                    token_id=token_id,
                    received_at=now,
                )
            )
        if "outcome" in item:
            name, value = _outcome(item["outcome"], where)
            parsed.outcomes.append(
                OutcomeRecord(
                    request_id=keyed,
                    time=now,
                    model=model,
                    name=name,
                    value=value,
                    sender=sender,
                    token_id=token_id,
                    received_at=now,
                )
            )
    return parsed


def _outcome(outcome: Any, where: str) -> tuple[str, float]:
    """An item's ``outcome`` object as (name, value), or a 400 naming the field."""
    if not isinstance(outcome, dict):
        raise RequestError(
            f'{where}: outcome must be an object like {{"name": "revenue", "value": 12.5}}'
        )
    unknown = set(outcome) - {"name", "value"}
    if unknown:
        raise RequestError(
            f"{where}: unknown fields {sorted(unknown)} in outcome; only name and value"
        )
    name = outcome.get("name")
    if not isinstance(name, str) or _OUTCOME_NAME.fullmatch(name) is None:
        raise RequestError(
            f"{where}: outcome.name must be 1 to 100 letters, digits and . _ : - (e.g. revenue)"
        )
    value = outcome.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{where}: outcome.value must be a number")
    if not math.isfinite(value):
        raise RequestError(f"{where}: outcome.value must be a finite number")
    return name, float(value)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists or objects more than ``limit`` levels (a loop, so a
    client's nesting never reaches Python's stack)."""
    level: list[Any] = [value]
    for _ in range(limit + 1):
        inner: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                inner.extend(item.values())
            elif isinstance(item, list):
                inner.extend(item)
        if not inner:
            return False
        level = inner
    return True


class LabelAudit(Protocol):
    """Records an accepted batch of labels in the audit log, as the principal who sent it."""

    def record(
        self, outcome: LabelOutcome, principal: Principal | None, request_id: str | None
    ) -> None: ...

    def record_outcomes(
        self, receipt: OutcomeReceipt, principal: Principal | None, request_id: str | None
    ) -> None: ...


class StoreAudit:
    """``labels.written`` events in the project's store, each naming the label's sender.

    The server's own store names whoever started the server; a label's event must name
    its sender, so each sender gets a store of its own on the same database (a few per
    server: one per principal that sends labels).
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self._stores: dict[tuple[str, str | None, str | None], Store] = {}

    def record(
        self, outcome: LabelOutcome, principal: Principal | None, request_id: str | None
    ) -> None:
        """One ``labels.written`` event for ``outcome``."""
        record_labels(self.store_for(principal), outcome, request_id=request_id)

    def record_outcomes(
        self, receipt: OutcomeReceipt, principal: Principal | None, request_id: str | None
    ) -> None:
        """One ``labels.written`` event (``"log": "outcomes"``) for an outcome batch."""
        from shipyard.store.event_kinds import EventKind

        self.store_for(principal).record(
            EventKind.LABELS_WRITTEN,
            f"model:{receipt.model}",
            receipt.audit_payload(),
            request_id=request_id,
        )

    def store_for(self, principal: Principal | None) -> Store:
        """The store whose events name ``principal`` (anonymous when None)."""
        from shipyard.store import Store

        key = (
            ANONYMOUS if principal is None else principal.name,
            None if principal is None else principal.token_id,
            None if principal is None else principal.role,
        )
        store = self._stores.get(key)
        if store is None:
            url = self.project.config.db_url
            store = self._stores[key] = Store(
                url, actor=key[0], token_id=key[1], role=key[2], migrate=False
            )
        return store

    def close(self) -> None:
        """Release every sender's pooled connections."""
        for store in self._stores.values():
            store.close()
        self._stores.clear()


class FeedbackDesk:
    """Takes feedback for one model: parse, authorise, check conflicts, write, audit.

    ``namespaced``: whether request ids are read in the sender's namespace; it must match
    how predictions are logged, so :func:`~shipyard.serving.app.create_app` sets it (true
    when predictions are authenticated) unless it is given.
    """

    def __init__(
        self,
        book: LabelBook,
        model: str,
        *,
        on_conflict: OnConflict = "reject",
        audit: LabelAudit | None = None,
        namespaced: bool | None = None,
        outcomes: OutcomeBook | None = None,
    ) -> None:
        self.book = book
        self.outcomes = outcomes
        self.model = model
        self.on_conflict = on_conflict
        self.audit = audit
        self.namespaced = namespaced

    @classmethod
    def for_project(cls, project: Project, model: str) -> FeedbackDesk:
        """The desk a server of ``project`` uses: its label log, its rule, its audit log."""
        from shipyard.logs.root import project_log_root

        config = project.config
        return cls(
            LabelBook.for_config(config, project.store),
            model,
            on_conflict=config.labels.on_conflict,
            audit=StoreAudit(project),
            outcomes=OutcomeBook(project_log_root(config)),
        )

    def receive(
        self, payload: Any, principal: Principal | None, request_id: str | None = None
    ) -> dict[str, Any]:
        """Write one batch of feedback (403 without ``labels:write``, 409 on a conflict);
        the reply: labels accepted (and ignored or replaced), outcomes accepted."""
        if principal is not None:
            principal.require(Scope.LABELS_WRITE, self.model)
        parsed = parse_feedback(
            payload, self.model, principal=principal, namespaced=bool(self.namespaced)
        )
        if parsed.outcomes and self.outcomes is None:
            raise RequestError("this server takes labels only; send outcomes to a Shipyard server")
        audit = self.audit
        reply: dict[str, Any] = {"accepted": 0, "dropped": 0}
        if parsed.labels:

            def commit(outcome: LabelOutcome) -> None:
                if audit is not None:
                    audit.record(outcome, principal, request_id)

            written = self.book.write(parsed.labels, on_conflict=self.on_conflict, commit=commit)
            reply = written.to_dict()
        if parsed.outcomes:
            assert self.outcomes is not None

            def commit_outcomes(receipt: OutcomeReceipt) -> None:
                if audit is not None:
                    audit.record_outcomes(receipt, principal, request_id)

            self.outcomes.write(parsed.outcomes, commit=commit_outcomes)
            reply["outcomes"] = len(parsed.outcomes)
        return reply

    def close(self) -> None:
        """Release what the audit holds open (its database connections)."""
        close = getattr(self.audit, "close", None)
        if close is not None:
            close()

    async def respond(self, request: Request, max_body_bytes: int) -> Response:
        """The ``POST /v1/feedback`` handler: the body within the limit, then :meth:`receive`."""
        length = request.headers.get("content-length")
        check_size(
            int(length) if length and length.isascii() and length.isdigit() else None,
            max_body_bytes,
        )
        body = await request.body()
        check_size(len(body), max_body_bytes)
        payload = load_json(body)
        principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
        request_id = request.scope.get(REQUEST_ID_SCOPE_KEY) or request.headers.get("x-request-id")
        # The lock and the writes block: off the event loop.
        reply = await run_in_threadpool(self.receive, payload, principal, request_id)
        return Response(dump_json(reply), media_type=JSON)


def feedback_desk(
    labels: FeedbackDesk | PredictionLogWriter | None, model: str, *, namespaced: bool
) -> FeedbackDesk | None:
    """``labels`` as the desk a server uses (None: the server takes no feedback).

    A label-log writer stands for its log root (reject, no audit). ``namespaced`` says
    whether predictions are logged in their caller's namespace; a desk that was not told
    otherwise reads feedback ids the same way, so labels join their predictions.
    """
    if labels is None:
        return None
    if not isinstance(labels, FeedbackDesk):
        # Beside a bucket log, the writer's journal folder is this host's own disk.
        labels = FeedbackDesk(
            LabelBook(labels.root, lock_folder=labels.journals),
            model,
            outcomes=OutcomeBook(labels.root),
        )
    desk = labels
    if desk.namespaced is None:
        desk.namespaced = namespaced
    return desk
