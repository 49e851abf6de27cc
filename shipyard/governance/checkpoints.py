"""Signed checkpoints of the audit log: its size and root at a moment, outside the database.

A checkpoint is one small JSON file, ``checkpoint-<size>-<UTC stamp>.json``:

    {"size": 1042, "root": "9f…", "at": "2026-12-06T21:02:39.123456+00:00",
     "project": "churn", "algorithm": "ed25519", "key": "sha256:…", "signature": "…"}

The signature is Ed25519 (the project's signing key) over the canonical JSON of
``{"size", "root", "at", "project"}``. Whoever can write the database cannot forge one
without the private key, so a history rewritten after the checkpoint was taken no longer
hashes to its root. Copy the folder somewhere the database's writers cannot reach.

The folder is local or in a bucket: every function takes a :class:`~pathlib.Path` or a
:class:`~shipyard.storage.Location` (a file's own location, for :func:`read_checkpoint`).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shipyard.errors import AuditFailed
from shipyard.governance.signing import ALGORITHM, canonical_json, public_key_fingerprint
from shipyard.jsonable import Record
from shipyard.storage import Location

__all__ = [
    "Checkpoint",
    "checkpoint_files",
    "read_checkpoint",
    "save_checkpoint",
    "sign_checkpoint",
    "signature_problem",
]

_SIGNED = ("size", "root", "at", "project")
_GLOB = "checkpoint-*.json"


@dataclass(frozen=True, kw_only=True)
class Checkpoint(Record):
    """A signed tree head: the log had ``size`` leaves with root ``root`` at ``at``."""

    size: int
    root: str  # hex
    at: str  # ISO 8601, UTC
    project: str
    key: str  # fingerprint of the public key that verifies the signature
    signature: str  # base64
    algorithm: str = ALGORITHM
    path: str | None = field(default=None, compare=False)  # where it was read or written

    @property
    def name(self) -> str:
        """The file name, or a description when it was never saved."""
        if not self.path:
            return f"the checkpoint at size {self.size}"
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def signed_bytes(self) -> bytes:
        """The canonical JSON the signature covers."""
        return _signed_bytes(self.size, self.root, self.at, self.project)

    def file_json(self) -> dict[str, Any]:
        """What the file holds (everything but where it lives)."""
        data = self.to_dict()
        data.pop("path")
        return data


def _signed_bytes(size: int, root: str, at: str, project: str) -> bytes:
    return canonical_json({"size": size, "root": root, "at": at, "project": project})


def sign_checkpoint(
    size: int, root: str, at: str, project: str, private_key: Ed25519PrivateKey
) -> Checkpoint:
    """A checkpoint of the tree of ``size`` leaves with ``root``, signed now."""
    raw = private_key.sign(_signed_bytes(size, root, at, project))
    return Checkpoint(
        size=size,
        root=root,
        at=at,
        project=project,
        key=public_key_fingerprint(private_key),
        signature=base64.b64encode(raw).decode("ascii"),
    )


def save_checkpoint(checkpoint: Checkpoint, folder: Path | Location) -> Checkpoint:
    """Write ``checkpoint`` into ``folder`` (created if missing); never overwrites a file."""
    stamp = checkpoint.at.replace("-", "").replace(":", "").replace("+0000", "Z")
    name = f"checkpoint-{checkpoint.size}-{stamp}.json"
    text = json.dumps(checkpoint.file_json(), indent=2, sort_keys=True) + "\n"
    if isinstance(folder, Location):
        if folder.is_local:
            folder = folder.local_path()
        else:
            if folder.exists(name):
                raise _exists(name, folder.url)
            return Checkpoint(**{**checkpoint.file_json(), "path": folder.write_text(name, text)})
    path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "w") as out:
            out.write(text)
    except FileExistsError:
        raise _exists(name, str(folder)) from None
    except OSError as exc:
        raise AuditFailed(
            f"Cannot write the checkpoint to {folder}: {exc.strerror}.",
            hint="Point security.checkpoints at a folder this user may write.",
        ) from None
    return Checkpoint(**{**checkpoint.file_json(), "path": str(path)})


def _exists(name: str, folder: str) -> AuditFailed:
    return AuditFailed(
        f"A checkpoint named {name} already exists in {folder}.",
        hint="Checkpoints are never overwritten; write another in a moment.",
    )


def read_checkpoint(path: Path | Location) -> Checkpoint:
    """The checkpoint in ``path``; ``AuditFailed`` naming the file when it is not one."""
    where = path.url if isinstance(path, Location) else str(path)
    try:
        raw = path.read_bytes("") if isinstance(path, Location) else path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise AuditFailed(f"Cannot read checkpoint {where}: {exc.strerror or exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AuditFailed(f"Checkpoint {where} is not JSON: the file is damaged.") from None
    fields = {"size": int, "root": str, "at": str, "project": str, "key": str, "signature": str}
    if not isinstance(data, dict) or any(
        not isinstance(data.get(name), kind) or isinstance(data.get(name), bool)
        for name, kind in fields.items()
    ):
        raise AuditFailed(
            f"Checkpoint {where} lacks one of {', '.join(fields)} (or one has the wrong type).",
            hint="The file is damaged or is not a Shipyard checkpoint.",
        )
    if data["size"] < 0:
        raise AuditFailed(f"Checkpoint {where} claims a negative size, {data['size']}.")
    return Checkpoint(
        **{name: data[name] for name in fields},
        algorithm=str(data.get("algorithm", ALGORITHM)),
        path=where,
    )


def signature_problem(
    checkpoint: Checkpoint, public_key: Ed25519PublicKey, project: str
) -> str | None:
    """Why ``checkpoint`` cannot be trusted, or ``None`` when its signature holds."""
    if checkpoint.algorithm != ALGORITHM:
        return f"it is signed with {checkpoint.algorithm!r}, not {ALGORITHM}"
    expected = public_key_fingerprint(public_key)
    if checkpoint.key != expected:
        return f"it was signed with another key ({checkpoint.key}), not the project's ({expected})"
    if checkpoint.project != project:
        return f"it is a checkpoint of project {checkpoint.project!r}, not {project!r}"
    try:
        raw = base64.b64decode(checkpoint.signature, validate=True)
        public_key.verify(raw, checkpoint.signed_bytes())
    except (ValueError, InvalidSignature):
        return "its signature does not verify: the file was edited after it was signed"
    return None


def checkpoint_files(folder: Path | Location) -> list[Any]:
    """Every checkpoint file in ``folder``, oldest first (none when it does not exist).

    ``Path`` items for a local folder given as a ``Path``; each file's own
    :class:`Location` for a folder given as a ``Location``.
    """
    if isinstance(folder, Location):
        found = [Location(url, folder.settings) for url in folder.glob(_GLOB)]
        return sorted(found, key=lambda item: _order(item.url.rsplit("/", 1)[-1]))
    if not folder.is_dir():
        return []
    return sorted(folder.glob(_GLOB), key=lambda item: _order(item.name))


def _order(name: str) -> tuple[int, str]:
    size, _, stamp = name.removesuffix(".json").removeprefix("checkpoint-").partition("-")
    return (int(size) if size.isdigit() else -1, stamp)
