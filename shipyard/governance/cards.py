"""Signed model cards: on promotion the card gains its evidence and a signature."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import Config
from shipyard.errors import SigningError

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from shipyard.governance.signing import Verification
    from shipyard.project import Project
    from shipyard.registry.tracking import Tracking

__all__ = [
    "CARD_ARTIFACT",
    "SIGNATURE_ARTIFACT",
    "private_key_path",
    "sign_promotion",
    "verify_version",
]

CARD_ARTIFACT = "promotion/model_card.json"
SIGNATURE_ARTIFACT = "promotion/signature.json"


def private_key_path(config: Config) -> Path:
    """Where the project's private key lives: signing.private_key, else ~/.shipyard/keys/."""
    if config.signing.private_key is not None:
        return config.resolve(config.signing.private_key.expanduser())
    return Path.home() / ".shipyard" / "keys" / f"{config.project}.pem"


def _model_digest(tracking: Tracking, version: ModelVersion) -> str:
    import mlflow

    from shipyard.governance.signing import artifact_digest

    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=version.source, dst_path=folder, tracking_uri=tracking.uri
        )
        return artifact_digest(Path(local))


def _run_json(tracking: Tracking, run_id: str, artifact: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = tracking.client.download_artifacts(run_id, artifact, folder)
        return dict(json.loads(Path(path).read_text(encoding="utf-8")))


def sign_promotion(project: Project, version: ModelVersion, evidence: dict[str, Any]) -> bool:
    """Add ``evidence`` to the version's card, sign card + artifact digest, store both.

    Returns False (and signs nothing) when the project has no private key yet.
    """
    from shipyard.governance.signing import load_private_key, sign_card

    config, tracking = project.config, project.tracking
    key_path = private_key_path(config)
    if not key_path.is_file() or not version.run_id:
        return False
    card = _run_json(tracking, version.run_id, "model_card.json")
    card["promotion"] = {**evidence, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    signature = sign_card(card, _model_digest(tracking, version), load_private_key(key_path))
    client = tracking.client
    client.log_text(version.run_id, json.dumps(card, indent=2, sort_keys=True), CARD_ARTIFACT)
    client.log_text(version.run_id, json.dumps(signature.to_dict(), indent=2), SIGNATURE_ARTIFACT)
    return True


def verify_version(project: Project, version: ModelVersion) -> Verification:
    """Check the version's signed card against the committed public key and its artifact."""
    from mlflow.exceptions import MlflowException

    from shipyard.governance.signing import CardSignature, load_public_key, verify_card

    config, tracking = project.config, project.tracking
    label = f"{version.name}/{version.version}"
    if not version.run_id:
        raise SigningError(
            f"{label} has no run, so no signed card.",
            hint="Only promoted versions trained by Shipyard carry one.",
        )
    try:
        card = _run_json(tracking, version.run_id, CARD_ARTIFACT)
        signature = CardSignature.from_dict(_run_json(tracking, version.run_id, SIGNATURE_ARTIFACT))
    except (MlflowException, OSError):
        raise SigningError(
            f"{label} has no signed model card.",
            hint="Cards are signed when a version is promoted to champion with a key from "
            "`shipyard keys init`.",
        ) from None
    public_key = load_public_key(config.resolve(config.signing.public_key))
    return verify_card(
        card, signature, public_key, actual_artifact_digest=_model_digest(tracking, version)
    )
