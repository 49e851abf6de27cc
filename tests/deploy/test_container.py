"""``shipyard build``: the build context, and the image it describes, run without an engine.

No container engine can build the image here: Debian's podman installs, but the base
image cannot be pulled (Docker Hub is unreachable) and ``podman run`` cannot create a
container in this sandbox (see docs/container.md). So the image is proven the way the
issue asks: :class:`DockerfileRun` reads the generated Dockerfile and performs each
instruction on this machine, with the image's paths (``/opt/venv``, ``/srv/shipyard``,
``/tmp/build``) mapped onto a temporary folder:

- ``FROM python:X.Y-slim``: this machine's Python X.Y (checked equal), nothing else;
- ``ENV``, ``WORKDIR``, ``COPY``: as written;
- ``RUN``: through ``/bin/sh -c`` with the image's environment, so ``python -m venv``
  makes a FRESH virtual environment and ``pip install -r requirements.txt <wheel>``
  installs the pinned requirements and the wheel exactly as the build would (pip's cache
  is BuildKit's cache mount, the same folder); the one line skipped is ``useradd``,
  which would add a user to this machine;
- ``ENTRYPOINT`` + ``CMD``: run as the container would, with only the image's
  environment plus what ``docker run -e`` adds (the port, and the database URL in
  registry mode), in the image's working directory; ``HEALTHCHECK``'s own command says
  when it is ready, and a real prediction request is answered over HTTP on 127.0.0.1.

The fresh environment is built once per session (the ``image`` fixture), baked mode
first; the registry-mode image reuses its installed environment only because its
requirements and wheel are byte-identical, as a builder's layer cache would.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

from shipyard.cli import run
from shipyard.config import Config
from shipyard.deploy.container import BuildContext, build_context
from shipyard.deploy.dockerfile import APP, BUILD, VENV
from shipyard.errors import ConfigError, NotFoundError, ShipyardError
from shipyard.governance.signing import generate_keys
from tests.support import (
    TrainedExamples,
    call,
    free_port,
    load,
    project_of,
    register_with_plain_mlflow,
    token_for,
    wait_for,
)

PASSWORD = "Pg-pa55word-do-not-ship"
ROUTING_KEY = "pd-routing-key-do-not-ship"
WEBHOOK = "https://hooks.example.com/services/T000/B000/webhook-secret-do-not-ship"


@dataclass
class DockerfileRun:
    """A Dockerfile's instructions performed on this machine (see the module docstring)."""

    context: Path
    root: Path  # the image's filesystem: image paths map under it
    reuse_venv: Path | None = None  # a byte-identical earlier build's environment (layer cache)
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    user: str = "root"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def venv(self) -> Path:
        return self.reuse_venv or self.root / VENV.lstrip("/")

    def mapped(self, text: str) -> str:
        """``text`` with the image's paths replaced by where they live on this machine."""
        for image_path in (VENV, APP, BUILD):
            local = self.venv if image_path == VENV else self.root / image_path.lstrip("/")
            text = text.replace(image_path, str(local))
        return text

    def instructions(self) -> Iterator[tuple[str, str]]:
        text = (self.context / "Dockerfile").read_text()
        logical = re.sub(r"\\\n", " ", text)
        for line in logical.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                keyword, _, rest = line.partition(" ")
                yield keyword.upper(), rest.strip()

    def build(self) -> None:
        """Perform every instruction up to the container's start."""
        self.root.mkdir(parents=True, exist_ok=True)
        for keyword, rest in self.instructions():
            getattr(self, f"_{keyword.lower()}")(rest)

    def _from(self, rest: str) -> None:
        match = re.fullmatch(r"python:(\d+\.\d+)-slim", rest)
        assert match, f"unexpected base image {rest!r}"
        assert match[1] == f"{sys.version_info.major}.{sys.version_info.minor}"
        base_python = Path(sys._base_executable).parent  # the base image's python on PATH
        self.env = {"PATH": f"{base_python}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}

    def _env(self, rest: str) -> None:
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            value = re.sub(r"\$(\w+)", lambda m: self.env.get(m[1], ""), value)
            self.env[key] = self.mapped(value)

    def _run(self, rest: str) -> None:
        words = rest.split()
        mounts = [w for w in words if w.startswith("--mount=")]
        for mount in mounts:  # pip's cache mount: /root/.cache/pip is this machine's cache
            assert "type=cache" in mount and "target=/root/.cache/pip" in mount, mount
        command = " ".join(w for w in words if not w.startswith("--mount="))
        if command.startswith("useradd "):
            self.skipped.append(command)  # would add a user to this machine
            return
        if self.reuse_venv is not None and (
            command.startswith("python -m venv") or command.startswith("pip install")
        ):
            self.skipped.append(f"(layer cache) {command}")
            return
        started = time.perf_counter()
        done = subprocess.run(
            ["/bin/sh", "-c", self.mapped(command)],
            cwd=self.workdir or self.root,
            env={**self.env, "HOME": self.env.get("HOME", "/root")},
            capture_output=True,
            text=True,
            check=False,
        )
        self.seconds[command.split()[0] + " " + command.split()[1]] = time.perf_counter() - started
        assert done.returncode == 0, f"RUN {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def _copy(self, rest: str) -> None:
        words = [w for w in rest.split() if not w.startswith("--chown=")]
        *sources, destination = words
        target = Path(self.mapped(destination))
        for source in sources:
            origin = self.context / source
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target if not destination.endswith("/") else target / source)

    def _workdir(self, rest: str) -> None:
        self.workdir = Path(self.mapped(rest))
        self.workdir.mkdir(parents=True, exist_ok=True)

    def _user(self, rest: str) -> None:
        self.user = rest

    def _expose(self, rest: str) -> None:
        self.exposed.append(int(rest))

    def _healthcheck(self, rest: str) -> None:
        self.healthcheck = json.loads(rest[rest.index("CMD ") + 4 :])

    def _entrypoint(self, rest: str) -> None:
        self.entrypoint = json.loads(rest)

    def _cmd(self, rest: str) -> None:
        self.cmd = json.loads(rest)

    def start(self, **docker_run_env: str) -> subprocess.Popen[str]:
        """``docker run -e K=V …``: ENTRYPOINT + CMD in WORKDIR with the image's environment."""
        return subprocess.Popen(
            [*self.entrypoint, *self.cmd],
            cwd=self.workdir,
            env={**self.env, **docker_run_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def healthy(self, **docker_run_env: str) -> bool:
        """The image's HEALTHCHECK command, run as Docker runs it: exit status 0 is healthy."""
        done = subprocess.run(
            self.healthcheck,
            cwd=self.workdir,
            env={**self.env, **docker_run_env},
            capture_output=True,
            check=False,
        )
        return done.returncode == 0


@dataclass
class Image:
    """A built context and its Dockerfile performed, ready to start."""

    built: BuildContext
    run: DockerfileRun
    config: Config


@pytest.fixture(scope="session")
def churn(trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The churn example trained once (churn/1), private to these tests."""
    return trained_examples.copy(tmp_path_factory.mktemp("build") / "churn", {})


@pytest.fixture(scope="session")
def images(churn: Config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Image]:
    """Both contexts of churn/1 built, and their Dockerfiles performed: bake, then registry."""
    project = project_of(churn)
    folder = tmp_path_factory.mktemp("images")
    done: dict[str, Image] = {}
    try:
        for mode in ("bake", "registry"):
            # The second build takes the first one's wheel (--wheel): others edit the sources
            # of this checkout meanwhile, and a wheel built later could differ.
            wheel = None if mode == "bake" else _wheel_of(done["bake"].built)
            built = build_context(
                project, "churn/1", folder / f"ctx-{mode}", bake=mode == "bake", wheel=wheel
            )
            reuse = None
            if mode == "registry":
                first = done["bake"].built
                same = all(
                    _digest(Path(first.path) / name) == _digest(Path(built.path) / name)
                    for name in ("requirements.txt", f"wheels/{built.wheel}")
                )
                reuse = done["bake"].run.venv if same else None
                assert same, "the registry build's requirements or wheel differ from the bake's"
            image = DockerfileRun(Path(built.path), folder / f"root-{mode}", reuse_venv=reuse)
            image.build()
            done[mode] = Image(built, image, churn)
    finally:
        project.close()
    return done


def _wheel_of(built: BuildContext) -> Path:
    return Path(built.path) / "wheels" / built.wheel


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _serve_and_predict(image: Image, **docker_run_env: str) -> dict[str, object]:
    port = str(free_port())
    env = {"SHIPYARD_SERVING__PORT": port, "SHIPYARD_SERVING__HOST": "127.0.0.1"} | docker_run_env
    process = image.run.start(**env)
    try:
        wait_for(
            lambda: image.run.healthy(**env) or _exited(process),
            what="the image's HEALTHCHECK to pass",
            timeout=240,
        )
        rows = pd.read_csv(image.config.root / "data" / "golden.csv").head(5)
        body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")})
        status, headers, answer = call(
            f"http://127.0.0.1:{port}/v1/models/churn:predict", body.encode()
        )
        assert status == 200, answer
        return {"answer": json.loads(answer), "headers": headers}
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _exited(process: subprocess.Popen[str]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the container's command exited:\n{_rest(process)}")
    return False


def _rest(process: subprocess.Popen[str]) -> str:
    if process.poll() is None or process.stdout is None:
        return ""
    return process.stdout.read()[-4000:]


def _expected(config: Config) -> list[object]:
    import mlflow

    project = project_of(config)
    try:
        version = project.client.get_model_version("churn", "1")
        model = mlflow.pyfunc.load_model(version.source)
    finally:
        project.close()
    rows = pd.read_csv(config.root / "data" / "golden.csv").head(5).drop(columns=["churned"])
    return [int(value) for value in model.predict(rows)]


def _predictions(answer: Mapping[str, object]) -> list[object]:
    predictions = answer["predictions"]
    assert isinstance(predictions, list)
    return [int(p) if not isinstance(p, dict) else int(p.get("label", p)) for p in predictions]


# --- the image, run ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_baked_image_installs_its_pins_and_answers(images: dict[str, Image]) -> None:
    image = images["bake"]
    run_ = image.run
    # The fresh environment holds exactly the pins and Shipyard: nothing resolved unpinned.
    frozen = subprocess.run(
        [str(run_.venv / "bin" / "python"), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {line.split("==")[0].lower().replace("_", "-") for line in frozen.splitlines()}
    installed = {name.split(" @ ")[0] for name in installed}
    pinned = _pins(Path(image.built.path))
    assert installed - {"shipyard-mlops"} == set(pinned), installed ^ set(pinned)
    assert run_.user != "root" and run_.user.split(":")[0] != "0"
    assert [s for s in run_.skipped if s.startswith("useradd")], run_.skipped
    # The baked workspace needs no registry: no database URL is passed.
    served = _serve_and_predict(image)
    assert _predictions(served["answer"]) == _expected(image.config)  # type: ignore[arg-type]
    assert (run_.workdir / ".shipyard" / "shipyard.db").is_file()  # type: ignore[operator]
    print(f"fresh venv + pinned install: {sum(run_.seconds.values()):.1f} s {run_.seconds}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_registry_image_fetches_the_version_at_start(images: dict[str, Image]) -> None:
    image = images["registry"]
    assert not (image.run.workdir / "model").exists()  # type: ignore[operator]
    served = _serve_and_predict(image, SHIPYARD_DATABASE_URL=image.config.db_url)
    assert _predictions(served["answer"]) == _expected(image.config)  # type: ignore[arg-type]


def _pins(context: Path) -> dict[str, str]:
    pins = {}
    for line in (context / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"not pinned: {line!r}"
            pins[name.lower().replace("_", "-")] = version
    return pins


# --- the context -------------------------------------------------------------------------


def test_context_has_a_slim_non_root_dockerfile_with_a_readiness_healthcheck(
    churn: Config, tmp_path: Path
) -> None:
    project = project_of(churn)
    try:
        built = build_context(project, "churn/1", tmp_path / "ctx")
    finally:
        project.close()
    context = Path(built.path)
    dockerfile = (context / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", dockerfile, re.M)
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    health = next(line for line in dockerfile.splitlines() if line.strip().startswith("CMD ["))
    assert "/v2/health/ready" in health and "urllib.request" in health
    assert "curl" not in dockerfile
    assert re.search(r"^EXPOSE 8080$", dockerfile, re.M)
    assert 'ENTRYPOINT ["shipyard", "serve"]' in dockerfile
    assert dockerfile.rstrip().endswith('CMD ["churn/1"]')
    assert built.serve == ["shipyard", "serve", "churn/1"] and built.mode == "registry"
    # Pinned from the recorded environment: the model's own pins are there, at their versions.
    pins = _pins(context)
    recorded = _recorded(churn)
    for name in ("mlflow", "scikit-learn", "pandas", "numpy", "uvicorn", "starlette"):
        assert pins[name] == recorded[name], name
    assert "pytest" not in pins and "shipyard-mlops" not in pins  # not the whole dev venv
    assert (context / "wheels" / built.wheel).is_file()
    with zipfile.ZipFile(context / "wheels" / built.wheel) as wheel:
        assert "shipyard/serving/server.py" in wheel.namelist()
    ignored = (context / ".dockerignore").read_text().splitlines()
    for pattern in (".shipyard/", ".env", "**/credentials*", ".git/", "*.pem"):
        assert pattern in ignored
    # The CI template builds, scans (failing on HIGH/CRITICAL) and only then pushes.
    workflow = yaml.safe_load((context / "ci" / "build-image.yml").read_text())
    steps = workflow["jobs"]["image"]["steps"]
    names = [step.get("name", step.get("uses")) for step in steps]
    scan = next(step for step in steps if "trivy" in step.get("uses", ""))
    assert scan["with"]["severity"] == "HIGH,CRITICAL" and scan["with"]["exit-code"] == "1"
    assert names.index("Build") < names.index(scan["name"]) < names.index("Push")
    assert json.loads((context / "build.json").read_text())["model"]["version"] == "1"


def _recorded(config: Config) -> dict[str, str]:
    from shipyard.deploy.pins import parse_freeze

    project = project_of(config)
    try:
        run_id = project.client.get_model_version("churn", "1").run_id
        text = Path(
            project.client.download_artifacts(run_id, "environment/requirements.txt")
        ).read_text()
    finally:
        project.close()
    return {k.lower(): v for k, v in parse_freeze(text).items()}


def test_no_secret_reaches_the_context(trained_examples: TrainedExamples, tmp_path: Path) -> None:
    config = trained_examples.copy(tmp_path / "churn", {})
    real_url = config.db_url
    private = tmp_path / "keys" / "churn.pem"
    generate_keys(private, config.root / "shipyard.pub")
    settings = yaml.safe_load((config.root / "shipyard.yaml").read_text())
    settings["database_url"] = f"postgresql+psycopg://shipyard:{PASSWORD}@db.internal/shipyard"
    settings["signing"] = {"private_key": str(private)}
    settings["monitoring"] = {
        "routes": [
            {
                "kind": "pagerduty",
                "url": "https://events.pagerduty.com/v2/enqueue",
                "routing_key": ROUTING_KEY,
            },
            {"kind": "slack", "url": WEBHOOK},
        ]
    }
    settings["security"] = {"require_token": "always", "token_days": 30}  # about secrets: kept
    (config.root / "shipyard.yaml").write_text(yaml.safe_dump(settings))
    pii_key = config.resolve(config.pii.secret)
    pii_key.parent.mkdir(parents=True, exist_ok=True)
    pii_key.write_text(os.urandom(32).hex() + "\n")
    # The project runs on its SQLite file (as --database-url would say); the file's URL,
    # with its password, stands for a team's PostgreSQL.
    project = project_of(load(config.root, {"database_url": real_url}))
    try:
        token = token_for(project, "operator")
        built = build_context(project, "churn/1", tmp_path / "ctx", bake=True)
    finally:
        project.close()
    needles = {
        "database password": PASSWORD,
        "token": token,
        "token's secret part": token[16:48],  # shp_ + 12-character id + 32-character secret
        "PII hashing key": pii_key.read_text().strip(),
        "routing key": ROUTING_KEY,
        "webhook": WEBHOOK,
    }
    body = b"".join(
        line for line in private.read_bytes().splitlines() if not line.startswith(b"-----")
    )
    needles["private key"] = body.decode()
    found = _grep(Path(built.path), needles)
    assert not found, found
    # Public things do travel: the public key (so the image can verify), the settings.
    image_settings = yaml.safe_load((Path(built.path) / "app" / "shipyard.yaml").read_text())
    assert "database_url" not in image_settings
    assert image_settings["model"]["name"] == "churn"
    assert image_settings["security"] == {"require_token": "always", "token_days": 30}
    assert "routes" not in image_settings.get("monitoring", {})
    assert (Path(built.path) / "app" / "shipyard.pub").is_file()


def test_a_secret_in_a_copied_file_fails_the_build_and_leaves_nothing(
    trained_examples: TrainedExamples, tmp_path: Path
) -> None:
    config = trained_examples.copy(tmp_path / "churn", {})
    key = os.urandom(32).hex()
    pii_key = config.resolve(config.pii.secret)
    pii_key.parent.mkdir(parents=True, exist_ok=True)
    pii_key.write_text(key + "\n")
    scorecard = config.root / "scorecard.yaml"  # copied into the image for /metrics bounds
    scorecard.write_text(scorecard.read_text() + f"# pasted by mistake: {key}\n")
    project = project_of(config)
    try:
        with pytest.raises(ShipyardError) as refused:
            build_context(project, "churn/1", tmp_path / "ctx")
    finally:
        project.close()
    assert "app/scorecard.yaml holds the PII hashing key" in refused.value.message
    assert key not in str(refused.value)
    assert not (tmp_path / "ctx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["churn"]  # no staging folder left


def _grep(folder: Path, needles: Mapping[str, str]) -> list[str]:
    """Every (file, secret) where the secret occurs, wheels searched member by member."""
    found = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        blobs = [(str(path), path.read_bytes())]
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as archive:
                blobs += [(f"{path}!{n}", archive.read(n)) for n in archive.namelist()]
        for where, data in blobs:
            found += [f"{where}: {label}" for label, s in needles.items() if s.encode() in data]
    return found


# --- bad input ---------------------------------------------------------------------------


def test_unknown_version_is_a_clear_error(
    churn: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = str(churn.root / "shipyard.yaml")
    code = run(["--config", config_file, "build", "churn/99", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == NotFoundError.exit_code, err
    assert "churn/99" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()


def test_version_without_a_recorded_environment_is_a_clear_error(
    trained_examples: TrainedExamples, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = trained_examples.copy(tmp_path / "churn")
    register_with_plain_mlflow(config, "plain")
    config_file = str(config.root / "shipyard.yaml")
    code = run(["--config", config_file, "build", "plain/1", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == NotFoundError.exit_code, err
    assert "plain/1 has no recorded environment" in err
    assert "shipyard train" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()


def test_existing_non_empty_out_is_refused_and_left_alone(
    churn: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ctx"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    config_file = str(churn.root / "shipyard.yaml")
    code = run(["--config", config_file, "build", "churn/1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code, err
    assert f"--out {out} already exists and is not an empty folder" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_bake_with_follow_is_refused(churn: Config, tmp_path: Path) -> None:
    project = project_of(churn)
    try:
        with pytest.raises(ConfigError, match="--bake and --follow"):
            build_context(project, "churn/1", tmp_path / "c", bake=True, follow=True)
    finally:
        project.close()


def test_follow_serves_the_name_and_an_unknown_extra_is_named(
    churn: Config, tmp_path: Path
) -> None:
    project = project_of(churn)
    try:
        built = build_context(project, "churn", tmp_path / "f", follow=True)
        with pytest.raises(ConfigError, match="--extra sparkle: Shipyard has no such extra"):
            build_context(project, "churn/1", tmp_path / "x", extras=["sparkle"])
    finally:
        project.close()
    # A bare NAME is its recorded champion; with none promoted yet, its newest version.
    assert built.version == "1" and built.serve == ["shipyard", "serve", "churn"]
    assert (Path(built.path) / "Dockerfile").read_text().rstrip().endswith('CMD ["churn"]')
    assert not (tmp_path / "x").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_a_bucket_artifact_root_installs_its_extra(
    churn: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = str(churn.root / "shipyard.yaml")
    out = tmp_path / "ctx"
    args = ["--config", config_file, "--artifact-root", "s3://models/churn"]
    code = run([*args, "build", "churn/1", "--out", str(out), "--extra", "postgres", "--json"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert json.loads(printed.out)["extras"] == ["postgres", "s3"]
    pins = _pins(out)
    for name in ("boto3", "s3fs", "fsspec", "psycopg", "psycopg-binary"):
        assert name in pins, name


def test_cli_json(churn: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = str(churn.root / "shipyard.yaml")
    out = tmp_path / "ctx"
    code = run(["--config", config_file, "build", "churn/1", "--out", str(out), "--json"])
    printed = capsys.readouterr().out
    assert code == 0
    answer = json.loads(printed)
    assert answer["path"] == str(out) and answer["mode"] == "registry"
    assert answer["serve"] == ["shipyard", "serve", "churn/1"]
    assert "Dockerfile" in answer["files"] and "ci/build-image.yml" in answer["files"]
    assert os.access(out / "Dockerfile", os.R_OK)


# --- pinning -----------------------------------------------------------------------------


def test_pins_follow_extras_and_prefer_the_model_then_the_record() -> None:
    from importlib import metadata

    from shipyard.deploy.pins import pin_requirements

    installed = {name: metadata.version(name) for name in ("uvicorn", "uvloop", "h11", "click")}
    recorded = {"uvicorn": "0.0.1-recorded", "uvloop": installed["uvloop"], "h11": "9.9"}
    pins = pin_requirements(
        ["uvicorn[standard]"], recorded, model={"uvicorn": installed["uvicorn"]}
    )
    by_name = {pin.name.lower(): pin for pin in pins.pins}
    assert by_name["uvicorn"].version == installed["uvicorn"]  # the model's pin wins
    assert by_name["uvicorn"].source == "model"
    assert by_name["uvloop"].source == "recorded"  # reached only through the [standard] extra
    assert by_name["h11"].version == "9.9" and by_name["h11"].source == "recorded"
    assert by_name["click"].source == "installed" and "click" in pins.not_recorded
    assert "pytest" not in by_name


def test_a_pin_that_breaks_a_requirement_is_refused_naming_both() -> None:
    from shipyard.deploy.pins import pin_requirements

    with pytest.raises(ConfigError) as refused:
        pin_requirements(["starlette>=0.37"], {"starlette": "0.1.0"})
    assert "requires starlette>=0.37" in refused.value.message
    assert "starlette==0.1.0" in refused.value.message
