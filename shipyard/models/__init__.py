"""Models: what a trained model is to the rest of Shipyard.

Its declared inputs (:class:`InputSpec`), how each flavour is logged and loaded, and
the loaded forms that evaluation and serving predict with.
"""

from shipyard.models.loading import NATIVE_FLAVOURS, LoadedModel, load_for_evaluation
from shipyard.models.served import Prediction, ServedModel, load_served_model
from shipyard.models.signature import InputSpec

__all__ = [
    "NATIVE_FLAVOURS",
    "InputSpec",
    "LoadedModel",
    "Prediction",
    "ServedModel",
    "load_for_evaluation",
    "load_served_model",
]
