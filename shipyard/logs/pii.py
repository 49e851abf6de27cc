"""PII kept apart: tagged input columns are masked before the prediction log holds them.

A column tagged ``pii``, ``quasi_identifier`` or ``sensitive`` (``pii.columns`` in
``shipyard.yaml``) reaches the log either as a keyed hash or not at all::

    pii:
      columns: {email: pii, zip: quasi_identifier, diagnosis: sensitive}
      policy: hash              # or drop
      tag_policy: {sensitive: drop}
      retain_raw: false         # true: raw values to pii.raw_store, read with pii:read
      retention_days: {pii: 30, quasi_identifier: 180}

``hash`` is HMAC-SHA256 under the project's secret (``pii.secret``, created with mode
0600 on first use, never logged), truncated to 128 bits and written as 32 hex
characters. Equal values hash equal, so joins and category drift still work, while a
reader of the log without the secret cannot test a guess. Numbers hash by their
value: ``94107`` and ``94107.0`` are one value. Nulls stay null.

With ``retain_raw``, the raw values go to a separate store, one folder per tag
(``<raw_store>/<tag>/model=<name>/date=<day>/``, folders 0700, files 0600), and
:func:`read_raw_pii` returns them only to a principal holding ``pii:read``.
:meth:`PiiPolicy.mask_frame` masks a DataFrame the same way, for the reference side of
drift and for reports, so nothing shown beside the log holds raw tagged values.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.access import Principal, Scope
from shipyard.config.pii import PII_TAGS
from shipyard.errors import ConfigError, DataError
from shipyard.jsonable import to_json
from shipyard.logs.root import project_log_root
from shipyard.logs.writer import make_private_dirs, model_dir, write_log_file
from shipyard.moments import as_utc

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import Config

logger = logging.getLogger(__name__)

__all__ = ["PII_TAGS", "PiiPolicy", "load_secret", "read_raw_pii"]

_HEX = 32  # hex characters kept of each HMAC: 128 bits


@dataclass(frozen=True)
class PiiPolicy:
    """Which input columns are tagged, how each is masked, and where raw values may go."""

    columns: Mapping[str, str] = field(default_factory=dict)  # column → tag
    masking: Mapping[str, str] = field(default_factory=dict)  # tag → "hash" | "drop"
    secret: Path | None = None  # the key file; read on the first hash
    retain_raw: bool = False
    raw_store: Path | None = None
    retention_days: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted({*self.columns.values(), *self.masking} - set(PII_TAGS))
        if unknown:
            raise ConfigError(
                f"Unknown PII tag {', '.join(map(repr, unknown))}.",
                hint=f"Tag columns with one of: {', '.join(PII_TAGS)}.",
            )
        if self.retain_raw and self.raw_store is None:
            raise ConfigError("pii.retain_raw is on but no pii.raw_store is set.")

    @classmethod
    def from_config(cls, config: Config) -> PiiPolicy:
        """The project's policy (``pii`` section), paths resolved against the project."""
        settings = config.pii
        exceptions: dict[str, str] = {str(t): str(m) for t, m in settings.tag_policy.items()}
        masking = {tag: exceptions.get(tag, settings.policy) for tag in PII_TAGS}
        raw_store = config.resolve(settings.raw_store)
        logs = project_log_root(config)  # a bucket never holds the raw store: it is a folder
        if (
            settings.retain_raw
            and isinstance(logs, Path)
            and (raw_store == logs or logs in raw_store.parents)
        ):
            raise ConfigError(
                f"pii.raw_store ({raw_store}) is inside the prediction logs ({logs}).",
                hint="Keep raw PII in a folder of its own, e.g. .shipyard/pii.",
            )
        # Feature views declared in shipyard.yaml name their PII features; those columns
        # are tagged ``pii`` wherever the policy is built (server, references, reports).
        columns = {name: "pii" for view in config.features.views for name in view.pii}
        columns.update({str(c): str(t) for c, t in settings.columns.items()})
        return cls(
            columns=columns,
            masking=masking,
            secret=config.resolve(settings.secret),
            retain_raw=settings.retain_raw,
            raw_store=raw_store,
            retention_days={str(t): int(d) for t, d in settings.retention_days.items()},
        )

    @property
    def tagged(self) -> bool:
        """Whether any column is tagged (an untagged policy changes nothing)."""
        return bool(self.columns)

    def tag_of(self, column: str) -> str | None:
        """The column's tag, or None."""
        return self.columns.get(column)

    def action_of(self, column: str) -> str | None:
        """``hash``, ``drop``, or None for an untagged column."""
        tag = self.columns.get(column)
        return None if tag is None else self.masking.get(tag, "hash")

    @cached_property
    def key(self) -> bytes:
        """The hashing secret, read (or created) on first use; never shown."""
        if self.secret is None:
            raise ConfigError("Hashing PII needs pii.secret: a path for the key.")
        return load_secret(self.secret)

    def hash_value(self, value: Any) -> str | None:
        """One value's keyed hash (32 hex characters); None for null or NaN."""
        text = _canonical(value)
        if text is None:
            return None
        digest = hmac.new(self.key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:_HEX]

    def mask_array(self, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Each value's keyed hash, as strings; each distinct value is hashed once."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        distinct = pc.unique(values)
        hashed = pa.array([self.hash_value(v) for v in distinct.to_pylist()], pa.string())
        return pc.take(hashed, pc.index_in(values, value_set=distinct))

    def mask_table(self, table: pa.Table) -> tuple[pa.Table, dict[str, pa.Table]]:
        """``table`` with its ``inputs`` masked, and the raw tagged values per tag.

        The raw tables (``request_id``, ``time``, ``model``, ``inputs`` with the tag's
        raw fields) are empty unless :attr:`retain_raw`.
        """
        if "inputs" not in table.column_names:
            return table, {}
        inputs = table.column("inputs").combine_chunks()
        if not isinstance(inputs, pa.StructArray):
            return table, {}
        names = [inputs.type.field(i).name for i in range(inputs.type.num_fields)]
        if not any(name in self.columns for name in names):
            return table, {}
        kept_names: list[str] = []
        kept: list[pa.Array] = []
        raw: dict[str, tuple[list[str], list[pa.Array]]] = {}
        for name, values in zip(names, inputs.flatten(), strict=True):
            action = self.action_of(name)
            if action is None:
                kept_names.append(name)
                kept.append(values)
                continue
            if self.retain_raw:
                tagged = raw.setdefault(self.columns[name], ([], []))
                tagged[0].append(name)
                tagged[1].append(values)
            if action == "hash":
                kept_names.append(name)
                kept.append(self.mask_array(values))
        masked = _struct(kept_names, kept, inputs)
        index = table.column_names.index("inputs")
        out = table.set_column(index, pa.field("inputs", masked.type), masked)
        keys = [c for c in ("request_id", "time", "model") if c in table.column_names]
        raws = {
            tag: table.select(keys).append_column("inputs", _struct(fields, arrays, inputs))
            for tag, (fields, arrays) in raw.items()
        }
        return out, raws

    def apply(self, table: pa.Table, model: str, day: date) -> pa.Table:
        """Mask ``table`` for the log; keep its raw tagged values first if the policy says."""
        masked, raws = self.mask_table(table)
        for tag, rows in raws.items():
            if rows.num_rows:
                folder = self.raw_dir(tag, model) / f"date={day.isoformat()}"
                write_log_file(folder, rows, private=True)
        return masked

    def raw_dir(self, tag: str, model: str) -> Path:
        """The raw store's folder for ``model``'s values of columns tagged ``tag``."""
        if self.raw_store is None:
            raise ConfigError("No pii.raw_store is set.")
        return model_dir(self.raw_store, tag, model)

    def mask_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``frame`` with tagged columns hashed or dropped, as the log keeps them."""
        present = [c for c in frame.columns if c in self.columns]
        if not present:
            return frame
        out = frame.drop(columns=[c for c in present if self.action_of(c) == "drop"])
        for column in present:
            if column in out.columns:
                codes = {v: self.hash_value(v) for v in out[column].dropna().unique().tolist()}
                out[column] = out[column].map(codes).astype(object)
        return out

    @property
    def fingerprint(self) -> str:
        """Changes when the masking would: tags, actions, or the secret (not revealed)."""
        plan = to_json({c: [t, self.action_of(c)] for c, t in sorted(self.columns.items())})
        keyed = self.hash_value("shipyard:pii:fingerprint") if self.tagged else ""
        return hashlib.sha256(f"{plan}{keyed}".encode()).hexdigest()[:16]


def load_secret(path: Path) -> bytes:
    """The key in ``path``; created (32 random bytes, mode 0600) if there is none yet.

    Many workers may start at once: the key is written to a private temporary file and
    linked into place, so every process reads the one that won.
    """
    if not path.exists():
        make_private_dirs(path.parent)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):  # another process won: use theirs
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        logger.warning("the PII secret %s is readable by others; chmod 600 it", path)
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"The PII secret {path} is not a hex key ({type(exc).__name__}).",
            hint="Restore it from your backup: a new key changes every hash.",
        ) from None
    if len(key) < 16:
        raise ConfigError(f"The PII secret {path} is too short: 16 bytes at least.")
    return key


def read_raw_pii(
    policy: PiiPolicy,
    model: str,
    principal: Principal,
    *,
    since: datetime | None = None,
) -> pa.Table:
    """Raw values of ``model``'s tagged columns, one row per request: needs ``pii:read``.

    Columns: ``request_id``, ``time``, then one per tagged column kept raw.
    """
    principal.require(Scope.PII_READ, model)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    views = []
    for tag in PII_TAGS:
        directory = policy.raw_dir(tag, model) if policy.raw_store is not None else None
        if directory is None or not any(directory.glob("date=*/*.parquet")):
            continue
        where = ""
        if since is not None:
            moment = as_utc(since).isoformat().replace("'", "''")
            where = f"WHERE time >= '{moment}'::TIMESTAMPTZ"
        pattern = str(directory / "date=*" / "*.parquet").replace("'", "''")
        try:
            con.execute(
                f"CREATE VIEW raw_{tag} AS SELECT request_id, time, unnest(inputs) "
                f"FROM read_parquet('{pattern}', union_by_name = true) {where}"
            )
        except duckdb.Error as exc:
            raise DataError(f"Cannot read the raw PII store {directory}: {exc}") from exc
        views.append(f"raw_{tag}")
    if not views:
        return pa.table({"request_id": pa.array([], pa.string())})
    sql = f"SELECT * FROM {views[0]}"
    for view in views[1:]:
        sql += f" FULL OUTER JOIN {view} USING (request_id, time)"
    return con.sql(sql + " ORDER BY time, request_id").to_arrow_table()


def _canonical(value: Any) -> str | None:
    """The text a value is hashed as: one spelling per value, whatever its type."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer() and abs(value) < 2**63:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return value
    if hasattr(value, "item"):  # NumPy scalars
        return _canonical(value.item())
    if isinstance(value, int):
        return str(value)
    return to_json(value)


def _struct(names: list[str], arrays: list[pa.Array], like: pa.StructArray) -> pa.StructArray:
    """A struct of ``arrays`` with ``like``'s nulls (an empty struct when no field is left)."""
    mask = like.is_null() if like.null_count else None
    if not arrays:
        return pa.array([{}] * len(like), pa.struct([]))
    return pa.StructArray.from_arrays(arrays, names=names, mask=mask)
