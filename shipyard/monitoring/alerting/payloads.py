"""The JSON bodies each route kind posts: generic webhook, Slack, PagerDuty Events API v2.

Generic webhook: :meth:`Alert.to_dict`, one flat object (``schema: shipyard.alert/1``).
Slack: an incoming-webhook message, ``{"text": fallback, "blocks": [...]}`` in Block Kit,
within Slack's limits (header 150 characters, section text 3000, 10 fields).
PagerDuty: an Events API v2 event for ``/v2/enqueue``; ``trigger`` with the summary,
source, severity and ``custom_details`` (owner first), and ``resolve`` with the same
``dedup_key`` and nothing else, which is all PagerDuty reads on a resolve.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from shipyard.jsonable import plain
from shipyard.monitoring.alerting.signals import Alert

__all__ = ["pagerduty_event", "slack_message", "webhook_body"]

_SLACK_HEADER_MAX = 150
_SLACK_TEXT_MAX = 3000
_PAGERDUTY_SUMMARY_MAX = 1024
_EMOJI = {"info": ":large_blue_circle:", "warning": ":large_orange_circle:"}


def webhook_body(alert: Alert) -> dict[str, Any]:
    """The generic webhook body (see :meth:`Alert.to_dict` for its fields)."""
    return alert.to_dict()


def slack_message(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: plain ``text`` for notifications, and ``blocks``."""
    signal = alert.signal
    if alert.status == "resolved":
        emoji, title = ":white_check_mark:", "Resolved"
    else:
        emoji, title = _EMOJI.get(alert.severity, ":red_circle:"), alert.level.capitalize()
    fields = [
        ("Model", f"{signal.model} v{signal.version}"),
        ("Signal", signal.name),
        ("Level", alert.level if alert.status == "opened" else f"{alert.level} (resolved)"),
        ("Score", _number(signal.score)),
        ("Owner", alert.owner or "not set (model.owner in shipyard.yaml)"),
    ]
    if signal.bands is not None:
        bands = signal.bands
        fields.append(("Bands", f"{bands.inspect:g} / {bands.retrain:g} / {bands.pause:g}"))
    if alert.actions:
        fields.append(("Actions", "; ".join(alert.actions)))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _clip(f"{emoji} {title}: {signal.model} {signal.name}", _SLACK_HEADER_MAX),
                "emoji": True,
            },
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(_escape(alert.summary), _SLACK_TEXT_MAX)},
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{_escape(value)}"} for name, value in fields
            ],
        },
    ]
    if signal.evidence and alert.status == "opened":
        evidence = json.dumps(plain(signal.evidence), indent=1, sort_keys=True)
        text = "*Evidence*\n```" + _clip(_escape(evidence), _SLACK_TEXT_MAX - 20) + "```"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _escape(f"{alert.dedup_key} · {alert.time.isoformat()}"),
                }
            ],
        }
    )
    return {"text": f"{emoji} {_escape(alert.summary)}", "blocks": blocks}


def pagerduty_event(alert: Alert, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: ``trigger`` when opened, ``resolve`` when resolved."""
    if alert.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.dedup_key}
    signal = alert.signal
    details = {
        "owner": alert.owner,
        "model": signal.model,
        "version": signal.version,
        "signal": signal.name,
        "level": alert.level,
        "previous_level": alert.previous_level,
        "score": plain(signal.score),
        "bands": asdict(signal.bands) if signal.bands is not None else None,
        "evidence": plain(signal.evidence),
        "actions": list(alert.actions),
    }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "client": "Shipyard",
        "payload": {
            "summary": _clip(alert.summary, _PAGERDUTY_SUMMARY_MAX),
            "source": f"shipyard/{signal.model}",
            "severity": alert.severity,
            "timestamp": alert.time.isoformat(),
            "component": signal.name,
            "group": signal.model,
            "class": signal.name.split(":", 1)[0],
            "custom_details": details,
        },
    }


def _number(value: float | None) -> str:
    return "n/a" if plain(value) is None else f"{value:.4g}"


def _escape(text: str) -> str:
    # Slack reads &, < and > as markup (<!channel> would ping everyone).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
