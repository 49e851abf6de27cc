"""benchmarks/detection.py runs end to end on a tiny case and writes the tables it promises.

The numbers are a measurement (docs/performance.md), not asserted here: one seed of a
short stream says nothing about delays. This checks the script's shape: every stream
asked for has every method's row, the targets that apply, and the Markdown table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "detection.py"
METHODS = [
    "Shipyard",
    "Shipyard sequential",
    "Shipyard window",
    "ADWIN",
    "ADWIN + lag",
    "Page-Hinkley",
    "PH + lag",
]


def test_tiny_run_writes_every_row_and_target(tmp_path: Path) -> None:
    out, table = tmp_path / "detection.json", tmp_path / "detection.md"
    streams = ["sea", "gauss-0.2"]
    command = [sys.executable, str(SCRIPT), "--seeds", "1", "--samples", "6000"]
    command += ["--streams", ",".join(streams), "--processes", "1"]
    command += ["--json", str(out), "--markdown", str(table)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Change detection" in finished.stdout

    record = json.loads(out.read_text())
    assert record["split"] == {"samples": 6000, "train": 800, "start": 1000, "change": 4000}
    summary = [(row["stream"], row["method"]) for row in record["summary"]]
    assert summary == [(stream, method) for stream in streams for method in METHODS]
    for row in record["summary"]:
        assert row["seeds"] == 1 and 0 <= row["detected"] <= 1
        assert row["false_per_10k"] >= 0
    assert len(record["outcomes"]) == len(streams) * len(METHODS)
    asked = [(t["stream"], t["target"].split(" ")[0]) for t in record["targets"]]
    assert asked == [
        ("sea", "delay"),
        ("sea", "false"),
        ("gauss-0.2", "flagged"),
        ("gauss-0.2", "false"),
    ]
    for target in record["targets"]:
        verdict = "ok" if target["met"] else "MISS"
        assert (
            f"| {target['stream']} | {target['target']} | {target['measured']} | {verdict} |"
            in (table.read_text())
        )
