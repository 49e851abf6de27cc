"""benchmarks/features.py runs end to end at smoke size and writes the rows it promises.

The numbers are a measurement (docs), not asserted: a smoke run on a shared machine says
nothing about speed. What is asserted: every part asked for has its rows, the table is
tab-separated in a pipe and Markdown on request, and at smoke size Shipyard's
point-in-time rows are identical to Feast's (when the Feast venv is there). The serving
part (two trained models, two servers, wrk) takes minutes and is left to full runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "features.py"
FEAST_PYTHON = os.environ.get("SHIPYARD_FEAST_PYTHON")  # conftest clears SHIPYARD_* per test
HEADER = "measurement\tShipyard\tbaseline\tratio\ttarget\tok"


def test_smoke_run_writes_every_row(tmp_path: Path) -> None:
    out, table = tmp_path / "features.json", tmp_path / "features.md"
    parts = ["online", "materialize", "import"]
    command = [sys.executable, str(SCRIPT), "--smoke", "--json", str(out)]
    command += ["--markdown", str(table)]
    if FEAST_PYTHON:
        parts.insert(0, "pit")
        command += ["--feast-python", FEAST_PYTHON]
    else:
        command += ["--no-feast"]
    command += ["--parts", ",".join(parts)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert HEADER in done.stdout.splitlines()

    record = json.loads(out.read_text())
    assert record["sizes"]["entity_rows"] == 2_000 and record["sizes"]["features"] == 10
    names = [row["measurement"] for row in record["rows"]]
    expected = [
        "online lookup, sqlite, 1 entity × 10 features",
        "online lookup, redis, 1 entity × 10 features",
        "materialise 20,000 rows × 10 features (SQLite)",
        "import shipyard (fastest of 3, -X importtime)",
        "import shipyard.cli (fastest of 3, -X importtime)",
    ]
    if FEAST_PYTHON:
        pit = ["PIT join 2,000 × 2,400 × 10 (best of 1)", "PIT rows identical to Feast's"]
        expected = pit + expected
    assert names == expected
    rows = {row["measurement"]: row for row in record["rows"]}
    if FEAST_PYTHON:
        check = rows["PIT rows identical to Feast's"]
        assert (check["shipyard"], check["ok"]) == ("identical", "ok")
    sqlite = rows["online lookup, sqlite, 1 entity × 10 features"]
    assert sqlite["shipyard"].startswith("p50 ") and sqlite["target"] == "p99 ≤ 1 ms"
    if FEAST_PYTHON:
        assert sqlite["baseline"].startswith("Feast SQLite: p50 ")
        assert "found nothing" not in sqlite["baseline"]
    assert rows["materialise 20,000 rows × 10 features (SQLite)"]["shipyard"].startswith(
        "peak RSS "
    )
    text = table.read_text()
    assert text.startswith("`python benchmarks/features.py --smoke")
    for row in record["rows"]:
        assert "| " + " | ".join(row.values()) + " |" in text
        assert row["ok"] in {"ok", "MISS", "—"}
