"""Read a SavedModel's serving signatures from saved_model.pb without TensorFlow.

Fields from tensorflow/core/protobuf/saved_model.proto, meta_graph.proto,
tensorflow/core/framework/tensor_shape.proto and types.proto.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from infra.model.protos import F, Field, build_messages, tensor_shape_fields

_PACKAGE = "tensorflow"
_MESSAGES = build_messages(
    "tfserving_gke/saved_model_subset.proto",
    _PACKAGE,
    {
        **tensor_shape_fields(_PACKAGE),
        "TensorInfo": [
            Field("name", 1, F.TYPE_STRING),
            Field("dtype", 2, F.TYPE_INT32),
            Field("tensor_shape", 3, F.TYPE_MESSAGE, f".{_PACKAGE}.TensorShapeProto"),
        ],
        "SignatureDef": [
            Field(
                "inputs", 1, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, f".{_PACKAGE}.TensorInfo")
            ),
            Field(
                "outputs", 2, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, f".{_PACKAGE}.TensorInfo")
            ),
            Field("method_name", 3, F.TYPE_STRING),
        ],
        "MetaInfoDef": [Field("tags", 4, F.TYPE_STRING, repeated=True)],
        "MetaGraphDef": [
            Field("meta_info_def", 1, F.TYPE_MESSAGE, f".{_PACKAGE}.MetaInfoDef"),
            Field(
                "signature_def",
                5,
                F.TYPE_MESSAGE,
                map_value=(F.TYPE_MESSAGE, f".{_PACKAGE}.SignatureDef"),
            ),
        ],
        "SavedModel": [
            Field("saved_model_schema_version", 1, F.TYPE_INT64),
            Field("meta_graphs", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.MetaGraphDef", repeated=True),
        ],
    },
)
# tensorflow/core/framework/types.proto DataType values.
DTYPES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: "string",
    8: "complex64",
    9: "int64",
    10: "bool",
    14: "bfloat16",
    17: "uint16",
    18: "complex128",
    19: "float16",
    22: "uint32",
    23: "uint64",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature, as TF Serving's metadata shows it."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None  # None: unknown rank; -1: unknown dimension

    def __str__(self) -> str:
        shape = "unknown" if self.shape is None else f"({', '.join(map(str, self.shape))})"
        return f"{self.name}: {self.dtype} {shape}"


@dataclass(frozen=True)
class Signature:
    """A serving signature of the `serve` MetaGraph."""

    key: str
    method: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def _specs(tensors: object) -> tuple[TensorSpec, ...]:
    specs = []
    for name, info in sorted(tensors.items()):  # type: ignore[attr-defined]
        shape = info.tensor_shape
        dims = None if shape.unknown_rank else tuple(int(dim.size) for dim in shape.dim)
        specs.append(TensorSpec(name, DTYPES.get(info.dtype, f"dtype {info.dtype}"), dims))
    return tuple(specs)


def read_signatures(saved_model_pb: Path) -> tuple[Signature, ...] | None:
    """Signatures of the MetaGraph tagged `serve`; None when the file cannot be read."""
    model = _MESSAGES["SavedModel"]()
    try:
        model.ParseFromString(saved_model_pb.read_bytes())
    except (DecodeError, OSError):
        return None
    for graph in model.meta_graphs:
        if "serve" in graph.meta_info_def.tags:
            return tuple(
                Signature(key, sig.method_name, _specs(sig.inputs), _specs(sig.outputs))
                for key, sig in sorted(graph.signature_def.items())
                if not key.startswith("__")
            )
    return ()
