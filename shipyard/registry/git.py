"""The git state of the project a run was trained from."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GitState", "git_state"]


@dataclass(frozen=True)
class GitState:
    """Commit and whether the work tree had uncommitted changes."""

    commit: str
    dirty: bool
    branch: str | None


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(folder: Path) -> GitState | None:
    """The commit checked out in ``folder``, or ``None`` when git does not version it.

    ``None`` outside a repository, and also for a folder inside one that tracks none of
    its files (ignored or never added, like ``shipyard demo``'s ``.demo/`` inside a
    Shipyard checkout): that repository's commit says nothing about the project.
    """
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return None
    if not _git(folder, "ls-files", "--", "."):
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    return GitState(commit=commit, dirty=bool(status), branch=branch)
