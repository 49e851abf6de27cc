"""Graveyard control: archive versions that never shipped and never will."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.registry import tags
from shipyard.registry.aliases import alias_moves
from shipyard.registry.views import model_versions
from shipyard.store import EventKind, Store

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["PruneCandidate", "archive", "prune_candidates"]


@dataclass(frozen=True)
class PruneCandidate:
    """A version that may be archived, and why it qualifies."""

    model: str
    version: str
    created_at: int


def prune_candidates(
    store: Store, client: MlflowClient, name: str, *, keep: int
) -> list[PruneCandidate]:
    """Versions older than the ``keep`` newest that were never promoted nor aliased.

    A version that was ever champion or challenger is a rollback target and is kept, as
    is any version an alias points at now and any version already archived.
    """
    versions = sorted(
        model_versions(client, name),
        key=lambda v: int(v.version),
        reverse=True,
    )
    promoted = {m.to_version for m in alias_moves(store, name) if m.to_version}
    found = []
    for version in versions[keep:]:
        number = str(version.version)
        if number in promoted or version.aliases:
            continue
        if (version.tags or {}).get(tags.ARCHIVED) == "true":
            continue
        found.append(PruneCandidate(name, number, int(version.creation_timestamp or 0)))
    return found


def archive(store: Store, client: MlflowClient, candidates: list[PruneCandidate]) -> int:
    """Tag each candidate archived (nothing is deleted) and record an event."""
    for candidate in candidates:
        client.set_model_version_tag(candidate.model, candidate.version, tags.ARCHIVED, "true")
        store.record(
            EventKind.MODEL_VERSION_ARCHIVED,
            f"model:{candidate.model}/{candidate.version}",
            {"reason": "pruned: never promoted"},
        )
    return len(candidates)
