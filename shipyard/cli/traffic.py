"""``shipyard traffic``: how live traffic is split between a model's versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["app"]

app = typer.Typer(
    help="Traffic between champion, challengers and shadow (servers follow within 0.5 s).",
    no_args_is_help=True,
)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonOpt = False,
) -> None:
    """Show the traffic split servers of NAME follow."""
    from rich.table import Table

    from shipyard.registry.aliases import CHAMPION
    from shipyard.registry.pointers import trusted_version
    from shipyard.store.traffic import read_traffic  # not via shipyard.delivery: no SciPy

    project = acting(ctx, Scope.MODELS_READ, name)
    generation, settings = read_traffic(project.store, name)
    champion = trusted_version(project.store, name, CHAMPION)
    share = 1.0 - sum(settings.challengers.values())
    if as_json:
        print_json(
            {
                "model": name,
                "generation": generation,
                "champion": {"version": champion, "weight": share},
                **settings.to_dict(),
            }
        )
        return
    view = Table("version", "role", "traffic", title=f"{esc(name)} — generation {generation}")
    view.add_row(champion or "(no champion)", "champion", f"{share:.0%}")
    for version, weight in sorted(settings.challengers.items()):
        view.add_row(version, "challenger", f"{weight:.0%}")
    if settings.shadow is not None:
        view.add_row(settings.shadow, "shadow", f"copy of {settings.shadow_share:.0%}")
    console.print(view, markup=False)  # every cell is data


@app.command("set")
def set_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    challenger: Annotated[
        list[str] | None,
        typer.Option(
            help="VERSION=SHARE, e.g. 3=0.1 or 3=10%; repeat for several. The champion "
            "gets the rest."
        ),
    ] = None,
    shadow: Annotated[
        str | None, typer.Option(help="Version that sees copies of live requests.")
    ] = None,
    shadow_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of requests copied to the shadow.")
    ] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Replace NAME's traffic settings (challengers and shadow) and tell its servers."""
    from shipyard.registry import get_version
    from shipyard.registry.refs import ModelRef
    from shipyard.store.traffic import TrafficSettings, write_traffic

    project = acting(ctx, Scope.MODELS_DEPLOY, name)
    _refuse_during_experiment(project.store, name)
    challengers = dict(_share(item) for item in challenger or [])
    client = project.client
    for version in [*challengers, *([shadow] if shadow else [])]:
        get_version(client, ModelRef(name, version=version))  # NotFoundError names it
    settings = TrafficSettings(
        challengers=challengers,
        shadow=shadow,
        shadow_share=shadow_share,
    )
    generation = write_traffic(project.store, name, settings)
    if as_json:
        print_json({"model": name, "generation": generation, **settings.to_dict()})
        return
    console.print(f"Traffic of {esc(name)} set (generation {esc(generation)}).")


@app.command("clear")
def clear_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonOpt = False,
) -> None:
    """Send all of NAME's traffic to its champion again, with no shadow."""
    from shipyard.store.traffic import TrafficSettings, write_traffic

    settings = TrafficSettings()
    store = acting(ctx, Scope.MODELS_DEPLOY, name).store
    _refuse_during_experiment(store, name)
    generation = write_traffic(store, name, settings)
    if as_json:
        print_json({"model": name, "generation": generation, **settings.to_dict()})
        return
    console.print(
        f"All traffic of {esc(name)} goes to its champion (generation {esc(generation)})."
    )


def _refuse_during_experiment(store: Store, name: str) -> None:
    """An A/B experiment owns the split until it ends: changing it would void the test."""
    from shipyard.store.experiments import active_experiment

    experiment = active_experiment(store, name)
    if experiment is not None:
        raise ConfigError(
            f"{name}'s traffic is split by the A/B experiment {experiment.name} "
            f"({experiment.state}).",
            hint=f"Let it decide, or stop it first: `shipyard experiment stop {name}`.",
        )


def _share(item: str) -> tuple[str, float]:
    version, _, text = item.partition("=")
    try:
        weight = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        weight = float("nan")
    if not version.strip() or weight != weight:
        raise ConfigError(
            f"--challenger {item!r} is not VERSION=SHARE.",
            hint="Write e.g. --challenger 3=0.1 or --challenger 3=10%.",
        )
    return version.strip(), weight
