"""``shipyard demo``: the whole loop on one machine, in about two minutes.

Act one: a fresh ``loans`` project is trained on river's Agrawal stream (approval
policy 0), scored, promoted, and served by two workers with the agent in-process.
Live traffic streams in with delayed labels; midway the policy switches to 2. The
agent's monitor sees the labelled accuracy fall and requests a retrain; continuous
training waits for data from after the alarm, validates it, retrains, scores the
candidate against the champion, shadows it, canaries it 10 → 50 → 100 %, and promotes
it. Act two: someone ships a worse candidate by hand (a labelling bug, no scorecard);
the agent rolls it back at the first canary step and pages the owner.

Everything the demo prints comes from the control plane (events, cycles, roll-outs)
and from the client's own records; the workspace is left for ``shipyard models
lineage``, ``models history``, ``monitor run`` and ``ct status`` to explore.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from shipyard.demo.server_process import DemoServer
from shipyard.demo.summary import (
    DemoSummary,
    is_rollback_page,
    page_facts,
    page_summary,
    print_summary,
)
from shipyard.project import Principal, Project

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from shipyard.config import Config
    from shipyard.demo.traffic import TrafficStream
    from shipyard.demo.workspace import Workspace
    from shipyard.registry import Tracking
    from shipyard.store import Event, Store

__all__ = ["DemoOptions", "DemoSummary", "run_demo"]

DEMO_PRINCIPAL = Principal.service("shipyard-demo")

NARRATED = (
    "retrain_requested",
    "ct.skipped",
    "ct.cycle_started",
    "ct.gate",
    "ct.cycle_finished",
    "rollout.started",
    "rollout.running",
    "rollout.promoting",
    "rollout.promoted",
    "rollout.rolled_back",
    "rollout.alert_delivered",
    "monitor.paused",
)


@dataclass(frozen=True)
class DemoOptions:
    """How big and how fast the demo runs."""

    folder: Path
    rate: float = 150.0  # live requests per second
    before_switch: int = 1500  # requests under the old policy
    label_delay: float = 1.0  # seconds from answer to label
    act_one_timeout: float = 120.0
    act_two_timeout: float = 60.0
    quick: bool = False  # shorter roll-out steps, fewer samples per step (the test's demo)
    seed: int = 0
    principal: Principal = DEMO_PRINCIPAL  # who the CLI says runs it


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoSummary:
    """Run both acts in ``options.folder`` (which must not exist yet); return the numbers."""
    from shipyard.demo.pager import PagerStandIn

    out = console or Console()
    started = time.monotonic()
    folder = options.folder.resolve()
    summary = DemoSummary(workspace=str(folder))
    with PagerStandIn() as pager:
        workspace, project = _setup(options, folder, pager.url, out)
        server = _server(workspace, project.config)
        try:
            server.start()
            workers = project.config.serving.workers
            _say(out, f"Serving loans with {workers} workers and the agent on {server.url}")
            _Acts(options, workspace, project, server.url, pager, summary, out).run()
        finally:
            server.stop()
    summary.elapsed_seconds = time.monotonic() - started
    ui = project.config.ui
    summary.dashboard_url = f"http://{ui.host}:{ui.port}/models/loans"
    print_summary(summary, out)
    (folder / ".shipyard" / "demo-summary.json").write_text(
        json.dumps(summary.to_dict(), indent=2, default=str) + "\n", encoding="utf-8"
    )
    return summary


# -- setting up ------------------------------------------------------------------------


def _setup(
    options: DemoOptions, folder: Path, pager_url: str, out: Console
) -> tuple[Workspace, Project]:
    from shipyard.demo.workspace import WorkspaceSettings, create_workspace
    from shipyard.evaluation.evaluate import evaluate_version
    from shipyard.governance.promotion import promote
    from shipyard.registry.refs import ModelRef
    from shipyard.training import train

    _title(out, "Act one: a model, served, drifts; the loop retrains and ships")
    settings = (
        WorkspaceSettings(
            ct_step_seconds=3.0,
            delivery_step_seconds=3.0,
            ct_min_requests=60,
            delivery_min_requests=60,
            min_samples=60,
            ct_recent_labelled=300,
        )
        if options.quick
        else WorkspaceSettings()
    )
    workspace = create_workspace(folder, seed=options.seed, pager_url=pager_url, settings=settings)
    _say(out, f"Workspace {folder}: loans on Agrawal policy 0, 4,000 training rows")
    project = Project(workspace.load_config(), options.principal)
    result = train(project, trigger="demo: initial training")
    _say(
        out,
        f"Trained loans/{result.version}: validation accuracy "
        f"{result.metrics.get('accuracy', float('nan')):.3f}",
    )
    record = evaluate_version(project, ModelRef("loans", version=result.version))
    _say(out, f"Scorecard on the golden set: {'passed' if record.passed else 'FAILED'}")
    promote(
        project,
        ModelRef("loans", version=result.version),
        to="champion",
        reason="first model",
    )
    _say(out, f"loans/{result.version} is champion")
    return workspace, project


def _server(workspace: Workspace, config: Config) -> DemoServer:
    """``shipyard serve loans --workers 2 --agent`` as a child process."""
    workers = config.serving.workers
    return DemoServer(
        workspace.root,
        ["loans", "--workers", str(workers), "--agent"],
        workspace.root / ".shipyard" / "demo-server.log",
        "server",
    )


# -- the two acts ----------------------------------------------------------------------


class _Acts:
    def __init__(
        self,
        options: DemoOptions,
        workspace: Workspace,
        project: Project,
        url: str,
        pager: Any,
        summary: DemoSummary,
        out: Console,
    ) -> None:
        self.options = options
        self.workspace = workspace
        self.project = project
        self.config = project.config
        self.url = url
        self.pager = pager
        self.summary = summary
        self.out = out
        self.store: Store = project.store
        self.tracking: Tracking = project.tracking
        self.last_event = max((e.id for e in self.store.events(limit=1)), default=0)
        self.pages_seen = 0
        self.switch_time: float | None = None

    def run(self) -> None:
        from shipyard.demo.agrawal import LiveTraffic
        from shipyard.demo.traffic import TrafficStream, traffic_progress
        from shipyard.governance.tokens import issue_token

        options = self.options
        total = options.before_switch + int(
            options.rate * (options.act_one_timeout + options.act_two_timeout)
        )
        traffic = LiveTraffic(total, switch_at=options.before_switch, seed=options.seed)
        # The live application sends labels, which needs a labeller's token.
        app_token = issue_token(
            self.project, name="loans-app", role="labeller", models=["loans"]
        ).token
        stream = TrafficStream(
            self.url,
            traffic,
            token=app_token,
            rate=options.rate,
            label_delay=options.label_delay,
            on_labelled=self.workspace.append_labelled,
            labelled_batch=200,
        )
        self.summary.switch_request = options.before_switch
        _say(
            self.out,
            f"Streaming {options.rate:g} requests/s; labels follow {options.label_delay:g} s "
            f"later; the policy switches from 0 to 2 at request {options.before_switch:,}",
        )
        with traffic_progress(self.out) as progress:
            task = progress.add_task("live traffic", total=total)
            stream.start()
            try:
                self._act_one(stream, progress, task)
                self._act_two(stream, progress, task)
            finally:
                final = stream.stop(drain=True)
        self.summary.requests = final.sent
        self.summary.failed_requests = final.failed
        if final.errors:
            self.summary.notes.append("failed requests: " + "; ".join(final.errors))
        self._accuracies(stream)
        self.project.close()

    def _act_one(self, stream: TrafficStream, progress: Progress, task: TaskID) -> None:
        deadline = (
            time.monotonic()
            + self.options.act_one_timeout
            + self.options.before_switch / self.options.rate
        )
        while time.monotonic() < deadline:
            snapshot = stream.snapshot()
            progress.update(task, **snapshot.progress_fields())
            if self.switch_time is None and snapshot.row >= stream.position_of_switch:
                self.switch_time = time.time()
                at = stream.position_of_switch
                self._line(f"[bold magenta]The approval policy switches (request {at:,})[/]")
            for event in self._new_events():
                self._narrate(event, stream)
                if event.kind == "ct.cycle_finished":
                    self._cycle_finished(event)
                    return
            time.sleep(0.2)
        self.summary.notes.append(
            f"act one did not finish within {self.options.act_one_timeout:g} s"
        )

    def _act_two(self, stream: TrafficStream, progress: Progress, task: TaskID) -> None:
        from shipyard.delivery.rollout import start_rollout
        from shipyard.registry.aliases import CHAMPION, current_alias

        self._line("")
        self._line("[bold]Act two: a worse candidate is shipped by hand[/]")
        version = self._train_worse()
        self.summary.bad_candidate = version
        champion = current_alias(self.tracking.client, "loans", CHAMPION)
        rollout = start_rollout(
            self.store,
            "loans",
            version,
            champion=champion,
            strategy="canary",
            steps=(10.0, 50.0, 100.0),
            step_seconds=self.config.delivery.step_seconds,
            min_requests=self.config.delivery.min_requests,
            context={"note": "shipped by hand in the demo's act two, without a scorecard"},
        )
        self._line(
            f"loans/{version} (trained on data with a labelling bug) rolled out as a "
            f"canary against champion loans/{champion}, skipping the scorecard"
        )
        rolled_out_at = time.time()
        deadline = time.monotonic() + self.options.act_two_timeout
        ended = None
        while time.monotonic() < deadline and ended is None:
            progress.update(task, **stream.snapshot().progress_fields())
            for event in self._new_events():
                self._narrate(event, stream)
                finished = ("rollout.rolled_back", "rollout.promoted", "rollout.aborted")
                if event.kind in finished and event.subject == f"model:loans/{version}":
                    ended = event
            time.sleep(0.2)
        if ended is None:
            self.summary.notes.append(
                f"act two: the roll-out did not end within {self.options.act_two_timeout:g} s"
            )
            return
        ended_at = ended.at.timestamp()
        if ended.kind == "rollout.rolled_back":
            steps = rollout.steps
            index = int(ended.payload.get("step_index", 0))
            self.summary.bad_rollback_step = (
                f"canary {steps[index]:g} % (step {index + 1} of {len(steps)})"
            )
            self.summary.bad_rollback_reason = str(ended.payload.get("reason"))
        else:
            self.summary.notes.append(
                f"act two: the worse candidate was {ended.kind}, not rolled back"
            )
        page = self.pager.wait_for(lambda body: is_rollback_page(body, version), timeout=15)
        self.summary.page = page_facts(page) if page else None
        for event in self._new_events():
            self._narrate(event, stream)
        # the traffic the candidate ever got: its answers while its roll-out lasted
        records = stream.records()
        during = [r for r in records if rolled_out_at <= r.sent_at <= ended_at + 2]
        bad = [r for r in records if r.version == version]
        self.summary.bad_requests = len(bad)
        self.summary.bad_share_during_rollout = len(bad) / len(during) if during else None
        self.summary.bad_share_of_all = len(bad) / len(records) if records else None

    # -- helpers -----------------------------------------------------------------

    def _train_worse(self) -> str:
        from shipyard.demo.agrawal import worse_training_frame
        from shipyard.training import train

        folder = self.workspace.root / "data" / "bad"
        folder.mkdir(parents=True, exist_ok=True)
        worse_training_frame(rows=1000, seed=self.options.seed).to_parquet(
            folder / "labels-with-a-bug.parquet", index=False
        )
        settings = self.config.train.model_copy(
            update={"data": folder / "labels-with-a-bug.parquet"}
        )
        result = train(
            self.project.with_config(self.config.model_copy(update={"train": settings})),
            trigger="demo: shipped by hand",
        )
        return result.version

    def _new_events(self) -> list[Event]:
        events = [e for e in self.store.events(limit=100) if e.id > self.last_event]
        if events:
            self.last_event = max(e.id for e in events)
        return sorted(events, key=lambda e: e.id)

    def _narrate(self, event: Event, stream: TrafficStream) -> None:
        if event.kind not in NARRATED:
            return
        payload = event.payload
        if event.kind == "retrain_requested":
            self._drift(event, stream)
        elif event.kind == "ct.skipped":
            self._line(f"  continuous training {payload.get('state')}: {payload.get('reason')}")
        elif event.kind == "ct.cycle_started":
            self._line(
                f"  [bold]retraining[/]: cycle {payload.get('cycle')} ({payload.get('cause')})"
            )
        elif event.kind == "ct.gate":
            self._gate(payload)
        elif event.kind == "ct.cycle_finished":
            self._line(
                f"  cycle {payload.get('cycle')} {payload.get('state')}: {payload.get('reason')}"
            )
        elif event.kind.startswith("rollout."):
            self._rollout(event)
        elif event.kind == "monitor.paused":
            self._line(f"  [red]monitor paused the model[/]: {payload.get('signal')}")
        self._pages()

    def _drift(self, event: Event, stream: TrafficStream) -> None:
        payload = event.payload
        signal_name = str(payload.get("signal"))
        moment = event.at.timestamp()
        if self.switch_time is None or moment < self.switch_time:
            self.summary.false_alarms_before_switch += 1
            self._line(f"  [yellow]drift flagged before the switch[/] ({signal_name})")
            return
        if self.summary.detection_requests is not None:
            return
        after = [
            r
            for r in stream.records()
            if r.row >= stream.position_of_switch and r.sent_at <= moment
        ]
        self.summary.detection_requests = len(after)
        self.summary.detection_seconds = moment - self.switch_time
        self.summary.drift_signal = signal_name
        self._line(
            f"  [bold red]drift detected[/]: {signal_name} at the {payload.get('level')} level, "
            f"{len(after):,} requests ({moment - self.switch_time:.1f} s) after the switch"
        )

    def _gate(self, payload: dict[str, Any]) -> None:
        from shipyard.pipelines.cycles import list_cycles

        cycle = next(
            (c for c in list_cycles(self.store, "loans", limit=5) if c.id == payload.get("cycle")),
            None,
        )
        gate = cycle.gate(str(payload.get("gate"))) if cycle else None
        from shipyard.pipelines.gates import gate_summary

        mark = {"passed": "[green]✓[/]", "failed": "[red]✗[/]"}.get(str(payload.get("status")), "–")
        detail = gate_summary(gate) if gate else ""
        self._line(f"    {mark} gate {payload.get('gate')}: {detail}")

    def _rollout(self, event: Event) -> None:
        payload = event.payload
        label = event.subject.removeprefix("model:")
        if event.kind == "rollout.started":
            self._line(f"  roll-out of {label}: {payload.get('strategy')} {payload.get('step')}")
        elif event.kind == "rollout.running" and payload.get("reason", "").startswith("step"):
            self._line(f"    {label}: {payload.get('reason')}, next step")
        elif event.kind == "rollout.rolled_back":
            self._line(f"  [bold red]{label} rolled back[/]: {payload.get('reason')}")
        elif event.kind == "rollout.promoted":
            self._line(f"  [bold green]{label} promoted to champion[/]")
        elif event.kind == "rollout.alert_delivered":
            self._line(f"  owner paged about {label}")

    def _pages(self) -> None:
        pages = self.pager.pages
        for body in pages[self.pages_seen :]:
            self._line(f"  [cyan]pager[/]: {page_summary(body)}")
        self.pages_seen = len(pages)

    def _cycle_finished(self, event: Event) -> None:
        from shipyard.pipelines.cycles import list_cycles

        cycle = next(
            c for c in list_cycles(self.store, "loans", limit=5) if c.id == event.payload["cycle"]
        )
        self.summary.cycle = cycle.to_dict()
        if cycle.state == "promoted" and self.switch_time is not None:
            self.summary.new_champion = cycle.candidate
            self.summary.switch_to_champion_seconds = event.at.timestamp() - self.switch_time
        else:
            self.summary.notes.append(
                f"act one: cycle {cycle.id} ended {cycle.state}: {cycle.reason}"
            )

    def _accuracies(self, stream: TrafficStream) -> None:
        records = [r for r in stream.records() if r.ok and r.row >= stream.position_of_switch]
        old = [r.correct for r in records if r.version == "1" and r.correct is not None]
        new = [
            r.correct
            for r in records
            if self.summary.new_champion
            and r.version == self.summary.new_champion
            and r.correct is not None
        ]
        self.summary.accuracy_old_after_switch = sum(old) / len(old) if old else None
        self.summary.accuracy_new_champion = sum(new) / len(new) if new else None

    def _line(self, text: str) -> None:
        self.out.print(text)


def _title(out: Console, text: str) -> None:
    out.rule(f"[bold]{text}")


def _say(out: Console, text: str) -> None:
    out.print(f"[green]•[/] {text}")
