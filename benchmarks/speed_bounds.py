"""The speed bounds the functional tests no longer assert, measured on this machine.

A test passes or fails on behaviour, never on how busy the machine is; the numbers they
used to bound live here instead, each against its old bound:

- ``measure`` on a 10,000-row golden set: at most 0.5 s beyond the predict call;
- the prediction-drift bootstrap (100,000 reference scores, 1,000 resamples): ≤ 5 s;
- calibrating drift bands for 50 features of 100,000 rows: ≤ 5 s;
- the churn example, trained in a temporary folder: the model loads in ≤ 5 s, its
  p99 predict at 1 row is ≤ 50 ms (the example scorecard's bound is looser, so a busy
  laptop passes the walkthrough), and a rollback, a pointer move, takes < 1 s.

    python benchmarks/speed_bounds.py [--skip-example]

Exits 1 when a measurement misses its bound. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "churn"


def seconds(call: Callable[[], object]) -> float:
    """Wall time of one call."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure_beyond_predict() -> float:
    """Seconds ``measure`` spends on 10,000 rows beyond its predict call."""
    from sklearn.linear_model import LogisticRegression

    from shipyard.config import Scorecard
    from shipyard.evaluation import LoadedModel, measure
    from shipyard.evaluation.predictions import predict

    rng = np.random.default_rng(0)
    features = ["x1", "x2", "x3"]
    frame = pd.DataFrame({name: rng.normal(size=10_000) for name in features})
    frame["region"] = rng.choice(["north", "south", "west"], size=len(frame))
    logit = 1.5 * frame["x1"] - frame["x2"] + 0.5 * frame["x3"]
    frame["y"] = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    model = LogisticRegression().fit(frame[features], frame["y"])
    loaded = LoadedModel(model, "sklearn", 0.05, 2_000_000, features)
    scorecard = Scorecard.model_validate(
        {
            "primary": {"metric": "roc_auc", "min": 0.7},
            "metrics": [
                {"metric": "recall", "slice": {"column": "region", "value": "west"}},
                {"metric": "accuracy", "slice": {"query": "x1 < 0 and region != 'north'"}},
                {"metric": "f1"},
            ],
            "calibration": {"max_ece": 0.1, "bins": 15},
            "fairness": [{"metric": "recall", "column": "region", "max_gap": 0.2}],
        }
    )

    def run() -> None:
        measure(loaded, frame, target="y", scorecard=scorecard, task="classification")

    run()  # warm imports
    return seconds(run) - seconds(lambda: predict(loaded, frame))


def bootstrap() -> float:
    """Seconds for the prediction-drift bootstrap on 100,000 reference scores."""
    from shipyard.monitoring.prediction_drift import bootstrap_distances

    scores = np.random.default_rng(1).beta(2, 5, 100_000)
    return seconds(lambda: bootstrap_distances(scores, 5000, n_boot=1000, seed=0))


def calibration() -> float:
    """Seconds to calibrate drift bands for 50 features of 100,000 rows."""
    from shipyard.monitoring.calibrate import calibrate_bands

    rng = np.random.default_rng(7)
    categories = np.array([f"c{i}" for i in range(30)])
    shares = np.r_[np.full(5, 0.15), np.full(25, 0.25 / 25)]
    columns = {f"x{i}": rng.normal(size=100_000) for i in range(40)}
    columns |= {f"c{i}": rng.choice(categories, 100_000, p=shares) for i in range(10)}
    frame = pd.DataFrame(columns)
    return seconds(lambda: calibrate_bands(frame, 5000))


def example(folder: Path) -> dict[str, float]:
    """The churn example trained twice: load time, p99 at 1 row, and a rollback's time."""
    from shipyard.config import load_config
    from shipyard.evaluation.latency import measure_latency
    from shipyard.models.loading import load_for_evaluation
    from shipyard.project import Principal, Project
    from shipyard.registry.aliases import move_alias, rollback
    from shipyard.training import train

    root = folder / "churn"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".shipyard"))
    project = Project(load_config(root / "shipyard.yaml", environ={}), Principal("bench", "cli"))
    train(project)
    train(project)
    client = project.client
    loaded = load_for_evaluation(str(client.get_model_version("churn", "1").source))
    golden = pd.read_csv(root / "data" / "golden.csv").drop(columns=["churned"])
    latency = measure_latency(loaded, golden, batch_size=64, repeats=200)
    move_alias(project.store, client, "churn", "champion", "1", action="promote")
    move_alias(project.store, client, "churn", "champion", "2", action="promote")
    moved = seconds(lambda: rollback(project.store, client, "churn", reason="benchmark"))
    project.close()
    return {"load": loaded.load_seconds, "p99": latency.p99_ms, "rollback": moved}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-example", action="store_true", help="no training (faster)")
    args = parser.parse_args()
    rows: list[tuple[str, float, float, str]] = [
        ("measure beyond predict, 10,000 rows", measure_beyond_predict(), 0.5, "s"),
        ("prediction-drift bootstrap, 100,000 scores", bootstrap(), 5.0, "s"),
        ("band calibration, 50 features × 100,000 rows", calibration(), 5.0, "s"),
    ]
    if not args.skip_example:
        with tempfile.TemporaryDirectory() as folder:
            found = example(Path(folder))
        rows += [
            ("churn model load", found["load"], 5.0, "s"),
            ("churn p99 predict, 1 row", found["p99"], 50.0, "ms"),
            ("rollback (a pointer move)", found["rollback"], 1.0, "s"),
        ]
    missed = 0
    for name, value, bound, unit in rows:
        verdict = "ok" if value <= bound else "MISSED"
        missed += verdict == "MISSED"
        print(f"{name:48} {value:9.3f} {unit:2}  bound {bound:g} {unit}  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
