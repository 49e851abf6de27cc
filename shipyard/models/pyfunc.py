"""The catch-all flavour: any object with ``predict``, served through MLflow's pyfunc."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shipyard.models.flavours import PYFUNC, Flavour, register_flavour

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models.model import ModelInfo

__all__ = ["PyfuncFlavour"]


class _PredictWrapper:
    """Serves any object with ``predict`` through MLflow's pyfunc interface.

    Logged models pickle this class by reference: it must stay importable at this path.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    # No type hints on the inputs: MLflow would read them as the model's input type.
    def predict(self, context, model_input, params=None):
        return self.model.predict(model_input)


@lru_cache(maxsize=1)
def _pyfunc_class() -> type:
    from mlflow.pyfunc import PythonModel

    class PredictWrapper(_PredictWrapper, PythonModel):
        pass

    return PredictWrapper


class PyfuncFlavour(Flavour):
    """Any other model: a ``PythonModel`` as it is, a plain object wrapped in one."""

    name = PYFUNC
    # The wrapper that serves a plain object is pickled by reference to Shipyard.
    packages = ("cloudpickle", "numpy", "pandas", "shipyard-mlops")
    priority = 0  # the catch-all: checked last
    native = False  # may read its folder lazily, and takes a DataFrame

    def matches(self, model: Any) -> bool:
        """Every model: the flavour of last resort."""
        return True

    def sample_output(self, model: Any, sample: pd.DataFrame) -> Any:
        """A ``PythonModel`` predicts with a context (none here); other objects without."""
        from mlflow.pyfunc import PythonModel

        if isinstance(model, PythonModel):
            return model.predict(None, sample)
        return model.predict(sample)

    def distributions(self, model: Any) -> list[str]:
        """The packages above and the distribution that provides the model's class."""
        from importlib.metadata import packages_distributions

        top = type(model).__module__.split(".")[0]
        return [*self.packages, *packages_distributions().get(top, [])]

    def log(self, model: Any, **fields: Any) -> ModelInfo:
        """Log a ``PythonModel`` as it is, any other object wrapped in one."""
        import mlflow.pyfunc

        python_model = model if isinstance(model, mlflow.pyfunc.PythonModel) else None
        if python_model is None:
            python_model = _pyfunc_class()(model)
        return mlflow.pyfunc.log_model(python_model=python_model, **fields)

    def load(self, uri: str) -> Any:
        """The plain object Shipyard wrapped, else MLflow's pyfunc model."""
        import mlflow.pyfunc
        from mlflow.exceptions import MlflowException

        loaded = mlflow.pyfunc.load_model(uri)
        try:
            inner = loaded.unwrap_python_model()
        except MlflowException:  # a library flavour's pyfunc: nothing to unwrap
            return loaded
        return inner.model if isinstance(inner, _PredictWrapper) else loaded


register_flavour(PyfuncFlavour())
