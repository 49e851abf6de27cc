"""Model cards: what a model is for, what it was trained on, how it scored, where it came from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shipyard.jsonable import Record

__all__ = ["ModelCard"]


@dataclass(frozen=True)
class ModelCard(Record):
    """The facts a reviewer needs about one model version, as Markdown and JSON."""

    name: str
    version: str
    purpose: str
    owner: str
    task: str
    flavour: str
    created_at: str
    data: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, float]
    lineage: dict[str, Any]
    inputs: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        """The card as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def to_markdown(self) -> str:
        """The card as Markdown, for people."""
        lines = [
            f"# Model card: {self.name} v{self.version}",
            "",
            f"**Purpose:** {self.purpose or '_not stated: set model.purpose in shipyard.yaml_'}",
            "",
            f"**Owner:** {self.owner or '_not stated: set model.owner_'}  ",
            f"**Task:** {self.task}  ",
            f"**Flavour:** {self.flavour}  ",
            f"**Trained:** {self.created_at}",
            "",
            "## Training data",
            "",
            *_table(self.data),
            "",
            "## Inputs",
            "",
        ]
        if self.inputs:
            lines += ["| column | type |", "|---|---|"]
            lines += [f"| {col['name']} | {col['type']} |" for col in self.inputs]
        else:
            lines.append("_no signature recorded_")
        lines += ["", "## Parameters", "", *_table(self.params), "", "## Metrics", ""]
        lines += _table({k: f"{v:.6g}" for k, v in sorted(self.metrics.items())})
        lines += ["", "## Lineage", "", *_table(self.lineage), ""]
        return "\n".join(lines)


def _table(values: dict[str, Any]) -> list[str]:
    if not values:
        return ["_none_"]
    rows = ["| | |", "|---|---|"]
    for key, value in values.items():
        text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
        escaped = text.replace("|", r"\|")
        rows.append(f"| {key} | {escaped} |")
    return rows
