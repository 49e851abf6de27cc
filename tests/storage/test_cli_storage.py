"""The command line with a bucket artifact_root: results, and errors without tracebacks.

S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST API
to the real boto3/s3fs/pyarrow clients.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.cli import run
from tests.support.s3 import S3Server


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stdout + stderr of one in-process command."""
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, out + err


def test_data_snapshot_goes_to_the_bucket(
    s3: S3Server,
    example_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients."""
    bucket = s3.bucket("cli")
    monkeypatch.chdir(example_project)
    monkeypatch.setenv("SHIPYARD_ARTIFACT_ROOT", f"{bucket}/churn")
    monkeypatch.setenv("SHIPYARD_STORAGE__ENDPOINT_URL", s3.endpoint_url)
    code, out, both = cli(capsys, "data", "snapshot", "data/train.csv", "--json")
    assert code == 0, both
    snap = json.loads(out)
    assert snap["data_path"] == f"{bucket}/churn/datasets/{snap['digest']}/data.parquet"
    assert f"churn/datasets/{snap['digest']}/snapshot.json" in s3.keys(bucket)
    assert not (example_project / ".shipyard" / "artifacts").exists()
    code, out, _ = cli(capsys, "data", "snapshot", "data/train.csv", "--json")
    assert code == 0 and json.loads(out)["new"] is False


@pytest.mark.parametrize(
    ("root", "code", "words"),
    [
        ("s3://no-such-bucket-cli/p", 5, ["Bucket 'no-such-bucket-cli' does not exist"]),
        ("hdfs://cluster/p", 2, ["'hdfs://' is not supported", "shipyard-mlops[s3]"]),
    ],
)
def test_a_bucket_that_cannot_be_used_is_one_clear_line(
    s3: S3Server,
    example_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root: str,
    code: int,
    words: list[str],
) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients."""
    monkeypatch.chdir(example_project)
    monkeypatch.setenv("SHIPYARD_ARTIFACT_ROOT", root)
    monkeypatch.setenv("SHIPYARD_STORAGE__ENDPOINT_URL", s3.endpoint_url)
    exit_code, _, out = cli(capsys, "data", "snapshot", "data/train.csv")
    assert exit_code == code, out
    for word in words:
        assert word in out
    assert "Traceback" not in out


def test_credentials_in_the_storage_section_are_refused(
    example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The key is named with where credentials belong; its value is never echoed."""
    config = example_project / "shipyard.yaml"
    config.write_text(config.read_text() + "storage:\n  secret_access_key: not-for-this-file-123\n")
    monkeypatch.chdir(example_project)
    code, _, out = cli(capsys, "data", "snapshot", "data/train.csv")
    assert code == 2
    assert "storage" in out and "secret_access_key" in out and "AWS_PROFILE" in out
    assert "not-for-this-file-123" not in out
