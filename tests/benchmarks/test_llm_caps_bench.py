"""benchmarks/llm_caps.py runs end to end at smoke size and writes the rows it promises.

The numbers are a measurement (docs), not asserted: a smoke run on a shared machine says
nothing about speed. What is asserted: both floors (a no-op check and a dict lookup) and
every measured path have their rows, each check row names the 50 µs target, and the
background sync against SQLite really ran while the checks were timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "llm_caps.py"
HEADER = "measurement\tShipyard\tbaseline\tratio\ttarget\tok"


def test_smoke_run_writes_every_row(tmp_path: Path) -> None:
    out, table = tmp_path / "caps.json", tmp_path / "caps.md"
    command = [sys.executable, str(SCRIPT), "--smoke", "--json", str(out), "--markdown", str(table)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert HEADER in done.stdout.splitlines()
    record = json.loads(out.read_text())
    names = [row["measurement"] for row in record["rows"]]
    assert names == [
        "no-op check (floor), mean",
        "dict lookup of the tenant (floor), mean",
        "check, in process, mean",
        "check, SQLite sync every 50 ms, mean",
        "check, SQLite sync every 50 ms, vs dict lookup",
        "check with a policy header, mean",
        "charge, mean",
        "headers, mean",
        "check + charge + headers, mean",
        "no-op check (floor), p50 / p99",
        "check, SQLite sync every 50 ms, p50 / p99",
    ]
    rows = {row["measurement"]: row for row in record["rows"]}
    assert rows["check, in process, mean"]["target"] == "adds ≤ 50 µs"
    assert rows["check, in process, mean"]["ok"] in ("ok", "over")
    assert all(row["us"] > 0 for row in record["rows"])
    assert record["syncs"] >= 1 and record["tenants"] == 1_000
    assert table.read_text().startswith("| measurement | shipyard |")
