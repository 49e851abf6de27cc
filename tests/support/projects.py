"""The churn example: a fresh copy, or trained once per session and copied per test.

Training is the slow part of most tests, so each recipe (how many versions, with what
parameters) is trained once per session into a template workspace, and every test gets
a copy of it: files, artifacts and the SQLite database. MLflow stores absolute paths
(the experiment's artifact location, each run's artifact URI, each model version's
source) and Shipyard records where the data came from, so a copy is re-pointed: every
occurrence of the template's folder in the database and in its text files is rewritten
to the copy's, and the copy is checked to hold no path into the template any more. Its
MLflow runs and logged models get new ids too (see :func:`copy_workspace`).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.config import Config, load_config

__all__ = ["EXAMPLE", "TrainedExamples", "copy_example", "copy_workspace", "load"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "churn"
DATABASE = Path(".shipyard") / "shipyard.db"


def copy_example(destination: Path) -> Path:
    """A fresh copy of the churn example project (without any workspace)."""
    shutil.copytree(EXAMPLE, destination, ignore=shutil.ignore_patterns(".shipyard"))
    return destination


def load(root: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """The configuration of the project at ``root`` (dotted ``overrides``), environment ignored."""
    return load_config(root / "shipyard.yaml", environ={}, overrides=overrides)


def copy_workspace(source: Path, destination: Path) -> Path:
    """Copy the project at ``source`` (workspace and SQLite database included) to ``destination``.

    The copy neither reads nor writes the original: paths into ``source`` now point into
    ``destination``, and every MLflow run and logged model has a new id (MLflow caches
    each one's artifact location by id for the whole process, so two workspaces sharing
    an id would share their artifacts).
    """
    old, new = str(source.resolve()), str(destination.resolve())
    if old.startswith(new + "/") or new.startswith(old + "/"):
        raise ValueError(f"a workspace cannot be copied into or out of itself: {old} → {new}")
    if source.resolve().as_uri() != "file://" + old:
        raise ValueError(f"{old} needs escaping in a URI; re-pointing would miss it")
    database = source / DATABASE
    skip = {database.name, f"{database.name}-wal", f"{database.name}-shm"}
    shutil.copytree(source, destination, ignore=lambda _dir, names: skip.intersection(names))
    renames = {old: new}
    if database.exists():
        renames |= _copy_database(database, destination / DATABASE, old, new)
    _rewrite_files(destination / ".shipyard", renames)
    return destination


def _fresh_ids(database: sqlite3.Connection) -> dict[str, str]:
    """A new id for every MLflow run and logged model in ``database``."""
    tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master")}
    fresh: dict[str, str] = {}
    if "runs" in tables:
        for (run,) in database.execute("SELECT run_uuid FROM runs"):
            fresh[run] = uuid.uuid4().hex
    if "logged_models" in tables:
        for (model,) in database.execute("SELECT model_id FROM logged_models"):
            fresh[model] = f"m-{uuid.uuid4().hex}"
    return fresh


def _copy_database(source: Path, target: Path, old: str, new: str) -> dict[str, str]:
    """A consistent copy (the WAL included), re-pointed, with fresh ids; returns the ids."""
    original = sqlite3.connect(source)
    copy = sqlite3.connect(target)
    try:
        original.backup(copy)
        ids = _fresh_ids(copy)
        renames = {old: new} | ids
        listed = copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        left = 0
        for table in [row[0] for row in listed]:
            for column in [row[1] for row in copy.execute(f'PRAGMA table_info("{table}")')]:
                holds = f'typeof("{column}") = \'text\' AND instr("{column}", ?) > 0'
                for before, after in renames.items():
                    copy.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                        f"WHERE {holds}",
                        (before, after, before),
                    )
                    count = f'SELECT count(*) FROM "{table}" WHERE {holds}'
                    left += copy.execute(count, (before,)).fetchone()[0]
        copy.commit()
        assert left == 0, f"{left} values in {target} still hold a path or id of {source}"
        return ids
    finally:
        copy.close()
        original.close()


def _rewrite_files(folder: Path, renames: Mapping[str, str]) -> None:
    """Apply ``renames`` to file and folder names and to text files (MLmodel, cards …)."""
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        name = path.name
        for before, after in renames.items():
            name = name.replace(before, after)
        if name != path.name:
            path.rename(path.with_name(name))
    needles = [before.encode() for before in renames]
    for path in folder.rglob("*"):
        if path.name.startswith(DATABASE.name) or not path.is_file():
            continue
        data = path.read_bytes()
        if not any(needle in data for needle in needles):
            continue
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise AssertionError(f"{path} is not text but holds a path or id to rewrite") from None
        for before, after in renames.items():
            text = text.replace(before, after)
        path.write_text(text)


class TrainedExamples:
    """The churn example trained to a recipe once per session, copied for each test.

    A recipe is one parameter mapping per training run, in order: ``copy(dest, {}, {})``
    gives churn/1 and churn/2 trained with the example's own parameters. Recipes
    sharing a prefix share its training: ``({}, {})`` is ``({},)`` trained once more.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._templates: dict[tuple[str, ...], Path] = {}

    def _initialised(self) -> Path:
        """The example with its workspace and database created, nothing trained."""
        from shipyard.registry import Tracking
        from shipyard.store import Store

        root = copy_example(self.root / "t0" / "churn")
        config = load(root)
        Store(config.db_url, actor="tester").close()
        Tracking(config)
        return root

    def template(self, *trainings: Mapping[str, Any]) -> Path:
        """The template workspace for a recipe, trained now if this session has not yet."""
        from shipyard.training import train
        from tests.support import project_of

        key = tuple(json.dumps(dict(params), sort_keys=True) for params in trainings)
        if key not in self._templates and not key:
            self._templates[key] = self._initialised()
        if key not in self._templates:
            base = self.template(*trainings[:-1])
            root = copy_workspace(base, self.root / f"t{len(self._templates)}" / "churn")
            project = project_of(load(root))
            try:
                train(project, params=dict(trainings[-1]))
            finally:
                project.close()
            self._templates[key] = root
        return self._templates[key]

    def copy(
        self,
        destination: Path,
        *trainings: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
    ) -> Config:
        """A private copy of the example trained to ``trainings`` (none: just initialised)."""
        return load(copy_workspace(self.template(*trainings), destination), overrides)
