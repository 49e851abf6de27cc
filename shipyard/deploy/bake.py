"""A baked image's own registry: the model's files registered in a local SQLite workspace.

The Dockerfile of ``shipyard build --bake`` runs, as the image's user::

    python -m shipyard.deploy.bake NAME/VERSION /srv/shipyard/model

in the image's project folder. That creates the workspace ``shipyard serve`` reads (a
SQLite database under ``.shipyard/``) and registers the baked folder as ``NAME/VERSION``,
under the same version number as in the registry it came from, with its lineage tags.
At run time the container reaches no registry, bucket or database but its own file.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from shipyard.deploy.dockerfile import VERSION_FILE
from shipyard.errors import ConfigError, ShipyardError

__all__ = ["main", "register_baked"]

PRINCIPAL = "shipyard-image-build"


def register_baked(config_file: Path, ref: str, folder: Path) -> str:
    """Register ``folder`` as ``ref`` (``NAME/VERSION``) in the project of ``config_file``.

    MLflow numbers versions one after another, so the numbers below ``VERSION`` are
    taken by placeholders that are deleted at once; MLflow never reuses a number.
    Returns the registered ``NAME/VERSION``.
    """
    from mlflow.exceptions import MlflowException

    from shipyard.config import load_config
    from shipyard.project import Principal, Project
    from shipyard.registry import parse_ref
    from shipyard.store.event_kinds import EventKind

    parsed = parse_ref(ref)
    if parsed.version is None:
        raise ConfigError(f"{ref!r} names no version.", hint="Pass NAME/VERSION, e.g. churn/3.")
    if not (folder / "MLmodel").is_file():
        raise ConfigError(
            f"{folder} is not an MLflow model folder (it has no MLmodel file).",
            hint="Point at the model/ folder that `shipyard build --bake` wrote.",
        )
    described = folder.parent / VERSION_FILE
    record = json.loads(described.read_text(encoding="utf-8")) if described.is_file() else {}
    tags = {str(k): str(v) for k, v in dict(record.get("tags", {})).items()}
    wanted = int(parsed.version)
    project = Project(load_config(config_file), Principal.service(PRINCIPAL))
    try:
        client = project.client
        with contextlib.suppress(MlflowException):  # already there: an existing workspace
            client.create_registered_model(parsed.name)
        source = str(folder.resolve())
        while True:
            made = client.create_model_version(
                parsed.name,
                source,
                tags=tags,
                description=str(record.get("description", "")) or None,
            )
            number = int(made.version)
            if number >= wanted:
                break
            client.delete_model_version(parsed.name, str(number))
        if number != wanted:
            raise ConfigError(
                f"{parsed.name} already has versions up to {number - 1} in this workspace, "
                f"so the baked model cannot be version {wanted}.",
                hint="Bake into a fresh image: the workspace is created by this step.",
            )
        project.store.record(
            EventKind.MODEL_VERSION_REGISTERED,
            f"model:{parsed.name}/{wanted}",
            {"baked_from": record.get("run_id"), "source": source, "trigger": "image build"},
        )
    finally:
        project.close()
    return f"{parsed.name}/{wanted}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shipyard.deploy.bake NAME/VERSION MODEL_DIR`` (in the project folder)."""
    from shipyard.config.loading import find_config_file

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m shipyard.deploy.bake NAME/VERSION MODEL_DIR", file=sys.stderr)
        return 2
    try:
        config_file = find_config_file()
        if config_file is None:
            raise ConfigError(
                "No shipyard.yaml here or in SHIPYARD_CONFIG.",
                hint="Run this in the image's project folder.",
            )
        registered = register_baked(config_file, args[0], Path(args[1]))
    except ShipyardError as error:
        print(f"Error: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"→ {error.hint}", file=sys.stderr)
        return error.exit_code
    print(f"Baked {registered} from {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
