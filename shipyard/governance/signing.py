"""Ed25519 signatures over a model card and the digest of the model's files.

The signed payload is the canonical JSON of ``{"card": ..., "artifact_digest": ...}``:
editing the card, or any byte, name or file of the model artifact, breaks verification.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shipyard.errors import SigningError
from shipyard.jsonable import Record

__all__ = [
    "CardSignature",
    "Verification",
    "artifact_digest",
    "artifact_files",
    "canonical_json",
    "changed_files",
    "generate_keys",
    "load_private_key",
    "load_public_key",
    "public_key_fingerprint",
    "sign_card",
    "verify_card",
]

ALGORITHM = "ed25519"
_CHUNK = 1024 * 1024


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def public_key_fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """``sha256:`` + hex of the raw 32-byte public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return _sha256(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def generate_keys(private_path: Path, public_path: Path, *, overwrite: bool = False) -> str:
    """Write a new key pair (private key mode 0600) and return its public key fingerprint."""
    if private_path.exists() and not overwrite:
        raise SigningError(
            f"A private key already exists at {private_path}.",
            hint="Rotating keys invalidates every existing signature; overwrite "
            "(`shipyard keys init --force`) only if you mean to re-sign with a new key.",
        )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created 0600 rather than chmod-ed afterwards: the key is never readable by others.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if overwrite else os.O_EXCL)
        with os.fdopen(os.open(private_path, flags, 0o600), "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # an overwritten file keeps its old mode
            handle.write(private_pem)
        public_path.parent.mkdir(parents=True, exist_ok=True)
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise SigningError(
            f"Cannot write the key pair: {exc}.",
            hint="Check that the key folders are writable, or set signing.private_key.",
        ) from None
    return public_key_fingerprint(key)


def _read_pem(path: Path, kind: str, key_type: type) -> object:
    if not path.is_file():
        raise SigningError(
            f"No {kind} signing key at {path}.",
            hint="Run `shipyard keys init` to create the project's key pair"
            + ("." if kind == "private" else ", or check out the committed shipyard.pub."),
        )
    try:
        data = path.read_bytes()
        if kind == "private":
            key: object = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except OSError as exc:
        raise SigningError(f"Cannot read the {kind} key {path}: {exc.strerror}.") from None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, key_type):
        raise SigningError(
            f"{path} is not an unencrypted Ed25519 {kind} key in PEM format.",
            hint=f"Point signing.{kind}_key at the file `shipyard keys init` wrote.",
        )
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read the PKCS8 PEM private key written by :func:`generate_keys`."""
    return cast(Ed25519PrivateKey, _read_pem(path, "private", Ed25519PrivateKey))


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read the SubjectPublicKeyInfo PEM public key written by :func:`generate_keys`."""
    return cast(Ed25519PublicKey, _read_pem(path, "public", Ed25519PublicKey))


def _reraise(error: OSError) -> None:
    raise error  # os.walk would otherwise skip an unreadable folder and digest the rest


def _regular_files(folder: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for directory, subdirs, names in os.walk(folder, onerror=_reraise):
        for path in (Path(directory, name) for name in subdirs + names):
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                found.append((path.relative_to(folder).as_posix(), path))
            elif not stat.S_ISDIR(mode):  # symlinks included: they could point anywhere
                raise SigningError(
                    f"{path} is a symbolic link or special file; only regular files are signed.",
                    hint="Replace the link with a copy of the file or folder it points to.",
                )
    return sorted(found)


def artifact_digest(folder: Path) -> str:
    """``sha256:`` over the relative path, size and content of every file below ``folder``."""
    if not folder.is_dir():
        raise SigningError(f"{folder} is not a folder of model files.")
    digest = hashlib.sha256(b"shipyard-artifact-v1\0")
    try:
        for relative, path in _regular_files(folder):
            with path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                # Size-prefixed content: no two different trees give the same byte stream.
                digest.update(f"{relative}\0{size}\0".encode())
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    size -= len(chunk)
            if size != 0:
                raise SigningError(f"{path} changed while it was hashed.", hint="Try again.")
    except OSError as exc:
        raise SigningError(f"Cannot read {exc.filename}: {exc.strerror}.") from None
    return "sha256:" + digest.hexdigest()


def artifact_files(folder: Path) -> dict[str, str]:
    """``sha256:`` of each file below ``folder`` by relative path: says which file changed."""
    found: dict[str, str] = {}
    try:
        for relative, path in _regular_files(folder):
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
            found[relative] = "sha256:" + digest.hexdigest()
    except OSError as exc:
        raise SigningError(f"Cannot read {exc.filename}: {exc.strerror}.") from None
    return found


def changed_files(signed: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    """What differs between two :func:`artifact_files` listings, one phrase per file."""
    changes = [
        f"{name} changed"
        for name in sorted(signed)
        if name in actual and actual[name] != signed[name]
    ]
    changes += [f"{name} was removed" for name in sorted(signed.keys() - actual.keys())]
    changes += [f"{name} was added" for name in sorted(actual.keys() - signed.keys())]
    return changes


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (ValueError, TypeError) as exc:
        raise SigningError(
            f"The value cannot be signed as canonical JSON: {exc}.",
            hint="Cards must hold plain JSON: strings, finite numbers, lists and objects "
            "with string keys (replace NaN or infinity with null).",
        ) from None
    return text.encode("utf-8")


@dataclass(frozen=True, kw_only=True)
class CardSignature(Record):
    """A signature over a model card and its artifact digest, as stored beside the card."""

    algorithm: str = ALGORITHM
    public_key_fingerprint: str
    artifact_digest: str
    card_digest: str
    signature: str
    signed_at: str

    @classmethod
    def from_dict(cls, data: Any) -> CardSignature:
        """Read a signature record, refusing anything incomplete or of another algorithm."""
        names = [item.name for item in fields(cls)]
        fields_of = data if isinstance(data, Mapping) else {}
        bad = [name for name in names if not isinstance(fields_of.get(name), str)]
        if bad:
            raise SigningError(
                f"The signature record is not an object with text fields {', '.join(bad)}.",
                hint="The signature file is corrupt; sign the card again.",
            )
        if data["algorithm"] != ALGORITHM:
            raise SigningError(
                f"Unsupported signature algorithm {data['algorithm']!r}; Shipyard signs "
                f"with {ALGORITHM}.",
                hint="Sign the card again with a key from `shipyard keys init`.",
            )
        return cls(**{name: data[name] for name in names})


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_card`: ``ok`` only when ``problems`` is empty."""

    ok: bool
    problems: list[str] = field(default_factory=list)


def _payload(card: Mapping[str, Any], digest: str) -> bytes:
    return canonical_json({"card": dict(card), "artifact_digest": digest})


def sign_card(
    card: Mapping[str, Any], artifact_digest: str, private_key: Ed25519PrivateKey
) -> CardSignature:
    """Sign the canonical JSON of the card together with the model artifact's digest."""
    if not artifact_digest.startswith("sha256:"):
        raise SigningError(f"{artifact_digest!r} is not an artifact digest (sha256:…).")
    raw = private_key.sign(_payload(card, artifact_digest))
    return CardSignature(
        public_key_fingerprint=public_key_fingerprint(private_key),
        artifact_digest=artifact_digest,
        card_digest=_sha256(canonical_json(dict(card))),
        signature=base64.b64encode(raw).decode("ascii"),
        signed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def verify_card(
    card: Mapping[str, Any],
    signature: CardSignature,
    public_key: Ed25519PublicKey,
    *,
    actual_artifact_digest: str,
) -> Verification:
    """Check signature, key and artifact digest; report every problem found, not the first."""
    problems: list[str] = []
    expected_key = public_key_fingerprint(public_key)
    key_matches = signature.public_key_fingerprint == expected_key
    if not key_matches:
        problems.append(
            f"The card was signed with another key ({signature.public_key_fingerprint}), "
            f"not the project's public key ({expected_key})."
        )
    card_digest = _sha256(canonical_json(dict(card)))
    # The recorded card digest is not itself signed: it only explains a failed signature.
    card_changed = card_digest != signature.card_digest
    if card_changed:
        cause = f"the card was edited after signing (its digest is {card_digest}, the signed "
        cause += f"card's was {signature.card_digest})"
    elif key_matches:
        cause = "the signature record was edited after signing"
    else:
        cause = "it was made with another key"
    try:
        raw = base64.b64decode(signature.signature, validate=True)
        public_key.verify(raw, _payload(card, signature.artifact_digest))
    except ValueError:  # binascii.Error, or text that is not even ASCII
        problems.append("The signature is not valid base64: the signature record is corrupt.")
        if card_changed:
            problems.append(f"The card differs from the signed one: {cause}.")
    except InvalidSignature:
        problems.append(f"The signature does not match the card: {cause}.")
    if actual_artifact_digest != signature.artifact_digest:
        problems.append(
            "The model files were modified after signing: the stored artifact's digest is "
            f"{actual_artifact_digest}, but {signature.artifact_digest} was signed."
        )
    return Verification(ok=not problems, problems=problems)
