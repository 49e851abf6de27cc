"""Governance: signed model cards (approvals and audit will live here too).

Signing lives in :mod:`shipyard.governance.signing`; importing this package loads only
``cryptography``, not MLflow or the database.
"""

from shipyard.governance.signing import (
    CardSignature,
    Verification,
    artifact_digest,
    canonical_json,
    generate_keys,
    load_private_key,
    load_public_key,
    public_key_fingerprint,
    sign_card,
    verify_card,
)

__all__ = [
    "CardSignature",
    "Verification",
    "artifact_digest",
    "canonical_json",
    "generate_keys",
    "load_private_key",
    "load_public_key",
    "public_key_fingerprint",
    "sign_card",
    "verify_card",
]
