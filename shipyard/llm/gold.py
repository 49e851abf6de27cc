"""Gold prompt sets: the versioned dataset an LLM version is judged on.

A gold set is a JSON Lines or Parquet file (``llm.judge.gold``), one item per line or row:

===============  ===========================================================================
``id``           a unique name for the item (text; required)
``variables``    the prompt template's variables (an object; may be empty)
``input``        the user message, if the version takes one (text)
``reference``    the reference answer (text) ...
``facts``        ... and/or facts a good answer states (a list of texts); one of the two
``rubric``       criteria for this item (a list of names; default ``llm.judge.rubric``), or
                 a text telling the judge what a good answer does (shown to it as RUBRIC)
``answer``       an answer people scored (text), for ``human_score``
``human_score``  the people's score, 1-5: of ``answer``, or else of the judged version's
                 own answer
===============  ===========================================================================

Items with a ``human_score`` form the *calibration slice*: the judge's agreement with the
people on it (Cohen's kappa) is reported with every gold run. Give the scored ``answer``
too and the slice is fixed: the judge scores that same answer every run, so a fall in
kappa is the judge's own drift, whatever version is judged.

The set is versioned by content: it is normalised into a table (nested values as
canonical JSON text) and stored as a dataset snapshot (:mod:`shipyard.data`), whose
digest names the version every judge scorecard is stored on::

    gold = load_gold(path)
    snap = gold.snapshot(artifact_root)      # snap.digest: the gold set's version
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from shipyard.errors import DataError
from shipyard.jsonable import canonical_json

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.data import Snapshot
    from shipyard.storage import Location
    from shipyard.store import Store

__all__ = ["COLUMNS", "GoldItem", "GoldSet", "file_sha256", "load_gold", "project_gold"]

COLUMNS = ("id", "variables", "input", "reference", "facts", "rubric", "answer", "human_score")
_HINT = "See docs/llm.md, 'Gold prompt sets', for the fields of a gold item."


@dataclass(frozen=True)
class GoldItem:
    """One gold prompt: what to ask, what a good answer holds, and optional human labels."""

    id: str
    variables: dict[str, Any] = field(default_factory=dict)
    input: str | None = None
    reference: str = ""
    facts: tuple[str, ...] = ()
    rubric: tuple[str, ...] = ()
    guidance: str = ""
    answer: str | None = None
    human_score: int | None = None

    @property
    def expected(self) -> str:
        """The reference and the facts, as the judge is shown them (one line)."""
        parts = [self.reference, *self.facts]
        return " ".join(" ".join(part.split()) for part in parts if part.strip())

    @property
    def calibrated(self) -> bool:
        """Whether the item belongs to the calibration slice (it has a human score)."""
        return self.human_score is not None

    def row(self) -> dict[str, Any]:
        """Variables plus ``input``: one row for :meth:`LLMPredictor.predict`."""
        row = dict(self.variables)
        if self.input is not None:
            row["input"] = self.input
        return row


@dataclass(frozen=True)
class GoldSet:
    """A loaded gold set: its items, where it came from, and the file's SHA-256."""

    items: tuple[GoldItem, ...]
    source: str
    file_sha256: str

    @property
    def calibration(self) -> tuple[GoldItem, ...]:
        """The items with human labels on a fixed answer."""
        return tuple(item for item in self.items if item.calibrated)

    def frame(self) -> pd.DataFrame:
        """The normalised table the digest is computed on (nested values as JSON text)."""
        return pd.DataFrame(
            {
                "id": [i.id for i in self.items],
                "variables": [canonical_json(i.variables).decode() for i in self.items],
                "input": [i.input for i in self.items],
                "reference": [i.reference for i in self.items],
                "facts": [canonical_json(list(i.facts)).decode() for i in self.items],
                "rubric": [
                    i.guidance or canonical_json(list(i.rubric)).decode() for i in self.items
                ],
                "answer": [i.answer for i in self.items],
                "human_score": pd.array([i.human_score for i in self.items], dtype="Int64"),
            },
            columns=list(COLUMNS),
        )

    def snapshot(self, artifact_root: Path | Location) -> Snapshot:
        """Store the normalised set as a dataset snapshot (once per content); its record."""
        from shipyard.data import snapshot_frame

        return snapshot_frame(self.frame(), artifact_root, source=self.source)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a gold file's bytes (promotion compares it with the scorecard's)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_gold(path: Path, rubric: Sequence[str] = ()) -> GoldSet:
    """Read a gold set (``.jsonl``/``.json`` lines or ``.parquet``); a DataError names the
    line and field of any bad item. ``rubric`` is the default for items without one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"No gold set at {path}.", hint="Set llm.judge.gold to a JSONL file.")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        records = _json_lines(path)
    elif suffix == ".parquet":
        records = [
            {str(k): v for k, v in r.items()}
            for r in pd.read_parquet(path).to_dict(orient="records")
        ]
    else:
        raise DataError(
            f"Cannot read gold set {path}: unsupported file type {suffix or '(none)'!r}.",
            hint="Write it as JSON Lines (.jsonl) or Parquet.",
        )
    if not records:
        raise DataError(f"The gold set {path} has no items.", hint=_HINT)
    items = tuple(_item(record, n, path, tuple(rubric)) for n, record in enumerate(records, 1))
    seen: set[str] = set()
    for number, item in enumerate(items, 1):
        if item.id in seen:
            raise DataError(f"{path} item {number}: id {item.id!r} is used twice.", hint=_HINT)
        seen.add(item.id)
    return GoldSet(items, str(path.resolve()), file_sha256(path))


def project_gold(config: Config, store: Store | None = None) -> tuple[GoldSet, Snapshot]:
    """The project's gold set (``llm.judge.gold``) and its snapshot (recorded in ``store``)."""
    from shipyard.data import record_snapshot
    from shipyard.errors import EvaluationError
    from shipyard.storage import artifact_location

    judge = config.llm.judge
    if judge.gold is None:
        raise EvaluationError(
            "No gold set configured.",
            hint="Set llm.judge.gold in shipyard.yaml to a JSONL file of gold prompts.",
        )
    gold = load_gold(config.resolve(judge.gold), judge.rubric)
    snap = gold.snapshot(artifact_location(config))
    if store is not None:
        record_snapshot(store, snap)
    return gold, snap


def _json_lines(path: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"{path} line {number} is not JSON: {exc}.", hint=_HINT) from None
        if not isinstance(value, dict):
            raise DataError(f"{path} line {number} is not a JSON object.", hint=_HINT)
        value.setdefault("_line", number)
        records.append(value)
    return records


def _item(record: Mapping[str, Any], n: int, path: Path, rubric: tuple[str, ...]) -> GoldItem:
    where = f"{path} item {record.get('_line', n)}"

    def bad(name: str, what: str) -> DataError:
        return DataError(f"{where}: field '{name}' {what}.", hint=_HINT)

    unknown = sorted(set(record) - set(COLUMNS) - {"_line"})
    if unknown:
        raise bad(unknown[0], f"is not a gold field (fields: {', '.join(COLUMNS)})")
    ident = _text(record.get("id"))
    if not ident:
        raise bad("id", "is missing")
    variables = _json_value(record.get("variables"), dict) or {}
    if not isinstance(variables, dict):
        raise bad("variables", "must be an object of template variables")
    facts = _json_value(record.get("facts"), list) or []
    if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
        raise bad("facts", "must be a list of texts")
    own = _json_value(record.get("rubric"), list) or []
    guidance = ""
    if isinstance(own, str):
        guidance, own = " ".join(own.split()), []
    if not isinstance(own, list) or not all(isinstance(c, str) and c for c in own):
        raise bad("rubric", "must be a list of criterion names or a text")
    reference = _text(record.get("reference")) or ""
    if not reference.strip() and not facts:
        raise bad("reference", "is missing (give a reference answer or facts)")
    score = _score(record.get("human_score"))
    if score is False:
        raise bad("human_score", "must be a whole number from 1 to 5")
    answer = _text(record.get("answer"))
    return GoldItem(
        id=ident,
        variables=variables,
        input=_text(record.get("input")),
        reference=reference,
        facts=tuple(facts),
        rubric=tuple(own) or rubric,
        guidance=guidance,
        answer=answer,
        human_score=score if isinstance(score, int) else None,
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str | None:
    return None if _missing(value) else str(value)


def _json_value(value: Any, kind: type) -> Any:
    """A nested value as given, or parsed from the JSON text a Parquet column holds."""
    if _missing(value):
        return None
    if isinstance(value, str) and kind is not str:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if hasattr(value, "tolist"):  # a NumPy array read from Parquet
        return value.tolist()
    return value


def _score(value: Any) -> int | bool | None:
    if _missing(value):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if float(value) != int(value) or not 1 <= int(value) <= 5:
        return False
    return int(value)
