"""``shipyard deploy k8s``: every generated manifest validated offline, secrets never written.

No cluster is reachable here, so nothing is applied: custom resources are checked against
the KServe and KEDA CRDs pinned in ``../shared/k8s/`` in a strict mode that rejects
unknown fields (a negative test proves it does), core kinds against the schemas that
``kubernetes-validate`` ships, also strict. ``tests.support.k8s_schemas`` holds both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
import yaml

from shipyard.cli import run
from shipyard.cli.state import TOKEN_VARIABLE
from shipyard.config import Config, load_config
from shipyard.deploy.autoscaling import PODS_METRIC, QUEUE_SERIES, REQUEST_SERIES
from shipyard.deploy.kubernetes import portable_settings, render, write_manifests
from shipyard.deploy.workload import PROJECT_DIR, KubernetesSpec
from shipyard.errors import ConfigError
from shipyard.monitoring.alerting.routes import routes_from_config
from tests.support import (
    EXAMPLE,
    TrainedExamples,
    call,
    copy_example,
    free_port,
    in_process,
    load,
    project_of,
    register_numeric,
    server_environment,
    token_for,
    wait_for,
)
from tests.support.k8s_schemas import (
    KUBERNETES_VERSION,
    crd_schema,
    validate_manifest,
    yaml_documents,
)
from tests.support.servers import HOST

DB_PASSWORD = "hunter2-Zq9-not-a-real-one"
ROUTING_KEY = "R0uT1nGkEy5ecret0000000000000000"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XyZsEcReTwEbHoOk"
BEARER = "Bearer sEcReT-header-value-1234"
IMAGE = "registry.example.com/churn-serving:1"
# What the CLI passes: the variables it reads the database URL and the token from.
VARIABLES = {"database-url": "SHIPYARD_DATABASE_URL", "token": TOKEN_VARIABLE}


def _settings(**extra: Any) -> dict[str, Any]:
    """The churn example's shipyard.yaml, with a shared database and secret-bearing routes."""
    settings = yaml.safe_load((EXAMPLE / "shipyard.yaml").read_text(encoding="utf-8"))
    settings["database_url"] = f"postgresql+psycopg://shipyard:{DB_PASSWORD}@db.internal:5432/ml"
    settings.setdefault("monitoring", {})["routes"] = [
        {
            "kind": "pagerduty",
            "url": "https://events.pagerduty.com/v2/enqueue",
            "routing_key": ROUTING_KEY,
        },
        {"kind": "slack", "url": SLACK_URL},
        {
            "kind": "webhook",
            "url": "https://hooks.example.com/a",
            "headers": {"Authorization": BEARER},
        },
        {"kind": "webhook", "url": "https://hooks.example.com/b", "routing_key": None},
    ]
    settings.update(extra)
    return settings


def _documents(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in sorted(folder.rglob("*.yaml")) for d in yaml_documents(p)]


Emitted = tuple[Path, list[tuple[Path, dict[str, Any]]]]


def _emit(tmp_path: Path, **spec: Any) -> Emitted:
    folder = tmp_path / "manifests"
    manifests = render(
        KubernetesSpec(model="churn", image=IMAGE, secret_variables=VARIABLES, **spec), _settings()
    )
    write_manifests(manifests, folder)
    return folder, _documents(folder)


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> Emitted:
    """The manifests of the default spec, rendered once for the tests that only read them."""
    return _emit(tmp_path_factory.mktemp("default-manifests"))


@pytest.mark.parametrize(
    ("autoscale", "keda_metric", "scaler"),
    [
        ("cpu", "rps", "HorizontalPodAutoscaler"),
        ("rps", "rps", "HorizontalPodAutoscaler"),
        ("keda", "rps", "ScaledObject"),
        ("keda", "queue", "ScaledObject"),
    ],
)
def test_every_generated_manifest_validates_strictly(
    tmp_path: Path, autoscale: str, keda_metric: str, scaler: str
) -> None:
    folder, documents = _emit(
        tmp_path, autoscale=autoscale, keda_metric=keda_metric, namespace="ml-serving"
    )
    checked = {}
    for path, document in documents:
        if path.name == "prometheus-adapter-rules.yaml":
            assert "rules" in document  # adapter configuration, not a Kubernetes object
            continue
        checked[(path.relative_to(folder).as_posix(), document["kind"])] = validate_manifest(
            document
        )
        assert document["metadata"].get("namespace", "ml-serving") == "ml-serving"
    kinds = [kind for _, kind in checked]
    assert sorted(kinds) == sorted(
        [
            "ConfigMap",
            "InferenceService",
            "ServingRuntime",
            "InferenceService",
            "Deployment",
            "Service",
            scaler,
            "Deployment",
            "Secret",
        ]
    )
    assert "HorizontalPodAutoscaler" not in kinds or "ScaledObject" not in kinds  # never two
    assert all("strict" in how for how in checked.values())
    assert checked[("kserve/inferenceservice.yaml", "InferenceService")].startswith("pinned CRD")
    assert checked[("plain/deployment.yaml", "Deployment")].startswith("kubernetes-validate")
    assert (folder / "README.md").is_file()


@pytest.mark.parametrize("autoscale", ["cpu", "keda"])
def test_references_between_objects_resolve(tmp_path: Path, autoscale: str) -> None:
    """What schemas cannot see: selectors match labels, autoscalers target the Deployment,
    and every ConfigMap and Secret key a pod reads is one the files define."""
    _, documents = _emit(tmp_path, autoscale=autoscale)
    named = {(d["kind"], d["metadata"]["name"]): d for _, d in documents}
    config_maps = {name for kind, name in named if kind == "ConfigMap"}
    (secret,) = [d for _, d in documents if d["kind"] == "Secret"]
    pods = []
    for _, document in documents:
        if document["kind"] == "Deployment":
            template = document["spec"]["template"]
            labels = template["metadata"]["labels"]
            assert document["spec"]["selector"]["matchLabels"].items() <= labels.items()
            pods.append(template["spec"])
        elif (
            document["kind"] == "InferenceService" and "containers" in document["spec"]["predictor"]
        ):
            pods.append(document["spec"]["predictor"])
        elif document["kind"] == "ServingRuntime":
            pods.append(document["spec"])
    assert len(pods) == 4  # serving, agent, InferenceService, ServingRuntime
    for pod in pods:
        for volume in pod["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
        for container in pod["containers"]:
            mounts = {m["name"] for m in container["volumeMounts"]}
            assert mounts <= {v["name"] for v in pod["volumes"]}
            for entry in container["env"]:
                if "valueFrom" in entry:
                    ref = entry["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == secret["metadata"]["name"]
                    assert ref["key"] in secret["stringData"]
    service = named[("Service", "churn")]
    serving = named[("Deployment", "churn")]
    assert (
        service["spec"]["selector"].items()
        <= serving["spec"]["template"]["metadata"]["labels"].items()
    )
    port = serving["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"]
    assert service["spec"]["ports"][0]["targetPort"] == port
    scaler = named.get(("HorizontalPodAutoscaler", "churn")) or named[("ScaledObject", "churn")]
    assert scaler["spec"]["scaleTargetRef"]["name"] == "churn"
    assert scaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    agent = named[("Deployment", "churn-agent")]
    assert not (
        service["spec"]["selector"].items()
        <= agent["spec"]["template"]["metadata"]["labels"].items()
    )  # the Service never sends predictions to the agent


def test_modes_write_only_what_they_name(tmp_path: Path) -> None:
    plain, _ = _emit(tmp_path / "a", mode="plain", agent=False)
    assert {p.parent.name for p in plain.rglob("*.yaml")} == {"config", "plain", "examples"}
    kserve, _ = _emit(tmp_path / "b", mode="kserve")
    assert {p.parent.name for p in kserve.rglob("*.yaml")} == {
        "config",
        "kserve",
        "kserve-runtime",
        "agent",
        "examples",
    }


def test_strict_mode_rejects_unknown_fields(tmp_path: Path) -> None:
    """Each pinned CRD accepts the generated object, and rejects it with one invented
    field; the upstream (non-strict) schema would have let that field through."""
    _, documents = _emit(tmp_path, autoscale="keda")
    by_kind: dict[str, dict[str, Any]] = {}
    for _, document in documents:  # kserve/ sorts before kserve-runtime/
        if "kind" in document:
            by_kind.setdefault(document["kind"], document)
    spots = {
        "InferenceService": ("spec", "predictor", "containers", 0),
        "ServingRuntime": ("spec", "supportedModelFormats", 0),
        "ScaledObject": ("spec", "triggers", 0),
    }
    for kind, spot in spots.items():
        document = json.loads(json.dumps(by_kind[kind]))
        target: Any = document
        for step in spot:
            target = target[step]
        target["replicaz"] = 3  # a typo the API server would reject
        with pytest.raises(jsonschema.ValidationError, match="replicaz"):
            validate_manifest(document)
        loose = crd_schema(document["apiVersion"], kind, strict_mode=False)
        jsonschema.Draft7Validator(loose).validate(document)  # upstream lets it through
    deployment = json.loads(json.dumps(by_kind["Deployment"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(jsonschema.ValidationError, match="imagePullPolicyy"):
        validate_manifest(deployment)


def test_kubernetes_validate_covers_the_version_the_tests_pin(emitted: Emitted) -> None:
    """... and the support module's validator (built once per kind) agrees with the
    package's own ``validate``: both accept a generated Deployment, both reject a typo."""
    import kubernetes_validate

    assert kubernetes_validate.utils.latest_version() == KUBERNETES_VERSION
    deployment = next(d for _, d in emitted[1] if d["kind"] == "Deployment")
    assert kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True) == "1.37"
    assert validate_manifest(deployment) == "kubernetes-validate 1.37 (strict)"
    typo = json.loads(json.dumps(deployment))
    typo["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError, match="replicaz"):
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)
    with pytest.raises(jsonschema.ValidationError, match="replicaz"):
        validate_manifest(typo)


def test_kserve_declares_standard_mode_v2_probes_and_a_warm_replica(tmp_path: Path) -> None:
    folder, _ = _emit(tmp_path, min_replicas=2, max_replicas=6)
    isvc = next(yaml_documents(folder / "kserve/inferenceservice.yaml"))
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)
    assert "canaryTrafficPercent" not in predictor  # roll-outs stay in Shipyard's router
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert {"name": "PROTOCOL", "value": "v2"} in container["env"]
    assert container["command"] == ["shipyard"]
    assert container["args"][:2] == ["serve", "churn"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert not security["allowPrivilegeEscalation"]

    runtime, runtime_isvc = list(yaml_documents(folder / "kserve-runtime/servingruntime.yaml"))
    assert runtime["spec"]["protocolVersions"] == ["v2"]
    (fmt,) = runtime["spec"]["supportedModelFormats"]
    model = runtime_isvc["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2"
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] == fmt["name"]
    assert runtime_isvc["spec"]["predictor"]["minReplicas"] == 2
    assert runtime_isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"


def test_probes_and_scrape_path_answer_on_a_real_server(
    trained_project: Config, emitted: Emitted
) -> None:
    """Every path a probe or the scrape annotation names answers 200 from the server."""
    from shipyard.models.served import load_served_model
    from shipyard.registry import Tracking
    from shipyard.serving.app import create_app

    folder, _ = emitted
    deployment = next(yaml_documents(folder / "plain/deployment.yaml"))
    template = deployment["spec"]["template"]
    (container,) = template["spec"]["containers"]
    paths = {container[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe")}
    paths |= {container["readinessProbe"]["httpGet"]["path"]}
    paths |= {template["metadata"]["annotations"]["prometheus.io/path"]}
    assert paths == {"/v2/health/live", "/v2/health/ready", "/metrics"}
    served = load_served_model(Tracking(trained_project).client, "churn", "1")
    with in_process(create_app(served)) as client:
        for path in sorted(paths):
            assert client.call(path)[0] == 200, path


def test_autoscaling_uses_the_servers_metric_names(tmp_path: Path) -> None:
    """The series the HPA, the adapter rule and KEDA read are what /metrics exports."""
    from prometheus_client import generate_latest

    from shipyard.serving.metrics import ServerMetrics

    metrics = ServerMetrics(None, lambda: [])  # type: ignore[arg-type]  # no slot is read
    metrics.count_request("churn", "1", "champion", "v2", 200)
    metrics.batch_queued.set(2)
    exported = generate_latest(metrics.registry).decode()
    assert f'{REQUEST_SERIES}{{model="churn"' in exported
    assert f"{QUEUE_SERIES} 2.0" in exported

    folder, _ = _emit(tmp_path / "rps", autoscale="rps")
    hpa = next(yaml_documents(folder / "plain/hpa.yaml"))
    (metric,) = hpa["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == PODS_METRIC
    assert hpa["spec"]["minReplicas"] == 1
    rules = next(yaml_documents(folder / "examples/prometheus-adapter-rules.yaml"))
    assert rules["rules"][0]["name"]["as"] == PODS_METRIC
    assert REQUEST_SERIES in rules["rules"][0]["seriesQuery"]

    folder, _ = _emit(tmp_path / "keda", autoscale="keda", keda_metric="queue")
    scaled = next(yaml_documents(folder / "plain/scaledobject.yaml"))
    assert scaled["spec"]["minReplicaCount"] == 1
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and QUEUE_SERIES in trigger["metadata"]["query"]
    assert not (folder / "plain/hpa.yaml").exists()  # KEDA owns the HPA


def test_agent_is_one_replica_recreated(emitted: Emitted) -> None:
    folder, _ = emitted
    agent = next(yaml_documents(folder / "agent/deployment.yaml"))
    assert agent["spec"]["replicas"] == 1
    assert agent["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = agent["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["agent"]
    serving = next(yaml_documents(folder / "plain/deployment.yaml"))
    assert serving["spec"]["selector"]["matchLabels"] != agent["spec"]["selector"]["matchLabels"]


def test_a_baked_image_brings_its_own_workspace(tmp_path: Path) -> None:
    """``--baked``: the image serves the version baked in; no ConfigMap, Secret or agent,
    and its root filesystem stays writable for the workspace in the image."""
    folder, documents = _emit(tmp_path, ref="churn/1", baked=True, agent=False)
    for _, document in documents:
        validate_manifest(document)
    assert {d["kind"] for _, d in documents} == {
        "InferenceService",
        "ServingRuntime",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    }
    assert not (folder / "config").exists() and not (folder / "agent").exists()
    (container,) = next(yaml_documents(folder / "plain/deployment.yaml"))["spec"]["template"][
        "spec"
    ]["containers"]
    assert container["args"][:2] == ["serve", "churn/1"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    assert container["securityContext"]["runAsNonRoot"] is True
    assert not any("valueFrom" in e for e in container["env"])
    assert "workspace baked into it" in (folder / "README.md").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="needs a version"):
        KubernetesSpec(
            model="churn", image=IMAGE, secret_variables=VARIABLES, baked=True, agent=False
        )


def test_readme_says_what_to_create_and_where_roll_outs_live(tmp_path: Path) -> None:
    folder, _ = _emit(tmp_path, namespace="ml")
    text = (folder / "README.md").read_text(encoding="utf-8")
    block = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0] == "kubectl -n ml create secret generic shipyard \\"
    assert all(line.endswith(" \\") for line in block[:-1]) and not block[-1].endswith("\\")
    assert len(block) == 1 + 2 + 5  # the command, the two keys, five alert-route secrets
    assert "Canary, shadow and sticky routing stay inside Shipyard's router" in text
    assert "Nothing was applied to a cluster" in text


def test_no_secret_value_in_any_generated_file(emitted: Emitted) -> None:
    folder, documents = emitted
    text = "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file())
    for secret in (DB_PASSWORD, ROUTING_KEY, SLACK_URL, "XyZsEcReTwEbHoOk", BEARER, "db.internal"):
        assert secret not in text, secret
    # The pods get each secret by reference: the database URL and the token ...
    deployment = next(d for p, d in documents if p.name == "deployment.yaml" and "plain" in str(p))
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SHIPYARD_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "database-url"
    assert env["SHIPYARD_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "token"
    assert all("value" not in env[name] for name in env if name.startswith(("SHIPYARD_D", "ALERT")))


def test_configmap_config_loads_in_the_pod_and_routes_read_the_secret(
    emitted: Emitted, tmp_path: Path
) -> None:
    """The ConfigMap's shipyard.yaml is a valid configuration once the Secret's variables
    are set, and the alert routes get their keys from those variables."""
    folder, _ = emitted
    text = next(yaml_documents(folder / "config/configmap.yaml"))["data"]["shipyard.yaml"]
    assert "database_url" not in yaml.safe_load(text)
    pod = tmp_path / "pod"
    pod.mkdir()
    (pod / "shipyard.yaml").write_text(text, encoding="utf-8")
    environ = {
        "SHIPYARD_DATABASE_URL": "postgresql+psycopg://u:p@db:5432/ml",
        "ALERT_ROUTE_0_ROUTING_KEY": ROUTING_KEY,
        "ALERT_ROUTE_1_URL": SLACK_URL,
        "ALERT_ROUTE_2_AUTHORIZATION": BEARER,
        "ALERT_ROUTE_2_URL": "https://hooks.example.com/a",
        "ALERT_ROUTE_3_URL": "https://hooks.example.com/b",
    }
    config = load_config(pod / "shipyard.yaml", environ=environ)
    assert config.db_url == environ["SHIPYARD_DATABASE_URL"]
    pagerduty, slack, webhook, _ = routes_from_config(config.monitoring.routes, environ=environ)
    assert ROUTING_KEY in repr(vars(pagerduty))
    assert SLACK_URL in repr(vars(slack))
    assert BEARER in repr(vars(webhook))


def test_a_password_elsewhere_in_the_config_is_refused() -> None:
    settings = _settings(storage={"endpoint_url": "https://minio:s3cret@minio.local:9000"})
    with pytest.raises(ConfigError, match=r"storage\.endpoint_url"):
        portable_settings(settings)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min_replicas": 0}, "warm replica"),
        ({"min_replicas": 3, "max_replicas": 2}, "--max-replicas"),
        ({"autoscale": "memory"}, "--autoscale"),
        ({"namespace": "ML_Serving"}, "--namespace"),
        ({"image": "has space:1"}, "--image"),
        ({"cpu_request": "lots"}, "--cpu-request"),
        ({"cpu_request": "3", "cpu_limit": "2500m"}, "at most --cpu-limit"),
        ({"memory_request": "3Gi", "memory_limit": "2048Mi"}, "at most --memory-limit"),
        ({"model": "__"}, "--name"),
        ({"ref": "churn/1", "baked": True}, "no shared control plane"),
    ],
)
def test_bad_settings_are_named(change: dict[str, Any], message: str) -> None:
    KubernetesSpec(  # the limits may equal the requests
        model="churn",
        image=IMAGE,
        secret_variables=VARIABLES,
        cpu_request="2",
        cpu_limit="2000m",
        memory_request="1Gi",
        memory_limit="1024Mi",
    )
    with pytest.raises(ConfigError, match=message):
        KubernetesSpec(
            **{"model": "churn", "image": IMAGE, "secret_variables": VARIABLES, **change}
        )


def _pod_environment(
    container: dict[str, Any], secret: dict[str, str], project: Path, home: Path
) -> dict[str, str]:
    """The container's environment as the kubelet builds it: plain values, and each
    ``secretKeyRef`` read from ``secret``; the image's folders stand at ``project``/``home``."""
    environ = server_environment()
    for entry in container["env"]:
        if "valueFrom" in entry:
            environ[entry["name"]] = secret[entry["valueFrom"]["secretKeyRef"]["key"]]
        else:
            value = entry["value"].replace(PROJECT_DIR, str(project))
            environ[entry["name"]] = str(home) if value == "/tmp" else value
    return environ


def test_the_pod_command_serves_as_the_manifest_says(
    trained_examples: TrainedExamples, tmp_path: Path
) -> None:
    """Run the Deployment's container command with its environment, its ConfigMap's
    shipyard.yaml and its Secret's values, as the kubelet would (the image's project
    folder and /tmp stand in tmp_path, the host is 127.0.0.1 instead of every
    interface): the probes pass, it predicts, /metrics has the series the autoscalers
    read, and it writes only into the workspace the manifest makes writable."""
    config = trained_examples.copy(tmp_path / "churn", {})
    secret = {
        "database-url": config.db_url,
        "token": token_for(project_of(config), "operator", name="k8s"),
    }
    port = free_port()
    spec = KubernetesSpec(
        model="churn", image=IMAGE, secret_variables=VARIABLES, port=port, mode="plain"
    )
    settings = yaml.safe_load((config.root / "shipyard.yaml").read_text(encoding="utf-8"))
    folder = tmp_path / "manifests"
    write_manifests(render(spec, settings), folder)
    config_map = next(yaml_documents(folder / "config/configmap.yaml"))
    pod_spec = next(yaml_documents(folder / "plain/deployment.yaml"))["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]

    project = tmp_path / "srv-shipyard"  # the image's project folder: `shipyard build` copies
    project.mkdir()  # the scorecard there; the ConfigMap's shipyard.yaml is mounted over it
    (project / "scorecard.yaml").write_bytes((config.root / "scorecard.yaml").read_bytes())
    (project / "shipyard.yaml").write_text(config_map["data"]["shipyard.yaml"], encoding="utf-8")
    home = tmp_path / "tmp"
    home.mkdir()
    before = {p for p in project.rglob("*")}
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert sorted(writable) == ["/srv/shipyard/.shipyard", "/tmp"]

    args = [a if a != "0.0.0.0" else HOST for a in container["args"]]
    command = [str(Path(sys.executable).parent / container["command"][0]), *args]
    url = f"http://{HOST}:{port}"
    process = subprocess.Popen(
        command,
        cwd=container["workingDir"].replace(PROJECT_DIR, str(project)),
        env=_pod_environment(container, secret, project, home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def probe(path: str) -> int:
        if process.poll() is not None:
            raise AssertionError(f"the pod's command exited:\n{process.stdout.read()}")  # type: ignore[union-attr]
        try:
            return call(url + path)[0]
        except OSError:
            return 0  # not listening yet: the port refuses until the model is loaded

    try:
        for name in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = container[name]["httpGet"]["path"]
            wait_for(lambda p=path: probe(p) == 200, what=f"{name} {path}", timeout=240)
        rows = pd.read_csv(config.root / "data" / "golden.csv").head(2).drop(columns=["churned"])
        body = json.dumps({"instances": rows.to_dict("records")}).encode()
        status, _, answer = call(f"{url}/v1/models/churn:predict", body)
        assert status == 200, answer
        assert len(json.loads(answer)["predictions"]) == 2
        metrics = call(url + "/metrics")[2].decode()
        assert f"{REQUEST_SERIES}{{" in metrics and 'model="churn"' in metrics
        assert QUEUE_SERIES in metrics
    finally:
        process.terminate()
        process.wait(timeout=60)
    created = {p for p in project.rglob("*")} - before
    assert created and all(p.is_relative_to(project / ".shipyard") for p in created)

    # The agent's Deployment: its command starts, authenticated by the same Secret.
    agent_spec = next(yaml_documents(folder / "agent/deployment.yaml"))["spec"]["template"]
    (agent,) = agent_spec["spec"]["containers"]
    log = tmp_path / "agent.log"
    with log.open("w") as out:
        started = subprocess.Popen(
            [str(Path(sys.executable).parent / agent["command"][0]), *agent["args"]],
            cwd=agent["workingDir"].replace(PROJECT_DIR, str(project)),
            env=_pod_environment(agent, secret, project, home),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: "Agent running" in log.read_text() or started.poll() is not None,
                what="the agent to start",
                timeout=240,
            )
            assert started.poll() is None, log.read_text()
        finally:
            started.terminate()
            started.wait(timeout=60)


def test_cli_writes_validated_manifests_without_the_token(
    trained_examples: TrainedExamples,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = trained_examples.copy(tmp_path / "churn", {})
    routes = {
        "routes": [{"kind": "pagerduty", "url": "https://e.example", "routing_key": ROUTING_KEY}]
    }
    path = config.root / "shipyard.yaml"
    settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    settings.setdefault("monitoring", {}).update(routes)
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    token = token_for(project_of(config), "operator", name="k8s")
    monkeypatch.chdir(config.root)
    monkeypatch.setenv("SHIPYARD_TOKEN", token)
    out = tmp_path / "k8s"

    # Bad input first: each is refused with what to do, and nothing is written.
    assert (
        run(["deploy", "k8s", "churn", "--emit", str(out), "--image", IMAGE, "--min-replicas", "0"])
        == 2
    )
    assert "warm replica" in capsys.readouterr().err
    assert run(["deploy", "k8s", "nosuch", "--emit", str(out), "--image", IMAGE]) == 3
    err = capsys.readouterr().err
    assert "nosuch" in err and "churn" in err  # names the registered models
    assert run(["deploy", "k8s", "churn", "--emit", str(out)]) == 2
    assert "shipyard build" in capsys.readouterr().err
    assert not out.exists()
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "old.yaml").write_text("kind: Old\n", encoding="utf-8")
    assert run(["deploy", "k8s", "churn", "--emit", str(occupied), "--image", IMAGE]) == 2
    assert "not a new or empty folder" in capsys.readouterr().err
    assert [p.name for p in occupied.iterdir()] == ["old.yaml"]

    args = ["deploy", "k8s", "churn", "--emit", str(out), "--image", IMAGE, "--namespace", "ml"]
    assert run([*args, "--autoscale", "keda", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {f["path"] for f in shown["files"]} >= {
        "kserve/inferenceservice.yaml",
        "plain/scaledobject.yaml",
    }
    assert shown["secret_keys"]["token"] == "SHIPYARD_TOKEN"
    for _, document in _documents(out):
        validate_manifest(document)
    text = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file())
    assert token not in text and token[4:] not in text
    assert ROUTING_KEY not in text
    assert str(config.db_url) not in text


def test_cli_on_a_shared_database_writes_neither_its_password_nor_a_token(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A team's project: shipyard.yaml names PostgreSQL with a password (the test server
    trusts local connections, so any password is accepted) and commands need a token."""
    from sklearn.linear_model import LogisticRegression

    root = copy_example(tmp_path / "churn")
    url = postgres_url.replace("://postgres@", f"://postgres:{DB_PASSWORD}@")
    assert DB_PASSWORD in url
    text = (root / "shipyard.yaml").read_text(encoding="utf-8")
    (root / "shipyard.yaml").write_text(f"database_url: {url}\n{text}", encoding="utf-8")
    monkeypatch.chdir(root)
    assert run(["init"]) == 0  # the shared database's first admin token, saved for us
    admin = token_for(project_of(load(root)), "admin", name="deployer")
    register_numeric(load(root), "churn", lambda X, y: LogisticRegression().fit(X, y), "sklearn")
    monkeypatch.setenv("SHIPYARD_TOKEN", admin)
    capsys.readouterr()

    out = tmp_path / "k8s"
    assert run(["deploy", "k8s", "churn", "--emit", str(out), "--image", IMAGE]) == 0
    printed = capsys.readouterr()
    files = [p for p in out.rglob("*") if p.is_file()]
    for document in (d for p in files if p.suffix == ".yaml" for d in yaml_documents(p)):
        if "kind" in document:
            validate_manifest(document)
    everything = "\n".join([printed.out, printed.err, *(p.read_text() for p in files)])
    assert DB_PASSWORD not in everything and url not in everything
    assert admin not in everything and admin[4:20] not in everything
    assert "shared database" not in everything  # no note: the database is shared already


def test_name_sets_every_object_name_and_the_model_stays_the_registrys(tmp_path: Path) -> None:
    _, documents = _emit(tmp_path, name="churn-api", autoscale="keda")
    names = {d["metadata"]["name"] for _, d in documents}
    assert names == {
        "churn-api",
        "churn-api-config",
        "churn-api-agent",
        "churn-api-runtime",
        "shipyard",
    }
    serving = next(
        d
        for _, d in documents
        if d["metadata"]["name"] == "churn-api" and d["kind"] == "Deployment"
    )
    assert serving["spec"]["template"]["spec"]["containers"][0]["args"][1] == "churn"
    scaled = next(d for _, d in documents if d["kind"] == "ScaledObject")
    assert 'model="churn"' in scaled["spec"]["triggers"][0]["metadata"]["query"]
