"""End-to-end wall time of the quick commands, best of N, against the interpreter itself.

A fresh copy of the churn example is initialised and trained twice (churn/1, churn/2),
then churn/1 and churn/2 are promoted to champion in turn: a demo-like project. Each
command then runs as a fresh process (``python -m shipyard …``, stdout to a pipe), as an
operator or a script runs it. ``rollback`` alternates between rolling back and promoting
again (the promotion is not timed), so every timed run moves the alias, and the script
checks with MLflow's own client that the alias really moved.

    python benchmarks/cli.py [--repeat 5]

Targets (issue 13): ``--help`` ≤ 0.3 s; ``models list``, ``events``, ``traffic show``,
``rollout status`` and ``rollback`` ≤ 1 s, on an idle machine. The ratio column divides
by ``python -c pass`` with the same interpreter: what start-up alone costs here. The
CPU column (user + system, best run) is the better guide on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "churn"

Result = tuple[str, float, float, float | None]  # command, best wall s, best CPU s, target s

COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("python -c pass", ["-c", "pass"], None),
    ("--help", ["-m", "shipyard", "--help"], 0.3),
    ("models list", ["-m", "shipyard", "models", "list"], 1.0),
    ("events", ["-m", "shipyard", "events"], 1.0),
    ("traffic show", ["-m", "shipyard", "traffic", "show", "churn"], 1.0),
    ("rollout status", ["-m", "shipyard", "rollout", "status", "churn"], 1.0),
    ("rollback", ["-m", "shipyard", "rollback", "churn", "--reason", "benchmark"], 1.0),
]


def _run(project: Path, env: dict[str, str], args: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh process running ``args``.

    CPU time says more than wall time on a busy machine: it leaves out the time the
    process waited for a core. Fails loudly on a non-zero exit.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def build_project(folder: Path, env: dict[str, str]) -> Path:
    """The churn example, trained twice, churn/1 then churn/2 champion."""
    project = folder / "churn"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".shipyard"))
    for args in (["init"], ["train"], ["train", "-p", "n_estimators=50"]):
        _run(project, env, ["-m", "shipyard", *args])
    _promote(project, "1")
    _promote(project, "2")
    return project


def _promote(project: Path, version: str) -> None:
    """Make ``version`` champion through the audited move (no scorecard: a benchmark)."""
    code = (
        "import sys\n"
        "from shipyard.connect import connect\n"
        "from shipyard.registry.aliases import move_alias\n"
        "p = connect()\n"
        "move_alias(p.store, p.client, 'churn', 'champion', sys.argv[1], action='promote')\n"
        "p.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, version], cwd=project, check=True)


def _champion(project: Path) -> str:
    """The champion as MLflow's own client reads it."""
    code = (
        "from mlflow import MlflowClient\n"
        "from shipyard.config import load_config\n"
        "url = load_config(None).db_url\n"
        "print(MlflowClient(url, url).get_model_version_by_alias('churn', 'champion').version)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def measure(project: Path, env: dict[str, str], repeat: int) -> list[Result]:
    """Best of ``repeat`` for every command (after one untimed warm-up run each)."""
    results = []
    for label, args, target in COMMANDS:
        before: Callable[[], None] = lambda: None  # noqa: E731
        if label == "rollback":
            before = lambda: _promote(project, "2")  # noqa: E731
        before()
        _run(project, env, args)  # warm-up: page cache, .pyc files
        times = []
        for _ in range(repeat):
            before()
            times.append(_run(project, env, args))
            if label == "rollback" and _champion(project) != "1":
                raise SystemExit("rollback did not move MLflow's champion alias to churn/1")
        results.append((label, min(w for w, _ in times), min(c for _, c in times), target))
    return results


def main() -> None:
    """Build the project, time the commands, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-cli-bench-") as folder:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")},
            "SHIPYARD_SECURITY__CREDENTIALS": str(Path(folder) / "credentials.json"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        project = build_project(Path(folder), env)
        results = measure(project, env, options.repeat)
    baseline = results[0][1]
    print(f"best of {options.repeat}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(
        f"| {'command':<16} | {'best s':>7} | {'CPU s':>6} | {'target s':>8} | "
        f"{'× pass':>6} | met |"
    )
    print(f"|{'-' * 18}|{'-' * 8}:|{'-' * 7}:|{'-' * 9}:|{'-' * 7}:|-----|")
    for label, best, cpu, target in results:
        goal = f"{target:.1f}" if target is not None else "—"
        met = "—" if target is None else ("yes" if best <= target else "no")
        print(
            f"| {label:<16} | {best:7.3f} | {cpu:6.3f} | {goal:>8} | "
            f"{best / baseline:6.1f} | {met:<3} |"
        )


if __name__ == "__main__":
    main()
