"""A versioned, date-effective LLM price table, and the cost of a call under it.

Each import (LiteLLM's ``model_prices_and_context_window.json`` or Shipyard's own JSON)
or ``set_price`` stores a new ``table_version`` of rows, one per model pattern and usage
type (``input``, ``output``, ``cached_input``), in effect from ``effective_from``. Old
rows stay: a call's cost is computed once, when it is traced, and kept with the version
it used, so a later price change never rewrites history (Langfuse's convention: the
price valid when the call was made; a provider-reported cost wins over any table).

For a provider model name and a call time, :meth:`PriceBook.cost` takes the rows of the
highest table version, among those effective at that time, whose ``model_pattern`` (a
regular expression, matched against the whole name) matches; within one version the
longest matching pattern wins. Cached prompt tokens are priced at ``cached_input``
(at ``input`` when the row has none); OpenAI counts them inside ``prompt_tokens``.

The formats read::

    {"gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                "cache_read_input_token_cost": 1.25e-06, "litellm_provider": "openai"}}

    {"currency": "USD", "effective_from": "2026-12-01T00:00:00Z",
     "prices": [{"model_pattern": "gpt-4o(-mini)?", "input": 2.5e-06, "output": 1e-05,
                 "cached_input": 1.25e-06}]}

Storing prices needs ``models:deploy`` on every model (the table serves them all) and
records one ``llm.prices_imported`` event, in the same transaction as the rows.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import func, select, text

from shipyard.access import Scope
from shipyard.errors import ConfigError, DataError
from shipyard.jsonable import Record
from shipyard.llm.price_files import (
    USAGE_TYPES,
    PriceEntry,
    check_pattern,
    check_price,
    parse_prices,
)
from shipyard.llm.types import Cost, TokenUsage
from shipyard.moments import as_utc
from shipyard.store.event_kinds import EventKind
from shipyard.store.tables import LlmPriceRow

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = [
    "USAGE_TYPES",
    "LivePriceBook",
    "PriceBook",
    "PriceImport",
    "PriceRecord",
    "import_configured_prices",
    "import_prices",
    "list_prices",
    "parse_prices",
    "set_price",
]

_SUBJECT = "llm:prices"
_LOCK_KEY = 0x5348_4950_5052_4943  # "SHIPPRIC": the advisory lock of price imports
_logger = logging.getLogger(__name__)
_ALL_MODELS = "*"  # authorize on every model: only a project-wide grant covers it


@dataclass(frozen=True)
class PriceRecord(Record):
    """One stored price: per token of ``usage_type`` for models matching the pattern."""

    table_version: int
    model_pattern: str
    usage_type: str
    price_per_token: float
    currency: str
    effective_from: datetime
    source: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class PriceImport(Record):
    """What one import (or ``set_price``) stored: a new table version."""

    table_version: int
    source: str
    effective_from: datetime
    models: int
    rows: int
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Tier:
    version: int
    pattern: re.Pattern[str]
    effective_from: datetime
    currency: str
    input: float
    output: float
    cached_input: float


class PriceBook:
    """The price table in memory: cheap lookups for the request path (no I/O, no pydantic)."""

    def __init__(self, rows: Iterable[PriceRecord], currency: str = "USD") -> None:
        self.currency = currency
        grouped: dict[tuple[int, str], list[PriceRecord]] = {}
        for row in rows:
            grouped.setdefault((row.table_version, row.model_pattern), []).append(row)
        tiers = []
        for (version, pattern), group in grouped.items():
            prices = {row.usage_type: row.price_per_token for row in group}
            tiers.append(
                _Tier(
                    version,
                    re.compile(pattern),
                    min(as_utc(row.effective_from) for row in group),
                    group[0].currency,
                    prices.get("input", 0.0),
                    prices.get("output", 0.0),
                    prices.get("cached_input", prices.get("input", 0.0)),
                )
            )
        # Highest version first; within a version the most specific (longest) pattern.
        tiers.sort(key=lambda t: (-t.version, -len(t.pattern.pattern)))
        self._tiers = tuple(tiers)
        self._matching: dict[str, tuple[_Tier, ...]] = {}
        self.version = max((t.version for t in tiers), default=0)

    @classmethod
    def load(cls, store: Store, currency: str = "USD") -> PriceBook:
        """Every stored price row (all versions: an old call is priced as it was)."""
        with store.session() as session:
            rows = session.scalars(select(LlmPriceRow)).all()
            return cls((_record(row) for row in rows), currency)

    def _tiers_of(self, model: str) -> tuple[_Tier, ...]:
        found = self._matching.get(model)
        if found is None:
            found = tuple(t for t in self._tiers if t.pattern.fullmatch(model))
            if len(self._matching) < 10_000:  # bounded: model names come from requests
                self._matching[model] = found
        return found

    def cost(
        self,
        provider_model: str,
        usage: TokenUsage,
        at: datetime | None = None,
        reported: float | None = None,
    ) -> Cost:
        """What a call cost: the provider's number if reported, else priced at ``at``."""
        if reported is not None and math.isfinite(reported) and reported >= 0:
            return Cost(float(reported), self.currency, "provider")
        moment = datetime.now(UTC) if at is None else as_utc(at)
        for tier in self._tiers_of(provider_model):
            if tier.effective_from <= moment:
                cached = min(max(usage.cached_tokens, 0), max(usage.prompt_tokens, 0))
                amount = (
                    (usage.prompt_tokens - cached) * tier.input
                    + cached * tier.cached_input
                    + usage.completion_tokens * tier.output
                )
                return Cost(amount, tier.currency, "computed", tier.version)
        return Cost(0.0, self.currency, "unpriced")

    def __len__(self) -> int:
        return len(self._tiers)


class LivePriceBook:
    """A :class:`PriceBook` that follows the store: a thread checks the latest table version
    every ``every`` seconds and swaps in a fresh book when it changed, so a running gateway
    prices new calls by ``shipyard llm prices import`` without a restart. :meth:`cost`
    never touches the database; an unreadable store keeps the last book (logged)."""

    def __init__(self, store: Store, currency: str = "USD", every: float = 10.0) -> None:
        self.store = store
        self.currency = currency
        self.every = every
        self.book = PriceBook.load(store, currency)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> int:
        """The table version priced by now."""
        return self.book.version

    def cost(
        self,
        provider_model: str,
        usage: TokenUsage,
        at: datetime | None = None,
        reported: float | None = None,
    ) -> Cost:
        """:meth:`PriceBook.cost` of the latest book loaded."""
        return self.book.cost(provider_model, usage, at, reported)

    def refresh(self) -> bool:
        """Reload if the store holds another table version; whether it did."""
        with self.store.session() as session:
            latest = int(session.scalar(select(func.max(LlmPriceRow.table_version))) or 0)
        if latest == self.book.version:
            return False
        self.book = PriceBook.load(self.store, self.currency)
        return True

    def start(self) -> LivePriceBook:
        """Start following the store (a daemon thread); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llm-prices", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except Exception as exc:  # keep pricing with the last book
                _logger.warning("cannot reload the LLM price table: %s", type(exc).__name__)

    def close(self) -> None:
        """Stop following the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def import_prices(
    project: Project,
    path: Path | str,
    *,
    effective_from: datetime | None = None,
    reason: str = "",
) -> PriceImport:
    """Store the prices of ``path`` (LiteLLM's JSON or Shipyard's) as a new table version.

    In effect from ``effective_from`` (else the file's own, else now). Needs
    ``models:deploy`` on every model; audited as ``llm.prices_imported``.
    """
    project.authorize(Scope.MODELS_DEPLOY, _ALL_MODELS)
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise DataError(f"Cannot read the price file {file}: {exc.strerror or exc}.") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DataError(
            f"The price file {file} is not JSON: {exc}.",
            hint="Give LiteLLM's model_prices_and_context_window.json or Shipyard's "
            '{"prices": [...]} format.',
        ) from None
    currency = project.config.llm.currency
    entries, skipped, own = parse_prices(data, where=str(file.name), currency=currency)
    if not entries:
        raise DataError(f"The price file {file} has no per-token price to import.")
    kind = "shipyard" if isinstance(data.get("prices"), list) else "litellm"
    source = f"{kind}:{hashlib.sha256(raw).hexdigest()[:16]}"
    moment = effective_from if effective_from is not None else own
    return _store(project, entries, source, moment, skipped, reason, file=str(file))


def set_price(
    project: Project,
    model_pattern: str,
    *,
    input: float | None = None,
    output: float | None = None,
    cached_input: float | None = None,
    currency: str | None = None,
    effective_from: datetime | None = None,
    reason: str = "",
) -> PriceImport:
    """Store one model pattern's per-token prices as a new table version (by hand)."""
    project.authorize(Scope.MODELS_DEPLOY, _ALL_MODELS)
    given = {"input": input, "output": output, "cached_input": cached_input}
    where = "set_price"
    prices = {k: check_price(v, k, where) for k, v in given.items() if v is not None}
    if not prices:
        raise ConfigError("Give at least one price: input, output or cached_input (per token).")
    if not model_pattern:
        raise ConfigError("model_pattern is empty: give a model name or a regular expression.")
    check_pattern(model_pattern, "model_pattern")
    unit = currency or project.config.llm.currency
    if not re.fullmatch(r"[A-Z]{3}", unit):
        raise ConfigError(f"currency {unit!r} is not a 3-letter code such as USD.")
    entry = PriceEntry(model_pattern, prices, unit)
    return _store(project, [entry], "manual", effective_from, [], reason)


def _store(
    project: Project,
    entries: list[PriceEntry],
    source: str,
    effective_from: datetime | None,
    skipped: list[str],
    reason: str,
    file: str | None = None,
) -> PriceImport:
    store = project.store
    moment = datetime.now(UTC) if effective_from is None else as_utc(effective_from)
    now = datetime.now(UTC)
    with store.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Two imports at once must not both take max + 1: serialise them (SQLite's
            # single writer refuses the second transaction's stale write instead).
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        version = int(session.scalar(select(func.max(LlmPriceRow.table_version))) or 0) + 1
        rows = [
            LlmPriceRow(
                table_version=version,
                model_pattern=entry.model_pattern,
                usage_type=usage,
                price_per_token=price,
                currency=entry.currency,
                effective_from=moment,
                source=source,
                created_by=store.actor,
                created_at=now,
            )
            for entry in entries
            for usage, price in entry.prices.items()
        ]
        session.add_all(rows)
        session.flush()
        payload = {
            "table_version": version,
            "source": source,
            "file": file,
            "effective_from": moment.isoformat(),
            "models": len(entries),
            "rows": len(rows),
            "skipped": len(skipped),
        }
        store.record(
            EventKind.LLM_PRICES_IMPORTED, _SUBJECT, payload, reason=reason, session=session
        )
    return PriceImport(version, source, moment, len(entries), len(rows), tuple(skipped))


def import_configured_prices(project: Project) -> PriceImport | None:
    """Import ``llm.prices`` unless that exact file was imported already (None then)."""
    configured = project.config.llm.prices
    if not configured:
        return None
    path = project.config.resolve(configured)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise ConfigError(f"llm.prices: cannot read {path}: {exc.strerror or exc}.") from None
    with project.store.session() as session:
        found = session.scalar(
            select(LlmPriceRow.id).where(LlmPriceRow.source.endswith(f":{digest}")).limit(1)
        )
    if found is not None:
        return None
    return import_prices(project, path)


def list_prices(
    project: Project, *, at: datetime | None = None, every_version: bool = False
) -> list[PriceRecord]:
    """The prices in effect at ``at`` (default now), or every stored row (``models:read``)."""
    project.authorize(Scope.MODELS_READ)
    with project.store.session() as session:
        rows = [_record(row) for row in session.scalars(select(LlmPriceRow)).all()]
    rows.sort(key=lambda r: (r.model_pattern, -r.table_version, USAGE_TYPES.index(r.usage_type)))
    if every_version:
        return rows
    moment = datetime.now(UTC) if at is None else as_utc(at)
    winner: dict[str, int] = {}
    for row in rows:
        if row.effective_from <= moment:
            winner.setdefault(row.model_pattern, row.table_version)
    return [row for row in rows if winner.get(row.model_pattern) == row.table_version]


def _record(row: LlmPriceRow) -> PriceRecord:
    return PriceRecord(
        table_version=row.table_version,
        model_pattern=row.model_pattern,
        usage_type=row.usage_type,
        price_per_token=row.price_per_token,
        currency=row.currency,
        effective_from=as_utc(row.effective_from),
        source=row.source,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )
