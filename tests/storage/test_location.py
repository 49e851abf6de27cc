"""``Location``: one API over a local folder and a bucket.

S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST API
to the real boto3/s3fs/pyarrow clients.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.config import Config, StorageSettings, load_config
from shipyard.errors import ConfigError, StorageError
from shipyard.storage import Location, artifact_location, location, log_location
from tests.support.s3 import S3Server


def on_s3(s3: S3Server, prefix: str = "root", **settings: float) -> Location:
    """A Location under a fresh bucket of the test server.

    These tests are not about timeouts: on a loaded machine moto's IAM checks can take
    longer than the 4 s default, which would turn a refused key into "cannot reach"."""
    settings.setdefault("timeout_seconds", 60.0)
    bucket = s3.bucket("loc")
    return location(
        f"{bucket}/{prefix}",
        base=Path("/nowhere"),
        settings=StorageSettings(endpoint_url=s3.endpoint_url, **settings),  # type: ignore[arg-type]
    )


def test_a_local_folder_round_trips_files_atomically(tmp_path: Path) -> None:
    """A relative path resolves against the base; writes leave no temporary files behind."""
    root = location("store", base=tmp_path, settings=StorageSettings())
    assert root.is_local and root.url == (tmp_path / "store").resolve().as_posix()
    assert root.local_path() == (tmp_path / "store").resolve()

    written = root.write_bytes("a/b/data.bin", b"\x00\x01")
    assert written == root.path("a", "b", "data.bin")
    assert root.read_bytes("a/b/data.bin") == b"\x00\x01"
    assert root.child("a").exists("b/data.bin")
    assert [p.name for p in (tmp_path / "store" / "a" / "b").iterdir()] == ["data.bin"]
    assert root.glob("a/**/*.bin") == [written]
    with pytest.raises(FileNotFoundError):
        root.read_bytes("missing.bin")
    root.remove("a", recursive=True)
    assert not root.exists("a")
    root.check()


def test_a_bucket_round_trips_files_through_s3(s3: S3Server) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients."""
    root = on_s3(s3)
    assert not root.is_local and root.scheme == "s3" and root.bucket in root.url

    root.write_text("reports/r.json", '{"ok": true}')
    assert root.read_text("reports/r.json") == '{"ok": true}'
    assert root.exists("reports/r.json") and not root.exists("reports/none.json")
    assert s3.keys(root.url) == [f"{root.url.split('/', 3)[3]}/reports/r.json"]
    assert root.glob("reports/*.json") == [root.path("reports/r.json")]
    with pytest.raises(FileNotFoundError):
        root.read_bytes("reports/none.json")
    with pytest.raises(ConfigError, match="bucket"):
        root.local_path()

    root.check()  # leaves no probe object behind
    assert s3.keys(root.url) == [f"{root.url.split('/', 3)[3]}/reports/r.json"]
    root.remove("reports/r.json")
    assert s3.keys(root.url) == []


def test_folders_go_up_and_down_a_bucket(s3: S3Server, tmp_path: Path) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients."""
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "sub" / "weights.bin").write_bytes(b"w" * 1000)
    root = on_s3(s3)
    root.put(folder, "models/m1")
    back = root.get("models/m1", tmp_path / "back")
    assert (back / "MLmodel").read_text() == "flavors: {}\n"
    assert (back / "sub" / "weights.bin").read_bytes() == b"w" * 1000


def test_duckdb_and_pyarrow_read_parquet_straight_from_the_bucket(s3: S3Server) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients. DuckDB reads through fsspec (no httpfs)."""
    logs = on_s3(s3, "logs")
    for part, values in (("m/date=2026-12-01", [1, 2, 3]), ("m/date=2026-12-02", [10, 20])):
        pq.write_table(
            pa.table({"x": values}), logs.arrow_path(part, "w1.parquet"), filesystem=logs.arrow_fs
        )
    con = duckdb.connect()
    source = logs.duckdb_source(con, "m/**/*.parquet")
    assert source.startswith("s3://")
    assert con.sql(f"select sum(x), count(*) from read_parquet('{source}')").fetchall() == [(36, 5)]
    # Registering twice on one connection is harmless.
    assert logs.duckdb_source(con, "m/*/*.parquet") == logs.path("m/*/*.parquet")
    table = pq.read_table(logs.arrow_path("m"), filesystem=logs.arrow_fs)
    assert sorted(table.column("x").to_pylist()) == [1, 2, 3, 10, 20]


def test_a_missing_bucket_names_the_bucket(s3: S3Server) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients."""
    root = location(
        "s3://no-such-bucket-here/prefix",
        base=Path("/nowhere"),
        settings=StorageSettings(endpoint_url=s3.endpoint_url),  # type: ignore[call-arg]
    )
    with pytest.raises(StorageError, match="Bucket 'no-such-bucket-here' does not exist") as err:
        root.check()
    assert "Create the bucket" in str(err.value)


def test_missing_credentials_say_where_credentials_come_from(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients."""
    root = on_s3(s3)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match=f"No credentials .* bucket '{root.bucket}'") as err:
        root.check()
    assert "AWS_ACCESS_KEY_ID" in str(err.value) and "never go in shipyard.yaml" in str(err.value)


def test_a_denied_permission_and_an_unknown_key_are_told_apart(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients; here it checks keys and IAM policies."""
    root = on_s3(s3)
    with s3.checking_credentials(deny=("s3:PutObject",)) as reader:
        for name, value in reader.items():
            monkeypatch.setenv(name, value)
        assert not root.exists("anything")  # reading is allowed
        with pytest.raises(StorageError, match=f"Permission denied .* '{root.bucket}'") as err:
            root.check()
        assert "s3:PutObject" in str(err.value)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNUNKNOWN00")
        with pytest.raises(StorageError, match="credentials were refused") as err:
            root.check()
        assert reader["AWS_SECRET_ACCESS_KEY"] not in str(err.value)


@contextmanager
def silent_endpoint() -> Iterator[tuple[str, list[int]]]:
    """An HTTP endpoint that accepts connections and never answers; counts connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[int] = []
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    finally:
        server.close()
        for conn in held:
            conn.close()


def test_an_endpoint_that_never_answers_is_one_bounded_attempt(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No retry storm: one connection, bounded by storage.timeout_seconds, then the error."""
    with silent_endpoint() as (endpoint, accepted):
        root = location(
            "s3://silent-bucket/p",
            base=Path("/nowhere"),
            settings=StorageSettings(endpoint_url=endpoint, timeout_seconds=1),  # type: ignore[call-arg]
        )
        with pytest.raises(StorageError, match="Cannot reach bucket 'silent-bucket'") as err:
            root.check()
        assert endpoint in str(err.value) and "storage.endpoint_url" in str(err.value)
        assert len(accepted) <= 1  # no retry (0 when the deadline came before the connect)


def test_a_closed_port_is_reported_as_unreachable(s3: S3Server) -> None:
    """A refused connection names the bucket and the endpoint."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()
    root = location(
        "s3://far-bucket/p",
        base=Path("/nowhere"),
        settings=StorageSettings(endpoint_url=endpoint, timeout_seconds=1),  # type: ignore[call-arg]
    )
    with pytest.raises(StorageError, match=f"Cannot reach bucket 'far-bucket' at {endpoint}"):
        root.exists("x")


def test_unsupported_schemes_name_what_to_install(tmp_path: Path) -> None:
    """An unknown scheme lists the supported ones; a known one without its extra names it."""
    settings = StorageSettings()
    with pytest.raises(ConfigError, match="'hdfs://' is not supported") as err:
        location("hdfs://cluster/x", base=tmp_path, settings=settings)
    assert "shipyard-mlops[s3]" in str(err.value)
    pytest.importorskip("s3fs")
    for url, extra, module in (("gs://b/x", "gcs", "gcsfs"), ("az://c/x", "azure", "adlfs")):
        try:
            __import__(module)
        except ImportError:
            with pytest.raises(ConfigError, match=rf"shipyard-mlops\[{extra}\]"):
                location(url, base=tmp_path, settings=settings)
    with pytest.raises(ConfigError, match="one slash") as err:
        location("s3:/team-bucket/x", base=tmp_path, settings=settings)
    assert "s3://team-bucket/x" in str(err.value)
    with pytest.raises(ConfigError, match="names no bucket"):
        location("s3:///x", base=tmp_path, settings=settings)
    assert location(f"file://{tmp_path}/x", base=Path("/"), settings=settings).url == (
        f"{tmp_path.resolve().as_posix()}/x"
    )


def test_config_places_artifacts_and_logs(tmp_path: Path) -> None:
    """Logs follow a bucket artifact_root unless serving.logs is set; local stays local."""
    local = Config(root=tmp_path)  # type: ignore[call-arg]
    assert artifact_location(local).url == (tmp_path / ".shipyard/artifacts").resolve().as_posix()
    assert log_location(local).url == (tmp_path / ".shipyard/logs").resolve().as_posix()

    remote = Config(root=tmp_path, artifact_root="s3://team-bucket/churn/")  # type: ignore[call-arg]
    assert artifact_location(remote).url == "s3://team-bucket/churn"
    assert log_location(remote).url == "s3://team-bucket/churn/logs"
    with pytest.raises(ConfigError, match="bucket URL"):
        _ = remote.artifact_path

    dumped = Config.model_validate({**remote.model_dump(mode="json"), "root": tmp_path})
    assert log_location(dumped).url == "s3://team-bucket/churn/logs"  # default is "unset"

    split = Config(  # type: ignore[call-arg]
        root=tmp_path, artifact_root="s3://team-bucket/churn", serving={"logs": "s3://logs-b/x"}
    )
    assert log_location(split).url == "s3://logs-b/x"
    assert Config(root=tmp_path, artifact_root=tmp_path / "a").artifact_root == str(tmp_path / "a")  # type: ignore[call-arg]


def test_credentials_in_shipyard_yaml_are_refused(tmp_path: Path) -> None:
    """A credential-looking key in the storage section is refused, and its value not echoed."""
    file = tmp_path / "shipyard.yaml"
    file.write_text(
        "artifact_root: s3://b/p\nstorage:\n  endpoint_url: http://127.0.0.1:9000\n"
        "  aws_secret_access_key: hunter2-very-secret\n"
    )
    with pytest.raises(ConfigError, match="storage") as err:
        load_config(file, environ={})
    assert "aws_secret_access_key" in str(err.value)
    assert "AWS_ACCESS_KEY_ID" in str(err.value)
    assert "hunter2-very-secret" not in str(err.value)
    file.write_text("storage:\n  endpoint_url: not-a-url\n")
    with pytest.raises(ConfigError, match=r"storage\.endpoint_url"):
        load_config(file, environ={})
