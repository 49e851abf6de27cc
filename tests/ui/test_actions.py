"""The dashboard's buttons: rollback and pause/resume through the CLI's audited path, as the
token's actor, refused for a viewer (403 naming the role), without the form's CSRF value,
and when the domain refuses (409/404 pages saying why)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config import Config
from shipyard.delivery.rollout import active_rollout, start_rollout
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.registry.pointers import trusted_version
from shipyard.store import Store
from shipyard.ui.app import dashboard_app
from shipyard.ui.auth import COOKIE
from tests.support import project_of
from tests.support.asgi import AppClient, in_process
from tests.support.tokens import token_for, token_id

HTML = {"accept": "text/html"}


@pytest.fixture
def promoted(two_versions: tuple[Config, Store, Tracking]) -> tuple[Config, Store]:
    """churn/2 promoted over churn/1: a rollback goes back to churn/1."""
    config, store, tracking = two_versions
    move_alias(store, tracking.client, "churn", "champion", "2", action="promote")
    return config, store


@pytest.fixture
def client(promoted: tuple[Config, Store]) -> Iterator[AppClient]:
    with in_process(dashboard_app(promoted[0], token_ttl=0.0)) as app:
        yield app


def _token(config: Config, role: str, name: str) -> str:
    project = project_of(config)
    try:
        return token_for(project, role, name=name)
    finally:
        project.close()


def _logged_in_csrf(client: AppClient, token: str, model: str = "churn") -> str:
    """Log in with ``token``; the CSRF value the model page's forms carry."""
    client.http.cookies.clear()
    assert client.http.post("/login", data={"token": token}).status_code == 200
    status, _, page = client.call(f"/models/{model}", headers=HTML)
    assert status == 200, page
    text = page.decode()
    assert 'id="rollback-form"' in text
    return text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_a_deployer_rolls_back_and_the_event_names_the_token(
    client: AppClient, promoted: tuple[Config, Store]
) -> None:
    config, store = promoted
    token = _token(config, "deployer", "dora")
    csrf = _logged_in_csrf(client, token)
    response = client.http.post(
        "/models/churn/rollback",
        data={"csrf": csrf, "reason": "p99 doubled <b>at 09:00</b>", "to": ""},
        headers={"origin": "http://testserver"},  # what a browser sends from the page
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/models/churn?done=rollback"
    assert trusted_version(store, "churn", "champion") == "1"
    [event] = store.events(kind="alias.rollback")
    assert (event.actor, event.role, event.token_id) == ("dora", "deployer", token_id(token))
    assert event.reason == "p99 doubled <b>at 09:00</b>"
    status, _, page = client.call("/models/churn?done=rollback", headers=HTML)
    assert status == 200 and b'id="done"' in page
    assert b"<b>at 09:00</b>" not in page  # the reason shows escaped in the events table
    assert token.encode() not in page


def test_a_viewer_is_refused_with_the_role_it_needs(
    client: AppClient, promoted: tuple[Config, Store]
) -> None:
    config, store = promoted
    csrf = _logged_in_csrf(client, _token(config, "viewer", "vic"))
    response = client.http.post("/models/churn/rollback", data={"csrf": csrf, "reason": "x"})
    assert response.status_code == 403
    assert "models:deploy" in response.text and "deployer" in response.text
    assert trusted_version(store, "churn", "champion") == "2"
    assert store.events(kind="alias.rollback") == []


def test_a_form_without_the_sessions_csrf_value_is_refused(
    client: AppClient, promoted: tuple[Config, Store]
) -> None:
    config, store = promoted
    token = _token(config, "deployer", "dora")
    csrf = _logged_in_csrf(client, token)
    for sent in ({}, {"csrf": "0" * 64}, {"csrf": csrf[:-1] + ("0" if csrf[-1] != "0" else "1")}):
        response = client.http.post("/models/churn/rollback", data={**sent, "reason": "x"})
        assert response.status_code == 403 and "Reload the page" in response.text
    # A form another site's page sent is refused even with the right value.
    response = client.http.post(
        "/models/churn/rollback",
        data={"csrf": csrf, "reason": "x"},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403 and "another site" in response.text
    # Another session's value does not carry over either.
    other = _logged_in_csrf(client, _token(config, "deployer", "dan"))
    assert other != csrf
    client.http.cookies.clear()
    client.http.cookies.set(COOKIE, token)
    response = client.http.post("/models/churn/rollback", data={"csrf": other})
    assert response.status_code == 403
    assert trusted_version(store, "churn", "champion") == "2"


def test_a_script_with_a_bearer_header_acts_without_a_form_value(
    client: AppClient, promoted: tuple[Config, Store]
) -> None:
    config, store = promoted
    token = _token(config, "deployer", "ci")
    header = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    response = client.http.post(
        "/models/churn/rollback", content=json.dumps({"to": "1", "reason": "bad"}), headers=header
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["action"] == "rollback" and answer["result"]["to_version"] == "1"
    assert trusted_version(store, "churn", "champion") == "1"
    # Nothing further back: the domain's refusal, as JSON with its status.
    response = client.http.post("/models/churn/rollback", content=b"{}", headers=header)
    assert response.status_code == 409
    assert response.json()["code"] == "promotion_refused"
    assert "no previous champion" in response.json()["error"]


def test_pause_and_resume_a_rollout_from_the_model_page(
    client: AppClient, promoted: tuple[Config, Store]
) -> None:
    config, store = promoted
    start_rollout(store, "churn", "1", champion="2", steps=(10.0, 50.0, 100.0))
    csrf = _logged_in_csrf(client, _token(config, "deployer", "dora"))
    _, _, page = client.call("/models/churn", headers=HTML)
    assert b'id="pause-form"' in page and b'id="resume-form"' not in page
    response = client.http.post("/models/churn/pause", data={"csrf": csrf, "reason": "alert"})
    assert response.status_code == 200 and 'id="done"' in response.text
    rollout = active_rollout(store, "churn")
    assert rollout is not None and rollout.state == "paused"
    [paused] = store.events(kind="rollout.paused")
    assert paused.actor == "dora" and paused.reason == "alert"
    assert 'id="resume-form"' in response.text
    response = client.http.post("/models/churn/resume", data={"csrf": csrf})
    assert response.status_code == 200
    rollout = active_rollout(store, "churn")
    assert rollout is not None and rollout.state == "running"
    # Resuming what runs is refused with the reason, not a 500.
    response = client.http.post("/models/churn/resume", data={"csrf": csrf})
    assert response.status_code == 404 and "running" in response.text


def test_an_action_without_a_token_goes_to_the_login_form(client: AppClient) -> None:
    response = client.http.post("/models/churn/rollback", data={"reason": "x"}, headers=HTML)
    assert response.status_code == 401 and 'id="login-form"' in response.text


def test_on_postgresql_a_token_is_needed_and_a_pause_is_recorded_as_its_actor(
    tmp_path: Path, postgres_url: str
) -> None:
    """A shared database: no page without a token (whatever the address), and an action
    through the dashboard lands in PostgreSQL's event log under the token's name."""
    from datetime import UTC, datetime, timedelta

    from tests.support.dashboard_data import bare_project, synthetic_rows, write_prediction_log

    admin = bare_project(tmp_path / "pg", "m00", extra=f"database_url: {postgres_url}\n")
    try:
        now = datetime.now(UTC)
        write_prediction_log(
            admin.config, "m00", synthetic_rows(200, now - timedelta(hours=1), now)
        )
        start_rollout(admin.store, "m00", "2", champion="1", steps=(10.0, 100.0))
        deployer = token_for(admin, "deployer", name="dora")
        with in_process(dashboard_app(admin.config, token_ttl=0.0)) as client:
            response = client.http.get("/models/m00", headers=HTML, follow_redirects=False)
            assert response.status_code == 303
            csrf = _logged_in_csrf(client, deployer, "m00")
            response = client.http.post("/models/m00/pause", data={"csrf": csrf, "reason": "pg"})
            assert response.status_code == 200 and 'id="resume-form"' in response.text
        rollout = active_rollout(admin.store, "m00")
        assert rollout is not None and rollout.state == "paused"
        [paused] = admin.store.events(kind="rollout.paused")
        assert (paused.actor, paused.role, paused.reason) == ("dora", "deployer", "pg")
    finally:
        admin.close()
