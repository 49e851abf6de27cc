"""Alerting: breaches become alerts to the model's owner, retrain requests and pauses.

    alerter = Alerter(config, store)                   # routes from monitoring.routes
    outcome = alerter.process([
        Signal("churn", "3", "feature:age", level="retrain", score=0.31,
               bands=PSI_BANDS, evidence={"method": "psi", "window": "last:5000"}),
    ])
    outcome.opened, outcome.retrain_requested, outcome.failed

Routes post JSON over HTTP(S): a generic webhook (:meth:`Alert.to_dict`), a Slack
incoming webhook, or PagerDuty Events API v2, each receiving levels from its
``min_level`` up. Alert state, retrain requests and pauses are events in the control
plane (``alert.opened``, ``alert.resolved``, ``alert.delivered``,
``alert.delivery_failed``, ``retrain_requested``, ``monitor.paused``).
"""

from shipyard.levels import ALERT_LEVELS, AlertLevel
from shipyard.monitoring.alerting.alerter import (
    ALERT_DELIVERED,
    ALERT_DELIVERY_FAILED,
    ALERT_OPENED,
    ALERT_RESOLVED,
    MONITOR_PAUSED,
    RETRAIN_REQUESTED,
    Alerter,
    AlertOutcome,
    Delivery,
    OpenAlert,
    send_with_retries,
)
from shipyard.monitoring.alerting.payloads import pagerduty_event, slack_message, webhook_body
from shipyard.monitoring.alerting.routes import (
    DeliveryError,
    HTTPRoute,
    PagerDutyRoute,
    Route,
    SlackRoute,
    WebhookRoute,
    routes_from_config,
)
from shipyard.monitoring.alerting.signals import (
    SEVERITY,
    Alert,
    AlertStatus,
    Severity,
    Signal,
)

# The alert levels under the names alerting has always exported; shipyard.levels owns them.
Level = AlertLevel
LEVELS = ALERT_LEVELS

__all__ = [
    "ALERT_DELIVERED",
    "ALERT_DELIVERY_FAILED",
    "ALERT_OPENED",
    "ALERT_RESOLVED",
    "LEVELS",
    "MONITOR_PAUSED",
    "RETRAIN_REQUESTED",
    "SEVERITY",
    "Alert",
    "AlertOutcome",
    "AlertStatus",
    "Alerter",
    "Delivery",
    "DeliveryError",
    "HTTPRoute",
    "Level",
    "OpenAlert",
    "PagerDutyRoute",
    "Route",
    "Severity",
    "Signal",
    "SlackRoute",
    "WebhookRoute",
    "pagerduty_event",
    "routes_from_config",
    "send_with_retries",
    "slack_message",
    "webhook_body",
]
