"""What ``shipyard demo`` measured, and the table it ends with."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["DemoSummary", "is_rollback_page", "page_facts", "page_summary", "print_summary"]


@dataclass
class DemoSummary:
    """What the demo measured; ``shipyard demo --json`` prints it."""

    workspace: str
    switch_request: int = 0
    detection_requests: int | None = None  # requests after the switch when drift was flagged
    detection_seconds: float | None = None
    false_alarms_before_switch: int = 0
    drift_signal: str | None = None
    cycle: dict[str, Any] | None = None
    new_champion: str | None = None
    switch_to_champion_seconds: float | None = None
    accuracy_old_after_switch: float | None = None
    accuracy_new_champion: float | None = None
    bad_candidate: str | None = None
    bad_rollback_step: str | None = None
    bad_rollback_reason: str | None = None
    bad_requests: int = 0
    bad_share_during_rollout: float | None = None
    bad_share_of_all: float | None = None
    page: dict[str, Any] | None = None
    requests: int = 0
    failed_requests: int = 0
    elapsed_seconds: float = 0.0
    dashboard_url: str | None = None  # where `shipyard ui` in the workspace shows the story
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Both acts ended as they should, with no failed request."""
        return (
            self.new_champion is not None
            and self.bad_rollback_step is not None
            and self.failed_requests == 0
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {**asdict(self), "ok": self.ok}


def print_summary(summary: DemoSummary, out: Console) -> None:
    out.rule("[bold]What happened")
    table = Table("step", "evidence", show_lines=False)
    table.add_row("concept switch", f"at request {summary.switch_request:,} (policy 0 → 2)")
    if summary.detection_requests is not None:
        table.add_row(
            "drift detected",
            f"{summary.drift_signal}: {summary.detection_requests:,} requests "
            f"({summary.detection_seconds:.1f} s) after the switch",
        )
    else:
        table.add_row("drift detected", "[red]no[/]")
    if summary.false_alarms_before_switch:
        table.add_row("false alarms", f"{summary.false_alarms_before_switch} before the switch")
    if summary.cycle:
        from shipyard.pipelines.gates import gate_summary

        for gate in summary.cycle["gates"]:
            mark = (
                "✓" if gate["status"] == "passed" else ("✗" if gate["status"] == "failed" else "–")
            )
            table.add_row(f"  {mark} {gate['gate']}", gate_summary(gate))
    if summary.new_champion:
        table.add_row(
            "new champion",
            f"loans/{summary.new_champion}, "
            f"{summary.switch_to_champion_seconds:.0f} s after the switch",
        )
    if summary.accuracy_old_after_switch is not None:
        new = summary.accuracy_new_champion
        table.add_row(
            "live accuracy after the switch",
            f"old champion {summary.accuracy_old_after_switch:.3f}; "
            + (f"new champion {new:.3f}" if new is not None else "new champion —"),
        )
    if summary.bad_candidate:
        table.add_row(
            "worse candidate",
            f"loans/{summary.bad_candidate} rolled back at {summary.bad_rollback_step or '—'}: "
            f"{summary.bad_rollback_reason or '—'}",
        )
        share = summary.bad_share_during_rollout
        table.add_row(
            "its traffic",
            f"{summary.bad_requests} requests"
            + (f", {share:.1%} of traffic while its roll-out lasted" if share is not None else "")
            + (
                f", {summary.bad_share_of_all:.2%} of all"
                if summary.bad_share_of_all is not None
                else ""
            ),
        )
        table.add_row(
            "owner paged",
            page_summary(summary.page) if summary.page else "[red]no page received[/]",
        )
    table.add_row("requests", f"{summary.requests:,}, {summary.failed_requests} failed")
    table.add_row("time", f"{summary.elapsed_seconds:.0f} s")
    out.print(table)
    for note in summary.notes:
        out.print(f"[yellow]note:[/] {note}")
    where = summary.workspace
    out.print(
        "\n[bold green]Demo finished.[/]"
        if summary.ok
        else "\n[bold red]Demo did not finish both acts.[/]",
        f"Explore the workspace: cd {where} && shipyard models lineage loans/"
        f"{summary.new_champion or 1} ; shipyard models history loans ; shipyard ct status loans ;"
        " shipyard monitor run loans ; shipyard events",
    )
    if summary.dashboard_url:
        out.print(
            "See the whole story (drift, retrain, roll-outs, the rollback, the page) on the "
            f"dashboard: cd {where} && shipyard ui, then open {summary.dashboard_url}",
            soft_wrap=True,
        )


def is_rollback_page(body: Any, version: str) -> bool:
    """The webhook body of ``version``'s rollback alert (signal ``rollout:<id>``)."""
    return (
        isinstance(body, dict)
        and str(body.get("signal", "")).startswith("rollout:")
        and str(body.get("version")) == version
    )


def page_facts(body: Any) -> dict[str, Any]:
    return {"summary": page_summary(body), "body": body}


def page_summary(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("summary", "text"):
            if isinstance(body.get(key), str):
                return body[key]
        if "page" in body and isinstance(body["page"], dict):
            return page_summary(body["page"])
        if isinstance(body.get("body"), dict):
            return page_summary(body["body"])
    return json.dumps(body, default=str)[:160]
