"""Signed model cards: on promotion the card gains its evidence and a signature."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from shipyard.config import Config
from shipyard.errors import SigningError

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from shipyard.governance.signing import CardSignature, Verification
    from shipyard.project import Project
    from shipyard.registry.tracking import Tracking

__all__ = [
    "CARD_ARTIFACT",
    "SIGNATURE_ARTIFACT",
    "SignedCard",
    "private_key_path",
    "sign_promotion",
    "signed_card",
    "verify_signed",
    "verify_version",
]

T = TypeVar("T")

CARD_ARTIFACT = "promotion/model_card.json"
SIGNATURE_ARTIFACT = "promotion/signature.json"


def private_key_path(config: Config) -> Path:
    """Where the project's private key lives: signing.private_key, else ~/.shipyard/keys/."""
    if config.signing.private_key is not None:
        return config.resolve(config.signing.private_key.expanduser())
    return Path.home() / ".shipyard" / "keys" / f"{config.project}.pem"


def _downloaded(tracking: Tracking, version: ModelVersion, read: Callable[[Path], T]) -> T:
    """``read`` applied to a fresh local copy of the version's model files."""
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=version.source, dst_path=folder, tracking_uri=tracking.uri
        )
        return read(Path(local))


def _run_json(tracking: Tracking, run_id: str, artifact: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = tracking.client.download_artifacts(run_id, artifact, folder)
        return dict(json.loads(Path(path).read_text(encoding="utf-8")))


def sign_promotion(project: Project, version: ModelVersion, evidence: dict[str, Any]) -> bool:
    """Add ``evidence`` to the version's card, sign card + artifact digest, store both.

    Returns False (and signs nothing) when the project has no private key yet.
    """
    from shipyard.governance.signing import (
        artifact_digest,
        artifact_files,
        load_private_key,
        sign_card,
    )

    config, tracking = project.config, project.tracking
    key_path = private_key_path(config)
    if not key_path.is_file() or not version.run_id:
        return False
    card = _run_json(tracking, version.run_id, "model_card.json")
    card["promotion"] = {**evidence, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    digest, files = _downloaded(
        tracking, version, lambda f: (artifact_digest(f), artifact_files(f))
    )
    card["artifact_files"] = files  # signed with the card: names the file a mismatch is in
    signature = sign_card(card, digest, load_private_key(key_path))
    client = tracking.client
    client.log_text(version.run_id, json.dumps(card, indent=2, sort_keys=True), CARD_ARTIFACT)
    client.log_text(version.run_id, json.dumps(signature.to_dict(), indent=2), SIGNATURE_ARTIFACT)
    return True


@dataclass(frozen=True)
class SignedCard:
    """A version's promotion card and the signature record stored beside it."""

    card: dict[str, Any]
    signature: CardSignature


def signed_card(tracking: Tracking, version: ModelVersion) -> SignedCard | None:
    """The version's signed card, or ``None`` when it has none (never signed on promotion)."""
    from mlflow.exceptions import MlflowException

    from shipyard.governance.signing import CardSignature

    if not version.run_id:
        return None
    found: list[dict[str, Any]] = []
    for artifact in (CARD_ARTIFACT, SIGNATURE_ARTIFACT):
        try:
            found.append(_run_json(tracking, version.run_id, artifact))
        except (MlflowException, OSError):
            continue
    if not found:
        return None
    if len(found) == 1:  # both are written together: one alone was deleted or never written
        raise SigningError(
            f"{version.name}/{version.version} has only half of its signed card: "
            f"{CARD_ARTIFACT} or {SIGNATURE_ARTIFACT} is missing.",
            hint="The version's promotion files were tampered with; re-promote it to sign "
            "it again.",
        )
    return SignedCard(found[0], CardSignature.from_dict(found[1]))


def verify_signed(config: Config, signed: SignedCard, folder: Path) -> Verification:
    """Check a signed card against the committed public key and the model files in ``folder``.

    When the files differ, the problems name each file that changed, was added or was
    removed (from the file list signed with the card).
    """
    from shipyard.governance.signing import (
        Verification,
        artifact_digest,
        artifact_files,
        changed_files,
        load_public_key,
        verify_card,
    )

    public_key = load_public_key(config.resolve(config.signing.public_key))
    actual = artifact_digest(folder)
    result = verify_card(signed.card, signed.signature, public_key, actual_artifact_digest=actual)
    listed = signed.card.get("artifact_files")
    if actual == signed.signature.artifact_digest or not isinstance(listed, dict):
        return result
    changes = changed_files({str(k): str(v) for k, v in listed.items()}, artifact_files(folder))
    if not changes:
        return result
    return Verification(False, [*result.problems, "Files that differ: " + "; ".join(changes) + "."])


def verify_version(
    project: Project, version: ModelVersion, *, folder: Path | None = None
) -> Verification:
    """Check the version's signed card against the committed public key and its artifact.

    ``folder`` is a local copy of the model's files to check (a server's, about to load
    them); without it, the files are downloaded from the registry.
    """
    label = f"{version.name}/{version.version}"
    if not version.run_id:
        raise SigningError(
            f"{label} has no run, so no signed card.",
            hint="Only promoted versions trained by Shipyard carry one.",
        )
    from shipyard.registry.tracking import run_files_problem

    # Files on another host, or a bucket that does not answer, are said as such (and
    # before MLflow's own client retries against an unreachable bucket).
    elsewhere = run_files_problem(project.tracking, version.run_id, label)
    if elsewhere is not None:
        raise elsewhere
    signed = signed_card(project.tracking, version)
    if signed is None:
        raise SigningError(
            f"{label} has no signed model card.",
            hint="Cards are signed when a version is promoted to champion with a key from "
            "`shipyard keys init`.",
        )
    if folder is not None:
        return verify_signed(project.config, signed, folder)
    return _downloaded(
        project.tracking, version, lambda local: verify_signed(project.config, signed, local)
    )
