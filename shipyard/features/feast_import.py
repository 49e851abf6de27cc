"""Read a Feast repo's entities, feature views and sources into Shipyard's definitions.

Shipyard never imports Feast: :func:`read_feast_repo` runs ``feast_dump.py`` (beside this
module) under the Python of a venv that has Feast, which parses the repo with Feast's own
parser and prints JSON. :func:`convert` turns that JSON into the ``features`` section of
``shipyard.yaml`` (entities and views, sources resolved against the project), checked by
building the same :class:`~shipyard.features.definitions.FeatureView` objects that
``apply`` would. What cannot be carried over is listed in
:attr:`FeastImport.unsupported`, never silently dropped: on-demand views (their code is
Python written against Feast's API), stream views, feature services, features of types
Shipyard does not serve, and sources other than files and PostgreSQL tables.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError
from shipyard.features.repo import FeatureRepo, view_from_settings

__all__ = [
    "DUMP_SCRIPT",
    "FEAST_DTYPES",
    "FeastImport",
    "Unsupported",
    "convert",
    "import_feast",
    "merge_into_config",
    "read_feast_repo",
]

DUMP_SCRIPT = Path(__file__).with_name("feast_dump.py")
"""The script run by the Feast venv's Python (it imports nothing from Shipyard)."""

FEAST_DTYPES: Mapping[str, str] = {
    "Float32": "float32",
    "Float64": "float64",
    "Int64": "int64",
    "Int32": "int32",
    "String": "string",
    "Bool": "bool",
}
"""Feast type → Shipyard dtype; any other Feast type is reported as unsupported."""

_UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


@dataclass(frozen=True)
class Unsupported:
    """One piece of the Feast repo that was not imported, and why."""

    kind: str
    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """As JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class FeastImport:
    """What a Feast repo became: the ``features`` section, and what was left out."""

    repo: str
    feast_version: str | None
    entities: list[dict[str, Any]]
    views: list[dict[str, Any]]
    unsupported: list[Unsupported] = field(default_factory=list)

    @property
    def section(self) -> dict[str, Any]:
        """The ``features`` section of ``shipyard.yaml`` (entities and views)."""
        return {"entities": self.entities, "views": self.views}

    def to_yaml(self) -> str:
        """A ``features:`` block for ``shipyard.yaml``, with what was left out as comments."""
        import yaml

        lines = [f"# Imported from the Feast repo {self.repo} (Feast {self.feast_version})."]
        lines += [f"# Left out: {u.kind} {u.name}: {u.reason}" for u in self.unsupported]
        body = yaml.safe_dump({"features": self.section}, sort_keys=False, width=1_000_000)
        return "\n".join(lines) + "\n" + body

    def to_dict(self) -> dict[str, Any]:
        """As JSON-ready data."""
        return {
            "repo": self.repo,
            "feast_version": self.feast_version,
            "features": self.section,
            "unsupported": [u.to_dict() for u in self.unsupported],
        }


def read_feast_repo(repo: Path, python: str | Path, *, timeout: float = 600.0) -> dict[str, Any]:
    """The JSON ``feast_dump.py`` prints for ``repo``, run under ``python`` (Feast's venv).

    Raises a ConfigError when the interpreter is missing or has no Feast, or when Feast
    cannot parse the repo (its message included).
    """
    repo = Path(repo)
    if not (repo / "feature_store.yaml").is_file():
        raise ConfigError(
            f"{repo} is not a Feast repo: it has no feature_store.yaml.",
            hint="Give the folder that holds feature_store.yaml and the definitions.",
        )
    try:
        done = subprocess.run(
            [str(python), str(DUMP_SCRIPT), str(repo.resolve())],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError(
            f"No Python interpreter at {python}.",
            hint="Pass --python with the python of a venv that has Feast "
            '(pip install "feast[duckdb]"), or set SHIPYARD_FEAST_PYTHON.',
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"Reading the Feast repo {repo} took over {timeout:.0f} s.",
            hint="Check that its definitions do not block (network, input).",
        ) from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        if any("No module named 'feast'" in line for line in tail):
            raise ConfigError(
                f"{python} has no Feast installed.",
                hint='Install it in a venv of its own (pip install "feast[duckdb]") and '
                "pass that venv's python with --python.",
            )
        raise ConfigError(
            f"Feast could not read {repo}: {' / '.join(tail) or 'no message'}",
            hint="Run `feast plan` in the repo to see Feast's own error.",
        )
    try:
        document: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ConfigError(
            f"The Feast dump of {repo} printed no JSON.",
            hint=f"Run {python} {DUMP_SCRIPT} {repo} to see what it printed.",
        ) from None
    return document


def _duration(seconds: float | None) -> str | None:
    """7200 → ``2h``: the largest unit that divides it (the form ``ttl`` accepts)."""
    if seconds is None or seconds <= 0:
        return None  # Feast's 0: forever
    whole = round(seconds)
    if whole < 1:
        whole = 1
    for unit, size in _UNITS:
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"  # pragma: no cover - 1 s divides every whole number


def _project_path(path: str, root: Path) -> str:
    """A path relative to the project when it lies inside it; a URL or outside: as is."""
    if "://" in path:
        return path
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(
    source: Mapping[str, Any] | None, offline: Mapping[str, Any], root: Path
) -> tuple[dict[str, Any] | None, str]:
    """The view's ``source`` settings, or None and the reason it cannot be imported."""
    if source is None:
        return None, "it has no batch source"
    mapping: dict[str, str] = dict(source.get("field_mapping") or {})
    if source["kind"] == "file":
        path = _project_path(source["path"], root)
        if not mapping:
            return {"path": path}, ""
        # Shipyard reads files as they are; a renaming becomes a DuckDB query over them.
        absolute = source["path"] if "://" in source["path"] else Path(source["path"]).as_posix()
        reader = "read_csv_auto" if absolute.endswith(".csv") else "read_parquet"
        renamed = ", ".join(f"{_quoted(a)} AS {_quoted(b)}" for a, b in mapping.items())
        excluded = ", ".join(_quoted(a) for a in mapping)
        literal = "'" + absolute.replace("'", "''") + "'"
        return {"sql": f"SELECT * EXCLUDE ({excluded}), {renamed} FROM {reader}({literal})"}, ""
    if source["kind"] == "postgres":
        if mapping:
            return None, "a PostgreSQL source with a field_mapping (rename the columns in a view)"
        if not source.get("table"):
            return None, "a PostgreSQL query source; Shipyard reads a table (make it a view)"
        out: dict[str, Any] = {"table": source["table"]}
        if offline.get("type") == "postgres" and offline.get("host"):
            user = f"{offline['user']}@" if offline.get("user") else ""
            port = f":{offline['port']}" if offline.get("port") else ""
            out["database_url"] = (
                f"postgresql://{user}{offline['host']}{port}/{offline.get('database', '')}"
            )
        return out, ""
    return None, f"a {source.get('class', 'source')} (Shipyard reads files and PostgreSQL tables)"


def _view(
    found: Mapping[str, Any], entities: set[str], offline: Mapping[str, Any], root: Path
) -> tuple[dict[str, Any] | None, list[Unsupported]]:
    """A view's settings (None if it cannot be imported) and what of it was left out."""
    name = found["name"]
    left_out: list[Unsupported] = []
    features: dict[str, str] = {}
    for feature in found["features"]:
        if feature["name"] in features:
            raise ConfigError(
                f"Feast view {name!r} declares feature {feature['name']!r} twice.",
                hint="Fix the Feast definitions (`feast plan` reports them).",
            )
        dtype = FEAST_DTYPES.get(feature["dtype"])
        if dtype is None:
            reason = f"Feast type {feature['dtype']} (Shipyard serves {', '.join(FEAST_DTYPES)})"
            left_out.append(Unsupported("feature", f"{name}:{feature['name']}", reason))
        else:
            features[feature["name"]] = dtype
    view_entities = [e for e in found["entities"] if e in entities]
    source, why = _source(found.get("source"), offline, root)
    if not view_entities:
        return None, [Unsupported("feature view", name, "it has no entity (Feast's dummy)")]
    if source is None:
        return None, [Unsupported("feature view", name, why)]
    if not features:
        return None, [*left_out, Unsupported("feature view", name, "none of its features")]
    raw = found["source"]
    timestamp = raw.get("timestamp_field") or "event_timestamp"
    created = raw.get("created_timestamp_column")
    mapping = raw.get("field_mapping") or {}
    settings: dict[str, Any] = {
        "name": name,
        "entities": view_entities,
        "source": source,
        "timestamp_field": mapping.get(timestamp, timestamp),
        "created_timestamp_column": mapping.get(created, created) if created else None,
        "ttl": _duration(found.get("ttl_seconds")),
        "features": features,
    }
    if found.get("description"):
        settings["description"] = found["description"]
    return settings, left_out


def convert(document: Mapping[str, Any], project_root: Path) -> FeastImport:
    """The ``features`` section for a Feast dump, checked by building its definitions.

    File paths become relative to ``project_root`` when they lie inside it.
    """
    unsupported: list[Unsupported] = []
    entities = [
        {"name": e["name"], "join_keys": list(e["join_keys"])}
        | ({"description": e["description"]} if e.get("description") else {})
        for e in document.get("entities", [])
        if not e["name"].startswith("__dummy")
    ]
    names = {e["name"] for e in entities}
    offline = document.get("offline_store") or {}
    views: list[dict[str, Any]] = []
    for found in document.get("feature_views", []):
        settings, left_out = _view(found, names, offline, project_root)
        unsupported.extend(left_out)
        if settings is not None:
            views.append(settings)
    code = "Python code written against Feast's API; declare it with shipyard.features.on_demand"
    unsupported += [
        Unsupported("on-demand view", v["name"], f"not imported ({code})")
        for v in document.get("on_demand_feature_views", [])
    ]
    unsupported += [
        Unsupported("stream view", v["name"], "not imported (Shipyard has no stream sources)")
        for v in document.get("stream_feature_views", [])
    ]
    unsupported += [
        Unsupported("feature service", s["name"], "not imported (name features as view:feature)")
        for s in document.get("feature_services", [])
    ]
    imported = FeastImport(
        repo=str(document.get("repo", "")),
        feast_version=document.get("feast_version"),
        entities=entities,
        views=views,
        unsupported=unsupported,
    )
    definitions(imported)  # a ConfigError now rather than at `features apply`
    return imported


def definitions(imported: FeastImport) -> FeatureRepo:
    """The Shipyard definitions the import declares (as ``load_repo`` would build them)."""
    from shipyard.config.features import FeatureSettings
    from shipyard.features.definitions import Entity

    try:
        settings = FeatureSettings.model_validate(imported.section)
    except ValueError as exc:
        raise ConfigError(
            f"The imported Feast definitions are not valid Shipyard features: {exc}",
            hint="Report the Feast repo's shape; meanwhile write the features section by hand.",
        ) from None
    return FeatureRepo.of(
        [
            *(Entity(e.name, tuple(e.join_keys), e.description) for e in settings.entities),
            *(view_from_settings(v) for v in settings.views),
        ]
    )


def import_feast(repo: Path, python: str | Path, project_root: Path) -> FeastImport:
    """Read the Feast repo at ``repo`` with ``python`` and convert it (see :func:`convert`)."""
    return convert(read_feast_repo(repo, python), project_root)


def _merged(existing: list[Any], new: list[dict[str, Any]]) -> list[Any]:
    """``existing`` with same-named items replaced by ``new`` ones and the rest appended."""
    by_name = {item["name"]: item for item in new}
    out = [by_name.pop(item.get("name"), item) for item in existing]
    return out + [item for item in new if item["name"] in by_name]


def merge_into_config(config_file: Path, imported: FeastImport) -> str:
    """Write the import into ``config_file``; returns ``appended`` or ``merged``.

    A file without a ``features`` section gets the block appended, its text otherwise
    untouched. A file with one gets entities and views merged by name (imported ones
    replace same-named ones) and is rewritten, which drops its comments.
    """
    import yaml

    text = config_file.read_text(encoding="utf-8")
    document = yaml.safe_load(text) or {}
    if not isinstance(document, dict):
        raise ConfigError(f"{config_file} does not hold a mapping.")
    current = document.get("features")
    if current is None:
        config_file.write_text(
            text + ("" if text.endswith("\n") or not text else "\n") + imported.to_yaml(),
            encoding="utf-8",
        )
        return "appended"
    section = dict(current)
    section["entities"] = _merged(list(section.get("entities") or []), imported.entities)
    section["views"] = _merged(list(section.get("views") or []), imported.views)
    from shipyard.config.features import FeatureSettings

    try:
        FeatureSettings.model_validate(section)
    except ValueError as exc:
        raise ConfigError(
            f"Merging the import into {config_file} gives an invalid features section: {exc}"
        ) from None
    document["features"] = section
    config_file.write_text(
        yaml.safe_dump(document, sort_keys=False, width=1_000_000), encoding="utf-8"
    )
    return "merged"
