"""The catalogue of event kinds: every kind the event log may hold, with what it means.

    store.record(EventKind.RUN_FINISHED, f"run:{run_id}", {"model": name})
    kind_of(f"rollout.{state}")          # a kind built from a state, checked

:meth:`Store.record` refuses a kind that is not here, so a typo cannot start a new kind
silently. The stored text is the member's value (``run.finished``); adding a kind is
one line below, and ``docs/registry.md`` lists them all (a test keeps it in step).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ALL_KINDS", "EventKind", "kind_of", "kinds_table"]


class EventKind(StrEnum):
    """One kind of state change; its value is the text stored in the event log."""

    meaning: str

    def __new__(cls, value: str, meaning: str = "") -> EventKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    DATASET_SNAPSHOTTED = "dataset.snapshotted", "A new dataset snapshot was stored."
    TRAINING_HALTED = (
        "training.halted",
        "Training stopped before it began: the data failed validation.",
    )
    RUN_FINISHED = "run.finished", "A training run finished, with its metrics."
    RUN_FAILED = "run.failed", "The user's train function raised; the run holds the traceback."
    MODEL_VERSION_REGISTERED = (
        "model_version.registered",
        "A training run registered a model version.",
    )
    MODEL_VERSION_REPRODUCED = (
        "model_version.reproduced",
        "A model version was retrained from its recorded inputs and compared.",
    )
    MODEL_VERSION_EVALUATED = (
        "model_version.evaluated",
        "A model version was scored against its scorecard.",
    )
    MODEL_VERSION_APPROVED = (
        "model_version.approved",
        "Someone approved a model version for promotion.",
    )
    MODEL_VERSION_ARCHIVED = (
        "model_version.archived",
        "A never-promoted model version was tagged archived by pruning.",
    )
    ALIAS_PROMOTE = (
        "alias.promote",
        "A promotion moved an alias (every check passed), or cleared the challenger.",
    )
    ALIAS_OVERRIDE = (
        "alias.override",
        "An alias moved despite failing checks (--force, with a reason).",
    )
    ALIAS_ROLLBACK = "alias.rollback", "The champion alias moved back to an earlier version."
    KEYS_CREATED = "keys.created", "A signing key pair was created for the project."
    KEYS_REPLACED = (
        "keys.replaced",
        "The project's signing key pair was replaced (`keys init --force`); the old "
        "public key's fingerprint is the event's before digest.",
    )
    AUDIT_CHECKPOINT = (
        "audit.checkpoint",
        "A signed checkpoint of the audit log (tree size and root) was written.",
    )
    TRAFFIC_CHANGED = (
        "traffic.changed",
        "A model's traffic settings (challenger shares, shadow) changed.",
    )
    SERVING_SWAPPED = "serving.swapped", "A server switched to a new champion version."
    SERVING_LOAD_FAILED = "serving.load_failed", "A server could not load a model version."
    SERVING_UNVERIFIED = (
        "serving.unverified",
        "A server loaded a version whose files do not match its signed card "
        "(serving.verify_signatures: warn).",
    )
    REGISTRY_DRIFT = (
        "registry.drift",
        "An MLflow alias disagrees with the pointer Shipyard recorded (moved outside "
        "Shipyard); servers keep the recorded version.",
    )
    REGISTRY_DRIFT_RESOLVED = (
        "registry.drift_resolved",
        "An MLflow alias agrees with the recorded pointer again.",
    )
    REGISTRY_ALERT_DELIVERED = (
        "registry.alert_delivered",
        "The agent's page about registry drift reached a route.",
    )
    REGISTRY_ALERT_FAILED = (
        "registry.alert_failed",
        "The agent's page about registry drift could not be delivered to a route.",
    )
    LABELS_WRITTEN = (
        "labels.written",
        "A batch of labels (feedback or ingest) was accepted into the label log, with who sent it.",
    )
    LOGS_PRUNED = (
        "logs.pruned",
        "Log files or raw PII older than their retention were deleted (what, and how much).",
    )
    PII_RAW_READ = "pii.raw_read", "Someone read raw values of PII-tagged columns."
    MONITOR_RAN = "monitor.ran", "The monitor checked a model version over a window."
    MONITOR_PAUSED = (
        "monitor.paused",
        "A pause-level breach sent the model's traffic to its fallback version.",
    )
    MONITOR_REFERENCE_SET = (
        "monitor.reference_set",
        "A version's monitoring reference was set to a data snapshot.",
    )
    DETECTOR_ALARM = (
        "detector.alarm",
        "A sequential change detector raised an alarm on a stream.",
    )
    DETECTOR_RESET = (
        "detector.reset",
        "A sequential detector's state was cleared (new champion, or by hand).",
    )
    ALERT_OPENED = (
        "alert.opened",
        "A monitored signal breached a band (or escalated): an alert opened.",
    )
    ALERT_RESOLVED = "alert.resolved", "A signal came back within its bands: its alert resolved."
    ALERT_DELIVERED = "alert.delivered", "An alert reached one of its routes."
    ALERT_DELIVERY_FAILED = (
        "alert.delivery_failed",
        "An alert could not be delivered to a route after its retries.",
    )
    RETRAIN_REQUESTED = (
        "retrain_requested",
        "A signal reached its retrain band; continuous training may act on it.",
    )
    ROLLOUT_STARTED = "rollout.started", "A roll-out of a candidate version began."
    ROLLOUT_RUNNING = "rollout.running", "A roll-out moved to its next step, or resumed."
    ROLLOUT_PAUSED = "rollout.paused", "A roll-out was held at its current step."
    ROLLOUT_PROMOTING = (
        "rollout.promoting",
        "Every roll-out step passed; the candidate awaits promotion.",
    )
    ROLLOUT_AWAITING_PROMOTION = (
        "rollout.awaiting_promotion",
        "The agent could not promote a finished roll-out's candidate; it waits.",
    )
    ROLLOUT_PROMOTED = "rollout.promoted", "A roll-out ended with its candidate as champion."
    ROLLOUT_ROLLED_BACK = (
        "rollout.rolled_back",
        "A guardrail breached: the champion took all traffic back.",
    )
    ROLLOUT_ABORTED = "rollout.aborted", "A roll-out was aborted by hand."
    ROLLOUT_ALERT_DELIVERED = (
        "rollout.alert_delivered",
        "A roll-out's rollback page reached a route.",
    )
    ROLLOUT_ALERT_FAILED = (
        "rollout.alert_failed",
        "A roll-out's rollback page could not be delivered to a route.",
    )
    EXPERIMENT_STARTED = (
        "experiment.started",
        "An A/B experiment began splitting traffic between its arms.",
    )
    EXPERIMENT_DECIDED = (
        "experiment.decided",
        "An A/B experiment's sequential test declared a winner or no difference.",
    )
    EXPERIMENT_PROMOTED = (
        "experiment.promoted",
        "An A/B experiment's winner passed the gates and became champion.",
    )
    EXPERIMENT_STOPPED = (
        "experiment.stopped",
        "An A/B experiment ended without a promotion (by hand, no difference, or refused).",
    )
    FEATURES_APPLIED = (
        "features.applied",
        "A feature view version was registered by shipyard features apply.",
    )
    FEATURES_MATERIALIZED = (
        "features.materialized",
        "A feature view's rows were copied into the online store (or the copy failed).",
    )
    PROMPT_REGISTERED = (
        "prompt.registered",
        "A prompt template version was added to the prompt registry.",
    )
    PROMPT_LABELLED = (
        "prompt.labelled",
        "A prompt label (production, staging …) was moved to a version, or rolled back.",
    )
    LLM_PRICES_IMPORTED = (
        "llm.prices_imported",
        "A new version of the LLM price table was stored (by hand or from LiteLLM's JSON).",
    )
    LLM_CAP_SET = "llm.cap_set", "A per-tenant request or cost cap was stored or removed."
    LLM_CAP_UNREADABLE = (
        "llm.cap_unreadable",
        "A gateway could not read the cap state and applied the configured default.",
    )
    LLM_EVALUATED = (
        "llm.evaluated",
        "A judge run scored an LLM version on the gold set or production completions.",
    )
    LLM_BREACH = (
        "llm.breach",
        "An LLM signal (judge score, guardrail or hallucination rate) crossed a band.",
    )
    CT_CYCLE_STARTED = "ct.cycle_started", "A continuous-training cycle started, with its cause."
    CT_SKIPPED = "ct.skipped", "A continuous-training trigger was deferred or skipped by a guard."
    CT_GATE = "ct.gate", "A continuous-training cycle passed or failed one gate."
    CT_CYCLE_UPDATED = (
        "ct.cycle_updated",
        "A continuous-training cycle named its candidate, roll-out or champion.",
    )
    CT_CYCLE_FINISHED = "ct.cycle_finished", "A continuous-training cycle ended, with its outcome."
    CT_ALERT_DELIVERED = "ct.alert_delivered", "A halted cycle's page reached a route."
    CT_ALERT_FAILED = "ct.alert_failed", "A halted cycle's page could not be delivered to a route."
    TOKEN_ISSUED = "token.issued", "An API token was issued (its secret is never recorded)."
    TOKEN_REVOKED = "token.revoked", "An API token was revoked: it authenticates no more."
    TOKEN_ROTATED = (
        "token.rotated",
        "An API token was replaced by a new one; it stays valid for the overlap window.",
    )


ALL_KINDS: frozenset[EventKind] = frozenset(EventKind)


def kind_of(text: str) -> EventKind:
    """The catalogued kind spelled ``text``; a clear ``ValueError`` when there is none."""
    try:
        return EventKind(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an event kind in shipyard/store/event_kinds.py; "
            "add it there (with its meaning) before recording it."
        ) from None


def kinds_table() -> str:
    """The Markdown table of every kind and its meaning, as ``docs/registry.md`` shows it."""
    rows = [f"| `{kind.value}` | {kind.meaning} |" for kind in EventKind]
    return "\n".join(["| kind | meaning |", "| --- | --- |", *rows]) + "\n"
