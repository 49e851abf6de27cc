"""The flavour table: how each kind of model is recognised, logged and loaded.

Each MLflow flavour Shipyard knows is one :class:`Flavour` subclass, registered once with
:func:`register_flavour`. Training reads the table to choose a flavour and log a model
(:func:`detect_flavour`, :func:`log_model`); evaluation, serving and reproduction read it
to load one back (:func:`load_object`). The built-in flavours are in
:mod:`shipyard.models.native` (scikit-learn, XGBoost, LightGBM) and
:mod:`shipyard.models.pyfunc` (any other object with ``predict``).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models.model import ModelInfo

    from shipyard.registry.environment import Environment

__all__ = [
    "PYFUNC",
    "Flavour",
    "detect_flavour",
    "flavour_named",
    "flavours",
    "load_native",
    "load_object",
    "log_model",
    "logged_flavours",
    "pip_requirements",
    "register_flavour",
    "unregister_flavour",
]

PYFUNC = "python_function"  # MLflow's generic flavour: every log_model adds it


class Flavour(ABC):
    """One MLflow flavour: how a trained model of it is recognised, logged and loaded.

    ``name`` is MLflow's flavour name, as in the ``MLmodel`` file. ``packages`` are the
    distributions a model needs at serving time. ``priority`` orders the table: a
    flavour whose models are also models of another (XGBoost estimators are scikit-learn
    estimators) is checked first. ``native`` says the loaded object lives wholly in
    memory and takes a plain NumPy matrix.
    """

    name: ClassVar[str]
    packages: ClassVar[tuple[str, ...]] = ()
    priority: ClassVar[int] = 0
    native: ClassVar[bool] = True

    @abstractmethod
    def matches(self, model: Any) -> bool:
        """Whether a just-trained ``model`` is of this flavour."""

    @abstractmethod
    def log(self, model: Any, **fields: Any) -> ModelInfo:
        """Log ``model`` to the active MLflow run.

        ``fields`` are MLflow's common ``log_model`` keywords: ``name``, ``signature``,
        ``input_example`` and ``pip_requirements``.
        """

    @abstractmethod
    def load(self, uri: str) -> Any:
        """The object that predicts, loaded from a model URI or a local model folder."""

    def usable(self, model: Any) -> bool:
        """Whether a loaded object predicts from data frames and matrices by itself."""
        return True

    def sample_output(self, model: Any, sample: pd.DataFrame) -> Any:
        """What ``model`` predicts for ``sample``: the output half of its signature."""
        return model.predict(sample)

    def distributions(self, model: Any) -> list[str]:
        """The distributions ``model`` needs at serving time."""
        return list(self.packages)

    def prepare_for_serving(self, model: Any) -> None:
        """Tune a loaded object for a server's few-row predict calls (in place)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


_TABLE: dict[str, Flavour] = {}


def register_flavour(flavour: Flavour, *, replace: bool = False) -> Flavour:
    """Add ``flavour`` to the table (``replace`` an earlier one of the same name)."""
    if flavour.name in _TABLE and not replace:
        raise ValueError(f"a flavour named {flavour.name!r} is already registered")
    _TABLE[flavour.name] = flavour
    return flavour


def unregister_flavour(name: str) -> None:
    """Remove the flavour called ``name`` from the table, if it is there."""
    _TABLE.pop(name, None)


def flavours() -> list[Flavour]:
    """Every registered flavour, most specific first (priority, then registration order)."""
    return sorted(_TABLE.values(), key=lambda flavour: -flavour.priority)


def flavour_named(name: str) -> Flavour | None:
    """The registered flavour called ``name``, or ``None``."""
    return _TABLE.get(name)


def detect_flavour(model: Any) -> Flavour:
    """The most specific registered flavour for a just-trained ``model``."""
    for flavour in flavours():
        if flavour.matches(model):
            return flavour
    raise ValueError(f"no registered flavour can log a {type(model).__name__}")


def logged_flavours(names: Iterable[str]) -> list[Flavour]:
    """The registered flavours among ``names`` (an ``MLmodel``'s), most specific first."""
    listed = set(names)
    return [flavour for flavour in flavours() if flavour.name in listed]


def load_object(uri: str, candidates: Iterable[Flavour]) -> tuple[Flavour, Any]:
    """Load ``uri`` with the first candidate whose object is usable; that flavour and object.

    A raw XGBoost or LightGBM booster predicts from its own matrix type only: its flavour
    declines it, and the next candidate (pyfunc, which adapts data frames) loads it.
    """
    tried: list[str] = []
    for flavour in candidates:
        model = flavour.load(uri)
        if flavour.usable(model):
            return flavour, model
        tried.append(flavour.name)
    raise ValueError(f"no flavour can load {uri} (tried {', '.join(tried) or 'none'})")


def load_native(model_uri: str, flavour_name: str) -> Any:
    """Load a logged model as the object it was trained as (through pyfunc otherwise)."""
    fallback = _TABLE[PYFUNC]
    named = _TABLE.get(flavour_name, fallback)
    return load_object(model_uri, dict.fromkeys([named, fallback]))[1]


def log_model(
    model: Any,
    flavour: Flavour,
    *,
    sample: pd.DataFrame,
    requirements: list[str],
    name: str = "model",
) -> ModelInfo:
    """Log ``model`` to the active run in ``flavour``, with signature and input example."""
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold NaN; the signature is still right.
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(sample, flavour.sample_output(model, sample))
        return flavour.log(
            model,
            name=name,
            signature=signature,
            input_example=sample.head(5),
            pip_requirements=requirements,
        )


def pip_requirements(flavour: Flavour, env: Environment, model: Any) -> list[str]:
    """Pinned requirements taken from the captured environment (no MLflow inference)."""
    pins: list[str] = []
    for name in dict.fromkeys(["mlflow", *flavour.distributions(model)]):
        version = env.version_of(name)
        if version is not None:
            pins.append(f"{name}=={version}")
    return pins
