"""``shipyard serve``: one model version on KServe V1, Open Inference V2 and /invocations."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.output import console
from shipyard.cli.state import CliState

__all__ = ["serve_cmd"]


def serve_cmd(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            help="NAME (its champion, else newest version), NAME/VERSION or NAME@ALIAS."
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8080,
    log_predictions: Annotated[
        bool, typer.Option(help="Write every prediction to the prediction log.")
    ] = True,
    max_batch_size: Annotated[
        int,
        typer.Option(min=1, help="Coalesce concurrent requests up to this many rows (1 = off)."),
    ] = 1,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Longest a request waits for company; 0 batches only what queued while the "
            "model was busy.",
        ),
    ] = 0.0,
) -> None:
    """Serve a registered model version over HTTP until interrupted."""
    import time

    import uvicorn

    from shipyard.registry import Tracking, get_version, parse_ref
    from shipyard.registry.aliases import CHAMPION, current_alias
    from shipyard.registry.refs import ModelRef
    from shipyard.serving.app import create_app
    from shipyard.serving.batcher import BatchSettings
    from shipyard.serving.hot_swap import GenerationWatcher, ModelSlot
    from shipyard.serving.loader import load_served_model
    from shipyard.serving.prediction_log import PredictionLogWriter

    state: CliState = ctx.obj
    config = state.config()
    client = Tracking(config).client
    parsed = parse_ref(ref)
    follow = parsed.version is None and parsed.alias is None
    if follow:
        champion = current_alias(client, parsed.name, CHAMPION)
        parsed = ModelRef(parsed.name, version=champion) if champion else parsed
    version = get_version(client, parsed)
    started = time.perf_counter()
    served = load_served_model(client, version.name, str(version.version))
    root = config.resolve(config.serving.logs)
    log = PredictionLogWriter(root) if log_predictions else None
    labels = PredictionLogWriter(root, kind="labels") if log_predictions else None
    slot = ModelSlot(served)
    watcher = GenerationWatcher(slot, store=state.store(), client=client) if follow else None
    batch = BatchSettings(
        max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, enabled=max_batch_size > 1
    )
    app = create_app(slot, log=log, labels=labels, batch=batch)
    console.print(
        f"Serving {served.name}/{served.version} ({served.flavour}) on "
        f"http://{host}:{port} — loaded in {time.perf_counter() - started:.2f} s"
    )
    writers = [w for w in (log, labels) if w is not None]
    for writer in writers:
        writer.start()
    if watcher is not None:
        watcher.start()
        console.print("Following the champion alias: promotions and rollbacks swap the model.")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if watcher is not None:
            watcher.stop()
        for writer in writers:
            writer.close()
        if log is not None:
            console.print(f"Prediction log: {log.written} written, {log.dropped} dropped.")
