"""``shipyard.connect``: Python code acts as the token's principal, like the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.access import Scope
from shipyard.connect import connect
from shipyard.errors import Forbidden, Unauthenticated
from shipyard.governance.tokens import issue_token
from tests.support import load, project_of


def test_connect_acts_as_the_token_in_shipyard_token(initialised_example: Path) -> None:
    config_file = initialised_example / "shipyard.yaml"
    issued = issue_token(project_of(load(initialised_example)), name="vera", role="viewer")
    project = connect(config_file, environ={**os.environ, "SHIPYARD_TOKEN": issued.token})
    assert (project.principal.name, project.principal.role) == ("vera", "viewer")
    assert project.principal.token_id == issued.id
    with pytest.raises(Forbidden, match="vera \\(role viewer\\) lacks the scope models:train"):
        project.authorize(Scope.MODELS_TRAIN, "churn")
    with pytest.raises(Unauthenticated, match="malformed"):
        connect(config_file, environ={**os.environ, "SHIPYARD_TOKEN": "not-a-token"})


def test_without_a_token_the_os_user_acts_on_a_laptop_project(initialised_example: Path) -> None:
    project = connect(
        initialised_example / "shipyard.yaml", environ={**os.environ, "LOGNAME": "lena"}
    )
    assert (project.principal.name, project.principal.via) == ("lena", "os-user")
