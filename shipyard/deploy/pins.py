"""Pinned requirements for an image: what serving a version needs, at its recorded versions.

A version's run records the whole environment it was trained in (``pip freeze`` form, in
``environment/requirements.txt``), and its MLflow model lists the libraries the model
needs (``requirements.txt`` in the model folder: MLflow and the flavour's library).
The image needs less than the whole training environment (no notebooks, no test tools)
and more than the model's list (Shipyard itself and everything it imports), so
:func:`pin_requirements` walks the dependency graph from Shipyard's own requirements and
the model's, reading each distribution's declared requirements from the installed
metadata, and pins every distribution it reaches to the version the run recorded.
"""

from __future__ import annotations

import zipfile
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.parser import Parser
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Literal

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from shipyard.errors import ConfigError
from shipyard.jsonable import Record

__all__ = ["Pin", "Pins", "applicable", "parse_freeze", "pin_requirements", "wheel_metadata"]

Source = Literal["model", "recorded", "installed"]


@dataclass(frozen=True)
class Pin(Record):
    """One distribution at one version, and where the version came from.

    ``model``: the MLflow model's own requirements.txt; ``recorded``: the run's recorded
    environment; ``installed``: neither recorded it, so the version installed where
    ``shipyard build`` ran is used (reported, because it was not what training used).
    """

    name: str
    version: str
    source: Source

    @property
    def line(self) -> str:
        """The requirements.txt line: ``name==version``."""
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Pins(Record):
    """The pinned closure, sorted by name, and the distributions pinned from this machine."""

    pins: tuple[Pin, ...]
    not_recorded: tuple[str, ...] = field(default=())

    def text(self, header: Iterable[str] = ()) -> str:
        """A requirements.txt: ``header`` lines as comments, then one pin a line."""
        comments = [f"# {line}" if line else "#" for line in header]
        return "\n".join([*comments, *(pin.line for pin in self.pins)]) + "\n"


def parse_freeze(text: str) -> dict[str, str]:
    """``pip freeze`` lines as {canonical name: version}; other lines are skipped."""
    versions: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, version = line.partition("==")
        if sep and name and version:
            versions[canonicalize_name(name.split("[", 1)[0].strip())] = version.strip()
    return versions


def _requirement(text: str, origin: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise ConfigError(
            f"{origin} has a requirement pip cannot read: {text!r} ({exc}).",
            hint="Fix the requirement line, or rebuild the model with `shipyard train`.",
        ) from None


@lru_cache(maxsize=1)
def _environment() -> dict[str, str]:
    return {str(key): str(value) for key, value in default_environment().items()}


def _wanted(requirement: Requirement, extras: Iterable[str]) -> bool:
    """Whether ``requirement`` applies here, for a distribution asked for with ``extras``."""
    if requirement.marker is None:
        return True
    base = _environment()
    return any(requirement.marker.evaluate({**base, "extra": extra}) for extra in ("", *extras))


def wheel_metadata(wheel: Path) -> tuple[list[str], list[str]]:
    """A wheel's declared requirements (``Requires-Dist``) and extras (``Provides-Extra``)."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise ConfigError(
                f"{wheel.name} is not a wheel: it has {len(names)} .dist-info/METADATA files.",
                hint="Pass a wheel built with `pip wheel --no-deps`.",
            )
        message = Parser().parsestr(archive.read(names[0]).decode("utf-8"))
    return message.get_all("Requires-Dist") or [], message.get_all("Provides-Extra") or []


def applicable(requires: Iterable[str], extras: Iterable[str], origin: str) -> list[str]:
    """The requirements in ``requires`` that apply here with ``extras``, markers dropped."""
    wanted = list(extras)
    chosen = []
    for text in requires:
        requirement = _requirement(text, origin)
        if _wanted(requirement, wanted):
            chosen.append(_without_marker(requirement))
    return chosen


def pin_requirements(
    roots: Iterable[str],
    recorded: Mapping[str, str],
    *,
    model: Mapping[str, str] | None = None,
    skip: Iterable[str] = (),
) -> Pins:
    """Pin everything ``roots`` need, transitively, to the recorded versions.

    ``roots`` are requirement strings (``shipyard-mlops[postgres]``, ``mlflow==3.1``);
    ``recorded`` the run's environment ({canonical name: version}); ``model`` the MLflow
    model's own pins, which win. Distributions in ``skip`` (Shipyard itself: its wheel is
    in the context) are walked through but not pinned. A pin that does not satisfy what
    something requires is refused here, before pip would refuse it in the image build.
    """
    model = {canonicalize_name(k): v for k, v in (model or {}).items()}
    skipped = {canonicalize_name(name) for name in skip}
    queue: deque[tuple[Requirement, str]] = deque(
        (_requirement(text, "the image's requirements"), "the image") for text in roots
    )
    extras_seen: dict[str, set[str]] = {}
    required_by: dict[str, list[tuple[Requirement, str]]] = {}
    versions: dict[str, tuple[str, Source]] = {}
    spelled: dict[str, str] = {}
    while queue:
        requirement, origin = queue.popleft()
        key = canonicalize_name(requirement.name)
        required_by.setdefault(key, []).append((requirement, origin))
        new_extras = set(requirement.extras) - extras_seen.get(key, set())
        if key in extras_seen and not new_extras:
            continue
        first = key not in extras_seen
        extras_seen.setdefault(key, set()).update(requirement.extras)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            dist = None
        spelled.setdefault(key, dist.metadata["Name"] if dist is not None else requirement.name)
        if first and key not in skipped:
            if key in model:
                versions[key] = (model[key], "model")
            elif key in recorded:
                versions[key] = (recorded[key], "recorded")
            elif dist is not None:
                versions[key] = (dist.version, "installed")
            else:
                raise ConfigError(
                    f"{requirement.name} is needed in the image, but the run did not record "
                    "its version and it is not installed here.",
                    hint=f"Install {requirement.name} where you run `shipyard build`, or "
                    "retrain the version in an environment that has it.",
                )
        if dist is None:
            continue  # pinned from the record; pip resolves what it needs in turn
        extras = set(requirement.extras) if first else new_extras
        for text in dist.requires or []:
            child = _requirement(text, f"{spelled[key]}'s metadata")
            if _wanted(child, extras):
                queue.append((Requirement(_without_marker(child)), spelled[key]))
    _check(versions, required_by, spelled)
    pins = tuple(
        sorted(
            (Pin(spelled[key], version, source) for key, (version, source) in versions.items()),
            key=lambda pin: canonicalize_name(pin.name),
        )
    )
    return Pins(pins, tuple(pin.name for pin in pins if pin.source == "installed"))


def _without_marker(requirement: Requirement) -> str:
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras}{requirement.specifier}"


def _check(
    versions: Mapping[str, tuple[str, Source]],
    required_by: Mapping[str, list[tuple[Requirement, str]]],
    spelled: Mapping[str, str],
) -> None:
    for key, (version, source) in versions.items():
        for requirement, origin in required_by.get(key, []):
            if requirement.specifier and not requirement.specifier.contains(
                version, prereleases=True
            ):
                where = {
                    "model": "the model's requirements.txt",
                    "recorded": "the run's recorded environment",
                    "installed": "this machine",
                }[source]
                raise ConfigError(
                    f"{origin} requires {requirement}, but {where} has {spelled[key]}=={version}.",
                    hint="Build from an environment that matches the version's training "
                    "environment, or retrain the version with this Shipyard.",
                )
