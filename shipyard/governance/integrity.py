"""The load-time check of a version's model files against its signed card.

A server about to load a version (at start-up, or on a hot swap) downloads its files,
then, before anything in them is unpickled, checks them the way ``shipyard models
verify`` does (:func:`~shipyard.governance.cards.verify_signed`): the card's signature
under the committed public key, and the files' digest against the signed one.
``serving.verify_signatures`` decides what a mismatch does:

- ``required``: the version is refused with an error naming the files that differ; a
  hot swap keeps serving the previous version, a server refuses to start on it;
- ``warn``: it is loaded, with a warning in the log, a ``serving.unverified`` event, the
  ``shipyard_artifact_mismatch`` gauge and the readiness details;
- ``off``: nothing is checked. ``auto`` (the default) is ``required`` once the project
  has a public key (``signing.public_key``), ``off`` before.

Versions without a signed card (never promoted to champion with a key) load as
``unsigned``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from shipyard.errors import SigningError
from shipyard.governance.cards import signed_card, verify_signed
from shipyard.models.served import ArtifactVerdict
from shipyard.store.event_kinds import EventKind

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.project import Project

logger = logging.getLogger(__name__)

__all__ = ["SignatureCheck", "signature_check", "verify_mode"]

Mode = Literal["required", "warn", "off"]


def verify_mode(config: Config) -> Mode:
    """``serving.verify_signatures`` with ``auto`` resolved: required once a public key exists."""
    mode = config.serving.verify_signatures
    if mode == "auto":
        return "required" if config.resolve(config.signing.public_key).is_file() else "off"
    return mode


class SignatureCheck:
    """Checks a version's downloaded files against its signed card; refuses or warns."""

    def __init__(self, project: Project, mode: Mode) -> None:
        self.project = project
        self.mode = mode

    def __call__(self, name: str, version: str, folder: Path) -> ArtifactVerdict:
        """The verdict on ``name/version``'s files in ``folder``; raises when refused."""
        if self.mode == "off":
            return ArtifactVerdict("unchecked")
        label = f"{name}/{version}"
        try:
            found = self.project.client.get_model_version(name, version)
            signed = signed_card(self.project.tracking, found)
            if signed is None:
                return ArtifactVerdict("unsigned")
            problems = verify_signed(self.project.config, signed, folder).problems
        except SigningError as error:  # half a card, a corrupt record, no public key
            problems = [error.message]
        if not problems:
            return ArtifactVerdict("verified")
        detail = " ".join(problems)
        if self.mode == "required":
            raise SigningError(
                f"Refused to load {label}: its model files do not match its signed model "
                f"card. {detail}",
                hint="Restore the files from a trusted copy, or train and promote a new "
                f"version; `shipyard models verify {label}` runs the same check. "
                "serving.verify_signatures: warn would serve it anyway.",
            )
        logger.warning("serving %s although it failed verification: %s", label, detail)
        try:
            self.project.store.record(
                EventKind.SERVING_UNVERIFIED, f"model:{label}", {"problems": problems}
            )
        except Exception:  # the event is best effort: the warning is logged
            logger.exception("could not record serving.unverified for %s", label)
        return ArtifactVerdict("mismatch", detail)


def signature_check(project: Project) -> SignatureCheck | None:
    """The project's load-time check, or ``None`` when ``serving.verify_signatures`` is off."""
    mode = verify_mode(project.config)
    return None if mode == "off" else SignatureCheck(project, mode)
