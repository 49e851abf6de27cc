"""Wall time of `shipyard train` against the same training logged with plain MLflow.

Both variants run as fresh processes on the churn example (3,000 rows), on a SQLite
database and artifact folder that already exist (a warm-up run of each creates them),
and both register a model version. The plain-MLflow baseline passes pip_requirements,
so neither side pays MLflow's ~8 s requirement inference.

    python benchmarks/train_overhead.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "churn"


def plain_mlflow(project: Path) -> None:
    """The baseline: what a careful team writes with MLflow alone."""
    sys.path.insert(0, str(project))
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.metrics import accuracy_score, roc_auc_score
    from train import CATEGORICAL  # noqa: F401  (same module as the Shipyard run)
    from train import train as build

    uri = f"sqlite:///{project / 'plain.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name("plain")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment("plain", artifact_location=(project / "plain").as_uri())
    )
    frame = pd.read_csv(project / "data" / "train.csv")
    valid = pd.read_csv(project / "data" / "valid.csv")
    params = {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.1}

    class Ctx:
        """The same inputs Shipyard hands to train(ctx)."""

        def __init__(self) -> None:
            self.train, self.validation, self.params, self.seed = frame, valid, params, 42

        def features(self, f=None):
            f = self.train if f is None else f
            return f.drop(columns=["churned"]), f["churned"]

        def log_metric(self, name, value):
            mlflow.log_metric(name, value)

    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_params({**params, "seed": 42})
        ctx = Ctx()
        model = build(ctx)
        X, _ = ctx.features()
        Xv, yv = ctx.features(valid)
        mlflow.log_metric("roc_auc", roc_auc_score(yv, model.predict_proba(Xv)[:, 1]))
        mlflow.log_metric("accuracy", accuracy_score(yv, model.predict(Xv)))
        mlflow.log_input(
            mlflow.data.from_pandas(frame, source=str(project / "data")), context="training"
        )
        import skops.io

        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X.head(100), model.predict(X.head(100))),
            input_example=X.head(5),
            pip_requirements=["scikit-learn", "pandas", "numpy", "scipy", "skops"],
            registered_model_name="churn-plain",
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
        )


def timed(command: list[str], cwd: Path) -> float:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per variant")
    parser.add_argument("--plain", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_mlflow(args.plain)
        return

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    shipyard = [str(Path(sys.executable).with_name("shipyard")), "train"]
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "churn"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".shipyard"))
        variants = {
            "plain MLflow (baseline)": [sys.executable, __file__, "--plain", str(project)],
            "shipyard train": shipyard,
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        with Progress(transient=True) as progress:
            task = progress.add_task("warm-up + timed runs", total=(args.repeat + 1) * 2)
            for attempt in range(args.repeat + 1):
                for name, command in variants.items():
                    elapsed = timed(command, project)
                    if attempt:  # the first run of each creates its database
                        times[name].append(elapsed)
                    progress.advance(task)

    table = Table(title=f"shipyard train vs plain MLflow ({args.repeat} runs each)")
    for column in ("variant", "median s", "min s", "max s", "ratio vs baseline"):
        table.add_column(column)
    base = statistics.median(times["plain MLflow (baseline)"])
    for name, values in times.items():
        median = statistics.median(values)
        table.add_row(
            name,
            f"{median:.2f}",
            f"{min(values):.2f}",
            f"{max(values):.2f}",
            f"{median / base:.2f}×",
        )
    console = Console()
    console.print(table)
    added = statistics.median(times["shipyard train"]) - base
    console.print(f"Shipyard adds {added:+.2f} s per training run (floor: ≤ 2 s).")


if __name__ == "__main__":
    main()
