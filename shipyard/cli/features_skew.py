"""``shipyard features skew``: training-serving skew of a model served with features."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.cli.state import CliState

__all__ = ["register"]

_COLOURS = {"ok": "green", "inspect": "yellow", "retrain": "dark_orange", "pause": "red"}


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``features`` group."""
    app.command("skew")(skew_cmd)


def skew_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        str | None, typer.Option(help="Version to check (default: champion).")
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="last:N, since:6h or range:START/END [monitoring.window]."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Value skew, distribution skew and freshness of NAME's served features, with examples.

    Value skew recomputes up to features.skew.sample logged requests offline as served
    and compares them with what was served; nothing is stored and no alert is sent
    (`shipyard monitor run` does both).
    """
    from shipyard.errors import ConfigError
    from shipyard.monitoring.feature_skew import skew_report

    state: CliState = ctx.obj
    report = skew_report(state.project(), name, version=version, window=window)
    if report is None:
        raise ConfigError(
            f"{name} {'version ' + version if version else '(champion)'} was not trained on "
            "feature views, so it has no training-serving skew to check.",
            hint="Train it with ctx.training_set(...) so the version records its features.",
        )
    if as_json:
        print_json(report)
        return
    _print(report)


def _level(level: str) -> str:
    return f"[{_COLOURS.get(level, 'white')}]{esc(level.upper())}[/]"


def _print(report: dict[str, Any]) -> None:
    value, freshness, distribution = report["value"], report["freshness"], report["distribution"]
    console.print(
        f"{esc(report['model'])}/{esc(report['version'])}, {esc(report['window'])} "
        f"({report['rows']} requests): skew {_level(report['level'])}"
    )
    console.print(
        f"\nValue skew {_level(value['level'])}: {value['sampled']} requests recomputed "
        f"offline as served (tolerance {value['tolerance']:g})"
    )
    for item in value["features"]:
        rate = "n/a" if item["rate"] is None else f"{item['rate']:.1%}"
        line = f"  {esc(item['feature'])}: {item['mismatched']}/{item['compared']} ({rate})"
        console.print(f"{line} {_level(item['level'])}" + _note(item))
        for example in item["examples"]:
            console.print(
                f"    {esc(str(example['entity']))} at {esc(example['time'])}: served "
                f"{esc(str(example['served']))}, offline {esc(str(example['expected']))}"
            )
    console.print(f"\nDistribution skew {_level(distribution['level'])}" + _note(distribution))
    for item in distribution["features"]:
        score = "n/a" if item["score"] is None else f"{item['score']:.4g}"
        console.print(
            f"  {esc(item['feature'])}: {esc(item['method'])} {score} {_level(item['level'])}"
        )
    console.print(f"\nFreshness {_level(freshness['level'])}")
    for view in freshness["views"]:
        sla = "no SLA" if view["sla_seconds"] is None else f"SLA {view['sla_seconds']:g}s"
        share = "n/a" if view["stale_share"] is None else f"{view['stale_share']:.1%}"
        ages = "n/a"
        if view["p50_age_seconds"] is not None:
            ages = f"{view['p50_age_seconds']:.0f}s / {view['p95_age_seconds']:.0f}s"
        console.print(
            f"  {esc(view['view'])}: {sla}, stale {share}, age p50/p95 {ages}, "
            f"{view['missing']} served missing {_level(view['level'])}" + _note(view)
        )
        store = (freshness.get("store") or {}).get(view["view"])
        if store:
            age = store.get("age_seconds")
            console.print(
                f"    online store now: last materialised {esc(str(store.get('last_run_at')))}"
                + ("" if age is None else f", newest row {age:.0f}s old")
            )


def _note(item: dict[str, Any]) -> str:
    return f" [dim]({esc(str(item['note']))})[/]" if item.get("note") else ""
