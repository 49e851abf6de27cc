"""The ``Project`` handle: what a domain entry point needs, in one argument.

A project is the resolved configuration, the control-plane store, the MLflow tracking
client, where its files live, and the **principal**: who is acting and how they were
identified. The CLI builds one per command; the agent, the demo and the server build
their own. Nothing below the CLI reads who the user is from the environment: it asks
the project.

    project = Project(load_config("shipyard.yaml"), Principal("alice", "cli"))
    train(project)
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.access import Principal, Scope
from shipyard.config import Config
from shipyard.storage import Location, artifact_location, log_location
from shipyard.store import Store

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from shipyard.registry.tracking import Tracking

__all__ = ["Principal", "Project"]


class Project:
    """Configuration, store, tracking and principal, built once and passed down.

    The store and the tracking client open on first use, so a command that needs
    neither never connects to MLflow (``import mlflow`` alone costs about a second).
    """

    def __init__(self, config: Config, principal: Principal) -> None:
        self.config = config
        self.principal = principal

    @cached_property
    def store(self) -> Store:
        """The control-plane store; every event it records names the principal."""
        who = self.principal
        return Store(self.config.db_url, actor=who.name, token_id=who.token_id, role=who.role)

    def authorize(self, scope: Scope, model: str | None = None) -> None:
        """Refuse (``Forbidden``) unless the principal holds ``scope`` (on ``model``).

        Every domain entry point that changes state calls this first: the one check per
        surface, whoever calls (the CLI, the agent, Python code).
        """
        self.principal.require(scope, model)

    @cached_property
    def tracking(self) -> Tracking:
        """MLflow tracking and registry on the project's database and artifact root."""
        from shipyard.registry.tracking import Tracking

        return Tracking(self.config)

    @property
    def client(self) -> MlflowClient:
        """The MLflow client of :attr:`tracking`."""
        return self.tracking.client

    @property
    def artifact_root(self) -> Path:
        """The local artifact folder (a ConfigError when ``artifact_root`` is a bucket)."""
        return self.config.artifact_path

    @property
    def artifact_location(self) -> Location:
        """Where the project's files live: models, snapshots, reports, checkpoints."""
        return artifact_location(self.config)

    @property
    def log_location(self) -> Location:
        """Where the prediction and label logs live."""
        return log_location(self.config)

    def with_config(self, config: Config) -> Project:
        """The same project (store, tracking, principal) with another configuration."""
        other = Project(config, self.principal)
        for opened in ("store", "tracking"):
            if opened in self.__dict__:
                other.__dict__[opened] = self.__dict__[opened]
        return other

    def close(self) -> None:
        """Release the store's pooled connections, if it was opened."""
        store = self.__dict__.get("store")
        if store is not None:
            store.close()
