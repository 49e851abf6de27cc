"""The maturity level, judged on real histories: a trained project, and a level-2 team's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.access import Principal
from shipyard.config import Config
from shipyard.errors import Forbidden
from shipyard.operations import assess_maturity
from shipyard.operations.characteristics import Findings
from shipyard.operations.exports import find_exported_pipelines, recognise
from shipyard.operations.history import History
from shipyard.operations.maturity import judge_maturity
from shipyard.project import Project
from shipyard.registry import Tracking
from shipyard.store import Store
from tests.support import project_of
from tests.support.operations import Built, build_history


@pytest.fixture
def lived(two_versions: tuple[Config, Store, Tracking]) -> Iterator[Built]:
    """churn trained twice, then through a level-2 history."""
    config, _store, _tracking = two_versions
    built = build_history(config.root)
    yield built
    built.project.close()


def test_a_freshly_trained_project_is_level_0_and_says_what_is_missing(
    trained_copy: Config,
) -> None:
    report = assess_maturity(project_of(trained_copy))
    assert report.level == 0 and report.next_level == 1
    data = report.characteristic("data_versions")
    # churn/1 was trained through a tracked run on a snapshot, and train.schema is set.
    assert data.level == 2 and data.meets_level_1 and data.meets_level_2
    assert "1 of 1 registered versions carry a data digest" in data.evidence[0].detail
    assert data.evidence[0].refs and data.evidence[0].refs[0].startswith("event:")
    retraining = report.characteristic("retraining")
    assert retraining.level == 0 and not retraining.meets_level_1
    assert "ct.enabled: true" in retraining.missing
    assert any(line.startswith("Retraining is triggered automatically") for line in report.missing)
    assert report.characteristic("rollback").level == 0
    orchestrated = report.characteristic("orchestrated")
    assert (
        orchestrated.level == 0 and "no event records an export" in orchestrated.evidence[1].detail
    )
    # Every characteristic below level 1 names what it lacks; none at level 2 does.
    for item in report.characteristics:
        assert bool(item.missing) == (item.level < 2), item.key
    as_json = report.to_dict()
    assert as_json["level"] == 0 and len(as_json["characteristics"]) == 7
    assert as_json["characteristics"][0]["evidence"][0]["source"] == "event"


def test_a_team_that_lives_the_whole_loop_is_level_2(lived: Built) -> None:
    report = assess_maturity(lived.project)
    levels = {item.key: item.level for item in report.characteristics}
    assert levels == dict.fromkeys(levels, 2), levels
    assert report.level == 2 and report.next_level is None and report.missing == ()
    rollback = report.characteristic("rollback")
    assert "1 automatic rollbacks (a guardrail breached)" in [e.detail for e in rollback.evidence]
    orchestrated = report.characteristic("orchestrated")
    assert "pipelines/churn-argo.yaml" in orchestrated.evidence[1].refs
    assert orchestrated.evidence[0].refs == ("lease:agent",)
    retraining = report.characteristic("retraining")
    assert "1 automatically triggered cycles ran, 1 promoted" in retraining.evidence[1].detail


def test_one_missing_piece_holds_the_project_at_level_1(lived: Built) -> None:
    """Without the exported pipeline (and without routes) the level drops, and says why."""
    (lived.config.root / "pipelines" / "churn-argo.yaml").unlink()
    monitoring = lived.config.monitoring.model_copy(update={"routes": []})
    config = lived.config.model_copy(update={"monitoring": monitoring})
    report = assess_maturity(lived.project.with_config(config))
    assert report.level == 1 and report.next_level == 2
    short = {line.split(":")[0] for line in report.missing}
    assert short == {"The pipeline is exported to an orchestrator", "Drift is monitored"}
    assert report.characteristic("drift_monitoring").meets_level_1


def test_a_forced_promotion_keeps_promotion_gates_below_level_2(lived: Built) -> None:
    from shipyard.governance.promotion import promote
    from shipyard.registry.refs import ModelRef

    # Without a golden set no scorecard can pass: the promotion is forced past its checks.
    evaluation = lived.config.evaluation.model_copy(update={"golden": None})
    unchecked = lived.project.with_config(
        lived.config.model_copy(update={"evaluation": evaluation})
    )
    promote(unchecked, ModelRef("churn", version="2"), to="champion", force=True, reason="x")
    gates = assess_maturity(lived.project).characteristic("promotion_gates")
    assert gates.level == 1 and "1 were forced past them" in gates.evidence[0].detail
    assert "--force" in gates.missing


def test_reading_the_level_needs_models_read(trained_copy: Config) -> None:
    outsider = project_of(trained_copy, "otto", role="viewer")
    assert assess_maturity(outsider).level == 0  # a viewer may read it
    nobody = Project(trained_copy, Principal("nobody", "token", "none", frozenset()))
    with pytest.raises(Forbidden, match="models:read"):
        assess_maturity(nobody)


def test_exported_pipelines_are_recognised_by_what_they_say(tmp_path: Path) -> None:
    from shipyard.pipelines.export import DEFAULT_CAUSE, export_pipeline, pipeline_spec
    from shipyard.pipelines.gates import ROLLOUT_GATES, gate_names

    spec = pipeline_spec(
        "churn", "img:1", gates=gate_names(), rollout_gates=ROLLOUT_GATES,
        cause=DEFAULT_CAUSE, secrets=(), timeout=None, namespace=None,
    )  # fmt: skip
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "dag.py").write_text(export_pipeline(spec, "airflow"))
    (tmp_path / "argo.yaml").write_text(export_pipeline(spec, "argo"))
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "argo.yaml").write_text(export_pipeline(spec, "argo"))
    (tmp_path / "other.yaml").write_text("kind: Workflow\napiVersion: argoproj.io/v1alpha1\n")
    found = {(p.target, str(p.path)) for p in find_exported_pipelines(tmp_path)}
    assert found == {("airflow", "deep/er/dag.py"), ("argo", "argo.yaml")}
    try:
        assert recognise(export_pipeline(spec, "kfp")) == "kfp"
    except Exception as exc:  # kfp is an optional extra
        pytest.skip(f"kfp is not installed: {exc}")


def test_the_level_is_the_lowest_any_characteristic_reaches(trained_copy: Config) -> None:
    empty = Findings(trained_copy, History())
    report = judge_maturity(empty, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert report.level == 0 and report.assessed_at.day == 1
    assert all(not item.meets_level_1 for item in report.characteristics)
    assert len(report.missing) == 7
    unscheduled = replace(empty, leases=("agent",))
    assert judge_maturity(unscheduled).characteristic("orchestrated").level == 1
