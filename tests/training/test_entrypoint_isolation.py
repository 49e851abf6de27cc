"""Two projects in one process each get their own training module."""

from __future__ import annotations

from pathlib import Path

from shipyard.training.entrypoint import load_entrypoint


def _project(folder: Path, answer: int) -> Path:
    folder.mkdir()
    (folder / "train.py").write_text(f"def train(ctx):\n    return {answer}\n")
    return folder


def test_a_second_project_does_not_get_the_first_ones_module(tmp_path: Path) -> None:
    first = load_entrypoint("train:train", _project(tmp_path / "a", 1))
    second = load_entrypoint("train:train", _project(tmp_path / "b", 2))
    assert first(None) == 1 and second(None) == 2
    assert load_entrypoint("train:train", tmp_path / "a")(None) == 1
