"""``shipyard evaluate``: score a version and the champion on the golden set, store the verdict.

The result is stored three ways, so every later step can find it: a row in
``shipyard_evaluations`` (the promotion gate reads it), tags on the model version
(``shipyard.scorecard.passed`` and the golden digest), and a JSON artifact plus the HTML
report on the version's run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select

from shipyard.access import Scope
from shipyard.config import Config, Scorecard
from shipyard.errors import ConfigError, EvaluationError
from shipyard.moments import as_utc
from shipyard.registry import tags
from shipyard.registry.aliases import CHAMPION
from shipyard.registry.pointers import trusted_version
from shipyard.registry.refs import ModelRef
from shipyard.registry.views import get_version
from shipyard.store import EvaluationRow, EventKind, Store

if TYPE_CHECKING:
    from shipyard.data import Snapshot
    from shipyard.project import Project
    from shipyard.registry.tracking import Tracking
    from shipyard.storage import Location

__all__ = [
    "EvaluationRecord",
    "evaluate_version",
    "golden_snapshot",
    "latest_evaluation",
    "load_scorecard",
]

StepCallback = Callable[[str], None]


@dataclass(frozen=True)
class EvaluationRecord:
    """A stored scorecard verdict for one version on one golden set."""

    model: str
    version: str
    golden_digest: str
    champion_version: str | None
    passed: bool
    result: dict[str, Any]
    report_path: str | None
    actor: str
    created_at: datetime

    @property
    def failing(self) -> list[str]:
        """Names of the criteria that failed."""
        return [row["name"] for row in self.result.get("rows", []) if not row.get("passed")]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "model": self.model,
            "version": self.version,
            "golden_digest": self.golden_digest,
            "champion_version": self.champion_version,
            "passed": self.passed,
            "failing": self.failing,
            "result": self.result,
            "report_path": self.report_path,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
        }


def load_scorecard(config: Config) -> Scorecard:
    """The configured scorecard, read from its own YAML file when one is named."""
    declared = config.evaluation.scorecard
    if declared is None:
        raise EvaluationError(
            "No scorecard configured.",
            hint="Add evaluation.scorecard to shipyard.yaml (inline, or the path of a YAML "
            "file); see docs/evaluation.md.",
        )
    if isinstance(declared, Scorecard):
        return declared
    path = config.resolve(declared)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Scorecard.model_validate(data or {})
    except OSError as exc:
        raise ConfigError(
            f"Cannot read scorecard {path}: {exc.strerror}.",
            hint="Fix evaluation.scorecard in shipyard.yaml.",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"Scorecard {path} is not valid YAML: {exc}.", hint="Fix the YAML syntax."
        ) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(
            f"Invalid scorecard {path}: {problems}",
            hint="See docs/evaluation.md for the scorecard keys.",
        ) from None


def reports_location(config: Config) -> Location:
    """Where evaluation reports go: ``evaluation.reports``, or ``<artifact_root>/reports``
    when that is a bucket and the setting was left alone."""
    from shipyard.storage import artifact_location, location

    settings = config.evaluation
    if "reports" not in settings.model_fields_set or settings.reports == Path(".shipyard/reports"):
        artifacts = artifact_location(config)
        if not artifacts.is_local:
            return artifacts.child("reports")
    return location(config.evaluation.reports, base=config.root, settings=config.storage)


def golden_snapshot(config: Config, store: Store, golden: Path | None = None) -> Snapshot:
    """Snapshot the golden set (``golden`` or evaluation.golden): frozen and digested."""
    from shipyard.data import record_snapshot, snapshot
    from shipyard.storage import artifact_location

    path = golden or config.evaluation.golden
    if path is None:
        raise EvaluationError(
            "No golden set given.",
            hint="Pass --golden PATH or set evaluation.golden in shipyard.yaml.",
        )
    snap = snapshot(config.resolve(path), artifact_location(config))
    record_snapshot(store, snap)
    return snap


def evaluate_version(
    project: Project,
    ref: ModelRef,
    *,
    golden: Path | None = None,
    on_step: StepCallback | None = None,
) -> EvaluationRecord:
    """Score ``ref`` and the current champion on the golden set; store and return the verdict.

    Needs the ``models:train`` scope on the model (an evaluation is stored on the version).
    """
    project.authorize(Scope.MODELS_TRAIN, ref.name)
    from shipyard.evaluation import compare, load_for_evaluation, measure
    from shipyard.evaluation.report import render_report

    step = on_step or (lambda _text: None)
    config, store, tracking = project.config, project.store, project.tracking
    scorecard = load_scorecard(config)
    target = config.train.target
    if target is None:
        raise EvaluationError(
            "No target column configured.", hint="Set train.target in shipyard.yaml."
        )
    client = tracking.client
    version = get_version(client, ref)
    name, number = version.name, str(version.version)

    step("Snapshotting the golden set")
    snap = golden_snapshot(config, store, golden)
    frame = snap.frame()
    if target not in frame.columns:
        raise EvaluationError(
            f"The golden set {snap.source} has no target column {target!r}.",
            hint="The golden set needs the label column the model was trained for.",
        )

    step(f"Measuring {name}/{number}")
    candidate = measure(
        load_for_evaluation(version.source or f"models:/{name}/{number}"),
        frame,
        target=target,
        scorecard=scorecard,
        task=config.model.require_classical(),
    )
    champion_version = trusted_version(store, name, CHAMPION)  # what servers serve
    champion = None
    if champion_version is not None and champion_version != number:
        step(f"Measuring the champion {name}/{champion_version}")
        champion_source = client.get_model_version(name, champion_version).source
        champion = measure(
            load_for_evaluation(champion_source or ""),
            frame,
            target=target,
            scorecard=scorecard,
            task=config.model.require_classical(),
        )
    else:
        champion_version = None
    result = compare(scorecard, candidate, champion)

    step("Writing the report")
    html = render_report(
        title=f"{name}/{number} on golden set {snap.digest[:12]}",
        result=result,
        candidate=candidate,
        champion=champion,
    )
    report_name = f"{name}-v{number}-{snap.digest[:12]}.html"
    report = reports_location(config).write_text(report_name, html)
    summary = result.to_dict()
    record = EvaluationRecord(
        model=name,
        version=number,
        golden_digest=snap.digest,
        champion_version=champion_version,
        passed=result.passed,
        result=summary,
        report_path=str(report),
        actor=store.actor,
        created_at=datetime.now(UTC),
    )
    _store(record, store, tracking, version.run_id, (report_name, html))
    return record


def _store(
    record: EvaluationRecord,
    store: Store,
    tracking: Tracking,
    run_id: str | None,
    report: tuple[str, str],
) -> None:
    with store.session() as session:
        session.add(
            EvaluationRow(
                model=record.model,
                version=record.version,
                golden_digest=record.golden_digest,
                champion_version=record.champion_version,
                passed=record.passed,
                result=record.result,
                report_path=record.report_path,
                actor=record.actor,
                created_at=record.created_at,
            )
        )
    client = tracking.client
    client.set_model_version_tag(
        record.model, record.version, tags.SCORECARD_PASSED, str(record.passed).lower()
    )
    client.set_model_version_tag(
        record.model, record.version, tags.SCORECARD_GOLDEN, record.golden_digest
    )
    if run_id:
        folder = f"evaluations/{record.golden_digest[:12]}"
        client.log_text(
            run_id, json.dumps(record.to_dict(), indent=2, default=str), f"{folder}/scorecard.json"
        )
        client.log_text(run_id, report[1], f"{folder}/{report[0]}")
    store.record(
        EventKind.MODEL_VERSION_EVALUATED,
        f"model:{record.model}/{record.version}",
        {
            "passed": record.passed,
            "golden_digest": record.golden_digest,
            "champion_version": record.champion_version,
            "failing": record.failing,
        },
    )


def latest_evaluation(
    store: Store, model: str, version: str, golden_digest: str | None = None
) -> EvaluationRecord | None:
    """The newest stored verdict for ``model/version`` (on ``golden_digest`` if given)."""
    query = (
        select(EvaluationRow)
        .where(EvaluationRow.model == model, EvaluationRow.version == version)
        .order_by(EvaluationRow.id.desc())
        .limit(1)
    )
    if golden_digest is not None:
        query = query.where(EvaluationRow.golden_digest == golden_digest)
    with store.session() as session:
        row = session.scalars(query).first()
        if row is None:
            return None
        return EvaluationRecord(
            model=row.model,
            version=row.version,
            golden_digest=row.golden_digest,
            champion_version=row.champion_version,
            passed=row.passed,
            result=dict(row.result),
            report_path=row.report_path,
            actor=row.actor,
            created_at=as_utc(row.created_at),
        )
