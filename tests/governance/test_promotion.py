"""Promotion, approval, history, rollback, override, prune and signing — on SQLite and Postgres.

One scenario per backend: training is the expensive part, so two versions are trained
once (on SQLite, once per session: the test gets a copy) and every rule is exercised on
them in order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.config import Config
from shipyard.errors import Forbidden, PromotionRefused
from shipyard.evaluation.evaluate import evaluate_version, latest_evaluation
from shipyard.governance.approvals import approve
from shipyard.governance.cards import verify_version
from shipyard.governance.history import history
from shipyard.governance.promotion import promote
from shipyard.governance.signing import generate_keys
from shipyard.registry import Tracking, get_version, parse_ref
from shipyard.registry.aliases import champion_at, current_alias, rollback
from shipyard.registry.prune import archive, prune_candidates
from shipyard.store import Store
from shipyard.training import train
from tests.support import (
    TrainedExamples,
    copy_example,
    load,
    project_of,
    register_with_plain_mlflow,
)

TRAININGS = ({}, {"n_estimators": 150})  # churn/1 and churn/2, trained by "tester"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def project(
    request: pytest.FixtureRequest, trained_examples: TrainedExamples, tmp_path: Path
) -> Config:
    overrides: dict[str, object] = {
        "signing.private_key": str(tmp_path / "keys" / "project.pem"),
        "signing.public_key": "project.pub",
    }
    if request.param == "sqlite":
        return trained_examples.copy(tmp_path / "churn", *TRAININGS, overrides=overrides)
    overrides["database_url"] = request.getfixturevalue("postgres_url")
    config = load(copy_example(tmp_path / "churn"), overrides)
    for params in TRAININGS:
        train(project_of(config), params=params)
    return config


def test_promotion_lifecycle(project: Config, tmp_path: Path) -> None:
    config = project
    store = Store(config.db_url, actor="tester")  # actor "tester", who trains
    tracking = Tracking(config)
    client = tracking.client

    # 1. No scorecard yet: refused, and the message says what to run.
    with pytest.raises(PromotionRefused, match=r"shipyard evaluate churn/1"):
        promote(project_of(config), parse_ref("churn/1"), to="champion")

    # 2. Evaluate: passes, stored three ways.
    record = evaluate_version(project_of(config), parse_ref("churn/1"))
    assert record.passed, record.failing
    assert record.champion_version is None
    assert Path(record.report_path or "").is_file()
    assert latest_evaluation(store, "churn", "1", record.golden_digest) is not None
    assert client.get_model_version("churn", "1").tags["shipyard.scorecard.passed"] == "true"

    # 3. Approval required, and the trainer may not approve.
    with pytest.raises(PromotionRefused, match="needs an approval"):
        promote(project_of(config), parse_ref("churn/1"), to="champion")
    v1 = get_version(client, parse_ref("churn/1"))
    with pytest.raises(Forbidden, match="tester trained churn/1"):
        approve(project_of(config), v1, comment="mine", allow_self_approval=False)
    approve(project_of(config, "reviewer"), v1, comment="looks good", allow_self_approval=False)

    # 4. Keys, then the first champion, signed.
    generate_keys(Path(str(config.signing.private_key)), config.resolve(config.signing.public_key))
    first = promote(project_of(config), parse_ref("churn/1"), to="champion")
    assert (first.previous, first.forced, first.signed) == (None, False, True)
    assert current_alias(client, "churn", "champion") == "1"
    assert verify_version(project_of(config), v1).ok
    between = datetime.now(UTC)

    # 5. Version 2 is scored against the champion and goes challenger → champion.
    record2 = evaluate_version(project_of(config), parse_ref("churn/2"))
    assert record2.champion_version == "1"
    assert any("champion" in row["bound"] for row in record2.result["rows"])
    assert record2.passed, record2.failing
    promote(project_of(config), parse_ref("churn/2"), to="challenger")
    approve(
        project_of(config, "reviewer"),
        get_version(client, parse_ref("churn/2")),
        comment="ok",
        allow_self_approval=False,
    )
    second = promote(project_of(config), parse_ref("churn/2"), to="champion")
    assert second.previous == "1"
    assert current_alias(client, "churn", "challenger") is None
    assert champion_at(store, "churn", between) == "1"
    assert champion_at(store, "churn", datetime.now(UTC)) == "2"

    # 6. Rollback is a pointer move: nothing is trained, registered or copied.
    registered = [v.source for v in client.search_model_versions("name='churn'")]
    back = rollback(store, client, "churn", reason="p99 regression")
    assert (back.from_version, back.to_version) == ("2", "1")
    assert [v.source for v in client.search_model_versions("name='churn'")] == registered
    assert current_alias(client, "churn", "champion") == "1"
    with pytest.raises(PromotionRefused, match="no previous champion"):
        rollback(store, client, "churn")
    assert rollback(store, client, "churn", to="2").to_version == "2"
    with pytest.raises(PromotionRefused, match="never champion"):
        rollback(store, client, "churn", to="7")

    # 7. A failing scorecard refuses, names the criteria, and --force needs a reason.
    strict = config.root / "strict.yaml"
    strict.write_text("primary: {metric: roc_auc, min: 0.99}\n")
    strict_config = config.model_copy(
        update={"evaluation": config.evaluation.model_copy(update={"scorecard": strict})}
    )
    failed = evaluate_version(project_of(strict_config), parse_ref("churn/1"))
    assert not failed.passed
    assert any("roc_auc" in name for name in failed.failing)
    with pytest.raises(PromotionRefused, match="scorecard failed"):
        promote(project_of(strict_config), parse_ref("churn/1"), to="challenger")
    with pytest.raises(PromotionRefused, match="needs a reason"):
        promote(
            project_of(strict_config),
            parse_ref("churn/1"),
            to="challenger",
            force=True,
        )
    forced = promote(
        project_of(strict_config),
        parse_ref("churn/1"),
        to="challenger",
        force=True,
        reason="incident 42: hotfix",
    )
    assert forced.forced and forced.overridden

    # 8. History answers who moved what, when and why.
    entries = [(e.action, e.alias, e.from_version, e.to_version) for e in history(store, "churn")]
    assert entries == [
        ("approve", None, None, "1"),
        ("promote", "champion", None, "1"),
        ("promote", "challenger", None, "2"),
        ("approve", None, None, "2"),
        ("promote", "champion", "1", "2"),
        ("promote", "challenger", "2", None),
        ("rollback", "champion", "2", "1"),
        ("rollback", "champion", "1", "2"),
        ("override", "challenger", None, "1"),
    ]
    actors = {e.action: e.actor for e in history(store, "churn")}
    assert actors["approve"] == "reviewer" and actors["override"] == "tester"
    assert history(store, "churn")[-1].reason == "incident 42: hotfix"

    # 9. Prune keeps every version that was ever promoted.
    register_with_plain_mlflow(config, "churn")  # churn/3, never promoted
    assert [c.version for c in prune_candidates(store, client, "churn", keep=0)] == ["3"]
    assert archive(store, client, prune_candidates(store, client, "churn", keep=0)) == 1
    assert client.get_model_version("churn", "3").tags["shipyard.archived"] == "true"
    assert prune_candidates(store, client, "churn", keep=0) == []

    # 10. A modified model artifact fails verification, with both digests named.
    model_files = sorted(
        p
        for p in config.artifact_path.rglob("*")
        if p.is_file() and p.parent.name == "artifacts" and p.name.startswith("model.")
    )
    v2_version = get_version(client, parse_ref("churn/2"))
    assert verify_version(project_of(config), v2_version).ok
    target = next(p for p in model_files if v2_version.source.split("/")[-1] in str(p))
    target.write_bytes(target.read_bytes() + b"tampered")
    verdict = verify_version(project_of(config), v2_version)
    assert not verdict.ok
    assert any("sha256:" in problem for problem in verdict.problems)
