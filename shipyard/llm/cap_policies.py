"""Cap policies: what a tenant may use per window, and who the tenant of a request is.

A policy is ``quota`` requests (or cents) per ``window_seconds`` for a tenant (``*`` for
every tenant). Policies come from three places:

- ``llm.caps.policies`` in shipyard.yaml (caps as code, ``source="config"``);
- rows of ``shipyard_llm_cap_policies`` set by ``shipyard llm caps set`` (``"stored"``);
  a stored row replaces the configured policy with the same tenant, unit and window;
- a Helicone-style request header (``"header"``), which may only tighten: it is
  enforced beside the stored caps, never instead of them.

For one tenant, a policy naming the tenant replaces the ``*`` policy of the same unit
and window, so ``*`` is the default every tenant gets and a named tenant may get more
or less.

The header syntax is Helicone's ``<quota>;w=<seconds>;u=request|cents;s=user``, e.g.
``Shipyard-RateLimit-Policy: 100;w=60`` or ``500;w=86400;u=cents;s=user``. Counting is
always per tenant: ``s=user`` (or Helicone's ``s=<property>``) is accepted and echoed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from shipyard.errors import Forbidden, RequestError

if TYPE_CHECKING:
    from shipyard.access import Principal
    from shipyard.config.llm import CapSettings

__all__ = [
    "HELICONE_POLICY_HEADER",
    "CapPolicy",
    "applicable",
    "header_value",
    "number_text",
    "parse_policy_header",
    "policies_of_settings",
    "policy_header_of",
    "tenant_of",
]

HELICONE_POLICY_HEADER = "Helicone-RateLimit-Policy"
Unit = Literal["request", "cents"]
UNITS: tuple[Unit, ...] = ("request", "cents")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_WILDCARDS = frozenset("*?[")
MAX_WINDOW = 366 * 86400


@dataclass(frozen=True)
class CapPolicy:
    """At most ``quota`` requests or cents per ``window_seconds`` for ``tenant``."""

    quota: float
    window_seconds: int
    unit: Unit = "request"
    tenant: str = "*"
    source: str = "config"  # config | stored | header | fallback
    segment: str | None = None  # the header's s=… (echoed; counting is per tenant)

    @property
    def key(self) -> tuple[str, Unit, int]:
        """What identifies the policy among the stored ones: tenant, unit and window."""
        return (self.tenant, self.unit, self.window_seconds)

    @cached_property
    def text(self) -> str:
        """The policy in the header syntax, e.g. ``100;w=60;u=request`` (RateLimit-Policy)."""
        quota = number_text(self.quota)
        tail = f";s={self.segment}" if self.segment else ""
        return f"{quota};w={self.window_seconds};u={self.unit}{tail}"


def parse_policy_header(text: str, header: str = "Shipyard-RateLimit-Policy") -> CapPolicy:
    """The policy a ``<quota>;w=<seconds>;u=request|cents;s=user`` header asks for.

    Anything malformed is a :class:`RequestError` (400) naming ``header`` and what is
    wrong: a quota that is not a positive number, ``w`` missing or not whole seconds,
    an unknown unit or parameter.
    """
    parts = [part.strip() for part in str(text).split(";")]

    def bad(problem: str) -> RequestError:
        return RequestError(
            f"Header {header} is malformed: {problem}. Write <quota>;w=<seconds>"
            ";u=request|cents;s=user, e.g. 100;w=60."
        )

    quota = _positive(parts[0])
    if quota is None:
        raise bad(f"the quota {parts[0][:40]!r} is not a positive number")
    fields: dict[str, str] = {}
    for part in parts[1:]:
        name, equals, value = part.partition("=")
        name = name.strip().lower()
        if not equals or name not in ("w", "u", "s"):
            raise bad(f"{part[:40]!r} is not w=, u= or s=")
        if name in fields:
            raise bad(f"{name}= is given twice")
        fields[name] = value.strip()
    if "w" not in fields:
        raise bad("the window w=<seconds> is missing")
    window = fields["w"]
    if not window.isdigit() or not 1 <= int(window) <= MAX_WINDOW:
        raise bad(f"the window w={window[:20]!r} is not whole seconds from 1 to {MAX_WINDOW}")
    unit = fields.get("u", "request").lower()
    if unit not in UNITS:
        raise bad(f"the unit u={unit[:20]!r} is neither request nor cents")
    segment = fields.get("s")
    if segment is not None and not _SEGMENT.match(segment):
        raise bad(f"the segment s={segment[:20]!r} is not a name")
    chosen: Unit = "cents" if unit == "cents" else "request"
    return CapPolicy(quota, int(window), chosen, "*", "header", segment)


def policies_of_settings(settings: CapSettings) -> list[CapPolicy]:
    """The caps as code: ``llm.caps.policies`` as :class:`CapPolicy` records."""
    return [
        CapPolicy(p.quota, p.window_seconds, p.unit, p.tenant, "config") for p in settings.policies
    ]


def applicable(
    tenant: str, configured: Iterable[CapPolicy], stored: Iterable[CapPolicy]
) -> tuple[CapPolicy, ...]:
    """The policies that bind ``tenant``: stored rows over configured ones with the same
    tenant, unit and window; then, per unit and window, the tenant's own over ``*``."""
    merged: dict[tuple[str, Unit, int], CapPolicy] = {}
    for policy in (*configured, *stored):  # stored last: it replaces
        if policy.tenant in (tenant, "*"):
            merged[policy.key] = policy
    chosen: dict[tuple[Unit, int], CapPolicy] = {}
    for (who, unit, window), policy in merged.items():
        if who == tenant or (unit, window) not in chosen:
            chosen[(unit, window)] = policy
    return tuple(sorted(chosen.values(), key=lambda p: (p.unit, p.window_seconds)))


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (any case) in a plain dict or Starlette's Headers."""
    found = headers.get(name)
    if found is not None:
        return found
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def policy_header_of(headers: Mapping[str, str], settings: CapSettings) -> str | None:
    """The request's policy header: ``settings.policy_header``, else Helicone's."""
    found = header_value(headers, settings.policy_header)
    return found if found is not None else header_value(headers, HELICONE_POLICY_HEADER)


def tenant_of(
    principal: Principal | None, headers: Mapping[str, str], settings: CapSettings
) -> str:
    """The tenant a request is counted against.

    A token with grants of kind ``tenant`` (``shipyard tokens create --tenant acme``)
    acts for those tenants only: the tenant header may pick one of them (another is
    :class:`Forbidden`), and without the header the token's own tenant applies. Otherwise
    the tenant header names it, and a request naming none is ``settings.default_tenant``.
    A malformed tenant header is a :class:`RequestError` (400) naming the header.
    """
    named = header_value(headers, settings.tenant_header)
    if named is not None:
        named = named.strip()
        if not _TENANT.match(named):
            raise RequestError(
                f"Header {settings.tenant_header} must be a tenant name: letters, digits "
                "and . _ : @ -, at most 200 characters."
            )
    grants = [g for g in (principal.grants if principal else ()) if g.kind == "tenant"]
    if not grants:
        return named or settings.default_tenant
    if named is not None:
        if any(grant.covers("tenant", named, grant.permission) for grant in grants):
            return named
        raise Forbidden(
            f"{principal} may not act for tenant {named!r} (header {settings.tenant_header}).",
            hint="Its tenants: " + ", ".join(g.pattern for g in grants) + ".",
        )
    for grant in grants:
        if not _WILDCARDS.intersection(grant.pattern):
            return grant.pattern
    raise Forbidden(
        f"{principal} acts for tenants matching {grants[0].pattern!r}: name one in the "
        f"{settings.tenant_header} header."
    )


def number_text(value: float) -> str:
    """``100`` for 100.0, ``2.5`` for 2.5: a quota as headers and listings show it."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _positive(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None
