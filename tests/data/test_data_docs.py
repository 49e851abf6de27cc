"""The Python examples in docs/data.md run, in order, and the table it shows is the real one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from shipyard.data import ValidationReport

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_docs_examples_run_and_show_the_real_failure_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = _blocks(text, "python")
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_data"}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{DOC.name} example {number}", "exec"), namespace)

    report = namespace["report"]
    assert isinstance(report, ValidationReport)
    console = Console(width=200, record=True)
    console.print(report.render())
    rendered = "\n".join(line.rstrip() for line in console.export_text().splitlines())
    shown = next(block for block in _blocks(text, "text") if block.startswith("Validation"))
    assert shown.strip() == rendered.strip()
