"""Print a Feast repo's definitions as JSON: run by the Feast venv's Python, never imported.

    /path/to/feast-venv/bin/python feast_dump.py REPO

Shipyard never imports Feast (a 700 MB install whose import takes ~20 s), so
``shipyard features import-feast`` runs this file in the interpreter that has Feast and
reads its standard output: one JSON document with ``entities``, ``feature_views``,
``on_demand_feature_views``, ``stream_feature_views``, ``feature_services``,
``data_sources`` (sources no view uses) and ``offline_store`` (its ``type`` and, for
PostgreSQL, where it is). The repo is read with Feast's own parser
(``feast.repo_operations.parse_repo``), the one ``feast apply`` uses, so what is
imported is what Feast would register. It depends on nothing but Feast and the standard
library.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def _seconds(delta: Any) -> float | None:
    """A ttl in seconds; Feast's 0 (or None) means forever: None."""
    if delta is None:
        return None
    total = delta.total_seconds()
    return total if total > 0 else None


def _source(source: Any, repo: Path) -> dict[str, Any] | None:
    """A batch source as plain data, its file path made absolute against the repo."""
    if source is None:
        return None
    out: dict[str, Any] = {
        "name": getattr(source, "name", None) or None,
        "class": type(source).__name__,
        "timestamp_field": getattr(source, "timestamp_field", None) or None,
        "created_timestamp_column": getattr(source, "created_timestamp_column", None) or None,
        "field_mapping": dict(getattr(source, "field_mapping", None) or {}),
    }
    kind = type(source).__name__
    if kind == "FileSource":
        path = source.path
        if "://" not in path and not Path(path).is_absolute():
            path = str((repo / path).resolve())
        out["kind"] = "file"
        out["path"] = path
        file_format = getattr(source, "file_format", None)
        out["file_format"] = type(file_format).__name__ if file_format is not None else None
    elif kind == "PostgreSQLSource":
        options = getattr(source, "_postgres_options", None)
        out["kind"] = "postgres"
        out["table"] = getattr(options, "_table", None) or None
        out["query"] = getattr(options, "_query", None) or None
    else:
        out["kind"] = "other"
    return out


def _fields(fields: Any) -> list[dict[str, str]]:
    return [{"name": field.name, "dtype": str(field.dtype)} for field in fields]


def _offline_store(repo: Path) -> dict[str, Any]:
    """The offline store's type and, for PostgreSQL, host/port/database/user (no password)."""
    try:
        from feast.repo_config import load_repo_config

        config = load_repo_config(repo, repo / "feature_store.yaml")
    except Exception as exc:  # the yaml is optional for reading definitions
        return {"type": None, "error": f"{type(exc).__name__}: {exc}"}
    offline = config.offline_store
    out: dict[str, Any] = {"type": getattr(offline, "type", None), "project": config.project}
    for key in ("host", "port", "database", "db_schema", "user"):
        value = getattr(offline, key, None)
        if value is not None:
            out[key] = value
    return out


def dump(repo: Path) -> dict[str, Any]:
    """Every definition in the Feast repo at ``repo``, as JSON-ready data."""
    from feast.repo_operations import parse_repo

    repo = repo.resolve()
    os.chdir(repo)  # Feast's parser names modules by their path from the cwd
    sys.path.insert(0, str(repo))
    sys.dont_write_bytecode = True
    contents = parse_repo(repo)
    used: set[int] = set()
    views = []
    for view in contents.feature_views:
        used.add(id(view.batch_source))
        views.append(
            {
                "name": view.name,
                "entities": list(view.entities),
                "ttl_seconds": _seconds(view.ttl),
                "features": _fields(view.features),
                "entity_columns": _fields(view.entity_columns),
                "source": _source(view.batch_source, repo),
                "description": view.description or "",
                "online": bool(view.online),
                "tags": dict(view.tags or {}),
            }
        )
    return {
        "feast_version": _version(),
        "repo": str(repo),
        "offline_store": _offline_store(repo),
        "entities": [
            {
                "name": entity.name,
                "join_keys": [entity.join_key],
                "value_type": entity.value_type.name if entity.value_type else None,
                "description": entity.description or "",
            }
            for entity in contents.entities
        ],
        "feature_views": views,
        "on_demand_feature_views": [
            {"name": view.name, "features": _fields(view.features)}
            for view in contents.on_demand_feature_views
        ],
        "stream_feature_views": [{"name": view.name} for view in contents.stream_feature_views],
        "feature_services": [{"name": service.name} for service in contents.feature_services],
        "data_sources": [
            _source(source, repo)
            for source in contents.data_sources
            if id(source) not in used and _source(source, repo) is not None
        ],
    }


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return version("feast")
    except Exception:
        return None


def main(argv: list[str]) -> int:
    """Dump the repo named by ``argv[0]``; errors go to stderr with exit status 2."""
    if len(argv) != 1:
        print("usage: feast_dump.py REPO", file=sys.stderr)
        return 2
    repo = Path(argv[0])
    if not repo.is_dir():
        print(f"{repo} is not a folder", file=sys.stderr)
        return 2
    stdout = sys.stdout
    sys.stdout = sys.stderr  # whatever the user's definitions print stays out of the JSON
    try:
        document = dump(repo)
    except Exception as exc:
        print(f"Feast could not read the repo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        sys.stdout = stdout
    stdout.write(json.dumps(document, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
