"""The peer comparison's tables: every server at c=1/16/64 against the raw floor, and the
issue's targets as ratios within the one run.

``results`` are ``benchmarks/serving.py``'s ``Result`` rows (model, variant, connections,
rps, p99_ms); only attributes are read, so this module needs nothing from the script.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table

CONCURRENCIES = (1, 16, 64)
FLOOR = "floor"
# Batching peers, for "batched at c=64 ≥ 3 × the best peer's batched figure".
BATCHED_PEERS = ("mlserver-batch", "litserve-batch", "bentoml-batch")
ORDER = (
    "floor",
    "shipyard",
    "shipyard-v2",
    "shipyard-nolog",
    "shipyard-batch",
    "kserve-v1",
    "kserve-v2",
    "mlserver",
    "mlserver-batch",
    "litserve",
    "litserve-batch",
    "bentoml",
    "bentoml-batch",
    "mlflow",
    "floor-again",
)


def _index(results: Iterable[Any], model: str) -> dict[tuple[str, int], Any]:
    return {
        (r.variant, r.connections): r
        for r in results
        if r.model == model and getattr(r, "round", None) is None
    }


def floor_rps(runs: dict[tuple[str, int], Any], c: int) -> float | None:
    """The floor's req/s at ``c``: the mean of its first and last measurement, when both
    ran (the floor is measured first and again last)."""
    found = [float(runs[(key, c)].rps) for key in (FLOOR, FLOOR + "-again") if (key, c) in runs]
    return sum(found) / len(found) if found else None


def floor_cpu(runs: dict[tuple[str, int], Any], c: int) -> float | None:
    """The floor's server CPU ms per request at ``c``, averaged the same way."""
    found = [
        float(runs[(key, c)].server_cpu_ms)
        for key in (FLOOR, FLOOR + "-again")
        if (key, c) in runs and runs[(key, c)].server_cpu_ms is not None
    ]
    return sum(found) / len(found) if found else None


def _rows(results: Iterable[Any], failures: dict[str, str], model: str) -> list[str]:
    seen = {variant for variant, _ in _index(results, model)}
    keys = [k for k in ORDER if k in seen or k in failures]
    keys += sorted((seen | set(failures)) - set(keys))
    return keys


def comparison(
    results: list[Any], failures: dict[str, str], labels: dict[str, str], model: str
) -> list[list[str]]:
    """Header and rows: server, req/s and p99 ms at each concurrency, ratios vs the floor."""
    runs = _index(results, model)
    header = ["server"]
    header += [f"c={c} {what}" for c in CONCURRENCIES for what in ("req/s", "p99 ms")]
    header += [f"÷ floor c={c}" for c in CONCURRENCIES]
    header.append("CPU ms/req c=16")
    rows = [header]
    for key in _rows(results, failures, model):
        if key in failures and not any((key, c) in runs for c in CONCURRENCIES):
            rows.append([labels.get(key, key), failures[key], *[""] * (len(header) - 2)])
            continue
        cells = [labels.get(key, key)]
        for c in CONCURRENCIES:
            run = runs.get((key, c))
            cells += ["—", "—"] if run is None else [f"{run.rps:,.0f}", f"{run.p99_ms:.2f}"]
        for c in CONCURRENCIES:
            run, floor = runs.get((key, c)), floor_rps(runs, c)
            cells.append("—" if run is None or not floor else f"{run.rps / floor:.2f}")
        cpu = getattr(runs.get((key, 16)), "server_cpu_ms", None)
        cells.append("—" if cpu is None else f"{cpu:.2f}")
        rows.append(cells)
    return rows


def peer_table(
    results: list[Any], failures: dict[str, str], labels: dict[str, str], model: str
) -> Table:
    """The comparison as a Rich table (÷ floor: over the mean of the floor's two runs)."""
    rows = comparison(results, failures, labels, model)
    table = Table(title=f"{model}: every server, single-row requests, one process each")
    for index, header in enumerate(rows[0]):
        table.add_column(header, justify="left" if index == 0 else "right")
    for row in rows[1:]:
        table.add_row(*row)
    return table


def markdown(rows: list[list[str]]) -> str:
    """The comparison as a Markdown table."""
    lines = ["| " + " | ".join(rows[0]) + " |"]
    lines.append("|---|" + "---:|" * (len(rows[0]) - 1))
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines) + "\n"


def targets(results: list[Any], model: str) -> list[tuple[str, float | None, str, bool | None]]:
    """Each target: what, the measured ratio (None: not measured), the bound, whether met."""
    runs = _index(results, model)

    def rps(key: str, c: int) -> float | None:
        run = runs.get((key, c))
        return None if run is None else float(run.rps)

    def p99(key: str, c: int) -> float | None:
        run = runs.get((key, c))
        return None if run is None else float(run.p99_ms)

    def cpu(key: str, c: int) -> float | None:
        """Server CPU ms per request: steadier than req/s when other work shares the cores."""
        value = getattr(runs.get((key, c)), "server_cpu_ms", None)
        return None if value is None else float(value)

    def ratio(top: float | None, bottom: float | None) -> float | None:
        return None if top is None or not bottom else top / bottom

    checks: list[tuple[str, float | None, float, bool]] = []  # (what, value, bound, at least)
    for c in (1, 16):
        checks.append(
            (
                f"Shipyard V1 ÷ floor, req/s c={c}",
                ratio(rps("shipyard", c), floor_rps(runs, c)),
                0.90,
                True,
            )
        )
    for c in (1, 16):
        checks.append(
            (
                f"Shipyard V2 JSON ÷ floor, req/s c={c}",
                ratio(rps("shipyard-v2", c), floor_rps(runs, c)),
                0.85,
                True,
            )
        )
    for c in (1, 16):
        checks.append(
            (
                f"logging on ÷ off, req/s c={c}",
                ratio(rps("shipyard", c), rps("shipyard-nolog", c)),
                0.97,
                True,
            )
        )
    # The same, by CPU per request (the floor's over Shipyard's: higher is better).
    for key, name, bound in (("shipyard", "V1", 0.90), ("shipyard-v2", "V2 JSON", 0.85)):
        checks.append(
            (
                f"Shipyard {name} ÷ floor, by server CPU per request c=16",
                ratio(floor_cpu(runs, 16), cpu(key, 16)),
                bound,
                True,
            )
        )
    checks.append(
        (
            "logging on ÷ off, by server CPU per request c=16",
            ratio(cpu("shipyard-nolog", 16), cpu("shipyard", 16)),
            0.97,
            True,
        )
    )
    checks.append(
        (
            "logging on ÷ off, p99 c=1",
            ratio(p99("shipyard", 1), p99("shipyard-nolog", 1)),
            1.2,
            False,
        )
    )
    checks.append(
        (
            "batching on ÷ off, req/s c=1",
            ratio(rps("shipyard-batch", 1), rps("shipyard", 1)),
            0.90,
            True,
        )
    )
    best = max(
        ((rps(key, 64), key) for key in BATCHED_PEERS if rps(key, 64) is not None),
        default=(None, ""),
    )
    checks.append(
        (
            f"Shipyard batched ÷ best batched peer ({best[1] or 'none measured'}), req/s c=64",
            ratio(rps("shipyard-batch", 64), best[0]),
            3.0,
            True,
        )
    )
    out: list[tuple[str, float | None, str, bool | None]] = []
    for what, value, bound, at_least in checks:
        met = None if value is None else (value >= bound if at_least else value <= bound)
        out.append((what, value, ("≥ " if at_least else "≤ ") + f"{bound:.2f}", met))
    return out


def target_table(results: list[Any], model: str) -> Table:
    """The targets as a Rich table."""
    table = Table(title=f"{model}: targets (ratios within this run)")
    for header in ("target", "measured", "bound", "verdict"):
        table.add_column(header, justify="left" if header == "target" else "right")
    for what, value, bound, met in targets(results, model):
        verdict = "not measured" if met is None else "[green]met[/]" if met else "[red]missed[/]"
        table.add_row(what, "n/a" if value is None else f"{value:.2f}", bound, verdict)
    return table


def targets_markdown(results: list[Any], model: str) -> str:
    """The targets as a Markdown table."""
    lines = ["| target | measured | bound | verdict |", "|---|---:|---:|---|"]
    for what, value, bound, met in targets(results, model):
        verdict = "not measured" if met is None else "met" if met else "**missed**"
        shown = "n/a" if value is None else f"{value:.2f}"
        lines.append(f"| {what} | {shown} | {bound} | {verdict} |")
    return "\n".join(lines) + "\n"
