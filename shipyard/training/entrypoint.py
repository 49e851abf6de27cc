"""Loading the user's training function from a ``module:function`` reference."""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.errors import EntrypointError

__all__ = ["load_entrypoint"]


def load_entrypoint(reference: str | None, root: Path) -> Callable[[Any], Any]:
    """Import ``module:function`` with the project folder first on ``sys.path``."""
    if not reference:
        raise EntrypointError(
            "No training function configured.",
            hint='Set train.entrypoint in shipyard.yaml, e.g. "train:train" for train() '
            "in train.py.",
        )
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise EntrypointError(
            f"Training entrypoint {reference!r} is not of the form module:function.",
            hint='Write it as "package.module:function", e.g. "model.train:train".',
        )
    _prefer_project(module_name, root)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EntrypointError(
            f"Cannot import module {module_name!r} of entrypoint {reference!r}: {exc}.",
            hint=f"Check the module name; it is looked up from {root} and the installed packages.",
        ) from None
    except Exception:
        raise EntrypointError(
            f"Importing {module_name!r} raised an error:\n{traceback.format_exc(limit=-3)}",
            hint="Fix the error in your module, then run the command again.",
        ) from None
    func: Any = module
    for part in attr.split("."):
        func = getattr(func, part, None)
        if func is None:
            raise EntrypointError(
                f"Module {module_name!r} has no attribute {attr!r}.",
                hint=f"Define `def {attr}(ctx):` in {module_name}, or fix train.entrypoint.",
            )
    if not callable(func):
        raise EntrypointError(
            f"{reference!r} is not callable.", hint="Point train.entrypoint at a function."
        )
    return func


def _prefer_project(module_name: str, root: Path) -> None:
    """Put ``root`` first on ``sys.path`` and forget another project's module of that name.

    Two projects in one process (the agent, the demo, tests) may both have ``train.py``;
    without this the second would silently get the first one's cached module.
    """
    folder = str(root.resolve())
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    top = module_name.split(".")[0]
    cached = sys.modules.get(top)
    here = root.resolve()
    local = (here / f"{top}.py").exists() or (here / top / "__init__.py").exists()
    where = getattr(cached, "__file__", None)
    if cached is None or not local or where is None or Path(where).resolve().is_relative_to(here):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
