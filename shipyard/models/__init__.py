"""Models: what a trained model is to the rest of Shipyard.

Every loaded model is a :class:`Predictor`: ``predict(batch)`` gives a
:class:`Prediction`, ``inputs`` is its :class:`InputSpec`, ``outputs`` its
:class:`OutputSpec`, ``metadata`` its name, version, flavour and load cost. Flavours
(scikit-learn, XGBoost, LightGBM, pyfunc) are registered in one table
(:func:`register_flavour`), which training logs with and every loader loads with::

    model = load_model("models:/churn/3")          # a LoadedModel, any flavour
    served = load_served_model(client, "churn", "3")  # a ServedModel, for the hot path
    prediction = model.predict(frame)               # labels, probabilities
"""

# The built-in flavours register themselves on import, before anyone reads the table.
from shipyard.models import llm, native, pyfunc  # noqa: F401
from shipyard.models.flavours import (
    Flavour,
    detect_flavour,
    flavour_named,
    flavours,
    register_flavour,
    unregister_flavour,
)
from shipyard.models.loading import LoadedModel, load_for_evaluation, load_model
from shipyard.models.predictor import (
    Batch,
    ModelMetadata,
    OutputSpec,
    Prediction,
    Predictor,
)
from shipyard.models.served import ServedModel, load_served_model
from shipyard.models.signature import InputSpec

__all__ = [
    "Batch",
    "Flavour",
    "InputSpec",
    "LoadedModel",
    "ModelMetadata",
    "OutputSpec",
    "Prediction",
    "Predictor",
    "ServedModel",
    "detect_flavour",
    "flavour_named",
    "flavours",
    "load_for_evaluation",
    "load_model",
    "load_served_model",
    "register_flavour",
    "unregister_flavour",
]
