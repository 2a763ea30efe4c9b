"""Request payloads: from a model's signature (its metadata endpoint) or a user's sample,
encoded once, before any clock starts, for REST (JSON) and gRPC (PredictRequest bytes)."""

from __future__ import annotations

import json
import math
import random
import struct
from dataclasses import dataclass
from typing import Any

from infra.model.protos import INT64_VALUE, F, Field, build_messages, tensor_shape_fields

_PACKAGE = "tensorflow.serving"
_MESSAGES = build_messages(
    "tfserving_gke/predict_subset.proto",
    _PACKAGE,
    {
        **tensor_shape_fields(_PACKAGE),
        # tensorflow/core/framework/tensor.proto (the fields this client writes).
        "TensorProto": [
            Field("dtype", 1, F.TYPE_INT32),
            Field("tensor_shape", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.TensorShapeProto"),
            Field("tensor_content", 4, F.TYPE_BYTES),
        ],
        # tensorflow_serving/apis/model.proto and predict.proto.
        "ModelSpec": [
            Field("name", 1, F.TYPE_STRING),
            Field("version", 2, F.TYPE_MESSAGE, INT64_VALUE),
            Field("signature_name", 3, F.TYPE_STRING),
        ],
        "PredictRequest": [
            Field("model_spec", 1, F.TYPE_MESSAGE, f".{_PACKAGE}.ModelSpec"),
            Field(
                "inputs", 2, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, f".{_PACKAGE}.TensorProto")
            ),
        ],
        "PredictResponse": [
            Field(
                "outputs", 1, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, f".{_PACKAGE}.TensorProto")
            ),
            Field("model_spec", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.ModelSpec"),
        ],
        # tensorflow_serving/apis/prediction_log.proto: warmup records (infra/warmup) are
        # PredictionLogs holding a PredictLog; the other log types are not written here.
        "PredictLog": [
            Field("request", 1, F.TYPE_MESSAGE, f".{_PACKAGE}.PredictRequest"),
            Field("response", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.PredictResponse"),
        ],
        "PredictionLog": [Field("predict_log", 6, F.TYPE_MESSAGE, f".{_PACKAGE}.PredictLog")],
    },
)
PredictRequest = _MESSAGES["PredictRequest"]
PredictionLog = _MESSAGES["PredictionLog"]
PredictResponse = _MESSAGES["PredictResponse"]
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
# DataType values (tensorflow/core/framework/types.proto) and struct codes for the
# dtypes a generated payload supports.
_DTYPES = {"DT_FLOAT": (1, "f"), "DT_DOUBLE": (2, "d"), "DT_INT32": (3, "i"), "DT_INT64": (9, "q")}


@dataclass(frozen=True)
class InputSpec:
    """One signature input: its name, TensorFlow dtype name and shape (-1: any)."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Payload:
    """One request, encoded for both protocols."""

    signature: str
    rest_body: bytes
    grpc_request: bytes
    description: str


def signature_inputs(metadata: dict[str, Any], signature: str) -> list[InputSpec]:
    """Inputs of a signature from TF Serving's GET /v1/models/<name>/metadata answer."""
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    if signature not in signatures:
        raise ValueError(
            f"the model has no signature {signature!r}; it has {', '.join(sorted(signatures))}"
        )
    specs = []
    for name, info in sorted(signatures[signature]["inputs"].items()):
        shape = info.get("tensor_shape", {})
        if shape.get("unknown_rank"):
            raise ValueError(f"input {name!r} has an unknown rank: give a sample payload")
        dims = tuple(int(dim["size"]) for dim in shape.get("dim", []))
        specs.append(InputSpec(name, info["dtype"], dims))
    return specs


def _concrete_shape(spec: InputSpec, batch: int) -> tuple[int, ...]:
    dims = [batch if index == 0 and size == -1 else size for index, size in enumerate(spec.shape)]
    if any(size < 0 for size in dims):
        raise ValueError(
            f"input {spec.name!r} has shape {spec.shape}: only the batch dimension may be "
            "unknown for a generated payload; give a sample payload instead"
        )
    return tuple(dims)


def _nest(values: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return values[0]
    if len(shape) == 1:
        return values
    step = len(values) // shape[0]
    return [_nest(values[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def generated_payload(
    model: str, signature: str, specs: list[InputSpec], batch: int = 1, seed: int = 0
) -> Payload:
    """Deterministic values in [0, 1) (or small integers) for every input."""
    generator = random.Random(seed)
    rest_inputs: dict[str, Any] = {}
    request = PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for spec in specs:
        if spec.dtype not in _DTYPES:
            raise ValueError(
                f"input {spec.name!r} is {spec.dtype}: generated payloads cover "
                f"{', '.join(_DTYPES)}; give a sample payload instead"
            )
        dtype, code = _DTYPES[spec.dtype]
        shape = _concrete_shape(spec, batch)
        count = math.prod(shape)
        floating = code in "fd"
        values = [
            round(generator.random(), 4) if floating else generator.randrange(10)
            for _ in range(count)
        ]
        rest_inputs[spec.name] = _nest(values, shape)
        tensor = request.inputs[spec.name]
        tensor.dtype = dtype
        for size in shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.tensor_content = struct.pack(f"<{count}{code}", *values)
    body = json.dumps({"signature_name": signature, "inputs": rest_inputs}).encode()
    described = ", ".join(f"{s.name} {s.dtype} {_concrete_shape(s, batch)}" for s in specs)
    return Payload(signature, body, request.SerializeToString(), described)


def sample_payload(model: str, signature: str, sample: dict[str, Any]) -> Payload:
    """A user's REST body ({"inputs": ...} or {"instances": ...}); REST only."""
    if "inputs" not in sample and "instances" not in sample:
        raise ValueError('a sample payload is a TF Serving REST body with "inputs" or "instances"')
    body = json.dumps({"signature_name": signature, **sample}).encode()
    return Payload(signature, body, b"", f"sample, {len(body)} bytes")
