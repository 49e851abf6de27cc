"""benchmarks/llm_cache.py runs end to end at smoke size and writes the rows it promises.

Latency at smoke size on a shared machine says nothing (not asserted). The quality rows
are deterministic (WordLlama, the shipped paraphrase set) and are asserted: on the
near-misses the literal guard covers, no wrong hit at the default threshold, while the
cache without the guard makes some, and an exact-hash-only cache answers no paraphrase.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "llm_cache.py"
HEADER = "measurement\tShipyard\tbaseline\tratio\ttarget\tok"


def test_smoke_run_writes_every_row(tmp_path: Path) -> None:
    out, table = tmp_path / "cache.json", tmp_path / "cache.md"
    command = [sys.executable, str(SCRIPT), "--smoke", "--json", str(out), "--markdown", str(table)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert HEADER in done.stdout.splitlines()
    assert "| measurement | Shipyard |" in table.read_text()

    record = json.loads(out.read_text())
    names = [row["measurement"] for row in record["rows"]]
    assert len(names) == 9
    assert names[0].startswith("tuning half, literal near-misses")
    assert names[2].startswith("held-out half, literal near-misses")
    assert names[4].startswith("lookup at 5,")
    assert names[5].startswith("lookup at 5,") and "paced" in names[5]
    assert names[6].startswith("lookup CPU time at 5,")
    for half in ("tuning", "held-out"):
        measured = record["quality"][f"{half}/literal near-misses"]
        assert measured["guarded"]["wrong"] == 0
        assert measured["guarded"]["hit_rate"] >= 0.5
        assert measured["no_guard"]["wrong"] > 0
        assert measured["exact_only"]["right"] == 0
    latency = record["latency"]
    assert latency["entries"] >= 5_000 and latency["lookups"] == 300
    assert latency["p99_ms"] > 0 and latency["full_scan_p99_ms"] > 0 and latency["paced_p99_ms"] > 0
