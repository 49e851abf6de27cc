"""docs/evaluation.md: its Python examples run, and its example table shows the real rows."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

import shipyard.evaluation
from shipyard.evaluation import ScorecardResult

DOC = Path(__file__).resolve().parents[2] / "docs" / "evaluation.md"


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_docs_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = _blocks(text, "python")
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_evaluation"}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{DOC.name} example {number}", "exec"), namespace)

    assert (tmp_path / "reports" / "churn-candidate.html").is_file()
    result = namespace["result"]
    assert isinstance(result, ScorecardResult) and result.passed
    # The table shown in the docs has the real criteria, in the real order.
    console = Console(width=110, record=True, file=io.StringIO())
    console.print(result.render())
    shown = next(block for block in _blocks(text, "text") if "Scorecard PASSED" in block)
    # Cells, not lines: the latency row's values (and so column widths) vary run to run.
    assert _cells(shown) == _cells(console.export_text())
    assert len(_cells(shown)) == len(result.rows) - 1


def _cells(table: str) -> list[list[str]]:
    """Each criterion's cells, without the latency rows or wrapped detail lines."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines()]
    return [
        row
        for row in rows
        if len(row) == 6 and row[1] and not any(cell.endswith(" ms") for cell in row)
    ]


def test_public_names_exist() -> None:
    exported = shipyard.evaluation.__all__
    assert len(set(exported)) == len(exported)
    assert [name for name in exported if not hasattr(shipyard.evaluation, name)] == []
    for name in ("compute_metric", "load_for_evaluation", "measure", "compare", "write_report"):
        assert getattr(shipyard.evaluation, name).__doc__
