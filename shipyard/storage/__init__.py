"""Where the project's files live: a local folder or a bucket, behind one ``Location``.

location = artifact_location(config)        # artifact_root: a folder or s3://bucket/prefix
location.write_bytes("reports/r.json", data)
logs = log_location(config)                 # serving.logs, or <artifact_root>/logs
con.sql(f"select * from read_parquet('{logs.duckdb_source(con, '**/*.parquet')}')")
"""

from __future__ import annotations

from shipyard.config import Config
from shipyard.storage.location import Location, location, storage_error

__all__ = ["Location", "artifact_location", "location", "log_location", "storage_error"]

_DEFAULT_LOGS = ".shipyard/logs"


def artifact_location(config: Config) -> Location:
    """Where models, snapshots, reports and checkpoints are stored (``artifact_root``)."""
    return location(config.artifact_root, base=config.root, settings=config.storage)


def log_location(config: Config) -> Location:
    """Root of the prediction and label logs.

    ``serving.logs`` when it is set; otherwise ``<artifact_root>/logs`` when the artifact
    root is a bucket (so every host writes into one dataset), else ``.shipyard/logs``.
    The default value counts as unset, so a configuration dumped and validated again
    (a server's workers) still sends its logs to the bucket.
    """
    if "logs" not in config.serving.model_fields_set or config.serving.logs == _DEFAULT_LOGS:
        artifacts = artifact_location(config)
        if not artifacts.is_local:
            return artifacts.child("logs")
    return location(config.serving.logs, base=config.root, settings=config.storage)
