"""Request decoders and response encoders for the protocols Shipyard's server speaks.

Pure functions, no server: each ``decode_*`` turns a request body into a 2-D NumPy
matrix in the model's column order (no pandas on the hot path), each ``encode_*`` turns
predictions into response bytes. Every client mistake is a :class:`RequestError`.
"""

from shipyard.models.signature import InputSpec, decode_columns, decode_rows
from shipyard.serving.protocols.errors import RequestError, check_size
from shipyard.serving.protocols.kserve_v1 import decode_v1, encode_v1
from shipyard.serving.protocols.mlflow_invocations import decode_invocations, encode_invocations
from shipyard.serving.protocols.open_inference import (
    V2Request,
    datatype_of,
    decode_v2,
    encode_v2,
    model_metadata,
    select_outputs,
)

__all__ = [
    "InputSpec",
    "RequestError",
    "V2Request",
    "check_size",
    "datatype_of",
    "decode_columns",
    "decode_invocations",
    "decode_rows",
    "decode_v1",
    "decode_v2",
    "encode_invocations",
    "encode_v1",
    "encode_v2",
    "model_metadata",
    "select_outputs",
]
