"""Who may see the dashboard: tokens from the login cookie or a bearer header, the local
viewer, and refusals (redirect to the login form, 401 JSON, 403 naming what is missing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import unquote

import pytest

from shipyard.config import Config
from shipyard.governance.tokens import issue_token, revoke_token
from shipyard.project import Project
from shipyard.ui.app import dashboard_app, plotly_js
from shipyard.ui.auth import COOKIE, local_viewer
from tests.support import project_of
from tests.support.asgi import AppClient, in_process
from tests.support.tokens import token_for

HTML = {"accept": "text/html"}
JSON_ONLY = {"accept": "application/json"}


@pytest.fixture
def admin(trained_copy: Config) -> Iterator[Project]:
    project = project_of(trained_copy)
    yield project
    project.close()


@pytest.fixture
def client(trained_copy: Config) -> Iterator[AppClient]:
    with in_process(dashboard_app(trained_copy, token_ttl=0.0)) as app:
        yield app


def _login(client: AppClient, token: str, next_path: str = "/") -> tuple[int, dict[str, str]]:
    response = client.http.post(
        "/login", data={"token": token, "next": next_path}, follow_redirects=False
    )
    return response.status_code, {k.lower(): v for k, v in response.headers.items()}


def test_a_page_without_a_token_redirects_to_the_login_form(client: AppClient) -> None:
    response = client.http.get("/models/churn?range=6h", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert unquote(response.headers["location"]) == "/login?next=/models/churn?range=6h"
    status, _, body = client.call("/login")
    assert status == 200
    assert b'id="login-form"' in body and b'type="password"' in body


def test_a_script_without_a_token_gets_401_json(client: AppClient) -> None:
    status, headers, body = client.call("/", headers=JSON_ONLY)
    assert status == 401
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["code"] == "unauthenticated" and "token" in answer["error"]
    assert "Traceback" not in body.decode()


def test_login_sets_an_httponly_strict_cookie_and_the_pages_answer(
    client: AppClient, admin: Project
) -> None:
    token = token_for(admin, "viewer", name="vera")
    status, headers = _login(client, token, "/models/churn")
    assert status == 303 and headers["location"] == "/models/churn"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    status, _, body = client.call("/", headers=HTML)
    assert status == 200, body
    page = body.decode()
    assert 'data-model="churn"' in page and "vera" in page
    assert token not in page  # the token is never echoed


def test_a_refused_login_says_why_and_never_echoes_the_token(
    client: AppClient, admin: Project
) -> None:
    token = token_for(admin, "viewer")
    revoke_token(admin, token[4:16])
    status, headers = _login(client, token)
    assert status == 401 and "set-cookie" not in headers
    _, _, body = client.call("/login")  # the form itself is still there
    response = client.http.post("/login", data={"token": token})
    assert response.status_code == 401
    assert "revoked" in response.text and token not in response.text
    assert token[16:48] not in response.text
    response = client.http.post("/login", data={"token": "shp_not-a-token", "next": "//evil"})
    assert response.status_code == 401 and "shp_not-a-token" not in response.text
    assert b"login-form" in body


def test_login_only_returns_to_a_path_on_this_site(client: AppClient, admin: Project) -> None:
    token = token_for(admin, "viewer")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        status, headers = _login(client, token, target)
        assert status == 303 and headers["location"] == "/", target


def test_a_bearer_header_gets_the_page_as_json(client: AppClient, admin: Project) -> None:
    token = token_for(admin, "viewer")
    status, headers, body = client.call("/", headers={"authorization": f"Bearer {token}"})
    assert status == 200 and headers["content-type"].startswith("application/json")
    rows = json.loads(body)
    assert [row["model"] for row in rows] == ["churn"]
    assert headers["cache-control"] == "no-store"


def test_a_token_limited_to_other_models_sees_neither_the_model_nor_its_row(
    client: AppClient, admin: Project
) -> None:
    issued = issue_token(admin, name="narrow", role="viewer", models=["fraud*"])
    header = {"authorization": f"Bearer {issued.token}"}
    status, _, body = client.call("/", headers=header)
    assert status == 200 and json.loads(body) == []
    status, _, body = client.call("/models/churn", headers=header)
    assert status == 403
    answer = json.loads(body)
    assert answer["code"] == "forbidden" and "churn" in answer["error"]
    _login(client, issued.token)
    status, _, page = client.call("/models/churn", headers=HTML)
    assert status == 403 and b"no grant on model" in page and b'data-status="403"' in page


def test_a_revoked_token_is_refused_on_its_next_request(client: AppClient, admin: Project) -> None:
    token = token_for(admin, "viewer")
    _login(client, token)
    assert client.call("/", headers=HTML)[0] == 200
    revoke_token(admin, token[4:16])
    status, headers, body = client.call("/", headers=HTML)
    assert status == 401 and b"revoked" in body and b"login-form" in body
    assert f"{COOKIE}=" in headers["set-cookie"]  # the dead cookie is cleared


def test_logout_forgets_the_cookie(client: AppClient, admin: Project) -> None:
    _login(client, token_for(admin, "viewer"))
    response = client.http.post("/logout", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.http.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_the_local_viewer_reads_without_a_token_on_loopback_hosts_only(
    trained_copy: Config,
) -> None:
    app = dashboard_app(trained_copy, local=local_viewer("tester"))
    with in_process(app) as client:
        client.http.base_url = "http://127.0.0.1:8600"  # type: ignore[assignment]
        status, _, body = client.call("/", headers=HTML)
        assert status == 200 and b"tester" in body and b"(viewer)" in body
        status, _, _ = client.call("/", headers={**HTML, "host": "evil.example"})
        assert status == 400  # DNS rebinding: another site's name is refused
        status, _, page = client.call("/models/churn", headers=HTML)
        assert status == 200
        csrf = page.decode().split('name="csrf" value="', 1)[1].split('"', 1)[0]
        response = client.http.post(
            "/models/churn/rollback", data={"csrf": csrf, "reason": "x"}, headers=HTML
        )
        assert response.status_code == 403 and "models:deploy" in response.text


def test_health_and_static_files_need_no_token_and_nothing_comes_from_a_cdn(
    client: AppClient, admin: Project
) -> None:
    assert client.call("/healthz")[0] == 200
    status, headers, body = client.call("/static/plotly.min.js")
    assert status == 200 and body == plotly_js().read_bytes()
    assert "max-age=31536000" in headers["cache-control"]
    status, headers, body = client.call("/static/dashboard.js")
    assert status == 200 and b"Plotly.newPlot" in body
    assert client.call("/static/../app.py")[0] == 404
    assert client.call("/static/nothing.js")[0] == 404
    token = token_for(admin, "viewer")
    _, _, page = client.call("/models/churn", headers={"cookie": f"{COOKIE}={token}", **HTML})
    text = page.decode()
    import plotly

    assert f'<script src="/static/plotly.min.js?v={plotly.__version__}">' in text
    assert "http://" not in text.replace("http://www.w3.org", "")
    assert "https://" not in text


def test_every_answer_forbids_framing_and_inline_scripts(client: AppClient) -> None:
    _, headers, _ = client.call("/login")
    assert headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    # Not no-referrer: a browser would then send "Origin: null" on the dashboard's own forms.
    assert headers["referrer-policy"] == "same-origin"
