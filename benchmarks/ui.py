"""The dashboard's server time: the model page over a million predictions, the fleet of 20.

    python benchmarks/ui.py                          # 1,000,000 rows for m00, 20 models
    python benchmarks/ui.py --rows 200000 --fleet-rows 20000 --keep /tmp/ui-bench

Builds a project (SQLite, local logs) with ``--models`` deployed models. ``m00`` has
``--rows`` logged predictions in the last 24 hours (Parquet in the writer's layout:
two live versions split 80/20 across a promotion 6 hours ago, a shadow copy of every
tenth request, 1 % errors); every other model ``--fleet-rows``. Each model has a
challenger share and 24 hourly monitor runs (four features, prediction drift,
realised and estimated AUC), and a few alerts are open. ``m00`` has a business KPI,
``converted``: a Parquet file of an outcome for every request id, joined by request id.

Timed, best of ``--repeat`` each, in this process after one warm-up call:

- ``model_view`` of ``m00`` over 24 h as the HTML page reads it: every panel's chart
  (one DuckDB pass over the log for throughput, latency and errors), the KPI chart as a
  placeholder (not evaluated), roll-outs, cycles, alerts, events;
- ``kpi_view`` of ``m00`` over 24 h: the KPI evaluated over the million predictions;
- ``fleet_rows`` of all models over 24 h (one DuckDB query over every log);
- the same two pages through the dashboard's ASGI app (rendered HTML), and
  ``GET /models/m00/kpis`` (the KPI chart's JSON, which the page fetches after loading);
- the baseline: a plain DuckDB ``SELECT count(*)`` over m00's files for the same 24 h,
  in a fresh connection, the least any page reading that log could cost.

The table shows each time against its 1 s target and as a multiple of the baseline
(a ratio that moves less than the seconds from one machine to another), and by how much
a miss missed. Exits 1 when a page (fleet or model) misses its target; the KPI request is
printed against the same 1 s but does not hold the page, so it does not set the exit code.
Run it on an idle machine; on a busy one, read the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.dashboard_data import (
    bare_project,
    monitor_result,
    save_run,
    synthetic_rows,
    write_prediction_log,
)

TARGET_SECONDS = 1.0
KPI = (
    "kpis:\n"
    "  - name: converted\n"
    "    model: m00\n"
    "    sql: SELECT request_id, value FROM read_parquet('outcomes.parquet')\n"
    "    join: request_id\n"
)
"""m00's business KPI: an outcome for every request, joined by request id."""
_FEATURES = ("age", "income", "tenure", "plan")


def build(root: Path, models: int, rows: int, fleet_rows: int, now: datetime) -> Any:
    """The benchmark project at ``root``: logs, monitor runs, traffic, alerts, a promotion."""
    from shipyard.store.event_kinds import EventKind
    from shipyard.store.tables import AliasMoveRow
    from shipyard.store.traffic import TrafficSettings, write_traffic

    project = bare_project(root, "m00", actor="bench", extra=KPI)
    store = project.store
    since = now - timedelta(hours=24)
    promoted = now - timedelta(hours=6)
    with store.session() as session:  # two champion moves (the registry is not built here)
        session.add(AliasMoveRow(model="m00", alias="champion", from_version=None,
                                 to_version="1", action="promote", actor="bench",
                                 at=now - timedelta(days=3)))  # fmt: skip
        session.add(AliasMoveRow(model="m00", alias="champion", from_version="1",
                                 to_version="2", action="promote", actor="bench",
                                 at=promoted))  # fmt: skip
    for i in range(models):
        model = f"m{i:02d}"
        n = rows if i == 0 else fleet_rows
        logged = synthetic_rows(
            n, since, now, versions=("1", "2"), weights=(0.8, 0.2), shadow="3", seed=i
        )
        write_prediction_log(project.config, model, logged)
        if i == 0:
            write_outcomes(root / "outcomes.parquet", logged.request_id)
        write_traffic(store, model, TrafficSettings(challengers={"2": 0.2}, shadow="3"))
        for hour in range(24):
            drift = 0.01 * (1 + hour / 6) * (1 + i % 3)
            save_run(
                project,
                monitor_result(
                    model, "1", since + timedelta(hours=hour, minutes=30),
                    features={f: drift * (k + 1) for k, f in enumerate(_FEATURES)},
                    prediction=drift, realised={"roc_auc": 0.8 - drift},
                    estimated={"roc_auc": 0.79 - drift}, coverage=0.3, lag_p50=3600.0,
                ),
            )  # fmt: skip
        if i % 5 == 1:
            store.record(EventKind.ALERT_OPENED, f"alert:{model}/feature:age", {"level": "retrain"})
    return project


def write_outcomes(path: Path, request_ids: Any) -> None:
    """A Parquet file of one outcome (0 or 1) per request id."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = np.random.default_rng(0).integers(0, 2, len(request_ids)).astype(np.float64)
    table = pa.table({"request_id": pa.array(list(request_ids), pa.string()), "value": values})
    pq.write_table(table, path)


def best(call: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` timed calls, after one untimed warm-up call."""
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def baseline(project: Any, since: datetime, until: datetime) -> Callable[[], int]:
    """A plain DuckDB count of m00's rows in the window, in a fresh connection."""
    import duckdb

    from shipyard.logs.root import project_log_root

    pattern = str(
        project_log_root(project.config) / "predictions" / "model=m00" / "date=*" / "*.parquet"
    )

    def count() -> int:
        con = duckdb.connect()
        try:
            found = con.execute(
                "SELECT count(*) FROM read_parquet(?) WHERE time >= ? AND time < ?",
                [pattern, since, until],
            ).fetchone()
        finally:
            con.close()
        return int(found[0]) if found else 0

    return count


def pages(project: Any) -> tuple[Callable[[], Any], ...] | None:
    """GET /, GET /models/m00?range=24h and GET /models/m00/kpis?range=24h through the
    dashboard's ASGI app."""
    try:
        from starlette.testclient import TestClient

        from shipyard.ui.app import dashboard_app
        from shipyard.ui.auth import local_viewer
    except ImportError:
        return None
    app = dashboard_app(project.config, project=project, local=local_viewer("bench"))
    client = TestClient(app, base_url="http://127.0.0.1")
    client.__enter__()

    def get(path: str) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"GET {path} answered {response.status_code}")
            return response

        return call

    return get("/"), get("/models/m00?range=24h"), get("/models/m00/kpis?range=24h")


def main(argv: list[str] | None = None) -> int:
    """Build, time and print; 1 when a page misses its target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="m00's predictions")
    parser.add_argument("--fleet-rows", type=int, default=50_000, help="each other model's")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    console = Console(width=130)
    from shipyard.ui.data import fleet_rows, kpi_view, model_view, parse_range

    root = args.keep or Path(tempfile.mkdtemp(prefix="ui-bench-"))
    if root.exists():
        shutil.rmtree(root)
    now = datetime.now(UTC)
    try:
        started = time.perf_counter()
        project = build(root, args.models, args.rows, args.fleet_rows, now)
        console.print(
            f"built {args.models} models ({args.rows:,} + {args.models - 1} × "
            f"{args.fleet_rows:,} predictions) in {time.perf_counter() - started:.1f} s"
        )
        window = parse_range(None, (now - timedelta(hours=24)).isoformat(), now.isoformat(), "24h")
        count = baseline(project, window.since, window.until)
        assert count() == args.rows + args.rows // 10 + (args.rows % 10 > 0), "baseline rows"
        view = model_view(project, "m00", window)  # the KPI evaluated, for the points
        points = sum(chart.points for chart in view.charts)
        kpi_charts = kpi_view(project, "m00", window)
        if any(chart.error for chart in kpi_charts) or not kpi_charts[0].points:
            raise SystemExit(f"the KPI did not evaluate: {kpi_charts[0].error}")
        repeat = args.repeat
        timings: list[tuple[str, float, float | None]] = [
            ("baseline: DuckDB count(*) of m00's window", best(count, repeat), None),
            (
                "model_view(m00, 24 h, KPI as a placeholder)",
                best(lambda: model_view(project, "m00", window, kpis=False), repeat),
                TARGET_SECONDS,
            ),
            (
                "kpi_view(m00, 24 h): 1 KPI evaluated",
                best(lambda: kpi_view(project, "m00", window), repeat),
                TARGET_SECONDS,
            ),
            (
                f"fleet_rows({args.models} models, 24 h)",
                best(lambda: fleet_rows(project, window), repeat),
                TARGET_SECONDS,
            ),
        ]
        found = pages(project)
        if found is not None:
            fleet_page, model_page, kpi_request = found
            timings.append(("GET / (fleet page, HTML)", best(fleet_page, repeat), TARGET_SECONDS))
            timings.append(
                ("GET /models/m00?range=24h (HTML)", best(model_page, repeat), TARGET_SECONDS)
            )
            timings.append(
                ("GET /models/m00/kpis?range=24h (JSON)", best(kpi_request, repeat), TARGET_SECONDS)
            )
        base = timings[0][1]
        table = Table(title=f"dashboard server time, best of {args.repeat}, {os.cpu_count()} cores")
        for column in ("what", "seconds", "target", "× baseline", "verdict"):
            table.add_column(column, justify="left" if column == "what" else "right")
        missed = False
        for what, seconds, target in timings:
            verdict = ""
            if target is not None:
                over = seconds - target
                verdict = "ok" if over <= 0 else f"MISSED by {over:.2f} s (×{seconds / target:.1f})"
                missed |= over > 0 and "kpi" not in what.lower()
            table.add_row(
                what,
                f"{seconds:.3f}",
                "" if target is None else f"≤ {target:g} s",
                f"{seconds / base:.1f}",
                verdict,
            )
        console.print(table)
        console.print(f"model page: {len(view.charts)} charts, {points:,} points")
        return 1 if missed else 0
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
