"""Request payloads: from a model's signature (its metadata endpoint) or a user's sample,
encoded once, before any clock starts, for REST (JSON) and gRPC (PredictRequest bytes)."""

from __future__ import annotations

import json
import math
import random
import struct
from dataclasses import dataclass
from typing import Any

import requests

from infra.loadgen.spec import WorkerError
from infra.model.apis import PredictRequest

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
# DataType values (tensorflow/core/framework/types.proto) a generated payload covers, with
# the struct code of one element in tensor_content ("" for bfloat16: the high half of a
# float32, packed by hand).
_DTYPES = {
    "DT_FLOAT": (1, "f"),
    "DT_DOUBLE": (2, "d"),
    "DT_INT32": (3, "i"),
    "DT_UINT8": (4, "B"),
    "DT_INT16": (5, "h"),
    "DT_INT8": (6, "b"),
    "DT_INT64": (9, "q"),
    "DT_BOOL": (10, "?"),
    "DT_BFLOAT16": (14, ""),
    "DT_UINT16": (17, "H"),
    "DT_HALF": (19, "e"),
}
# TF Serving's REST JSON reader (json_tensor.cc) has no case for these: only gRPC carries them.
GRPC_ONLY = ("DT_HALF", "DT_BFLOAT16")
DENSE = "dense"
PAYLOAD_HINT = "give a TF Serving REST body with --payload FILE (bench --local or a URL target)"


class PayloadError(ValueError):
    """A request bench cannot build; the message names the input and what to do."""


@dataclass(frozen=True)
class InputSpec:
    """One signature input: its name, TensorFlow dtype name and shape (-1: any), and how
    it is encoded (dense, or a sparse or composite tensor fed as several)."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None
    encoding: str = DENSE


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
        raise PayloadError(
            f"the model has no signature {signature!r}; it has {', '.join(sorted(signatures))}"
        )
    specs = []
    for name, info in sorted(signatures[signature]["inputs"].items()):
        encoding = next((kind for kind in ("coo_sparse", "composite_tensor") if kind in info), "")
        shape = info.get("tensor_shape", {})
        dims = (
            None
            if shape.get("unknown_rank")
            else tuple(int(dim["size"]) for dim in shape.get("dim", []))
        )
        specs.append(
            InputSpec(
                name,
                info.get("dtype", "DT_INVALID"),
                dims,
                {"coo_sparse": "sparse", "composite_tensor": "composite"}.get(encoding, DENSE),
            )
        )
    return specs


def fetch_inputs(rest_url: str, model: str, signature: str, timeout_s: float) -> list[InputSpec]:
    """The signature's inputs, from the model's metadata endpoint."""
    url = f"{rest_url}/v1/models/{model}/metadata"
    try:
        response = requests.get(url, timeout=timeout_s)
        response.raise_for_status()
        return signature_inputs(response.json(), signature)
    except PayloadError:
        raise
    except (requests.RequestException, ValueError, KeyError) as error:
        raise WorkerError(f"cannot read the model's signature from {url}: {error}") from None


def outputs_inputs(outputs: dict[str, Any], signature: str) -> list[InputSpec] | None:
    """Inputs of a signature from the stack's servingInputs output (None when the stack
    has none to tell: an older stack, or an unresolved model)."""
    signatures = outputs.get("servingInputs")
    if not isinstance(signatures, dict) or signature not in signatures:
        return None
    return [
        InputSpec(
            str(entry["name"]),
            str(entry["dtype"]),
            None if entry["shape"] is None else tuple(int(size) for size in entry["shape"]),
            str(entry["encoding"]),
        )
        for entry in signatures[signature]
    ]


def payload_protocol(specs: list[InputSpec], protocol: str, chosen_by_user: bool) -> str:
    """The protocol a generated request for these inputs goes over: `protocol`, or gRPC
    when an input's dtype only travels over gRPC and the user did not ask for REST.
    Refused, naming the input, when no generated request can serve."""
    for spec in specs:
        if spec.encoding != DENSE:
            raise PayloadError(
                f"input {spec.name!r} is a {spec.encoding} tensor: bench generates dense "
                f"tensors only; {PAYLOAD_HINT}"
            )
        if spec.dtype not in _DTYPES:
            raise PayloadError(
                f"input {spec.name!r} is {spec.dtype}: bench cannot generate a value this "
                f"model accepts (it generates {', '.join(_DTYPES)}); {PAYLOAD_HINT}"
            )
        if spec.shape is None:
            raise PayloadError(f"input {spec.name!r} has an unknown rank; {PAYLOAD_HINT}")
    needs_grpc = [spec for spec in specs if spec.dtype in GRPC_ONLY]
    if needs_grpc and protocol == "rest":
        if chosen_by_user:
            first = needs_grpc[0]
            raise PayloadError(
                f"input {first.name!r} is {first.dtype}, which TF Serving's REST API cannot "
                "read (its JSON reader has no such case): use --protocol grpc"
            )
        return "grpc"
    return protocol


def _concrete_shape(spec: InputSpec, batch: int) -> tuple[int, ...]:
    assert spec.shape is not None
    dims = [batch if index == 0 and size == -1 else size for index, size in enumerate(spec.shape)]
    if any(size < 0 for size in dims):
        raise PayloadError(
            f"input {spec.name!r} has shape {spec.shape}: only the batch dimension may be "
            f"unknown for a generated payload; {PAYLOAD_HINT}"
        )
    return tuple(dims)


def _nest(values: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return values[0]
    if len(shape) == 1:
        return values
    step = len(values) // shape[0]
    return [_nest(values[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _content(code: str, values: list[Any]) -> bytes:
    if code:
        return struct.pack(f"<{len(values)}{code}", *values)
    # bfloat16 is the upper 16 bits of a float32.
    floats = struct.pack(f"<{len(values)}f", *values)
    return b"".join(floats[i + 2 : i + 4] for i in range(0, len(floats), 4))


def generated_payload(
    model: str, signature: str, specs: list[InputSpec], batch: int = 1, seed: int = 0
) -> Payload:
    """Deterministic values in [0, 1) (or small integers, or booleans) for every input."""
    payload_protocol(specs, "grpc", chosen_by_user=True)
    generator = random.Random(seed)
    rest_inputs: dict[str, Any] = {}
    request = PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for spec in specs:
        dtype, code = _DTYPES[spec.dtype]
        shape = _concrete_shape(spec, batch)
        count = math.prod(shape)
        values: list[Any]
        if code in ("f", "d", "e", ""):
            values = [round(generator.random(), 4) for _ in range(count)]
        elif code == "?":
            values = [generator.random() < 0.5 for _ in range(count)]
        else:
            values = [generator.randrange(10) for _ in range(count)]
        if spec.dtype not in GRPC_ONLY:
            rest_inputs[spec.name] = _nest(values, shape)
        tensor = request.inputs[spec.name]
        tensor.dtype = dtype
        for size in shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.tensor_content = _content(code, values)
    rest_body = (
        json.dumps({"signature_name": signature, "inputs": rest_inputs}).encode()
        if len(rest_inputs) == len(specs)
        else b""
    )
    described = ", ".join(f"{s.name} {s.dtype} {_concrete_shape(s, batch)}" for s in specs)
    return Payload(signature, rest_body, request.SerializeToString(), described)


def sample_payload(model: str, signature: str, sample: dict[str, Any]) -> Payload:
    """A user's REST body ({"inputs": ...} or {"instances": ...}); REST only."""
    if "inputs" not in sample and "instances" not in sample:
        raise PayloadError(
            'a sample payload is a TF Serving REST body with "inputs" or "instances"'
        )
    body = json.dumps({"signature_name": signature, **sample}).encode()
    return Payload(signature, body, b"", f"sample, {len(body)} bytes")
