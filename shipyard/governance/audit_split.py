"""A big log is verified by two processes, and the registry asked by a third, at once.

Recomputing a leaf is CPU work (parse, canonical JSON, SHA-256), and asking MLflow
about aliases means importing MLflow (seconds, whatever the log's size). For a log of
:data:`SPLIT_AT` leaves or more, on a machine with a second core, ``audit verify``
hands the first half of the leaves and the registry-drift question to worker processes
(:mod:`shipyard.governance.audit_worker`), reads the second half itself in its
snapshot, then joins the halves at the seam. The findings are the same as one pass
would make (a test compares them); when a worker fails, its work is done here.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine

from shipyard.governance.audit_tree import TreeWalk
from shipyard.governance.audit_verify import (
    Finding,
    Findings,
    LogScan,
    Part,
    Progress,
    scan_after,
    scan_part,
    seam,
)
from shipyard.store.merkle import Range

if TYPE_CHECKING:
    from shipyard.access import Principal
    from shipyard.config import Config
    from shipyard.project import Project

__all__ = ["SPLIT_AT", "Helpers", "drift_findings", "split_point"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

SPLIT_AT = 250_000
"""Leaves from which a second process reads half of them (below, starting it costs more)."""


def split_point(engine: Engine, size: int) -> int:
    """Up to which seq a worker reads (0: one pass here) for a log of ``size`` leaves."""
    memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
    if size < SPLIT_AT or memory or (os.cpu_count() or 1) < 2:
        return 0
    return size // 2


def drift_findings(config: Config, principal: Principal) -> list[Finding]:
    """Registry drift as findings, asked from a project of its own (a worker's job)."""
    from shipyard.governance.pointers import alias_drift
    from shipyard.project import Project

    project = Project(config, principal)
    try:
        return [Finding("drift", f"registry drift: {d.summary}") for d in alias_drift(project)]
    finally:
        project.close()


class _Worker:
    """One ``audit_worker`` process, its answer written to a file of its own."""

    def __init__(self, folder: Path, job: str, given: bytes) -> None:
        self.out = folder / f"{job}.pickle"
        self._errors: IO[bytes] = (folder / f"{job}.err").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shipyard.governance.audit_worker", job, str(self.out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._errors,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(given)  # small: the pipe holds it, the worker reads it
        self.process.stdin.close()

    def answer(self) -> Any:
        """The worker's answer; ``None`` when it failed (the caller then does the job)."""
        code = self.process.wait()
        self._errors.close()
        if code != 0 or not self.out.is_file():
            errors = Path(self._errors.name).read_text(errors="replace")[-2000:]
            logger.warning("audit worker failed (exit %s), doing its job here: %s", code, errors)
            return None
        return pickle.loads(self.out.read_bytes())  # written by our own child, just now

    def stop(self) -> None:
        """End the worker if it is still running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._errors.close()


class Helpers:
    """The worker processes of one verification: a part of the log, and the registry."""

    def __init__(
        self,
        project: Project,
        engine: Engine,
        *,
        upto: int,
        drift: bool,
        sizes: list[int],
        ranges: list[Range],
    ) -> None:
        self._project, self._url, self._upto = project, _url(engine), upto
        self._sizes, self._ranges = sizes, ranges
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._part: _Worker | None = None
        self._drift: _Worker | None = None
        if not (upto or drift):
            return
        self._folder = tempfile.TemporaryDirectory(prefix="shipyard-audit-")
        folder = Path(self._folder.name)
        try:
            if upto:
                task = {"url": self._url, "upto": upto, "sizes": sizes, "ranges": ranges}
                self._part = _Worker(folder, "part", json.dumps(task).encode())
            if drift:
                given = pickle.dumps((project.config, project.principal))
                self._drift = _Worker(folder, "drift", given)
        except OSError as error:  # no processes to be had: the work is done here
            logger.warning("audit workers could not start (%s); verifying in one process", error)
            self.close()

    def scan(
        self, connection: Connection, findings: Findings, *, total: int, progress: Progress
    ) -> LogScan:
        """Read the leaves after the worker's part here, then join the two at the seam: the
        tree carries on from the worker's over its part."""
        upto, sizes, ranges = self._upto, self._sizes, self._ranges
        after = Findings()
        tail, leaves, first = scan_after(connection, upto, after, total=total, progress=progress)
        part: Part = self._result(self._part, lambda: scan_part(self._url, upto, sizes, ranges))
        findings.absorb(part.findings, part.omitted)
        seam(part, upto, first, findings)
        findings.absorb(after.items, after.omitted)
        walk = TreeWalk.resume(part.tree, sizes=sizes, ranges=ranges)
        walk.extend(leaves)
        joined = LogScan(walk=walk, last_seq=tail.last_seq if first else part.expect - 1)
        joined.take(part)
        joined.take(tail)
        return joined

    def drift(self) -> list[Finding]:
        """The registry-drift findings (asked here when no worker could)."""
        project = self._project
        found: list[Finding] = self._result(
            self._drift, lambda: drift_findings(project.config, project.principal)
        )
        return found

    def close(self) -> None:
        """Stop any worker still running and remove their files."""
        for worker in (self._part, self._drift):
            if worker is not None:
                worker.stop()
        self._part = self._drift = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    @staticmethod
    def _result(worker: _Worker | None, here: Callable[[], _T]) -> _T:
        answer = None if worker is None else worker.answer()
        return here() if answer is None else answer


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)
