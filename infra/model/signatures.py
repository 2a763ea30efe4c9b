"""Read a SavedModel's serving signatures from saved_model.pb without TensorFlow.

Fields from tensorflow/core/protobuf/saved_model.proto, meta_graph.proto,
tensorflow/core/framework/tensor_shape.proto and types.proto.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from infra.model.protos import F, Field, build_messages, tensor_shape_fields

_PACKAGE = "tensorflow"
_MESSAGES = build_messages(
    "tfserving_gke/saved_model_subset.proto",
    _PACKAGE,
    {
        **tensor_shape_fields(_PACKAGE),
        # meta_graph.proto: a TensorInfo names a dense tensor, or encodes a SparseTensor
        # (COO) or another composite tensor (a RaggedTensor, say) as several tensors.
        "CooSparse": [
            Field("values_tensor_name", 1, F.TYPE_STRING),
            Field("indices_tensor_name", 2, F.TYPE_STRING),
            Field("dense_shape_tensor_name", 3, F.TYPE_STRING),
        ],
        "CompositeTensor": [
            Field("components", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.TensorInfo", repeated=True),
        ],
        "TensorInfo": [
            Field("name", 1, F.TYPE_STRING),
            Field("dtype", 2, F.TYPE_INT32),
            Field("tensor_shape", 3, F.TYPE_MESSAGE, f".{_PACKAGE}.TensorShapeProto"),
            Field("coo_sparse", 4, F.TYPE_MESSAGE, f".{_PACKAGE}.CooSparse"),
            Field("composite_tensor", 5, F.TYPE_MESSAGE, f".{_PACKAGE}.CompositeTensor"),
        ],
        "SignatureDef": [
            Field(
                "inputs", 1, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, f".{_PACKAGE}.TensorInfo")
            ),
            Field(
                "outputs", 2, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, f".{_PACKAGE}.TensorInfo")
            ),
            Field("method_name", 3, F.TYPE_STRING),
            # Inputs a request may leave out (their values are not read here).
            Field("defaults", 4, F.TYPE_MESSAGE, map_value=(F.TYPE_BYTES, "")),
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
# tensorflow/core/framework/types.proto DataType values: their enum names (as TF Serving's
# metadata and JSON write them) and the short names shown here.
DATA_TYPES = {
    1: ("DT_FLOAT", "float32"),
    2: ("DT_DOUBLE", "float64"),
    3: ("DT_INT32", "int32"),
    4: ("DT_UINT8", "uint8"),
    5: ("DT_INT16", "int16"),
    6: ("DT_INT8", "int8"),
    7: ("DT_STRING", "string"),
    8: ("DT_COMPLEX64", "complex64"),
    9: ("DT_INT64", "int64"),
    10: ("DT_BOOL", "bool"),
    14: ("DT_BFLOAT16", "bfloat16"),
    17: ("DT_UINT16", "uint16"),
    18: ("DT_COMPLEX128", "complex128"),
    19: ("DT_HALF", "float16"),
    22: ("DT_UINT32", "uint32"),
    23: ("DT_UINT64", "uint64"),
}
DTYPES = {number: short for number, (_, short) in DATA_TYPES.items()}
ENUM_NAMES = {short: enum for enum, short in DATA_TYPES.values()}
# Bytes per element of each numeric DataType (types.proto), zero-filled in tensor_content.
ITEM_BYTES = {
    "float32": 4,
    "float64": 8,
    "int32": 4,
    "uint8": 1,
    "int16": 2,
    "int8": 1,
    "complex64": 8,
    "int64": 8,
    "bool": 1,
    "bfloat16": 2,
    "uint16": 2,
    "complex128": 16,
    "float16": 2,
    "uint32": 4,
    "uint64": 8,
}
# TF Serving loads the MetaGraph whose tag set equals --saved_model_tags (default "serve")
# exactly: TensorFlow's FindMetaGraphDef (cc/saved_model/reader.cc) compares whole sets.
SERVE_TAGS = frozenset({"serve"})
DENSE, SPARSE, COMPOSITE = "dense", "sparse", "composite"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature, as TF Serving's metadata shows it."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None  # None: unknown rank; -1: unknown dimension
    # dense: one tensor; sparse: a SparseTensor fed as values, indices and dense shape;
    # composite: another composite tensor (a RaggedTensor...) fed as its components.
    encoding: str = DENSE

    def __str__(self) -> str:
        if self.encoding == COMPOSITE:
            return f"{self.name}: composite tensor (ragged or another CompositeTensor)"
        shape = "unknown" if self.shape is None else f"({', '.join(map(str, self.shape))})"
        sparse = " sparse (COO: values, indices, dense shape)" if self.encoding == SPARSE else ""
        return f"{self.name}: {self.dtype} {shape}{sparse}"


@dataclass(frozen=True)
class Signature:
    """A serving signature of the `serve` MetaGraph."""

    key: str
    method: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    defaults: frozenset[str] = frozenset()  # inputs the signature has a default value for


def serving_inputs(signatures: tuple[Signature, ...]) -> dict[str, list[dict[str, Any]]]:
    """Every signature's inputs as plain data (the servingInputs stack output, which bench
    and sweep check before they send anything): name, dtype (TF's enum name), shape (None:
    unknown rank) and encoding."""
    return {
        signature.key: [
            {
                "name": spec.name,
                "dtype": ENUM_NAMES.get(spec.dtype, spec.dtype),
                "shape": None if spec.shape is None else list(spec.shape),
                "encoding": spec.encoding,
            }
            for spec in signature.inputs
        ]
        for signature in signatures
    }


@dataclass(frozen=True)
class SavedModelGraphs:
    """What saved_model.pb holds: every MetaGraph's tag set, and the signatures of the one
    TF Serving loads (None when no MetaGraph is tagged exactly {serve})."""

    tag_sets: tuple[frozenset[str], ...]
    signatures: tuple[Signature, ...] | None

    def describe_tag_sets(self) -> str:
        return ", ".join("{" + ", ".join(sorted(tags)) + "}" for tags in self.tag_sets) or "none"


def _encoding(info: Any) -> str:
    if info.HasField("coo_sparse"):
        return SPARSE
    if info.HasField("composite_tensor"):
        return COMPOSITE
    return DENSE


def _specs(tensors: Any) -> tuple[TensorSpec, ...]:
    specs = []
    for name, info in sorted(tensors.items()):
        shape = info.tensor_shape
        dims = None if shape.unknown_rank else tuple(int(dim.size) for dim in shape.dim)
        dtype = DTYPES.get(info.dtype, f"dtype {info.dtype}")
        specs.append(TensorSpec(name, dtype, dims, _encoding(info)))
    return tuple(specs)


def read_saved_model(saved_model_pb: Path) -> SavedModelGraphs | None:
    """The MetaGraphs' tag sets and the signatures TF Serving serves; None when the file
    cannot be read."""
    model = _MESSAGES["SavedModel"]()
    try:
        model.ParseFromString(saved_model_pb.read_bytes())
    except (DecodeError, OSError):
        return None
    tag_sets = tuple(frozenset(graph.meta_info_def.tags) for graph in model.meta_graphs)
    for graph, tags in zip(model.meta_graphs, tag_sets, strict=True):
        if tags == SERVE_TAGS:
            signatures = tuple(
                Signature(
                    key,
                    sig.method_name,
                    _specs(sig.inputs),
                    _specs(sig.outputs),
                    frozenset(sig.defaults),
                )
                for key, sig in sorted(graph.signature_def.items())
                if not key.startswith("__")
            )
            return SavedModelGraphs(tag_sets, signatures)
    return SavedModelGraphs(tag_sets, None)
