"""What the cost guard weighs: traffic since the champion took over, and a retrain's price.

    economics = retrain_economics(project, "churn", champion="3")
    economics.traffic          # predictions churn/3 answered since it became champion
    economics.retrain_cost     # last retrain's CPU/GPU seconds × today's price + fixed cost

Traffic is counted in the prediction log (the Parquet files: rows still in a worker's
journal are not yet there): the champion version's answered (``status = ok``), non-shadow
predictions since the champion alias last moved to it, or all of them when no move is
recorded. The retrain's compute is the newest registered version whose training cost was
measured (:func:`shipyard.monitoring.cost.training_cost`), priced at ``cost.cpu_hour`` and
``cost.gpu_hour`` now, so a price change applies to the next decision.

With ``ct.cost_kpi``, the loss per prediction is the KPI's own fall while this version
has been champion: the mean of its champion-arm buckets in the first half of that time
against the mean in the second half, weighted by rows (sign by ``higher_is_better``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from shipyard.jsonable import Record
from shipyard.logs.reader import sql_literal

if TYPE_CHECKING:
    from shipyard.monitoring.kpis import KpiPoint
    from shipyard.project import Project

__all__ = ["KpiDrop", "RetrainEconomics", "champion_since", "retrain_economics"]

_TRAFFIC = """
SELECT count(*) AS n FROM log
WHERE version = {version} AND role <> 'shadow' AND status = 'ok' {since}
"""


@dataclass(frozen=True)
class KpiDrop(Record):
    """A KPI's fall per prediction while the champion served (``drop`` > 0: worse)."""

    name: str
    baseline: float | None
    current: float | None
    drop: float | None
    note: str


@dataclass(frozen=True)
class RetrainEconomics(Record):
    """The numbers the cost guard weighs, each as measured (None: not measured)."""

    currency: str
    traffic: int | None
    since: datetime | None
    retrain_version: str | None
    cpu_seconds: float | None
    gpu_seconds: float | None
    compute_cost: float  # the retrain's compute at today's price; 0 when not measured
    fixed_cost: float
    kpi: KpiDrop | None = None

    @property
    def retrain_cost(self) -> float:
        """Compute at today's price plus the fixed cost of a retrain."""
        return self.compute_cost + self.fixed_cost


def champion_since(project: Project, model: str, champion: str) -> datetime | None:
    """When the champion alias last moved to ``champion`` (None: no move recorded)."""
    from shipyard.registry.aliases import CHAMPION, alias_moves

    moves = alias_moves(project.store, model, CHAMPION)
    return next((m.at for m in reversed(moves) if m.to_version == champion), None)


def retrain_economics(project: Project, model: str, champion: str) -> RetrainEconomics:
    """Traffic since ``champion`` took over, and what the last retrain would cost now."""
    from shipyard.monitoring.cost import training_cost

    config = project.config
    since = champion_since(project, model, champion)
    measured = [v for v in training_cost(project, model).versions if v.cpu_seconds is not None]
    last = measured[-1] if measured else None
    cpu = last.cpu_seconds if last else None
    gpu = last.gpu_seconds if last else None
    price = config.cost
    compute = ((cpu or 0.0) * price.cpu_hour + (gpu or 0.0) * price.gpu_hour) / 3600
    cost_kpi = config.ct.cost_kpi
    return RetrainEconomics(
        currency=price.currency,
        traffic=_traffic(project, model, champion, since),
        since=since,
        retrain_version=last.version if last else None,
        cpu_seconds=cpu,
        gpu_seconds=gpu,
        compute_cost=compute,
        fixed_cost=config.ct.retrain_fixed_cost,
        kpi=None if cost_kpi is None else kpi_drop(project, model, cost_kpi, since),
    )


def kpi_drop(project: Project, model: str, name: str, since: datetime | None) -> KpiDrop:
    """KPI ``name``'s fall on the champion arm since ``since``: first half against second."""
    from shipyard.monitoring.kpis import evaluate_kpis

    found = next((k for k in evaluate_kpis(project, model, since=since) if k.name == name), None)
    if found is None:
        return KpiDrop(name, None, None, None, f"KPI {name!r} does not apply to {model}")
    if found.error:
        return KpiDrop(name, None, None, None, f"KPI {name!r} failed: {found.error}")
    arm = found.per_arm.get("champion") or found.per_arm.get("live") or []
    points = [p for p in arm if p.value is not None and p.n > 0]
    if len(points) < 2:
        return KpiDrop(
            name, None, None, None, f"KPI {name!r} has {len(points)} bucket(s) since the "
            "champion took over; two are needed to see a change",
        )  # fmt: skip
    half = len(points) // 2
    baseline, current = _mean(points[:half]), _mean(points[half:])
    drop = baseline - current if found.higher_is_better else current - baseline
    return KpiDrop(
        name,
        baseline,
        current,
        drop,
        f"KPI {name!r} per prediction: {baseline:.4g} in the first {half} bucket(s), "
        f"{current:.4g} in the last {len(points) - half}",
    )


def _mean(points: list[KpiPoint]) -> float:
    rows = sum(p.n for p in points)
    return sum((p.value or 0.0) * p.n for p in points) / rows


def _traffic(project: Project, model: str, version: str, since: datetime | None) -> int:
    """The version's answered live predictions in the Parquet log since ``since``."""
    from shipyard.logs.reader import query_log
    from shipyard.logs.root import project_log_root

    quoted = sql_literal(version)
    after = "" if since is None else f"AND time >= TIMESTAMPTZ '{since.isoformat()}'"
    table = query_log(
        project_log_root(project.config),
        model,
        since=since,
        sql=_TRAFFIC.format(version=quoted, since=after),
    )
    if table.num_rows == 0 or "n" not in table.column_names:
        return 0  # no log file yet: nothing was served
    return int(table.column("n")[0].as_py() or 0)
