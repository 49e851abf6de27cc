"""Wall time of Shipyard's auto-mode drift against Evidently's ``DataDriftPreset``.

Both sides get the same synthetic reference and current frames (70 % continuous
columns, 20 % categorical strings, 10 % binary integers; every fourth column drifts)
and answer the same question: Evidently 0.7's default per-column tests and the
dataset verdict. Shipyard's time is ``fit`` (reference processed once) plus ``score``;
a second ``score`` shows the cost when the fitted reference is reused. Evidently runs
only if it is importable (0.7 needs pandas < 3), and then the per-column verdicts of
the two are compared.

    python benchmarks/drift.py [--rows 356000] [--columns 100] [--current-rows N]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from shipyard.monitoring import AutoDriftDetector, DatasetDrift

T = TypeVar("T")
console = Console()


def synthetic(rows: int, columns: int, drift: bool, seed: int, progress: Progress) -> pd.DataFrame:
    """A frame of mixed column types; with ``drift``, every fourth column shifts."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    task = progress.add_task(f"generating {'current' if drift else 'reference'}", total=columns)
    for i in range(columns):
        shift = 0.3 if drift and i % 4 == 0 else 0.0
        share = i % 10
        if share < 7:
            data[f"num_{i}"] = rng.normal(shift, 1.0 + shift, rows)
        elif share < 9:
            probs = np.array([0.4, 0.3, 0.2, 0.1]) + np.array([-shift, 0, 0, shift]) / 2
            data[f"cat_{i}"] = rng.choice(np.array(["a", "b", "c", "d"]), rows, p=probs)
        else:
            data[f"bin_{i}"] = (rng.random(rows) < 0.3 + shift / 3).astype(np.int64)
        progress.advance(task)
    return pd.DataFrame(data)


def timed(progress: Progress, label: str, work: Callable[[], T]) -> tuple[T, float]:
    """Run ``work`` under a spinner; return its result and wall seconds."""
    task = progress.add_task(label, total=None)
    start = time.perf_counter()
    value = work()
    elapsed = time.perf_counter() - start
    progress.update(task, total=1, completed=1, description=f"{label}: {elapsed:.2f} s")
    return value, elapsed


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    """Evidently's per-column verdicts and dataset verdict from ``Report([DataDriftPreset()])``."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
    data = snapshot.dict()
    status = {test["name"]: test["status"] == "FAIL" for test in data["tests"]}
    columns = {
        name.removeprefix("Value Drift for column "): failed
        for name, failed in status.items()
        if name.startswith("Value Drift for column ")
    }
    dataset = next(failed for name, failed in status.items() if name.startswith("Share of"))
    return {"columns": columns, "drifted": dataset}


def evidently_available() -> str | None:
    """Evidently's version, or ``None`` when it cannot be imported here."""
    try:
        import evidently
    except ImportError:
        return None
    return str(getattr(evidently, "__version__", "?"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=356_000, help="reference rows")
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--current-rows", type=int, default=None, help="default: --rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-evidently", action="store_true", help="time Shipyard only")
    args = parser.parse_args()
    current_rows = args.current_rows or args.rows
    version = None if args.no_evidently else evidently_available()

    columns = [TextColumn("{task.description}"), SpinnerColumn(), BarColumn()]
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        reference = synthetic(args.rows, args.columns, False, args.seed, progress)
        current = synthetic(current_rows, args.columns, True, args.seed + 1, progress)
        detector, fit_s = timed(
            progress, "shipyard fit", lambda: AutoDriftDetector().fit(reference)
        )
        ours, score_s = timed(progress, "shipyard score", lambda: detector.score(current))
        _, rescore_s = timed(progress, "shipyard score again", lambda: detector.score(current))
        theirs: dict[str, Any] | None = None
        evidently_s = float("nan")
        if version:
            theirs, evidently_s = timed(
                progress, f"evidently {version}", lambda: evidently_drift(reference, current)
            )

    shipyard_s = fit_s + score_s
    table = Table(title=f"Drift, {args.columns} columns, {args.rows:,} → {current_rows:,} rows")
    for heading in ("tool", "fit s", "score s", "total s", "vs Shipyard"):
        table.add_column(heading, justify="left" if heading == "tool" else "right")
    table.add_row("Shipyard auto", f"{fit_s:.2f}", f"{score_s:.2f}", f"{shipyard_s:.2f}", "1.0×")
    table.add_row("Shipyard, fitted reused", "-", f"{rescore_s:.2f}", f"{rescore_s:.2f}", "")
    if theirs is not None:
        ratio = f"{evidently_s / shipyard_s:.1f}× slower"
        table.add_row(f"Evidently {version}", "-", "-", f"{evidently_s:.2f}", ratio)
    console.print(table)
    console.print(_verdicts(ours, theirs))


def _verdicts(ours: DatasetDrift, theirs: dict[str, Any] | None) -> str:
    summary = (
        f"Shipyard: {ours.drifted_count}/{ours.tested} columns drifted, "
        f"dataset drift {ours.drifted}."
    )
    if theirs is None:
        return (
            summary + " (Evidently not importable here: pip install 'evidently==0.7.*' 'pandas<3')"
        )
    agree = sum(theirs["columns"].get(r.feature) == r.drifted for r in ours.columns)
    return (
        f"{summary} Evidently: {sum(theirs['columns'].values())}/{len(theirs['columns'])} "
        f"drifted, dataset drift {theirs['drifted']}. Verdicts agree on "
        f"{agree}/{len(ours.columns)} columns."
    )


if __name__ == "__main__":
    main()
