"""The on-call runbook of a model, written from its configuration (Markdown).

    text = write_runbook(project, "churn")

It says who owns the model and where its alerts go (secrets masked: a route's routing
key and header values, a Slack webhook's path and a password in a URL print as ``***``),
what each alert means (the monitor's bands and the shipped Prometheus rules in
``deploy/prometheus/alerts.yaml``), and the exact commands to inspect, pause, roll back
and verify the audit log. Regenerate it when the configuration changes; do not edit it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.access import Scope
from shipyard.config.monitoring import AlertRoute
from shipyard.config.secrets import hidden
from shipyard.monitoring.results import KL_BANDS, PSI_BANDS
from shipyard.operations.history import require_model
from shipyard.registry.pointers import trusted_version

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["find_rules", "shown_route", "write_runbook"]

RULES = Path("deploy") / "prometheus" / "alerts.yaml"

_LEVELS = (
    ("inspect", "an alert asks a person to look; nothing else happens"),
    (
        "retrain",
        "the alert also records `retrain_requested`; continuous training retrains when "
        "ct.enabled and ct.on_drift are set",
    ),
    ("pause", "the alert also applies monitoring.pause_action"),
)


def write_runbook(project: Project, model: str, *, rules: Path | None = None) -> str:
    """The runbook of ``model`` as Markdown (needs ``models:read`` on it).

    ``rules`` is the Prometheus rules file to describe (default: the project's
    ``deploy/prometheus/alerts.yaml``, else the one shipped in Shipyard's checkout).
    """
    project.authorize(Scope.MODELS_READ, model)
    require_model(project, model)
    config = project.config
    champion = trusted_version(project.store, model, "champion")
    found = rules or find_rules(Path(config.root))
    parts = [
        f"# On-call runbook: {_md(model)}",
        "",
        f"Written by `shipyard runbook {model}` from {_md(config.root)}/shipyard.yaml on "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}. Regenerate it when the "
        "configuration changes rather than editing it.",
        "",
        *_owner(config, model),
        *_state(model, champion),
        *_first_steps(model),
        *_monitor_rules(config, model),
        *_prometheus_rules(found, model),
        *_audit(model),
    ]
    return "\n".join(parts).rstrip() + "\n"


def shown_route(route: AlertRoute) -> dict[str, Any]:
    """An alert route as the runbook prints it, its secrets hidden as ``config show`` does."""
    shown: dict[str, Any] = hidden(route.model_dump(mode="json"))
    return shown


def find_rules(root: Path) -> Path | None:
    """The Prometheus rules file: the project's own copy, else Shipyard's checkout's."""
    for base in (root, Path(__file__).resolve().parents[2]):
        if (base / RULES).is_file():
            return base / RULES
    return None


def _md(value: object) -> str:
    """``value`` safe inside Markdown text and table cells."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _owner(config: Any, model: str) -> list[str]:
    monitoring = config.monitoring
    lines = [
        "## Owner and escalation",
        "",
        f"- Owner: {_md(config.model.owner or 'not set (model.owner)')}",
        f"- Team: {_md(config.model.team or 'not set (model.team)')}",
    ]
    if not monitoring.routes:
        lines += ["- Alert routes: none (monitoring.routes): alerts are only in the event log."]
    else:
        lines += ["- Alert routes (monitoring.routes), each paged from its lowest level up:", ""]
        lines += ["| # | kind | from level | target | routing key | headers |", *_rule_line(6)]
        for index, route in enumerate(monitoring.routes, 1):
            shown = shown_route(route)
            headers = ", ".join(f"{k}: {v}" for k, v in shown["headers"].items()) or "-"
            lines.append(
                f"| {index} | {shown['kind']} | {shown['min_level']} | {_md(shown['url'])} | "
                f"{_md(shown['routing_key'] or '-')} | {_md(headers)} |"
            )
    lines += [
        "",
        "Escalation: the routes above page the on-call; if nobody answers, the owner "
        f"({_md(config.model.owner or 'model.owner')}), then the team "
        f"({_md(config.model.team or 'model.team')}).",
        "",
    ]
    if monitoring.pause_action == "fallback":
        lines += [
            f"A pause-level breach sends all of {_md(model)}'s traffic to version "
            f"{monitoring.fallback_version} (monitoring.pause_action: fallback).",
            "",
        ]
    return lines


def _state(model: str, champion: str | None) -> list[str]:
    return [
        "## Where it stands",
        "",
        f"- Champion when this was written: {champion or 'none'}",
        f"- Now: `shipyard models show {model}@champion`, `shipyard models history {model}` "
        f"and `shipyard rollout status {model}`",
        "",
    ]


def _first_steps(model: str) -> list[str]:
    return [
        "## Commands",
        "",
        "Inspect:",
        "",
        "```sh",
        f"shipyard rollout status {model}          # a roll-out in progress, its guardrails",
        f"shipyard traffic show {model}            # who answers: champion, challengers, shadow",
        f"shipyard monitor run {model} --no-alerts # drift and performance now, without paging",
        f"shipyard events --subject alert:{model}  # the alerts, opened and resolved",
        f"shipyard audit log --subject model:{model} --limit 20   # who changed what, and why",
        "```",
        "",
        "Pause a roll-out (traffic stays as it is) or stop it (all traffic to the champion):",
        "",
        "```sh",
        f'shipyard rollout pause {model} --reason "<why>"',
        f'shipyard rollout abort {model} --reason "<why>"',
        "```",
        "",
        "Roll back the champion (servers follow within a second):",
        "",
        "```sh",
        f'shipyard rollback {model} --reason "<why>"            # to the previous champion',
        f'shipyard rollback {model} --to <VERSION> --reason "<why>"',
        f"shipyard traffic clear {model}          # also drop challengers and shadow",
        "```",
        "",
    ]


def _monitor_rules(config: Any, model: str) -> list[str]:
    lines = [
        "## Alert rules: Shipyard's monitor",
        "",
        "Each signal is scored on a window of the prediction log and placed in a band:",
        "",
        *(f"- **{level}**: {meaning}." for level, meaning in _LEVELS),
        "",
        "| signal | inspect | retrain | pause |",
        *_rule_line(4),
        _band_row("categorical feature (PSI)", PSI_BANDS),
        _band_row("continuous feature (KL)", KL_BANDS),
        "| prediction drift (Wasserstein) | band | 1.5 × band | 3 × band |",
    ]
    bands = config.monitoring.bands
    if isinstance(bands, dict):
        lines += [
            _band_row(f"feature {_md(name)} (monitoring.bands)", b) for name, b in bands.items()
        ]
    elif bands:
        lines += [f"| per-feature bands in {_md(bands)} | | | |"]
    lines += [
        "",
        f"An alert's subject is `alert:{model}/<signal>`; it resolves when the signal is back "
        f"within its bands. Look at the report of the run that opened it: "
        f"`shipyard monitor run {model} --no-alerts` writes a fresh one.",
        "",
    ]
    return lines


def _band_row(name: str, bands: Any) -> str:
    return f"| {name} | {bands.inspect:g} | {bands.retrain:g} | {bands.pause:g} |"


def _prometheus_rules(path: Path | None, model: str) -> list[str]:
    lines = ["## Alert rules: Prometheus", ""]
    if path is None:
        return [
            *lines,
            "No rules file found (deploy/prometheus/alerts.yaml in the project or in "
            "Shipyard's source): copy it from Shipyard's repository.",
            "",
        ]
    import yaml

    groups = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", [])
    lines += [f"From {_md(path)}. Every rule carries the model's owner and team labels.", ""]
    for group in groups:
        for rule in group.get("rules", []):
            if "alert" not in rule:
                continue
            labels, notes = rule.get("labels", {}), rule.get("annotations", {})
            level = labels.get("level") or labels.get("signal", "")
            lines += [
                f"### {_md(rule['alert'])} ({_md(labels.get('severity', '?'))}, {_md(level)})",
                "",
                f"{_md(notes.get('description', ''))} Fires after {_md(rule.get('for', '0m'))}.",
                "",
                f"Inspect: `shipyard rollout status {model}`, `shipyard monitor run {model} "
                f"--no-alerts`. {_action(labels)}",
                "",
            ]
    return lines


def _action(labels: dict[str, Any]) -> str:
    level, signal = labels.get("level"), labels.get("signal")
    if level == "pause" or labels.get("severity") == "critical":
        return "Act: pause or abort a roll-out in progress, else roll back (commands above)."
    if level == "retrain":
        return "Act: retrain (continuous training may already have started a cycle)."
    if signal in ("latency", "errors", "degraded"):
        return (
            "Act: look at the server's /v2/health/ready and its log; roll back if a new "
            "version caused it."
        )
    return "Act: look; nothing needs to change unless it persists."


def _audit(model: str) -> list[str]:
    return [
        "## After the incident: verify the audit log",
        "",
        "```sh",
        "shipyard audit verify                   # every leaf, the tree, the checkpoints",
        f"shipyard audit log --subject model:{model} --since 6h",
        f"shipyard incident {model} --since 6h --out postmortem.md   # the postmortem draft",
        "```",
        "",
    ]


def _rule_line(columns: int) -> list[str]:
    return ["|" + " --- |" * columns]
