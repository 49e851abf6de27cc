"""Who may do what: scopes, permission levels, roles, grants and the acting principal.

A **principal** is who acts (a person's token, the agent, a trusted in-process caller).
It holds a **role**, the **scopes** that role allows (a token may narrow them), and
**grants**: (resource type, name pattern, permission) triples, so a token can be
limited to the models matching ``churn*``. An action needs one scope; on a model it
also needs a grant that covers the model at the scope's permission level.

Roles follow least privilege, and map to MLflow's permission levels::

    viewer    READ    read the registry, events and the audit log
    labeller  USE     + send labels (feedback) and call predictions
    trainer   EDIT    + train, reproduce, evaluate, run monitors
    approver  EDIT    + approve versions for promotion
    deployer  EDIT    + promote, roll back, set traffic, run roll-outs
    operator  EDIT    + serve and run the agent (its CT cycles, roll-outs, pruning)
    admin     MANAGE  everything: tokens, keys, --force, PII, audit checkpoints

This module is data and pure checks; tokens (which make principals) live in
``shipyard.governance.tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from fnmatch import fnmatchcase

from shipyard.errors import Forbidden

__all__ = [
    "ROLES",
    "Grant",
    "Permission",
    "Principal",
    "Role",
    "Scope",
    "role_named",
]


class Scope(StrEnum):
    """One kind of action; every state change needs one."""

    MODELS_READ = "models:read"
    AUDIT_READ = "audit:read"
    SERVE_INVOKE = "serve:invoke"
    LABELS_WRITE = "labels:write"
    MODELS_TRAIN = "models:train"
    MONITOR_RUN = "monitor:run"
    MODELS_APPROVE = "models:approve"
    MODELS_DEPLOY = "models:deploy"
    SERVE_RUN = "serve:run"
    AGENT_RUN = "agent:run"
    LOGS_PRUNE = "logs:prune"
    AUDIT_WRITE = "audit:write"
    PII_READ = "pii:read"
    TOKENS_ADMIN = "tokens:admin"
    KEYS_ADMIN = "keys:admin"
    FORCE = "force"


class Permission(IntEnum):
    """MLflow's permission levels, in order: each includes the ones below it."""

    READ = 1
    USE = 2
    EDIT = 3
    MANAGE = 4


# The level a grant must give on a model for a scope that acts on it.
SCOPE_LEVEL: dict[Scope, Permission] = {
    Scope.MODELS_READ: Permission.READ,
    Scope.AUDIT_READ: Permission.READ,
    Scope.SERVE_INVOKE: Permission.USE,
    Scope.LABELS_WRITE: Permission.USE,
    Scope.MODELS_TRAIN: Permission.EDIT,
    Scope.MONITOR_RUN: Permission.USE,
    Scope.MODELS_APPROVE: Permission.EDIT,
    Scope.MODELS_DEPLOY: Permission.EDIT,
    Scope.SERVE_RUN: Permission.USE,
    Scope.AGENT_RUN: Permission.EDIT,
    Scope.LOGS_PRUNE: Permission.EDIT,
    Scope.AUDIT_WRITE: Permission.MANAGE,
    Scope.PII_READ: Permission.MANAGE,
    Scope.TOKENS_ADMIN: Permission.MANAGE,
    Scope.KEYS_ADMIN: Permission.MANAGE,
    Scope.FORCE: Permission.MANAGE,
}


@dataclass(frozen=True)
class Role:
    """A named set of scopes, and the MLflow permission level it maps to."""

    name: str
    permission: Permission
    scopes: frozenset[Scope]
    summary: str


def _role(name: str, permission: Permission, summary: str, *scopes: Scope) -> Role:
    base = {Scope.MODELS_READ, Scope.AUDIT_READ}
    return Role(name, permission, frozenset(base | set(scopes)), summary)


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        _role("viewer", Permission.READ, "reads the registry, events and the audit log"),
        _role(
            "labeller",
            Permission.USE,
            "sends labels (feedback) and calls predictions",
            Scope.LABELS_WRITE,
            Scope.SERVE_INVOKE,
        ),
        _role(
            "trainer",
            Permission.EDIT,
            "trains, reproduces and evaluates versions, runs monitors",
            Scope.MODELS_TRAIN,
            Scope.MONITOR_RUN,
            Scope.SERVE_INVOKE,
        ),
        _role("approver", Permission.EDIT, "approves versions for promotion", Scope.MODELS_APPROVE),
        _role(
            "deployer",
            Permission.EDIT,
            "promotes, rolls back, sets traffic and runs roll-outs",
            Scope.MODELS_DEPLOY,
            Scope.SERVE_INVOKE,
        ),
        _role(
            "operator",
            Permission.EDIT,
            "serves and runs the agent, which retrains, rolls out, rolls back and prunes "
            "under the project's policies",
            Scope.SERVE_RUN,
            Scope.SERVE_INVOKE,
            Scope.AGENT_RUN,
            Scope.MONITOR_RUN,
            Scope.MODELS_TRAIN,
            Scope.MODELS_DEPLOY,
            Scope.LOGS_PRUNE,
            Scope.AUDIT_WRITE,
        ),
        Role(
            "admin",
            Permission.MANAGE,
            frozenset(Scope),
            "manages tokens and keys, may --force, reads PII",
        ),
    )
}


def role_named(name: str) -> Role:
    """The role called ``name``; an unknown name is refused with the list of roles."""
    try:
        return ROLES[name]
    except KeyError:
        raise Forbidden(f"There is no role {name!r}.", hint=f"Roles: {', '.join(ROLES)}.") from None


@dataclass(frozen=True)
class Grant:
    """Access at ``permission`` to resources of ``kind`` whose name matches ``pattern``."""

    kind: str  # "model", or "*" for every kind
    pattern: str  # fnmatch pattern: "churn*", "*"
    permission: Permission

    def covers(self, kind: str, name: str, level: Permission) -> bool:
        """Whether this grant allows ``level`` on the resource ``kind``/``name``."""
        return (
            self.kind in ("*", kind)
            and fnmatchcase(name, self.pattern)
            and self.permission >= level
        )

    def __str__(self) -> str:
        return f"{self.kind}:{self.pattern}:{self.permission.name}"


_EVERYTHING = (Grant("*", "*", Permission.MANAGE),)


@dataclass(frozen=True)
class Principal:
    """Who acts, how they were identified, and what they may do.

    ``via`` says how: ``token``, ``os-user`` (a local SQLite project without a token),
    ``service`` (Shipyard's own processes) or ``in-process`` (trusted Python code that
    holds the database itself). Built without a role, a principal is an admin: code that
    can open the database can do anything anyway, and the audit log still names it.
    """

    name: str
    via: str
    role: str = "admin"
    scopes: frozenset[Scope] = field(default_factory=lambda: frozenset(Scope))
    grants: tuple[Grant, ...] = _EVERYTHING
    token_id: str | None = None

    @classmethod
    def service(cls, name: str) -> Principal:
        """A principal for Shipyard's own processes (the agent, the demo)."""
        return cls(name, "service")

    def may(self, scope: Scope, model: str | None = None) -> bool:
        """Whether this principal holds ``scope`` (on ``model``, when one is named)."""
        if scope not in self.scopes:
            return False
        if model is None:
            return True
        level = SCOPE_LEVEL[scope]
        return any(grant.covers("model", model, level) for grant in self.grants)

    def require(self, scope: Scope, model: str | None = None) -> None:
        """Raise :class:`Forbidden`, naming what is missing, unless :meth:`may` holds."""
        if scope not in self.scopes:
            raise Forbidden(
                f"{self.name} (role {self.role}) lacks the scope {scope.value}.",
                hint=f"Use a token whose role allows {scope.value}: "
                f"{', '.join(r.name for r in ROLES.values() if scope in r.scopes)}.",
            )
        if model is not None and not self.may(scope, model):
            granted = ", ".join(str(grant) for grant in self.grants) or "none"
            raise Forbidden(
                f"{self.name} has no grant on model {model!r} at "
                f"{SCOPE_LEVEL[scope].name} (needed for {scope.value}); grants: {granted}.",
                hint="Ask an admin for a token whose --model pattern covers this model.",
            )

    def __str__(self) -> str:
        return self.name
