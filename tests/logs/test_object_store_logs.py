"""Prediction and label logs in a bucket: written by several hosts, read by DuckDB.

S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST API
to the real boto3/s3fs/pyarrow clients (:mod:`tests.support.s3`). Two writers with their
own journal folders stand for two hosts: the journals stay on "their" disks, the Parquet
files land in one bucket prefix, and every reader sees the rows of both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from shipyard.config.storage import StorageSettings
from shipyard.errors import ConfigError, RequestError
from shipyard.logs import LabelBook, join_labels, log_coverage, query_log
from shipyard.logs.losses import LossRecord, append_losses
from shipyard.logs.root import host_id
from shipyard.logs.writer import LabelRecord, PredictionBatch, PredictionLogWriter
from shipyard.monitoring.log_window import WindowSpec, load_window
from shipyard.storage.location import Location, location
from tests.support.s3 import S3Server, moto_server

MODEL = "churn"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for this module; each test makes its own bucket."""
    with moto_server() as server:
        yield server


@pytest.fixture
def logs(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Location:
    """A fresh bucket's ``logs`` prefix, with this test's environment pointed at the server."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    settings = StorageSettings(endpoint_url=s3_server.endpoint_url)
    bucket = s3_server.bucket("logs")
    return location(f"{bucket}/logs", base=tmp_path, settings=settings)


def batch(request_id: str, version: str = "1", x: float = 1.0) -> PredictionBatch:
    return PredictionBatch(
        request_id=request_id,
        time=datetime.now(UTC),
        model=MODEL,
        version=version,
        role="live",
        columns=("x",),
        matrix=np.array([[x]]),
        labels=np.array([int(x) % 2]),
        probabilities=None,
        latency_ms=1.0,
        status="ok",
    )


def host_writer(logs: Location, disk: Path) -> PredictionLogWriter:
    """A writer as one host's server makes it: the journal on its disk, files in the bucket."""
    return PredictionLogWriter(logs, journal=disk / "journal" / "predictions", roll_rows=50)


def test_two_hosts_write_one_dataset_and_every_reader_sees_both(
    logs: Location, tmp_path: Path, s3_server: S3Server
) -> None:
    with host_writer(logs, tmp_path / "a") as a, host_writer(logs, tmp_path / "b") as b:
        for i in range(120):
            a.log(batch(f"a{i}", "1", float(i)))
            b.log(batch(f"b{i}", "2", float(i)))
        a.flush()
        b.flush()
        # The journals stay on each host's disk, never in the bucket.
        assert any((tmp_path / "a" / "journal" / "predictions").iterdir())

    keys = s3_server.keys(logs.url)
    parquet = [k for k in keys if k.endswith(".parquet")]
    assert all(f"/predictions/model={MODEL}/date=" in k for k in parquet), keys
    assert not [k for k in keys if "_journal" in k or ".journal" in k], keys
    names = [k.rsplit("/", 1)[1] for k in parquet]
    assert len(names) == len(set(names)) >= 6  # 120 rows each, files of at most 50
    assert all(host_id() in name for name in names)  # who wrote a file is in its name

    table = query_log(logs, MODEL)
    assert table.num_rows == 240
    assert sorted(set(table.column("version").to_pylist())) == ["1", "2"]
    counted = query_log(logs, MODEL, sql="SELECT version, count(*) AS n FROM log GROUP BY 1")
    assert dict(zip(*counted.to_pydict().values(), strict=True)) == {"1": 120, "2": 120}
    since = query_log(logs, MODEL, since=datetime.now(UTC) + timedelta(days=1))
    assert since.num_rows == 0

    window = load_window(logs, MODEL, WindowSpec.parse("last:200"))
    assert window.rows == 200 and set(window.versions) == {"1", "2"}
    assert window.coverage is not None and window.coverage.complete


def test_a_later_file_from_another_host_is_seen_by_the_next_read(
    logs: Location, tmp_path: Path
) -> None:
    """The bucket's listing is read afresh: a reader in a long-lived process (the agent)
    sees what another host rolled after its previous read."""
    with host_writer(logs, tmp_path / "a") as a:
        a.log(batch("first"))
    assert query_log(logs, MODEL).num_rows == 1
    with host_writer(logs, tmp_path / "b") as b:
        b.log(batch("second"))
    assert query_log(logs, MODEL).column("request_id").to_pylist() == ["first", "second"]


def test_losses_of_every_host_count_in_a_window_coverage(logs: Location, tmp_path: Path) -> None:
    with host_writer(logs, tmp_path / "a") as a:
        for i in range(90):
            a.log(batch(f"r{i}"))
    now = datetime.now(UTC)  # within the window, which runs from its oldest row to now
    # Each host saves its losses as objects of its own (a bucket cannot append).
    append_losses(logs, "predictions", [LossRecord(now, MODEL, "1", 6, "disk full")], writer="a")
    append_losses(logs, "predictions", [LossRecord(now, MODEL, "1", 4, "disk full")], writer="b")
    coverage = log_coverage(logs, MODEL, 90, since=now - timedelta(minutes=1))
    assert (coverage.logged, coverage.lost) == (90, 10)
    window = load_window(logs, MODEL, WindowSpec.parse("last:90"))
    assert window.coverage is not None and window.coverage.lost == 10


def test_labels_in_a_bucket_are_checked_against_every_host_and_joined(
    logs: Location, tmp_path: Path
) -> None:
    with host_writer(logs, tmp_path / "a") as writer:
        for i in range(5):
            writer.log(batch(f"r{i}"))
    now = datetime.now(UTC)
    host_a = LabelBook(logs, lock_folder=tmp_path / "a" / "locks")
    host_b = LabelBook(logs, lock_folder=tmp_path / "b" / "locks")
    written = host_a.write([LabelRecord(f"r{i}", now, MODEL, 1) for i in range(3)])
    assert written.written == ("r0", "r1", "r2")
    assert all(host_id() in path.name for path in written.files)
    # Host B reads host A's label files from the bucket before it writes.
    with pytest.raises(RequestError, match="r1"):
        host_b.write([LabelRecord("r1", now, MODEL, 0)])
    host_b.write([LabelRecord("r3", now, MODEL, 0)])
    assert host_a.labelled(MODEL) == {"r0", "r1", "r2", "r3"}

    joined = join_labels(logs, MODEL)
    labels = dict(zip(joined["request_id"].to_pylist(), joined["label"].to_pylist(), strict=True))
    assert labels == {"r0": "1", "r1": "1", "r2": "1", "r3": "0", "r4": None}


def test_a_bucket_log_needs_local_journal_and_lock_folders(logs: Location) -> None:
    with pytest.raises(ConfigError, match="journal"):
        PredictionLogWriter(logs)
    with pytest.raises(ConfigError, match="lock"):
        LabelBook(logs)


def test_an_unreachable_bucket_keeps_the_journal_and_says_so_until_it_is_back(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Rows answered while the bucket is missing wait in the journal, health says why,
    and they reach the bucket once it exists: nothing answered is lost."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    settings = StorageSettings(endpoint_url=s3_server.endpoint_url)
    bucket = "missing-" + tmp_path.name.lower().replace("_", "-")[-20:]
    logs = location(f"s3://{bucket}/logs", base=tmp_path, settings=settings)
    writer = host_writer(logs, tmp_path)
    try:
        for i in range(10):
            assert writer.log(batch(f"r{i}"))
        writer.flush()
        health = writer.health
        assert health.failing and health.pending_rows == 10 and health.lost_rows == 0
        assert health.reason is not None and bucket in health.reason
        s3_server.client().create_bucket(Bucket=bucket)
        writer.flush()
        assert not writer.failing and writer.health.pending_rows == 0
    finally:
        writer.close()
    assert query_log(logs, MODEL).num_rows == 10


def test_pii_retention_prunes_a_bucket_log_in_place(
    logs: Location, tmp_path: Path, s3_server: S3Server
) -> None:
    """Files of days past the tag's retention are rewritten in the bucket (one PUT each)
    without the tagged column; newer days and other columns stay."""
    from shipyard.logs.pii import PiiPolicy
    from shipyard.logs.prune import prune_logs

    policy = PiiPolicy(
        columns={"email": "pii"}, masking={"pii": "hash"}, retention_days={"pii": 30}
    )
    now = datetime.now(UTC)
    rows = (("new", now), ("old", now - timedelta(days=40)))
    with host_writer(logs, tmp_path) as writer:
        for request_id, at in rows:
            writer.log(
                PredictionBatch(
                    request_id,
                    at,
                    MODEL,
                    "1",
                    "live",
                    ("email", "age"),
                    np.array([["a-hash", 31]], dtype=object),
                    np.array([1]),
                    None,
                    1.0,
                    "ok",
                )
            )
    dry = prune_logs(policy, logs, dry_run=True)
    assert [(p.model, p.columns, p.rows) for p in dry.pruned] == [(MODEL, ["email"], 1)]
    report = prune_logs(policy, logs)
    assert [(p.where, p.days, p.files) for p in report.pruned] == [
        ("log", [(now - timedelta(days=40)).date().isoformat()], 1)
    ]
    table = query_log(logs, MODEL, sql="SELECT request_id, inputs FROM log ORDER BY 1")
    by_id = dict(zip(table["request_id"].to_pylist(), table["inputs"].to_pylist(), strict=True))
    assert by_id["old"]["email"] is None and by_id["old"]["age"] == 31
    assert by_id["new"]["email"] == "a-hash"
    assert prune_logs(policy, logs).pruned == []  # nothing left to prune


def test_the_logs_command_reads_a_bucket_named_by_serving_logs(
    initialised_example: Path,
    logs: Location,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``serving.logs: s3://…`` in shipyard.yaml: ``shipyard logs query`` reads the bucket."""
    import yaml

    from shipyard.cli import run
    from shipyard.config import load_config
    from shipyard.logs.root import journal_folder, project_log_root

    settings = initialised_example / "shipyard.yaml"
    document = yaml.safe_load(settings.read_text(encoding="utf-8"))
    document["serving"] = {"logs": logs.url}
    document["storage"] = {"endpoint_url": logs.settings.endpoint_url}
    settings.write_text(yaml.safe_dump(document), encoding="utf-8")
    config = load_config(settings, environ={})
    root = project_log_root(config)
    assert root == logs
    assert journal_folder(config, "predictions") == config.workspace / "journal" / "predictions"
    with host_writer(logs, tmp_path) as writer:
        for i in range(3):
            writer.log(batch(f"r{i}"))
    monkeypatch.chdir(initialised_example)
    assert run(["logs", "query", "churn", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [row["request_id"] for row in shown] == ["r0", "r1", "r2"]


@pytest.mark.postgres
def test_hosts_racing_to_label_one_request_in_a_bucket_accept_exactly_one(
    logs: Location, tmp_path: Path, postgres_url: str
) -> None:
    """Four hosts (their own lock folders) share one PostgreSQL: its advisory lock orders
    their checks, so with ``reject`` one label is written and every other is a 409."""
    import threading

    from shipyard.logs.label_book import database_lock
    from shipyard.store import Store

    stores = [Store(postgres_url, actor="tester") for _ in range(4)]
    try:
        books = [
            LabelBook(logs, lock_folder=tmp_path / f"host{i}", shared_lock=database_lock(store))
            for i, store in enumerate(stores)
        ]
        start = threading.Barrier(len(books))
        outcomes: list[str] = []

        def label(book: LabelBook, value: int) -> None:
            start.wait()
            try:
                book.write([LabelRecord("r0", datetime.now(UTC), MODEL, value)])
                outcomes.append("written")
            except RequestError:
                outcomes.append("refused")

        threads = [threading.Thread(target=label, args=(book, i)) for i, book in enumerate(books)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert sorted(outcomes) == ["refused", "refused", "refused", "written"]
        assert query_log(logs, MODEL, kind="labels").num_rows == 1
    finally:
        for store in stores:
            store.close()


def test_the_database_lock_is_postgresql_s_alone(tmp_path: Path) -> None:
    """SQLite lives on one host: the label book's flock is enough there."""
    from shipyard.logs.label_book import database_lock
    from shipyard.store import Store

    store = Store(f"sqlite:///{tmp_path / 'cp.db'}", actor="tester")
    try:
        assert database_lock(store) is None
    finally:
        store.close()


def test_a_window_reads_only_its_days_objects(logs: Location, tmp_path: Path) -> None:
    """A window from ``since`` names only the objects of its days: an unreadable object of
    an older day breaks a full read, never the window's."""
    from shipyard.errors import DataError
    from shipyard.logs.root import model_location

    with host_writer(logs, tmp_path) as writer:
        writer.log(batch("today"))
    old = (datetime.now(UTC) - timedelta(days=3)).date()
    folder = model_location(logs, "predictions", MODEL)
    folder.write_bytes(f"date={old}/part-broken.parquet", b"not parquet")
    since = datetime.now(UTC) - timedelta(hours=1)
    assert query_log(logs, MODEL, since=since).column("request_id").to_pylist() == ["today"]
    with pytest.raises(DataError, match="log"):
        query_log(logs, MODEL)


def test_a_writer_saves_what_it_lost_to_the_bucket(logs: Location, tmp_path: Path) -> None:
    """Rows that never reached the journal (its folder cannot be made here) count against
    their window's coverage, saved by the writer itself as an object of its own."""
    blocked = tmp_path / "journal"
    blocked.write_text("a file where the journal folder should be")
    sent = batch("lost")
    writer = PredictionLogWriter(logs, journal=blocked, retry_seconds=0.0)
    writer.log(sent)  # held in memory for a retry that cannot succeed
    writer.close()
    assert writer.dropped == 1
    coverage = log_coverage(logs, MODEL, 0, since=sent.time - timedelta(minutes=1))
    assert (coverage.logged, coverage.lost) == (0, 1)


def test_each_row_keeps_its_own_version_when_versions_alternate(tmp_path: Path) -> None:
    """Requests of two versions (and roles) with text inputs, journaled in one segment as
    they come during a swap, each keep their own version and role in the file."""
    written: dict[str, tuple[str, str]] = {}
    with PredictionLogWriter(tmp_path / "logs", roll_rows=1000) as writer:
        for i in range(40):
            version, role = ("1", "live") if i % 3 else ("2", "shadow" if i % 2 else "live")
            writer.log(
                PredictionBatch(
                    f"r{i}",
                    datetime.now(UTC),
                    MODEL,
                    version,
                    role,
                    ("region", "age"),
                    np.array([["west", i]], dtype=object),
                    np.array([i % 2]),
                    None,
                    1.0,
                    "ok",
                )
            )
            written[f"r{i}"] = (version, role)
    table = query_log(tmp_path / "logs", MODEL)
    logged = zip(
        table["request_id"].to_pylist(),
        table["version"].to_pylist(),
        table["role"].to_pylist(),
        strict=True,
    )
    assert {rid: (version, role) for rid, version, role in logged} == written
