"""A real served and monitored project, and ``shipyard ui`` on it, for the browser tests.

:func:`dashboard_project` builds what a team would have after a day's work, through the
same paths a user takes, and serves the dashboard on it:

1. the churn example trained three times here (churn/1, /2, /3; see :func:`_prepared`),
   each scored on the golden set and approved by ``ana`` (approver); ``dora``
   (deployer) promotes churn/1, then churn/3, and rolls churn/3 back; a second model,
   ``upsell``, registered with plain MLflow and never served;
2. ``shipyard serve churn`` as a real process; a caller with a labeller token sends
   live requests, then labels for them (``POST /v1/feedback``); a monitor run;
3. ``dora`` promotes churn/2 and sets traffic: churn/3 as a 20 % challenger and churn/1
   in shadow; the server hot-swaps; requests with one feature shifted, their labels;
   a second monitor run finds the drift and opens an alert (delivered to a webhook
   stand-in);
4. a business KPI (a CSV of outcomes per request id, read with DuckDB), and a signed
   audit checkpoint (``shipyard keys init`` came first, so promotions signed the cards);
5. ``shipyard ui`` as a real process on a free port, with a viewer token and a
   deployer token for the tests to log in with.

The project needs a token for everything (``security.require_token: always``, as a team's
shared project would): the servers run with an operator's, so the dashboard has no local
viewer and refuses a visitor without a token.

It takes a while (three trainings, a server, two monitor runs), so tests build it once
per module or session. Champion is churn/2 at the end; a rollback goes to churn/1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from shipyard.config import Config
from shipyard.project import Project
from tests.support import TESTER, project_of
from tests.support.models import register_with_plain_mlflow
from tests.support.projects import copy_example, load
from tests.support.receivers import AlertReceiver
from tests.support.servers import ServeProcess, UiProcess, call, server_environment
from tests.support.tokens import token_for
from tests.support.waiting import PATIENCE, wait_for

__all__ = ["MODEL", "QUIET", "Dashboard", "dashboard_project", "shipyard"]

MODEL = "churn"
QUIET = "upsell"  # a second model in the registry, idle
SHIFTED = "monthly_charges"  # the feature whose drift the second monitor run finds
KPI = "Customers retained"
APPROVER, DEPLOYER, VIEWER, CALLER = "ana", "dora", "vic", "shop-frontend"
OPERATOR, ADMIN = "ops-bot", "platform-admin"
LIGHT_SCORECARD = {"primary": {"metric": "roc_auc", "min": 0.7, "min_margin": -0.05}}
BEFORE, AFTER = 300, 500  # requests before and after the promotion of churn/2
CALLERS = 4  # requests in flight at once
TREES = 30  # the example's 100 trees take three times as long to train, for nothing here


@dataclass(frozen=True)
class Dashboard:
    """The built project, its servers, and the tokens the tests log in with."""

    config: Config = field(repr=False)
    url: str  # the dashboard's base URL
    serving_url: str
    viewer: str = field(repr=False)  # token secrets (never in a test's report)
    deployer: str = field(repr=False)
    deployer_name: str
    champion: str  # churn's champion when built
    previous: str  # where a rollback moves it
    predictions: int  # live predictions logged
    since: datetime  # a little before the first request: the model page's range starts here
    ui_output: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def model_page(self) -> str:
        """The model page's path over the project's whole served history."""
        return f"/models/{MODEL}?since={self.since.strftime('%Y-%m-%dT%H:%M:%SZ')}"


@contextmanager
def dashboard_project(folder: Path) -> Iterator[Dashboard]:
    """Build the project in ``folder`` and serve it and its dashboard until the block ends."""
    with ExitStack() as stack:
        receiver = AlertReceiver("webhook")
        stack.callback(receiver.close)
        config = _prepared(folder, receiver.url)
        project = project_of(config)
        viewer = token_for(project, "viewer", name=VIEWER)
        deployer = token_for(project, "deployer", name=DEPLOYER)
        caller = token_for(project, "labeller", name=CALLER)
        operator = token_for(project, "operator", name=OPERATOR)
        admin = token_for(project, "admin", name=ADMIN)
        project.close()
        environ = server_environment(SHIPYARD_TOKEN=operator)
        config_file = config.root / "shipyard.yaml"
        # Signing keys first, so that every promotion signs the version's card.
        shipyard(config_file, admin, "keys", "init")
        _history(config)

        since = datetime.now(UTC) - timedelta(seconds=5)
        serving = stack.enter_context(ServeProcess(config_file, MODEL, environ=environ))
        golden = pd.read_csv(config.root / "data" / "golden.csv")
        before = golden.head(BEFORE)
        _send(serving.url, caller, before, "a", expect="1")
        _label(serving.url, caller, before, "a")
        _wait_logged(config, BEFORE)
        _monitor(config, window=f"last:{BEFORE}")

        _promote_and_split(config)
        _wait_served(serving.url, caller, golden.head(1), {"2", "3"})
        after = golden.iloc[BEFORE : BEFORE + AFTER].copy()
        after[SHIFTED] = after[SHIFTED] * 1.5 + 15
        _send(serving.url, caller, after, "b")
        _label(serving.url, caller, after, "b")
        total = _wait_logged(config, BEFORE + AFTER)
        _monitor(config, window="last:300")
        wait_for(lambda: receiver.received, what="the drift alert at the webhook stand-in")
        _write_outcomes(config, golden)
        shipyard(config_file, operator, "audit", "checkpoint")  # the audit page shows it

        ui = stack.enter_context(UiProcess(config_file, environ))
        yield Dashboard(
            config=config,
            url=ui.url,
            serving_url=serving.url,
            viewer=viewer,
            deployer=deployer,
            deployer_name=DEPLOYER,
            champion="2",
            previous="1",
            predictions=total,
            since=since,
            ui_output=ui.output,
        )


def shipyard(config_file: Path, token: str, *args: str) -> str:
    """Run ``shipyard --config FILE ARGS`` as the holder of ``token``; its output."""
    command = [str(Path(sys.executable).parent / "shipyard"), "--config", str(config_file)]
    done = subprocess.run(
        [*command, *args],
        env=server_environment(SHIPYARD_TOKEN=token),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert done.returncode == 0, f"shipyard {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _prepared(folder: Path, webhook: str) -> Config:
    """churn/1–3 trained, with a light scorecard, fast log rolls, an alert route and a KPI.

    Trained here rather than copied from the session's trained templates: a copy is
    re-pointed (paths and run ids rewritten in every table), which edits the audit log's
    rows under their leaves, and the audit page would rightly say the log does not verify.
    """
    from shipyard.registry import Tracking
    from shipyard.store import Store
    from shipyard.training import train

    root = copy_example(folder / MODEL)
    (root / "scorecard.yaml").write_text(yaml.safe_dump(LIGHT_SCORECARD))
    path = root / "shipyard.yaml"
    data = yaml.safe_load(path.read_text())
    # A team's project: every command, server and page needs a token, nobody acts as the
    # OS user, so a page without one is refused.
    data.setdefault("security", {})["require_token"] = "always"
    data["train"]["params"]["n_estimators"] = TREES
    data.setdefault("serving", {})["log_roll_seconds"] = 0.2
    # The private key outside the project folder, as a team keeps it, but inside the test's
    # own folder: the default (~/.shipyard/keys) would leave it in the user's home.
    data.setdefault("signing", {})["private_key"] = str(folder / "keys" / f"{MODEL}.pem")
    data.setdefault("cost", {})["flush_seconds"] = 1.0  # usage rows while the test runs
    data.setdefault("monitoring", {})["routes"] = [
        {"kind": "webhook", "url": webhook, "min_level": "inspect"}
    ]
    data["kpis"] = [
        {
            "name": KPI,
            "sql": "SELECT request_id, value FROM read_csv('outcomes.csv')",
            "join": "request_id",
            "bucket": "1m",
        }
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load(root)
    Store(config.db_url, actor=TESTER).close()
    Tracking(config)
    project = project_of(config)
    try:
        for _ in range(3):
            train(project)
    finally:
        project.close()
    return config


def _acting(config: Config, name: str, role: str) -> Project:
    """The project acting as ``name``, who holds exactly ``role``'s scopes (as a token would)."""
    return project_of(config, name, role=role)


def _history(config: Config) -> None:
    """Scored and approved versions; churn/1 promoted, churn/3 promoted and rolled back."""
    from shipyard.evaluation.evaluate import evaluate_version
    from shipyard.governance.approvals import approve
    from shipyard.governance.promotion import promote
    from shipyard.registry import get_version
    from shipyard.registry.refs import ModelRef

    admin = project_of(config)
    approver = _acting(config, APPROVER, "approver")
    deployer = _acting(config, DEPLOYER, "deployer")
    try:
        for version in ("1", "2", "3"):
            ref = ModelRef(MODEL, version=version)
            evaluate_version(admin, ref)
            approve(approver, get_version(admin.client, ref), comment="scorecard passes")
        promote(deployer, ModelRef(MODEL, version="1"), to="champion", reason="first release")
        promote(deployer, ModelRef(MODEL, version="3"), to="champion", reason="new features")
        _rollback(deployer, reason="complaints from the retention team")
    finally:
        for project in (admin, approver, deployer):
            project.close()
    # A second model, registered by a team's existing MLflow code and not served yet: the
    # fleet lists it after churn, which needs attention.
    register_with_plain_mlflow(config, QUIET)


def _rollback(project: Project, *, reason: str) -> None:
    """What ``shipyard rollback churn --reason`` does, as ``project``'s principal."""
    from shipyard.access import Scope
    from shipyard.registry.aliases import rollback

    project.authorize(Scope.MODELS_DEPLOY, MODEL)
    rollback(project.store, None, MODEL, reason=reason)


def _promote_and_split(config: Config) -> None:
    """``dora`` promotes churn/2, then sets churn/3 to a 20 % challenger and churn/1 to shadow."""
    from shipyard.access import Scope
    from shipyard.governance.promotion import promote
    from shipyard.registry.refs import ModelRef
    from shipyard.store.traffic import TrafficSettings, write_traffic

    deployer = _acting(config, DEPLOYER, "deployer")
    try:
        promote(deployer, ModelRef(MODEL, version="2"), to="champion", reason="retrained")
        deployer.authorize(Scope.MODELS_DEPLOY, MODEL)  # as `shipyard traffic set` does
        write_traffic(deployer.store, MODEL, TrafficSettings(challengers={"3": 0.2}, shadow="1"))
    finally:
        deployer.close()


def _headers(token: str, request_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return headers


def _send(url: str, token: str, rows: pd.DataFrame, prefix: str, expect: str | None = None) -> None:
    """One prediction request per row, with request ids ``prefix`` + the row's index, from
    a few callers at once (as a web shop's front ends would)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(item: tuple[Any, pd.Series]) -> None:
        index, row = item
        body = json.dumps({"instances": [row.drop("churned").to_dict()]}).encode()
        status, headers, payload = call(
            f"{url}/v1/models/{MODEL}:predict", body, _headers(token, f"{prefix}{index}")
        )
        assert status == 200, payload
        if expect is not None:
            assert headers["x-model-version"] == expect, headers

    with ThreadPoolExecutor(CALLERS) as callers:
        list(callers.map(one, rows.iterrows()))


def _label(url: str, token: str, rows: pd.DataFrame, prefix: str) -> None:
    """The true outcome of every row, as the caller sends it later."""
    truth = [{"request_id": f"{prefix}{i}", "label": int(r.churned)} for i, r in rows.iterrows()]
    status, _, payload = call(f"{url}/v1/feedback", json.dumps(truth).encode(), _headers(token))
    assert status == 200 and json.loads(payload)["accepted"] == len(truth), payload


def _wait_served(url: str, token: str, row: pd.DataFrame, versions: set[str]) -> None:
    """Wait until the server answers with each of ``versions`` (it polls the control plane)."""
    seen: set[str] = set()
    body = json.dumps({"instances": [row.drop(columns="churned").iloc[0].to_dict()]}).encode()

    def answered() -> bool:
        status, headers, payload = call(f"{url}/v1/models/{MODEL}:predict", body, _headers(token))
        assert status == 200, payload
        seen.add(headers["x-model-version"])
        return versions <= seen

    wait_for(answered, what=f"the server to answer with versions {sorted(versions)}")


def _wait_logged(config: Config, count: int) -> int:
    """Wait until ``count`` live predictions and their labels are on disk; the live rows."""
    from shipyard.logs.reader import query_log
    from shipyard.logs.root import project_log_root

    root = project_log_root(config)
    live = "SELECT count(*) AS n FROM log WHERE role <> 'shadow'"

    def logged(kind: str, sql: str) -> int:
        return int(query_log(root, MODEL, kind=kind, sql=sql)["n"][0].as_py() or 0)

    wait_for(lambda: logged("predictions", live) >= count, what=f"{count} live predictions")
    labels = "SELECT count(*) AS n FROM log"
    wait_for(lambda: logged("labels", labels) >= count, what=f"{count} labels on disk")
    return logged("predictions", live)


def _monitor(config: Config, *, window: str) -> None:
    """``shipyard monitor run churn --window WINDOW``, as the project's operator."""
    from shipyard.monitoring.run import run_monitor

    operator = _acting(config, OPERATOR, "operator")
    try:
        run_monitor(operator, MODEL, window=window)
    finally:
        operator.close()


def _write_outcomes(config: Config, golden: pd.DataFrame) -> None:
    """The KPI's table: whether each answered customer stayed (1) or left (0)."""
    from shipyard.logs.reader import query_log
    from shipyard.logs.root import project_log_root

    logged = query_log(
        project_log_root(config),
        MODEL,
        sql="SELECT DISTINCT request_id FROM log WHERE role <> 'shadow'",
    )
    stayed = {f"{p}{i}": 1 - int(v) for p in "ab" for i, v in golden["churned"].items()}
    rows = []
    for request_id in logged.column("request_id").to_pylist():
        own = str(request_id).rsplit("/", 1)[-1]  # the caller's id, after its token's name
        if own in stayed:
            rows.append({"request_id": request_id, "value": stayed[own]})
    assert rows, "no logged request matched the outcomes"
    pd.DataFrame(rows).to_csv(config.root / "outcomes.csv", index=False)
