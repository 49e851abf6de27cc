"""The Python environment a model was trained in, and its digest."""

from __future__ import annotations

import hashlib
import platform
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

__all__ = ["Environment", "capture_environment"]


@dataclass(frozen=True)
class Environment:
    """Python version, platform and installed distributions (``pip freeze`` form)."""

    python: str
    implementation: str
    platform: str
    packages: tuple[str, ...]

    @property
    def freeze(self) -> str:
        """The package list as ``pip freeze`` writes it."""
        return "\n".join(self.packages) + "\n"

    @property
    def digest(self) -> str:
        """sha256 over interpreter, platform and package list."""
        text = f"{self.implementation} {self.python}\n{self.platform}\n{self.freeze}"
        return hashlib.sha256(text.encode()).hexdigest()

    def version_of(self, distribution: str) -> str | None:
        """The installed version of ``distribution`` (normalised name), if any."""
        wanted = _normalise(distribution)
        for line in self.packages:
            name, _, version = line.partition("==")
            if _normalise(name) == wanted:
                return version
        return None

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly dict (packages omitted: they are the freeze artifact)."""
        return {
            "python": self.python,
            "implementation": self.implementation,
            "platform": self.platform,
            "packages": len(self.packages),
            "digest": self.digest,
        }


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@lru_cache(maxsize=1)
def capture_environment() -> Environment:
    """Read the running interpreter's environment (importlib.metadata: no pip subprocess)."""
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages.setdefault(_normalise(name), f"{name}=={dist.version}")
    return Environment(
        python=platform.python_version(),
        implementation=sys.implementation.name,
        platform=f"{platform.system()}-{platform.machine()}",
        packages=tuple(sorted(packages.values(), key=str.lower)),
    )
