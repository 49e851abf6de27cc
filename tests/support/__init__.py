"""Helpers shared by the tests: one place, so tests never import each other.

- :func:`project_of`: the ``Project`` a test acts through (as :data:`TESTER`);
- :func:`wait_for`: wait on a condition with a generous deadline, never on a sleep;
- :func:`in_process`: an in-process ASGI client for API tests;
- :func:`serve_in_thread`, :class:`ServeProcess`, :func:`call`: real servers on
  127.0.0.1 where the wire matters (workers, signals, the binary protocol, load);
- :class:`AlertReceiver`: a local stand-in for a webhook, Slack or PagerDuty;
- :func:`copy_example`, :class:`TrainedExamples`: the churn example, fresh or trained
  once per session and copied per test (fixtures in ``tests/conftest.py``);
- :func:`register_numeric`, :func:`register_with_plain_mlflow`, :func:`log_requests`;
- :func:`token_for`, :func:`token_id`: real bearer tokens, and the id inside one.

Data for particular packages' tests is imported from its module: ``tests.support.synthetic``
(evaluation), ``tests.support.tables`` (hypothesis tables), ``tests.support.agrawal``
(the demo's concept rules).
"""

from __future__ import annotations

from shipyard.access import role_named
from shipyard.config import Config
from shipyard.project import Principal, Project
from tests.support.asgi import AppClient, in_process
from tests.support.logs import log_requests
from tests.support.models import NUMERIC, register_numeric, register_with_plain_mlflow
from tests.support.projects import EXAMPLE, TrainedExamples, copy_example, copy_workspace, load
from tests.support.receivers import PD_KEY, AlertReceiver
from tests.support.servers import (
    ServeProcess,
    call,
    free_port,
    serve_in_thread,
    server_environment,
)
from tests.support.tokens import token_for, token_id
from tests.support.waiting import PATIENCE, wait_for

__all__ = [
    "EXAMPLE",
    "NUMERIC",
    "PATIENCE",
    "PD_KEY",
    "TESTER",
    "AlertReceiver",
    "AppClient",
    "ServeProcess",
    "TrainedExamples",
    "call",
    "copy_example",
    "copy_workspace",
    "free_port",
    "in_process",
    "load",
    "log_requests",
    "project_of",
    "register_numeric",
    "register_with_plain_mlflow",
    "serve_in_thread",
    "server_environment",
    "token_for",
    "token_id",
    "wait_for",
]

TESTER = "tester"  # the principal every test acts as unless it says otherwise


def project_of(config: Config, actor: str = TESTER, *, role: str | None = None) -> Project:
    """The project of ``config``, acting as ``actor`` (identified by the test itself).

    Without ``role`` the actor is a trusted in-process admin; with one, it holds exactly
    that role's scopes, as a token of that role would.
    """
    if role is None:
        return Project(config, Principal(actor, "test"))
    return Project(config, Principal(actor, "test", role, role_named(role).scopes))
