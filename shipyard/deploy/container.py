"""A container build context for one model version: ``shipyard build NAME/VERSION``.

:func:`build_context` writes a folder any image builder takes as it is::

    Dockerfile            slim Python base, non-root user, HEALTHCHECK on readiness,
                          ENTRYPOINT ["shipyard", "serve"]
    .dockerignore         .shipyard/, .env, credentials, keys, .git never enter a layer
    requirements.txt      pinned from the version's recorded training environment
    wheels/               a wheel of the running Shipyard (it is not on PyPI)
    app/shipyard.yaml     the project's configuration without its database URL or secrets
    app/model/            only with ``bake``: the model's files, served without a registry
    ci/build-image.yml    GitHub Actions: build, scan with Trivy (HIGH/CRITICAL fail), push
    build.json            what was pinned from where, and how the image serves

Nothing secret is written: the database URL comes from the environment at run time
(a Kubernetes Secret), tokens and the signing key stay where they are, and before the
context is handed back every file is searched for the database password.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import yaml

from shipyard.deploy.dockerfile import (
    DOCKERIGNORE,
    VERSION_FILE,
    ImagePlan,
    ci_workflow,
    dockerfile,
)
from shipyard.deploy.pins import (
    Pins,
    applicable,
    parse_freeze,
    pin_requirements,
    wheel_metadata,
)
from shipyard.deploy.redaction import SECRET_WORDS, refuse_secrets, sanitised_config
from shipyard.deploy.wheel import DISTRIBUTION, shipyard_wheel
from shipyard.errors import ConfigError, NotFoundError
from shipyard.jsonable import Record

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from shipyard.project import Project

__all__ = ["BuildContext", "build_context"]

ENVIRONMENT_FILE = "environment/requirements.txt"  # what `shipyard train` records
ENVIRONMENT_JSON = "environment/environment.json"


_STORAGE_EXTRAS = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}


@dataclass(frozen=True)
class BuildContext(Record):
    """A written build context: where, for which version, and what the image will run."""

    path: str
    name: str
    version: str
    mode: Literal["registry", "bake"]
    base_image: str
    serve: list[str]  # the container's command line
    wheel: str
    requirements: int
    not_recorded: list[str]  # pinned from this machine: the run did not record them
    extras: list[str]
    files: list[str]


def build_context(
    project: Project,
    ref: str,
    out: Path,
    *,
    bake: bool = False,
    follow: bool = False,
    wheel: Path | None = None,
    extras: Iterable[str] = (),
) -> BuildContext:
    """Write the build context for ``ref`` (``NAME/VERSION`` or ``NAME@ALIAS``) into ``out``.

    ``bake`` copies the model's files in; otherwise the container loads the version from
    the registry at start. ``follow`` makes a registry-mode container serve ``NAME``
    (its champion and traffic settings) instead of the pinned version. ``wheel`` is a
    prebuilt Shipyard wheel; without one, a wheel is built from the installed source.
    """
    from shipyard.registry import get_version, parse_ref
    from shipyard.registry.pointers import trusted_ref

    if bake and follow:
        raise ConfigError(
            "--bake and --follow do not go together: a baked image holds one version.",
            hint="Drop --follow to bake this version, or drop --bake to follow the champion.",
        )
    _check_out(out)
    parsed = parse_ref(ref)
    client = project.client
    if parsed.version is None:
        parsed = trusted_ref(project.store, client, parsed)
    found = get_version(client, parsed)
    name, number = found.name, str(found.version)
    recorded, python = _recorded_environment(project, found)
    with tempfile.TemporaryDirectory(prefix="shipyard-build-") as scratch:
        model = _download_model(found, Path(scratch) / "model")
        wheel_file = shipyard_wheel(Path(scratch) / "wheels", wheel)
        # Shipyard's requirements as the wheel declares them: the installed metadata of a
        # development install can lag behind its pyproject.toml.
        requires, provided = wheel_metadata(wheel_file)
        wanted = _extras(project, extras, provided)
        roots = [*_requirement_lines(model / "requirements.txt")]
        roots += applicable(requires, wanted, wheel_file.name)
        model_pins = parse_freeze(_read(model / "requirements.txt"))
        pins = pin_requirements(roots, recorded, model=model_pins, skip=[DISTRIBUTION])
        if bake:
            _verify_files(project, name, number, model)
        staging = Path(tempfile.mkdtemp(prefix=".shipyard-build-", dir=out.parent))
        try:
            plan = _write(
                project, found, staging, out, model, pins, python, bake, follow, wheel_file
            )
            refuse_secrets(project, staging)
            if out.exists():
                out.rmdir()  # checked empty above
            staging.rename(out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    files = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    return BuildContext(
        path=str(out),
        name=name,
        version=number,
        mode="bake" if bake else "registry",
        base_image=plan.base_image,
        serve=["shipyard", "serve", plan.serve_ref],
        wheel=plan.wheel,
        requirements=len(pins.pins),
        not_recorded=list(pins.not_recorded),
        extras=wanted,
        files=files,
    )


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(
            f"--out {out} already exists and is not an empty folder.",
            hint="Pass a new or empty folder: a context is written whole, never merged "
            "into what is there.",
        )
    if not out.parent.is_dir():
        raise ConfigError(
            f"--out {out}: its parent folder {out.parent} does not exist.",
            hint="Create the parent folder first, or pass another --out.",
        )


def _recorded_environment(project: Project, found: ModelVersion) -> tuple[dict[str, str], str]:
    """The run's recorded ``pip freeze`` ({name: version}) and its Python ``X.Y``."""
    from mlflow.exceptions import MlflowException

    label = f"{found.name}/{found.version}"
    hint = (
        "`shipyard train` records the environment of every run; retrain the version "
        "(`shipyard train`, or `shipyard retrain NAME`) and build the new one."
    )
    if not found.run_id:
        raise NotFoundError(
            f"{label} has no recorded environment: it was not registered from a run.", hint
        )
    with tempfile.TemporaryDirectory(prefix="shipyard-env-") as folder:
        try:
            path = project.client.download_artifacts(found.run_id, ENVIRONMENT_FILE, folder)
        except (MlflowException, OSError):
            raise NotFoundError(
                f"{label} has no recorded environment: its run {found.run_id} has no "
                f"{ENVIRONMENT_FILE}.",
                hint,
            ) from None
        frozen = parse_freeze(Path(path).read_text(encoding="utf-8"))
        try:
            described = project.client.download_artifacts(found.run_id, ENVIRONMENT_JSON, folder)
            python = str(json.loads(Path(described).read_text(encoding="utf-8"))["python"])
        except (MlflowException, OSError, KeyError, ValueError):
            python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not frozen:
        raise NotFoundError(f"{label}'s recorded environment lists no packages.", hint)
    major_minor = ".".join(python.split(".")[:2])
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if major_minor != here:
        raise ConfigError(
            f"{label} was trained on Python {major_minor}; `shipyard build` runs on {here}, "
            "and reads the dependency graph from this interpreter.",
            hint=f"Run `shipyard build` from a Python {major_minor} environment.",
        )
    return frozen, major_minor


def _extras(project: Project, asked: Iterable[str], known: Iterable[str]) -> list[str]:
    """Shipyard's extras the image needs: the database driver, the bucket's client, asked."""
    config = project.config
    wanted = list(dict.fromkeys(asked))
    if config.db_url.startswith("postgresql"):
        wanted.append("postgres")
    scheme = urlparse(str(config.artifact_root)).scheme
    if scheme in _STORAGE_EXTRAS:
        wanted.append(_STORAGE_EXTRAS[scheme])
    known = set(known)
    unknown = [extra for extra in wanted if extra not in known]
    if unknown:
        raise ConfigError(
            f"--extra {unknown[0]}: Shipyard has no such extra.",
            hint=f"Choose from: {', '.join(sorted(known))}.",
        )
    return sorted(dict.fromkeys(wanted))


def _download_model(found: ModelVersion, folder: Path) -> Path:
    import mlflow
    from mlflow.exceptions import MlflowException

    source = found.source or f"models:/{found.name}/{found.version}"
    folder.mkdir(parents=True)
    try:
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(folder)))
    except (MlflowException, OSError) as exc:
        text = getattr(exc, "message", None) or str(exc)
        raise NotFoundError(
            f"Cannot fetch the files of {found.name}/{found.version} from {source}: "
            f"{text.strip().splitlines()[0]}",
            hint="Check that the artifact store is reachable from here "
            "(`shipyard models show NAME/VERSION` prints the source).",
        ) from None
    if not (path / "MLmodel").is_file():
        raise NotFoundError(
            f"{found.name}/{found.version}'s source {source} is not an MLflow model (no MLmodel).",
            hint="Build a version registered by `shipyard train`.",
        )
    return path


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def _requirement_lines(path: Path) -> Iterator[str]:
    for raw in _read(path).splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            yield line


def _verify_files(project: Project, name: str, version: str, folder: Path) -> None:
    """The server's own load-time check, run on the files before they are baked in."""
    from shipyard.governance.integrity import signature_check

    check = signature_check(project)
    if check is not None:
        check(name, version, folder)  # raises when refused, as a server would


def _write(
    project: Project,
    found: ModelVersion,
    root: Path,
    out: Path,
    model: Path,
    pins: Pins,
    python: str,
    bake: bool,
    follow: bool,
    wheel: Path,
) -> ImagePlan:
    from shipyard import __version__

    name, number = found.name, str(found.version)
    app = root / "app"
    app.mkdir()
    config_text, copied = sanitised_config(project)
    (app / "shipyard.yaml").write_text(config_text, encoding="utf-8")
    for relative in copied:
        target = app / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project.config.root / relative, target)
    if bake:
        shutil.copytree(model, app / "model")
        described = _version_record(found) | {"model_id": _drop_model_id(app / "model" / "MLmodel")}
        (app / VERSION_FILE).write_text(
            json.dumps(described, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    wheels = root / "wheels"
    wheels.mkdir()
    shutil.copy2(wheel, wheels / wheel.name)
    wheel_name = wheel.name
    plan = ImagePlan(
        name=name,
        version=number,
        base_image=f"python:{python}-slim",
        wheel=wheel_name,
        serve_ref=name if follow else f"{name}/{number}",
        bake=bake,
        shipyard_version=__version__,
    )
    header = [
        f"{name}/{number}: pinned by `shipyard build` from run {found.run_id}'s recorded",
        "environment (environment/requirements.txt) and the model's requirements.txt.",
        "Shipyard itself installs from wheels/.",
    ]
    (root / "requirements.txt").write_text(pins.text(header), encoding="utf-8")
    (root / "Dockerfile").write_text(dockerfile(plan), encoding="utf-8")
    (root / ".dockerignore").write_text(DOCKERIGNORE, encoding="utf-8")
    (root / "ci").mkdir()
    (root / "ci" / "build-image.yml").write_text(
        ci_workflow(plan, _context_in_repo(out)), encoding="utf-8"
    )
    record = {
        "model": {"name": name, "version": number, "run_id": found.run_id},
        "mode": "bake" if bake else "registry",
        "base_image": plan.base_image,
        "serve": ["shipyard", "serve", plan.serve_ref],
        "wheel": wheel_name,
        "pins": [pin.to_dict() for pin in pins.pins],
        "not_recorded": list(pins.not_recorded),
    }
    (root / "build.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return plan


def _drop_model_id(mlmodel: Path) -> str | None:
    """Remove the MLmodel's ``model_id`` and return it.

    It names a logged model in the registry the version came from; the image's own
    workspace has no such record, and MLflow would look it up on every load.
    """
    data = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    model_id = data.pop("model_id", None)
    mlmodel.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(model_id) if model_id else None


def _version_record(found: ModelVersion) -> dict[str, Any]:
    tags = {
        key: value
        for key, value in (found.tags or {}).items()
        if not any(word in key.lower() for word in SECRET_WORDS)
    }
    return {
        "name": found.name,
        "version": str(found.version),
        "description": found.description or "",
        "tags": tags,
        "run_id": found.run_id,
    }


def _context_in_repo(out: Path) -> str:
    """Where the context sits in its git repository, for the workflow's paths ("." if none)."""
    target = out.resolve()
    for candidate in target.parents:
        if (candidate / ".git").exists():
            return target.relative_to(candidate).as_posix()
    return "."
