"""Cap policies: the Helicone header syntax, which policies bind a tenant, and who the
tenant of a request is (a token's tenant grant, the header, or the default).

No provider is involved: these are the pure parts of shipyard.llm.caps; tokens are real
ones, issued into a real SQLite project and authenticated as the gateway would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.access import Principal, Scope
from shipyard.config import load_config
from shipyard.config.llm import CapSettings
from shipyard.errors import ConfigError, Forbidden, RequestError
from shipyard.governance.tokens import authenticate, issue_token, list_tokens, rotate_token
from shipyard.llm.cap_policies import applicable, policy_header_of
from shipyard.llm.caps import CapPolicy, parse_policy_header, tenant_of
from shipyard.project import Project

SETTINGS = CapSettings.model_validate({})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100;w=60", CapPolicy(100, 60, "request", "*", "header")),
        ("500000;w=86400;s=user", CapPolicy(500000, 86400, "request", "*", "header", "user")),
        ("250;w=3600;u=cents", CapPolicy(250, 3600, "cents", "*", "header")),
        (" 2.5 ; W=10 ; u=CENTS ; s=org_id ", CapPolicy(2.5, 10, "cents", "*", "header", "org_id")),
        ("10;w=1;u=request;s=user", CapPolicy(10, 1, "request", "*", "header", "user")),
    ],
)
def test_helicone_policies_parse(text: str, expected: CapPolicy) -> None:
    assert parse_policy_header(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "quota"),
        ("abc;w=60", "quota"),
        ("0;w=60", "quota"),
        ("-5;w=60", "quota"),
        ("nan;w=60", "quota"),
        ("inf;w=60", "quota"),
        ("100", "w=<seconds> is missing"),
        ("100;w=", "window"),
        ("100;w=1.5", "window"),
        ("100;w=0", "window"),
        ("100;w=99999999999", "window"),
        ("100;w=60;u=tokens", "unit"),
        ("100;w=60;x=1", "is not w=, u= or s="),
        ("100;w=60;w=30", "twice"),
        ("100;w=60;s=a b", "segment"),
        ("100;60", "is not w=, u= or s="),
    ],
)
def test_malformed_policies_are_400s_naming_the_header(text: str, problem: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_policy_header(text, "Helicone-RateLimit-Policy")
    assert caught.value.http_status == 400
    assert "Helicone-RateLimit-Policy" in caught.value.message
    assert problem in caught.value.message


@given(
    st.floats(min_value=0.01, max_value=1e9, allow_nan=False),
    st.integers(min_value=1, max_value=366 * 86400),
    st.sampled_from(["request", "cents"]),
    st.one_of(st.none(), st.sampled_from(["user", "org"])),
)
def test_a_policy_reads_back_from_its_own_text(
    quota: float, window: int, unit: str, segment: str | None
) -> None:
    policy = CapPolicy(quota, window, unit, "*", "header", segment)  # type: ignore[arg-type]
    assert parse_policy_header(policy.text) == policy


def test_header_policies_are_read_from_ours_then_helicones_in_any_case() -> None:
    assert policy_header_of({"helicone-ratelimit-policy": "5;w=9"}, SETTINGS) == "5;w=9"
    both = {"Shipyard-RateLimit-Policy": "1;w=1", "Helicone-RateLimit-Policy": "5;w=9"}
    assert policy_header_of(both, SETTINGS) == "1;w=1"
    assert policy_header_of({}, SETTINGS) is None


def test_a_tenants_own_policy_replaces_the_star_one_and_stored_replaces_config() -> None:
    configured = [
        CapPolicy(100, 60, "request", "*", "config"),
        CapPolicy(1000, 3600, "request", "*", "config"),
        CapPolicy(50, 86400, "cents", "acme", "config"),
    ]
    stored = [
        CapPolicy(500, 60, "request", "acme", "stored"),
        CapPolicy(20, 86400, "cents", "acme", "stored"),
        CapPolicy(7, 60, "request", "other", "stored"),
    ]
    acme = applicable("acme", configured, stored)
    assert [(p.quota, p.unit, p.window_seconds, p.source) for p in acme] == [
        (20, "cents", 86400, "stored"),
        (500, "request", 60, "stored"),
        (1000, "request", 3600, "config"),
    ]
    beta = applicable("beta", configured, stored)
    assert [(p.quota, p.window_seconds) for p in beta] == [(100, 60), (1000, 3600)]
    assert applicable("beta", [], []) == ()


# --- tenants --------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    (tmp_path / ".shipyard").mkdir()
    (tmp_path / "shipyard.yaml").write_text("project: caps\n", encoding="utf-8")
    config = load_config(tmp_path / "shipyard.yaml", environ={})
    project = Project(config, Principal("admin-ann", "test"))
    yield project
    project.close()


def _principal(project: Project, **kwargs: object) -> Principal:
    issued = issue_token(project, name="app", role="labeller", **kwargs)  # type: ignore[arg-type]
    return authenticate(project.store, issued.token)


def test_a_tokens_tenant_grant_names_its_tenant(project: Project) -> None:
    principal = _principal(project, tenants=["acme"])
    assert tenant_of(principal, {}, SETTINGS) == "acme"
    assert tenant_of(principal, {"x-shipyard-tenant": "acme"}, SETTINGS) == "acme"
    with pytest.raises(Forbidden) as caught:
        tenant_of(principal, {"X-Shipyard-Tenant": "globex"}, SETTINGS)
    assert "globex" in caught.value.message and "acme" in str(caught.value)
    # The tenant grant does not widen model access: the token still calls every model.
    assert principal.may(Scope.SERVE_INVOKE, "churn")


def test_a_token_with_several_tenants_may_pick_one(project: Project) -> None:
    principal = _principal(project, tenants=["acme", "globex"])
    assert tenant_of(principal, {}, SETTINGS) == "acme"
    assert tenant_of(principal, {"X-Shipyard-Tenant": "globex"}, SETTINGS) == "globex"


def test_without_a_tenant_grant_the_header_or_the_default_names_it(project: Project) -> None:
    principal = _principal(project)  # a "*:*" grant is not a tenant grant
    assert tenant_of(principal, {}, SETTINGS) == "default"
    assert tenant_of(principal, {"X-Shipyard-Tenant": "acme"}, SETTINGS) == "acme"
    assert tenant_of(None, {}, CapSettings.model_validate({"default_tenant": "anon"})) == "anon"
    assert (
        tenant_of(None, {"Team": "t1"}, CapSettings.model_validate({"tenant_header": "Team"}))
        == "t1"
    )


@pytest.mark.parametrize("bad", ["", "a b", "x" * 201, "-lead", "über", "a/b"])
def test_a_malformed_tenant_header_is_a_400_naming_it(bad: str) -> None:
    with pytest.raises(RequestError) as caught:
        tenant_of(None, {"X-Shipyard-Tenant": bad}, SETTINGS)
    assert caught.value.http_status == 400 and "X-Shipyard-Tenant" in caught.value.message


def test_tenant_grants_are_listed_kept_on_rotation_and_validated(project: Project) -> None:
    issued = issue_token(project, name="app", role="labeller", tenants=["acme", "acme"])
    assert list(issued.info.grants) == ["*:*:USE", "tenant:acme:USE"]
    rotated = rotate_token(project, issued.id)
    assert tenant_of(authenticate(project.store, rotated.token), {}, SETTINGS) == "acme"
    assert [info.grants for info in list_tokens(project.store)][-1] == issued.info.grants
    with pytest.raises(ConfigError) as caught:
        issue_token(project, name="app", role="labeller", tenants=["no spaces"])
    assert "--tenant" in caught.value.message
