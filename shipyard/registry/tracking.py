"""MLflow wired to Shipyard's configuration: one database, one artifact root.

MLflow is imported here lazily, so commands that never touch it (``--help``, ``init``)
stay fast: ``import mlflow`` costs about a second.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse
from urllib.request import url2pathname

from shipyard.config import Config, StorageSettings
from shipyard.errors import ConfigError, DatabaseError, NotFoundError, ShipyardError, StorageError
from shipyard.storage import Location, artifact_location

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "Tracking",
    "mlflow_errors",
    "model_files_problem",
    "run_files_problem",
    "unreadable_files",
]

# Telemetry off before mlflow is first imported: nothing may leave the machine.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


@contextmanager
def mlflow_errors(subject: str = "") -> Iterator[None]:
    """Turn MLflow's exceptions into Shipyard errors that say what to do."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except ShipyardError:
        raise
    except MlflowException as exc:
        text = exc.message if hasattr(exc, "message") else str(exc)
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in text.lower():
            raise NotFoundError(
                f"{subject or 'Resource'} not found: {text}",
                hint="List what exists with `shipyard models list`.",
            ) from None
        if "could not connect" in text.lower() or "operationalerror" in text.lower():
            raise DatabaseError(
                f"MLflow cannot use its database: {text.splitlines()[0]}",
                hint="Check database_url in shipyard.yaml (or SHIPYARD_DATABASE_URL).",
            ) from None
        raise


class Tracking:
    """MLflow tracking and registry on the project's database and artifact root."""

    def __init__(self, config: Config) -> None:
        import mlflow
        from mlflow import MlflowClient

        self.config = config
        self.uri = config.db_url
        root = artifact_location(config)
        # A bucket root goes through MLflow's own S3/GCS/Azure artifact repository; it
        # reads its endpoint (MinIO, a test server) from the environment only.
        if root.is_local:
            self.artifact_location = (Path(root.url) / "mlflow").as_uri()
        else:
            self.artifact_location = root.path("mlflow")
            if config.storage.endpoint_url and root.scheme in ("s3", "s3a"):
                os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", config.storage.endpoint_url)
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        try:
            self.client: MlflowClient = MlflowClient(self.uri, self.uri)
            # Touch the store now so an unreachable database fails here, clearly.
            self.client.search_experiments(max_results=1)
        except Exception as exc:
            raise DatabaseError(
                f"MLflow cannot open its store at {self._safe_uri}: "
                f"{str(exc).strip().splitlines()[0]}",
                hint="Check that the database server is running and database_url is right.",
            ) from None

    @property
    def _safe_uri(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.uri).render_as_string(hide_password=True)

    def experiment_id(self, name: str | None = None) -> str:
        """The id of the experiment ``name`` (default: the project's), created on first use."""
        name = name or self.config.experiment_name
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            return str(existing.experiment_id)
        return str(self.client.create_experiment(name, artifact_location=self.artifact_location))


def unreadable_files(label: str, uri: str | None, root: str | None = None) -> StorageError | None:
    """The error for files recorded at ``uri`` that this host cannot read, if they are so.

    A second workspace on the same database, without the first one's local artifact
    folder, sees versions whose files are on another machine: say that, not "no such
    artifact". Only a local ``file:`` location qualifies, and only when ``root`` (the
    experiment's artifact folder holding ``uri``; ``uri`` itself when not given) is not
    here: a run that logged nothing has no folder of its own, on any host.
    """
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return None
    if Path(url2pathname(urlparse(root or uri).path)).exists():
        return None
    return StorageError(
        f"{label}'s files are at {uri}, which this project cannot read: that folder is not "
        "on this host (it was written by a workspace on another machine or folder).",
        hint="Point artifact_root at storage every host can read, such as "
        "s3://bucket/prefix (see docs/scale-out.md), and train or register the version "
        "there; or run this command where the files are.",
    )


def run_files_problem(tracking: Tracking, run_id: str, label: str) -> StorageError | None:
    """:func:`unreadable_files` for the artifacts of run ``run_id``."""
    with contextlib.suppress(Exception):  # an unknown run is reported by the caller
        return _run_problem(tracking.client, run_id, label)
    return None


def _run_problem(client: MlflowClient, run_id: str, label: str) -> StorageError | None:
    info = client.get_run(run_id).info
    root = client.get_experiment(info.experiment_id).artifact_location
    return _files_problem(label, info.artifact_uri, root, None, "")


def _files_problem(
    label: str, uri: str, root: str | None, settings: StorageSettings | None, probe: str
) -> StorageError | None:
    """A local folder not on this host, or a bucket that does not answer one bounded
    request (for ``probe`` under ``uri``), as the StorageError to report."""
    if "://" not in uri or uri.startswith("file:"):
        return unreadable_files(label, uri, root)
    if uri.split("://", 1)[0] not in ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"):
        return None
    if settings is None:
        # What Tracking hands MLflow's S3 repository (storage.endpoint_url).
        endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None
        settings = StorageSettings(endpoint_url=endpoint)  # type: ignore[call-arg]
    try:
        Location(uri.rstrip("/"), settings).exists(probe)
    except StorageError as exc:
        return StorageError(f"Cannot read {label}'s files: {exc.message}", hint=exc.hint)
    except ConfigError:
        return None  # the scheme's extra is not installed: MLflow's own error says more
    return None


def model_files_problem(
    model_uri: str,
    settings: StorageSettings | None = None,
    client: MlflowClient | None = None,
) -> StorageError | None:
    """Why a ``models:/NAME/VERSION`` (or ``@alias``) URI's files cannot be read, if so.

    A local folder that is not on this host, or a bucket that does not answer (one
    bounded request, so a server learns it in seconds rather than after MLflow's
    boto3 retries) gives the :class:`StorageError` to report; anything else is left to
    the loader to report. ``client`` defaults to MLflow's global one (what
    ``models:/`` URIs resolve against).
    """
    import mlflow

    if not model_uri.startswith("models:/"):
        return unreadable_files(model_uri, model_uri)
    name, _, rest = model_uri.removeprefix("models:/").partition("/")
    name, at, alias = name.partition("@")
    try:
        client = client or mlflow.MlflowClient()
        version = client.get_model_version_by_alias(name, alias).version if at else rest
        uri = client.get_model_version_download_uri(name, version)
        run_id = client.get_model_version(name, version).run_id
        root = (
            client.get_experiment(client.get_run(run_id).info.experiment_id).artifact_location
            if run_id
            else None
        )
    except Exception:  # an unknown version or an unreachable database: the caller says so
        return None
    return _files_problem(f"{name}/{version}", uri, root, settings, "MLmodel")
