"""A second workspace on the same database is told where a version's files are.

Two project folders share one PostgreSQL database. The first trains; its folder then
goes away, as it would on another machine. The second sees the version in the registry
but not its files, and every command says exactly that (not "No such artifact:
'MLmodel'", "has no signed model card" or "was not trained by `shipyard train`").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.errors import StorageError
from shipyard.governance.cards import verify_version
from shipyard.models.loading import load_model
from shipyard.registry import ModelRef
from shipyard.training import train
from shipyard.training.reproduce import reproduce
from tests.support import copy_example, load, project_of

pytestmark = pytest.mark.postgres


def test_a_workspace_without_the_files_is_told_where_they_are(
    tmp_path: Path, postgres_url: str
) -> None:
    first_root = copy_example(tmp_path / "first")
    second_root = copy_example(tmp_path / "second")
    first = project_of(load(first_root, {"database_url": postgres_url}))
    assert train(first).version == "1"
    first.close()
    first_root.rename(tmp_path / "gone")  # the first host's disk is not this one's

    second = project_of(load(second_root, {"database_url": postgres_url}))
    version = second.client.get_model_version("churn", "1")
    where = f"file://{(first_root / '.shipyard' / 'artifacts').resolve()}"

    with pytest.raises(StorageError) as loading:
        load_model("models:/churn/1", name="churn", version="1")
    with pytest.raises(StorageError) as verifying:
        verify_version(second, version)
    with pytest.raises(StorageError) as reproducing:
        reproduce(second, ModelRef("churn", version="1"))

    for raised in (loading, verifying, reproducing):
        text = str(raised.value)
        assert "churn/1's files are at " + where in text
        assert "which this project cannot read" in text
        assert "artifact_root" in text and "s3://bucket/prefix" in text
        for wrong in ("No such artifact", "no signed model card", "not trained by"):
            assert wrong not in text
    second.close()
