"""Retention per PII tag: ``shipyard logs prune`` and the agent delete what is past its time.

``pii.retention_days: {pii: 30, quasi_identifier: 180}`` keeps each tag's values that
many days. Pruning works a whole day at a time (the logs are partitioned by day): a
day goes once all of it is older than the retention. For each tag with a retention:

- the raw store's days of that tag are deleted (``<raw_store>/<tag>/model=…/date=…``);
- the prediction log's files of those days are rewritten without the tag's (hashed)
  columns; the rest of each row (outputs, other inputs) stays for monitoring.

:func:`prune_logs` only acts; the callers authorise (``logs:prune``) and record the
``logs.pruned`` event with :func:`record_prune`, which names what went.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.logs.pii import PII_TAGS, PiiPolicy
from shipyard.logs.root import fresh_listing
from shipyard.moments import as_utc
from shipyard.storage.location import Location

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["PruneReport", "Pruned", "prune_logs", "record_prune"]


@dataclass(frozen=True)
class Pruned:
    """One model's days of one tag that were pruned, from the raw store or the log."""

    where: str  # "raw" (files deleted) or "log" (tagged columns removed from files)
    tag: str
    model: str
    days: list[str]
    files: int
    rows: int
    columns: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: what went, of which model, from which days."""
        span = self.days[0] if len(self.days) == 1 else f"{self.days[0]}..{self.days[-1]}"
        if self.where == "raw":
            return f"raw {self.tag} values of {self.model}: {self.rows} rows, {span} (deleted)"
        return (
            f"{', '.join(self.columns)} ({self.tag}) of {self.model}: {self.rows} rows in "
            f"{self.files} log files, {span} (columns removed)"
        )


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed (or, dry, would remove), with the cut-off date of each tag."""

    cutoffs: dict[str, str]
    pruned: list[Pruned]
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        """Whether anything was (or would be) removed."""
        return bool(self.pruned)

    def to_dict(self) -> dict[str, Any]:
        """The ``logs.pruned`` event's payload."""
        return {
            "cutoffs": self.cutoffs,
            "dry_run": self.dry_run,
            "pruned": [asdict(item) for item in self.pruned],
            "rows": sum(item.rows for item in self.pruned),
        }


def prune_logs(
    policy: PiiPolicy,
    log_root: Path | Location,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Remove each tag's values older than its retention from the raw store and the log."""
    today = as_utc(now or datetime.now(UTC))
    cutoffs = {
        tag: (today - timedelta(days=days)).date()
        for tag, days in policy.retention_days.items()
        if tag in PII_TAGS
    }
    pruned: list[Pruned] = []
    if policy.raw_store is not None:
        for tag, cutoff in cutoffs.items():
            pruned += _prune_raw(Path(policy.raw_store) / tag, tag, cutoff, dry_run)
    pruned += _prune_log(_log_files(log_root), policy, cutoffs, dry_run)
    return PruneReport({t: c.isoformat() for t, c in cutoffs.items()}, pruned, dry_run)


def record_prune(store: Store, report: PruneReport) -> None:
    """Audit a prune that removed something: one ``logs.pruned`` event naming it all."""
    from shipyard.store.event_kinds import EventKind

    if report.changed and not report.dry_run:
        store.record(EventKind.LOGS_PRUNED, "logs:pii", report.to_dict())


def _prune_raw(root: Path, tag: str, cutoff: date, dry_run: bool) -> list[Pruned]:
    pruned = []
    for model_dir in sorted(root.glob("model=*")):
        days = [d for d in _days(model_dir) if d[0] < cutoff]
        if not days:
            continue
        files = [f for _, folder in days for f in folder.glob("*.parquet")]
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        if not dry_run:
            for _, folder in days:
                shutil.rmtree(folder)
        model = unquote(model_dir.name.removeprefix("model="))
        pruned.append(Pruned("raw", tag, model, [d.isoformat() for d, _ in days], len(files), rows))
    return pruned


@dataclass(frozen=True)
class _LogFile:
    """One Parquet file of the prediction log, local or in a bucket."""

    model: str
    day: date
    path: str
    where: Location | None  # None: a local file

    def open(self) -> pq.ParquetFile:
        if self.where is None:
            return pq.ParquetFile(self.path)
        return pq.ParquetFile(io.BytesIO(self.where.fs.cat_file(self.path)))

    def rewrite_without(self, columns: set[str]) -> None:
        if self.where is None:
            _rewrite_without(Path(self.path), columns)
            return
        with self.open() as parquet:
            table = _without(parquet.read(), columns)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        name = self.path.split("://", 1)[-1].removeprefix(self.where.url.split("://", 1)[-1])
        self.where.write_bytes(name, sink.getvalue().to_pybytes())  # one PUT replaces it


def _log_files(log_root: Path | Location) -> list[_LogFile]:
    """Every day-partitioned file of the prediction log, per model and day, sorted."""
    files: list[_LogFile] = []
    if isinstance(log_root, Location) and not log_root.is_local:
        fresh_listing(log_root)
        for path in log_root.glob("predictions/model=*/date=*/*.parquet"):
            *_, model_part, day_part, _name = path.split("/")
            try:
                day = date.fromisoformat(day_part.removeprefix("date="))
            except ValueError:
                continue  # not a day partition: not ours to prune
            model = unquote(model_part.removeprefix("model="))
            files.append(_LogFile(model, day, path, log_root))
        return files
    root = log_root.local_path() if isinstance(log_root, Location) else Path(log_root)
    for model_dir in sorted((root / "predictions").glob("model=*")):
        model = unquote(model_dir.name.removeprefix("model="))
        for day, folder in _days(model_dir):
            for file in sorted(folder.glob("*.parquet")):
                files.append(_LogFile(model, day, str(file), None))
    return files


def _prune_log(
    files: list[_LogFile], policy: PiiPolicy, cutoffs: dict[str, date], dry_run: bool
) -> list[Pruned]:
    """Rewrite old log files without the columns whose tag's retention has passed."""
    if not cutoffs:
        return []
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for file in files:
        model, day, path = file.model, file.day, file.path
        expired = {tag for tag, cutoff in cutoffs.items() if day < cutoff}
        if not expired:
            continue
        with file.open() as parquet:
            schema = parquet.schema_arrow
            rows = parquet.metadata.num_rows
        if "inputs" not in schema.names:
            continue
        inputs = schema.field("inputs").type
        if not pa.types.is_struct(inputs):
            continue
        drop = {
            inputs.field(i).name
            for i in range(inputs.num_fields)
            if policy.tag_of(inputs.field(i).name) in expired
        }
        if not drop:
            continue
        if not dry_run:
            file.rewrite_without(drop)
        for column in drop:
            tag = str(policy.tag_of(column))
            entry = found.setdefault(
                (tag, model), {"days": set(), "files": set(), "rows": 0, "columns": set()}
            )
            entry["days"].add(day.isoformat())
            if path not in entry["files"]:
                entry["files"].add(path)
                entry["rows"] += rows
            entry["columns"].add(column)
    return [
        Pruned(
            "log",
            tag,
            model,
            sorted(entry["days"]),
            len(entry["files"]),
            entry["rows"],
            sorted(entry["columns"]),
        )
        for (tag, model), entry in sorted(found.items())
    ]


def _rewrite_without(path: Path, columns: set[str]) -> None:
    """Replace ``path`` with a copy whose ``inputs`` lacks ``columns`` (atomically)."""
    table = _without(pq.read_table(path), columns)
    temporary = path.with_name(f".{path.name}.prune.tmp")
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _without(table: pa.Table, columns: set[str]) -> pa.Table:
    """``table`` whose ``inputs`` struct lacks ``columns``."""
    inputs = table.column("inputs").combine_chunks()
    keep = [
        (inputs.type.field(i).name, values)
        for i, values in enumerate(inputs.flatten())
        if inputs.type.field(i).name not in columns
    ]
    if keep:
        names, arrays = zip(*keep, strict=True)
        struct = pa.StructArray.from_arrays(list(arrays), names=list(names))
    else:
        struct = pa.array([{}] * table.num_rows, pa.struct([]))
    index = table.column_names.index("inputs")
    return table.set_column(index, pa.field("inputs", struct.type), struct)


def _days(model_dir: Path) -> list[tuple[date, Path]]:
    days = []
    for folder in sorted(model_dir.glob("date=*")):
        try:
            days.append((date.fromisoformat(folder.name.removeprefix("date=")), folder))
        except ValueError:
            continue  # not a day partition: not ours to prune
    return days
