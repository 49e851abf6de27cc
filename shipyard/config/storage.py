"""The ``storage`` section: how Shipyard reaches a bucket (never who it is)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from shipyard.config._section import Section

__all__ = ["StorageSettings"]

# Key fragments that mean a credential: those come from the environment or a profile.
_CREDENTIAL_HINTS = ("key", "secret", "token", "password", "credential", "sas", "passphrase")


class StorageSettings(Section):
    """Reaching object storage for ``artifact_root`` and ``serving.logs`` URLs.

    Credentials never live here: boto3, gcsfs and adlfs read them from the standard
    environment variables, profile files or instance roles.
    """

    endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="S3-compatible endpoint (MinIO, Ceph, a local test server): "
        "http(s)://host:port. Unset: AWS, or AWS_ENDPOINT_URL_S3 from the environment.",
    )
    region: str | None = Field(
        None, description="Bucket region; unset: AWS_DEFAULT_REGION or the profile's region."
    )
    timeout_seconds: float = Field(
        4.0,
        gt=0,
        le=120,
        description="Longest one small storage request may take (connect, read, and the "
        "whole request); a failing request is not retried, so an unreachable or silent "
        "bucket is reported within about this long.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        """Refuse credential-looking keys with the place credentials belong instead."""
        if isinstance(data, dict):
            for key in data:
                name = str(key).lower()
                if any(hint in name for hint in _CREDENTIAL_HINTS):
                    raise ValueError(
                        f"'{key}' looks like a credential, and credentials never go in "
                        "shipyard.yaml. Remove it; set AWS_ACCESS_KEY_ID/"
                        "AWS_SECRET_ACCESS_KEY or AWS_PROFILE (GOOGLE_APPLICATION_CREDENTIALS, "
                        "AZURE_STORAGE_CONNECTION_STRING) in the environment instead"
                    )
        return data
