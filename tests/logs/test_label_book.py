"""The label log as a book of record: conflicts seen on disk, across processes; provenance kept.

Real Parquet files, read back with DuckDB; real processes racing for the same request
ids; the CLI path (``shipyard labels ingest``) on a real project with real tokens.
"""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.cli import run
from shipyard.config import load_config
from shipyard.errors import RequestError
from shipyard.governance.tokens import issue_token
from shipyard.logs.label_book import LabelBook, LabelOutcome
from shipyard.logs.reader import join_labels, query_log
from shipyard.logs.writer import LABEL_SCHEMA, LabelRecord, PredictionLogWriter, PredictionRecord
from shipyard.store.event_kinds import EventKind
from tests.support import project_of

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
Capture = pytest.CaptureFixture[str]


def labels(
    ids: list[str], value: int, *, sender: str = "alice", at: datetime = NOW
) -> list[LabelRecord]:
    return [
        LabelRecord(rid, at, "churn", value, sender=sender, token_id=f"{sender}-id", received_at=at)
        for rid in ids
    ]


def stored(root: Path) -> list[dict[str, Any]]:
    return query_log(root, "churn", kind="labels").to_pylist()


def test_reject_refuses_the_whole_batch_naming_the_ids(tmp_path: Path) -> None:
    book = LabelBook(tmp_path)
    first = book.write(labels(["a", "b"], 1))
    assert first.written == ("a", "b") and first.files
    with pytest.raises(RequestError) as raised:
        book.write(labels(["c", "b", "a"], 0, sender="mallory"))
    error = raised.value
    assert error.http_status == 409
    assert "b, a" in error.message and "on_conflict" in error.message
    rows = stored(tmp_path)
    assert sorted(r["request_id"] for r in rows) == ["a", "b"]  # not even "c"
    assert {r["sender"] for r in rows} == {"alice"}


def test_the_conflict_message_names_the_first_few_of_many(tmp_path: Path) -> None:
    book = LabelBook(tmp_path)
    ids = [f"p{i}" for i in range(400)]
    book.write(labels(ids, 1))
    with pytest.raises(RequestError) as raised:
        book.write(labels(ids, 0))
    assert "p0, p1, p2, p3, p4 (and 395 more)" in raised.value.message
    assert raised.value.message.startswith("400 labels conflict")


def test_keep_first_ignores_and_reports(tmp_path: Path) -> None:
    book = LabelBook(tmp_path)
    book.write(labels(["a"], 1))
    outcome = book.write(labels(["a", "b"], 0, sender="bob"), on_conflict="keep_first")
    assert outcome.written == ("b",) and outcome.ignored == ("a",) and outcome.replaced == ()
    assert outcome.to_dict() == {"accepted": 1, "dropped": 0, "ignored": ["a"]}
    by_id = {r["request_id"]: r for r in stored(tmp_path)}
    assert json.loads(str(by_id["a"]["label"])) == 1 and by_id["a"]["sender"] == "alice"
    assert by_id["b"]["sender"] == "bob"


def test_keep_last_keeps_both_and_readers_take_the_latest(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path) as writer:
        writer.log(
            PredictionRecord("a", NOW, "churn", "1", "live", {"x": 1}, 1, [0.2, 0.8], 1.0, "ok")
        )
    book = LabelBook(tmp_path)
    book.write(labels(["a"], 1))
    later = NOW + timedelta(minutes=5)
    outcome = book.write(labels(["a"], 0, sender="bob", at=later), on_conflict="keep_last")
    assert outcome.replaced == ("a",) and outcome.written == ("a",)
    assert outcome.to_dict()["replaced"] == ["a"]
    assert len(stored(tmp_path)) == 2  # the old label stays in the log
    (row,) = join_labels(tmp_path, "churn").to_pylist()
    assert json.loads(row["label"]) == 0 and row["label_sender"] == "bob"


def test_a_request_twice_in_one_batch_follows_the_same_rule(tmp_path: Path) -> None:
    book = LabelBook(tmp_path)
    with pytest.raises(RequestError) as raised:
        book.write([*labels(["a", "b"], 1), *labels(["a"], 0)])
    assert raised.value.http_status == 409
    assert "request id a has a label more than once in this batch" in raised.value.message
    assert stored(tmp_path) == []
    first = book.write([*labels(["a"], 1), *labels(["a"], 0)], on_conflict="keep_first")
    assert first.written == ("a",) and first.ignored == ("a",)
    assert [json.loads(str(r["label"])) for r in stored(tmp_path)] == [1]
    last = book.write([*labels(["b"], 1), *labels(["b"], 0)], on_conflict="keep_last")
    assert last.written == ("b",) and last.replaced == ("b",)
    by_id = {r["request_id"]: json.loads(str(r["label"])) for r in stored(tmp_path)}
    assert by_id == {"a": 1, "b": 0}  # one row for b: the batch's last label


def test_provenance_columns_are_in_every_file(tmp_path: Path) -> None:
    LabelBook(tmp_path).write(labels(["a"], 1))
    (path,) = (tmp_path / "labels").rglob("*.parquet")
    table = pq.read_table(path)
    assert table.schema.equals(LABEL_SCHEMA)
    (row,) = table.to_pylist()
    assert (row["sender"], row["token_id"], row["received_at"]) == ("alice", "alice-id", NOW)


def test_labels_written_before_provenance_read_as_null(tmp_path: Path) -> None:
    """Files from before the sender columns still read (and still count as labelled)."""
    old = pa.schema(list(LABEL_SCHEMA)[:4])  # request_id, time, model, label
    folder = tmp_path / "labels" / "model=churn" / "date=2026-11-24"
    folder.mkdir(parents=True)
    rows = {"request_id": ["a"], "time": [NOW], "model": ["churn"], "label": ["1"]}
    pq.write_table(pa.Table.from_pydict(rows, schema=old), folder / "part-old.parquet")
    (row,) = stored(tmp_path)
    assert row["request_id"] == "a" and row["sender"] is None and row["received_at"] is None
    with pytest.raises(RequestError):
        LabelBook(tmp_path).write(labels(["a"], 0))


def test_a_failed_audit_leaves_no_labels(tmp_path: Path) -> None:
    book = LabelBook(tmp_path)

    def audit(outcome: LabelOutcome) -> None:
        raise RuntimeError("the audit log is down")

    with pytest.raises(RuntimeError):
        book.write(labels(["a"], 1), commit=audit)
    assert stored(tmp_path) == []
    assert book.write(labels(["a"], 1)).written == ("a",)  # not a conflict: nothing stayed


def test_another_process_s_labels_are_conflicts(tmp_path: Path) -> None:
    """The disk is the truth: a book sees what another process's book wrote."""
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_write_one, args=(str(tmp_path), ["x1", "x2"], "worker-2"))
    writer.start()
    writer.join(timeout=120)
    assert writer.exitcode == 0
    with pytest.raises(RequestError) as raised:
        LabelBook(tmp_path).write(labels(["x2"], 0))
    assert "x2" in raised.value.message


def test_racing_processes_accept_one_batch(tmp_path: Path) -> None:
    """Four workers send the same request's label at once: exactly one is accepted."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    racers = [
        context.Process(target=_race, args=(str(tmp_path), f"worker-{i}", start, results))
        for i in range(4)
    ]
    for racer in racers:
        racer.start()
    start.set()
    outcomes = sorted(results.get(timeout=120) for _ in racers)
    for racer in racers:
        racer.join(timeout=120)
    assert outcomes == ["accepted", "conflict", "conflict", "conflict"]
    assert len(stored(tmp_path)) == 1


def _write_one(root: str, ids: list[str], sender: str) -> None:
    LabelBook(Path(root)).write(labels(ids, 1, sender=sender))


def _race(root: str, sender: str, start: object, results: object) -> None:
    book = LabelBook(Path(root))
    start.wait()  # type: ignore[attr-defined]
    try:
        book.write(labels(["same"], 1, sender=sender))
    except RequestError:
        results.put("conflict")  # type: ignore[attr-defined]
    else:
        results.put("accepted")  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the CLI path


def test_labels_ingest_follows_the_same_rules_and_is_audited(
    initialised_example: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    monkeypatch.chdir(initialised_example)
    config = load_config(initialised_example / "shipyard.yaml")
    project = project_of(config)
    viewer = issue_token(project, name="viewer", role="viewer").token
    labeller = issue_token(project, name="lab", role="labeller")
    batch = initialised_example / "labels.csv"
    batch.write_text("request_id,label\nr1,1\nr2,0\n", encoding="utf-8")

    monkeypatch.setenv("SHIPYARD_TOKEN", viewer)
    assert run(["labels", "ingest", str(batch)]) == 6
    assert "labels:write" in capsys.readouterr().err

    monkeypatch.setenv("SHIPYARD_TOKEN", labeller.token)
    assert run(["labels", "ingest", str(batch)]) == 0
    assert "2 labels of churn ingested" in capsys.readouterr().out
    assert run(["labels", "ingest", str(batch)]) == 2  # reject: a 409, exit 2
    err = capsys.readouterr().err
    assert "r1, r2" in err and "nothing was written" in err
    assert run(["labels", "ingest", str(batch), "--on-conflict", "keep_first", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ignored"] == ["r1", "r2"]

    (event,) = project.store.events(kind=EventKind.LABELS_WRITTEN.value)
    assert event.actor == "lab" and event.token_id == labeller.id
    assert event.payload["count"] == 2 and event.payload["on_conflict"] == "reject"
    assert event.payload["request_ids"] == ["r1", "r2"]
    logs = config.resolve(config.serving.logs)
    rows = query_log(logs, "churn", kind="labels").to_pylist()
    assert {(r["request_id"], r["sender"], r["token_id"]) for r in rows} == {
        ("r1", "lab", labeller.id),
        ("r2", "lab", labeller.id),
    }
    assert labeller.token not in json.dumps(event.payload)
    project.close()


def test_labels_ingest_namespaces_bare_ids(
    initialised_example: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    monkeypatch.chdir(initialised_example)
    batch = initialised_example / "labels.csv"
    batch.write_text("request_id,label\nr1,1\nbob/r1,0\n", encoding="utf-8")
    assert run(["labels", "ingest", str(batch), "--namespace", "checkout-app"]) == 0
    config = load_config(initialised_example / "shipyard.yaml")
    rows = query_log(config.resolve(config.serving.logs), "churn", kind="labels").to_pylist()
    assert sorted(r["request_id"] for r in rows) == ["bob/r1", "checkout-app/r1"]
