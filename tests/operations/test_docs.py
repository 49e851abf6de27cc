"""docs/operations.md: its Python example runs on a real history, and its tables name
every characteristic and metric there is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config import Config
from shipyard.operations import MaturityReport, RoiReport
from shipyard.operations.characteristics import CHARACTERISTICS, Findings
from shipyard.operations.history import History
from shipyard.operations.maturity import judge_maturity
from shipyard.operations.roi import compute_roi
from shipyard.registry import Tracking
from shipyard.store import Store
from tests.support.operations import Built, build_history

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


@pytest.fixture
def lived(two_versions: tuple[Config, Store, Tracking]) -> Iterator[Built]:
    config, _store, _tracking = two_versions
    built = build_history(config.root)
    yield built
    built.project.close()


def test_the_python_example_runs(lived: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)
    monkeypatch.chdir(lived.config.root)
    namespace: dict[str, object] = {"__name__": "docs_operations"}
    exec(compile(block, f"{DOC.name} example", "exec"), namespace)
    report, roi = namespace["report"], namespace["roi"]
    assert isinstance(report, MaturityReport) and report.level == 2
    assert isinstance(roi, RoiReport) and roi.metric("mttr").unit == "s"
    assert "# On-call runbook: churn" in (lived.config.root / "runbook.md").read_text()
    draft = (lived.config.root / "postmortem.md").read_text()
    assert "| rollout.rolled_back |" in draft


def test_the_tables_name_every_characteristic_and_metric(trained_copy: Config) -> None:
    text = DOC.read_text()
    keys = [c.key for c in judge_maturity(Findings(trained_copy, History())).characteristics]
    assert len(keys) == len(CHARACTERISTICS)
    for key in keys:
        assert f"| `{key}` |" in text, key
    for metric in compute_roi(History()).metrics:
        assert f"| `{metric.key}` |" in text, metric.key
