"""Gold prompt sets: reading JSONL and Parquet, the content digest, the calibration slice,
and bad input named by item and field. No provider is involved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shipyard.data import load_snapshot
from shipyard.errors import DataError
from shipyard.llm.gold import file_sha256, load_gold
from tests.support.llm_evals import EXAMPLE

ITEMS: list[dict[str, Any]] = [
    {
        "id": "card",
        "input": "I lost my card",
        "variables": {"facts": "Freeze it in the app."},
        "reference": "Freeze the card in the app.",
        "facts": ["Replacements take 5 days"],
        "rubric": ["correctness"],
        "answer": "Freeze it.",
        "human_score": 4,
    },
    {"id": "hours", "input": "When are you open?", "reference": "9 to 17 on weekdays."},
]


def _jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def test_the_example_gold_set_reads_with_its_calibration_slice() -> None:
    gold = load_gold(EXAMPLE / "gold.jsonl", ["correctness"])
    assert len(gold.items) == 12 and len(gold.calibration) == 8  # 8 carry human scores
    first = gold.items[0]
    assert first.id == "card-lost" and first.input == "I lost my debit card, what should I do?"
    assert first.rubric == ("correctness",) and first.guidance.startswith("States what")
    assert first.row() == {"facts": first.variables["facts"], "input": first.input}
    assert gold.file_sha256 == file_sha256(EXAMPLE / "gold.jsonl")


def test_items_carry_reference_facts_rubric_and_human_labels(tmp_path: Path) -> None:
    gold = load_gold(_jsonl(tmp_path / "g.jsonl", ITEMS), ["correctness", "helpfulness"])
    card, hours = gold.items
    assert card.expected == "Freeze the card in the app. Replacements take 5 days"
    assert card.rubric == ("correctness",) and hours.rubric == ("correctness", "helpfulness")
    assert card.calibrated and not hours.calibrated and gold.calibration == (card,)
    assert hours.row() == {"input": "When are you open?"} and hours.variables == {}


def test_the_digest_names_the_content_whatever_the_format(tmp_path: Path) -> None:
    jsonl = load_gold(_jsonl(tmp_path / "g.jsonl", ITEMS), ["correctness"])
    reordered = [{key: item[key] for key in reversed(list(item))} for item in ITEMS]
    same = load_gold(_jsonl(tmp_path / "same.jsonl", reordered), ["correctness"])
    parquet = tmp_path / "g.parquet"
    jsonl.frame().to_parquet(parquet)
    from_parquet = load_gold(parquet, ["correctness"])
    changed = [dict(ITEMS[0]), ITEMS[1]]
    changed[0]["reference"] = "Call the bank."
    other = load_gold(_jsonl(tmp_path / "other.jsonl", changed), ["correctness"])

    root = tmp_path / "artifacts"
    snap = jsonl.snapshot(root)
    assert same.snapshot(root).digest == snap.digest == from_parquet.snapshot(root).digest
    assert other.snapshot(root).digest != snap.digest
    stored = load_snapshot(snap.digest, root)
    assert stored.rows == 2 and list(stored.frame()["id"]) == ["card", "hours"]
    assert jsonl.file_sha256 != same.file_sha256  # the bytes differ, the content does not


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "item 1 is not JSON|line 1 is not JSON"),
        ('["a list"]', "line 1 is not a JSON object"),
        ('{"input": "hi", "reference": "x"}', "field 'id' is missing"),
        ('{"id": "a", "input": "hi"}', "field 'reference' is missing"),
        ('{"id": "a", "reference": "x", "human_score": 6}', "'human_score' must be a whole"),
        ('{"id": "a", "reference": "x", "human_score": "good"}', "'human_score' must be"),
        ('{"id": "a", "reference": "x", "variables": [1]}', "'variables' must be an object"),
        ('{"id": "a", "reference": "x", "facts": "one"}', "'facts' must be a list"),
        ('{"id": "a", "reference": "x", "expected": "y"}', "'expected' is not a gold field"),
    ],
)
def test_a_bad_item_is_named_by_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_gold(path)


def test_bad_files_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No gold set at"):
        load_gold(tmp_path / "missing.jsonl")
    (tmp_path / "g.csv").write_text("id\n1\n")
    with pytest.raises(DataError, match=r"unsupported file type '\.csv'"):
        load_gold(tmp_path / "g.csv")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="has no items"):
        load_gold(tmp_path / "empty.jsonl")
    twice = [ITEMS[1], ITEMS[1]]
    with pytest.raises(DataError, match="item 2: id 'hours' is used twice"):
        load_gold(_jsonl(tmp_path / "twice.jsonl", twice))
    frame = pd.DataFrame({"id": ["a"], "reference": ["x"], "human_score": [2.5]})
    frame.to_parquet(tmp_path / "g.parquet")
    with pytest.raises(DataError, match="item 1: field 'human_score'"):
        load_gold(tmp_path / "g.parquet")
