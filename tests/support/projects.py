"""The churn example: a fresh copy, or trained once per session and copied per test.

Training is the slow part of most tests, so each recipe (how many versions, with what
parameters) is trained once per session into a template workspace, and every test gets
a copy of it: files, artifacts and the SQLite database. MLflow stores absolute paths
(the experiment's artifact location, each run's artifact URI, each model version's
source) and Shipyard records where the data came from, so a copy is re-pointed: every
occurrence of the template's folder in the database and in its text files is rewritten
to the copy's, and the copy is checked to hold no path into the template any more.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
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

    Paths into ``source`` are rewritten to ``destination``, so the copy neither reads
    nor writes the original.
    """
    old, new = str(source.resolve()), str(destination.resolve())
    if old.startswith(new + "/") or new.startswith(old + "/"):
        raise ValueError(f"a workspace cannot be copied into or out of itself: {old} → {new}")
    if source.resolve().as_uri() != "file://" + old:
        raise ValueError(f"{old} needs escaping in a URI; re-pointing would miss it")
    database = source / DATABASE
    skip = {database.name, f"{database.name}-wal", f"{database.name}-shm"}
    shutil.copytree(source, destination, ignore=lambda _dir, names: skip.intersection(names))
    if database.exists():
        _copy_database(database, destination / DATABASE, old, new)
    _repoint_files(destination, old, new)
    return destination


def _copy_database(source: Path, target: Path, old: str, new: str) -> None:
    """A consistent copy (the WAL included) with every text value re-pointed."""
    original = sqlite3.connect(source)
    copy = sqlite3.connect(target)
    try:
        original.backup(copy)
        listed = copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = [row[0] for row in listed]
        left = 0
        for table in tables:
            for column in [row[1] for row in copy.execute(f'PRAGMA table_info("{table}")')]:
                holds = f'typeof("{column}") = \'text\' AND instr("{column}", ?) > 0'
                copy.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE {holds}',
                    (old, new, old),
                )
                count = f'SELECT count(*) FROM "{table}" WHERE {holds}'
                left += copy.execute(count, (old,)).fetchone()[0]
        copy.commit()
        assert left == 0, f"{left} values in {target} still point into {old}"
    finally:
        copy.close()
        original.close()


def _repoint_files(root: Path, old: str, new: str) -> None:
    """Rewrite ``old`` to ``new`` in text files (MLmodel, model cards, snapshot records)."""
    needle = old.encode()
    for path in (root / ".shipyard").rglob("*"):
        if path == root / DATABASE or not path.is_file():
            continue
        data = path.read_bytes()
        if needle not in data:
            continue
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise AssertionError(f"{path} is not text but holds the path {old}") from None
        path.write_text(text.replace(old, new))


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
