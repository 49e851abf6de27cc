"""The event-kind catalogue: complete in the docs, enforced by the store, used by every call."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shipyard.store import ALL_KINDS, EventKind, Store, kind_of
from shipyard.store.event_kinds import kinds_table

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "registry.md"
START = "<!-- event kinds: generated from shipyard.store.event_kinds.kinds_table() -->\n"
END = "<!-- end of event kinds -->"


def test_every_kind_is_documented_in_the_registry_page() -> None:
    page = DOC.read_text(encoding="utf-8")
    assert START in page and END in page, "docs/registry.md lost its event-kinds table"
    shown = page.split(START, 1)[1].split(END, 1)[0]
    assert shown == kinds_table(), (
        "docs/registry.md is out of step with shipyard/store/event_kinds.py; paste in "
        "the output of `python -c 'from shipyard.store.event_kinds import kinds_table; "
        'print(kinds_table(), end="")\'`'
    )


def test_every_kind_has_a_meaning_and_a_distinct_spelling() -> None:
    assert frozenset(EventKind) == ALL_KINDS
    assert len({kind.value for kind in EventKind}) == len(EventKind)
    for kind in EventKind:
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)?", kind.value), kind
        assert kind.meaning.endswith(".") and len(kind.meaning) > 20, kind


def test_the_store_refuses_an_unknown_kind_and_records_nothing(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cp.db'}", actor="tester")
    try:
        with pytest.raises(ValueError, match=r"'run\.finshed' is not an event kind") as info:
            store.record("run.finshed", "run:r1")  # type: ignore[arg-type]
        assert "shipyard/store/event_kinds.py" in str(info.value)
        assert store.events() == []
    finally:
        store.close()


def test_every_kind_is_stored_as_its_plain_text(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cp.db'}", actor="tester")
    try:
        for kind in EventKind:
            store.record(kind, "model:churn")
        # a kind spelled as text is accepted when it is catalogued
        store.record("rollout.paused", "model:churn")  # type: ignore[arg-type]
        stored = store.events(limit=100)
        assert [e.kind for e in reversed(stored)] == [
            *(k.value for k in EventKind),
            "rollout.paused",
        ]
        assert all(type(e.kind) is str for e in stored)
        assert len(store.events(kind=EventKind.ALERT_OPENED)) == 1
        assert len(store.events(kind="alert.opened")) == 1
    finally:
        store.close()


def test_kind_of_names_the_catalogue() -> None:
    assert kind_of("alias.rollback") is EventKind.ALIAS_ROLLBACK
    assert kind_of(EventKind.CT_GATE) is EventKind.CT_GATE
    with pytest.raises(ValueError, match=r"alias\.undo"):
        kind_of("alias.undo")


def _record_calls_with_text(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "record"
            and node.args
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr)
        ):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_no_library_code_records_a_kind_spelled_as_text() -> None:
    offenders = [
        where
        for path in sorted((REPO / "shipyard").rglob("*.py"))
        for where in _record_calls_with_text(path)
    ]
    assert offenders == [], "record(...) takes an EventKind from shipyard/store/event_kinds.py"
