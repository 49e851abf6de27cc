"""benchmarks/llm_gateway.py runs end to end on a tiny case and writes the table it promises.

The numbers are a measurement (docs/performance.md), not asserted here: 40 calls on a busy
machine say nothing about a millisecond. This checks the script's shape: the provider
stand-in (shipyard.demo.provider, the one LLM stand-in: a real HTTP server whose answers
are a pure function of the request), both pass-through proxies and ``shipyard serve``
all answered, every variant has its p50, p99 and ratios, and both targets are reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "llm_gateway.py"
WHOLE = ["direct", "proxy", "proxy, aiohttp", "gateway", "gateway, cache hit"]
STREAMED = ["direct", "proxy", "proxy, aiohttp", "gateway"]


@pytest.mark.timeout(600)
def test_smoke_run_measures_every_variant_and_reports_both_targets(tmp_path: Path) -> None:
    out, table = tmp_path / "gateway.json", tmp_path / "gateway.md"
    command = [sys.executable, str(SCRIPT), "--smoke", "--json", str(out), "--markdown", str(table)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=540, check=False)
    assert finished.returncode == 0, finished.stderr[-3000:] + finished.stdout[-2000:]
    assert "LLM gateway overhead" in finished.stdout

    record = json.loads(out.read_text())
    measured = [(row["measure"], row["variant"]) for row in record["rows"]]
    assert measured == [("whole answer", v) for v in WHOLE] + [
        ("first token (stream)", v) for v in STREAMED
    ]
    for row in record["rows"]:
        assert row["calls"] == 40 and 0 < row["p50_ms"] <= row["p99_ms"]
        if row["variant"] == "direct":
            assert row["overhead_p50_ms"] == 0 and row["vs_direct"] == 1
        if row["variant"] == "proxy":
            assert row["vs_proxy"] == 1
    assert [t["target"] for t in record["targets"]] == [
        "gateway p50 overhead ≤ 1 ms",
        "gateway TTFT overhead ≤ 1 ms",
    ]
    text = table.read_text()
    for target in record["targets"]:
        verdict = "ok" if target["met"] else "MISS"
        assert f"| {target['target']} | {target['measured']} | {verdict} |" in text
