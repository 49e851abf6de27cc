"""Audit checkpoints written to and read back from a bucket.

S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST API
to the real boto3/s3fs/pyarrow clients.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shipyard.config import StorageSettings
from shipyard.errors import AuditFailed
from shipyard.governance.audit import verify, write_checkpoint
from shipyard.governance.checkpoints import (
    checkpoint_files,
    read_checkpoint,
    save_checkpoint,
    sign_checkpoint,
    signature_problem,
)
from shipyard.storage import location
from shipyard.store import EventKind
from tests.support import load, project_of
from tests.support.audit_history import keys_for
from tests.support.s3 import S3Server


def test_checkpoints_round_trip_through_a_bucket(s3: S3Server) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients."""
    folder = location(
        f"{s3.bucket('audit')}/churn/audit",
        base=Path("/nowhere"),
        settings=StorageSettings(endpoint_url=s3.endpoint_url),  # type: ignore[call-arg]
    )
    key = Ed25519PrivateKey.generate()
    assert checkpoint_files(folder) == []
    first = save_checkpoint(
        sign_checkpoint(3, "ab" * 32, "2026-12-07T03:00:00+00:00", "churn", key), folder
    )
    second = save_checkpoint(
        sign_checkpoint(10, "cd" * 32, "2026-12-07T04:00:00+00:00", "churn", key), folder
    )
    assert first.path is not None and first.path.startswith(folder.url + "/checkpoint-3-")
    assert first.name == first.path.rsplit("/", 1)[-1]

    files = checkpoint_files(folder)
    assert [f.url for f in files] == [first.path, second.path]  # oldest first
    loaded = [read_checkpoint(f) for f in files]
    assert loaded == [first, second]
    assert all(signature_problem(c, key.public_key(), "churn") is None for c in loaded)

    with pytest.raises(AuditFailed, match="already exists"):
        save_checkpoint(first, folder)
    folder.write_text(files[0].url.rsplit("/", 1)[-1], '{"size": "x"}')
    with pytest.raises(AuditFailed, match="lacks one of"):
        read_checkpoint(files[0])


def test_audit_checkpoints_follow_a_bucket_artifact_root(
    s3: S3Server, initialised_example: Path
) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients."""
    bucket = s3.bucket("audit")
    overrides = {
        **keys_for(initialised_example),
        "artifact_root": f"{bucket}/churn",
        "storage.endpoint_url": s3.endpoint_url,
    }
    project = project_of(load(initialised_example, overrides))
    try:
        project.store.record(EventKind.RUN_FINISHED, "run:1", {"model": "churn"})
        saved = write_checkpoint(project)
        assert saved.path is not None and saved.path.startswith(f"{bucket}/churn/audit/")
        assert s3.keys(bucket) == [f"churn/audit/{saved.name}"]
        assert not (initialised_example / ".shipyard" / "audit").exists()
        report = verify(project, registry=False)
        assert report.ok and [c.name for c in report.checkpoints] == [saved.name]
    finally:
        project.close()
