"""What TF Serving warms a model up with: the model's own warmup file, or records generated
from its serving signatures. Pure (apart from reading nothing: the signatures come with
the resolved model).

A generated record is a PredictionLog holding one Predict request for one signature, with
every input a zero-filled tensor of the declared dtype and shape (unknown dimensions 1).
On a GPU a new input shape pays on its first run for what a CPU does not (kernel choice
and autotuning per shape, memory allocation for it), so a GPU server is warmed at every
batch size it will run (`batch_sizes`: the allowed batch sizes, or powers of two up to the
largest batch), each a request of that many rows where the signature's first dimension is
the batch (unknown); a fixed first dimension is warmed at its own size only.
TF Serving runs each record before serving and fails the model's load if one fails
(saved_model_warmup.cc returns the request's error), so only what is surely valid is
generated: Predict signatures whose inputs are numeric or boolean with a known rank.
Classify and Regress signatures take serialized tf.Example strings, and string inputs have
no value that every model accepts; they are skipped, and the plan says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.model.apis import PredictionLog
from infra.model.signatures import DENSE, DTYPES, ITEM_BYTES, Signature
from infra.model.source import WARMUP_FILE, ResolvedModel
from infra.model.warmup.check import MAX_RECORDS, PREDICT_METHOD
from infra.model.warmup.tfrecord import encode

_DTYPE_ENUM = {name: number for number, name in DTYPES.items()}


@dataclass(frozen=True)
class Warmup:
    """The decision, for the plan and the image: where warmup records come from."""

    source: str  # model | generated | off | none | unresolved
    description: str
    data: bytes = b""  # the generated file (source "generated")
    path: str = ""  # under /models/<name>/, e.g. "1/assets.extra/tf_serving_warmup_requests"
    skipped: tuple[str, ...] = ()  # signatures a generated file leaves out, and why

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the plan and `pulumi up` warn about: no warmup, or signatures left cold."""
        if self.source == "none":
            return (f"model warmup: {self.description}",)
        return tuple(
            f"model warmup: no record generated for {reason}; its first requests after a "
            f"rollout are slow unless the model brings its own {WARMUP_FILE}"
            for reason in self.skipped
        )


def _batched(signature: Signature) -> bool:
    """Whether every input's first dimension is the batch (unknown): then the rows of a
    request are free to choose."""
    return all(spec.shape and spec.shape[0] < 0 for spec in signature.inputs)


def _request_record(model_name: str, signature: Signature, rows: int = 1) -> bytes:
    log = PredictionLog()
    request = log.predict_log.request
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature.key
    for spec in signature.inputs:
        assert spec.shape is not None
        shape = [1 if size < 0 else size for size in spec.shape]
        if shape and spec.shape[0] < 0:
            shape[0] = rows
        tensor = request.inputs[spec.name]
        tensor.dtype = _DTYPE_ENUM[spec.dtype]
        for size in shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.tensor_content = bytes(math.prod(shape) * ITEM_BYTES[spec.dtype])
    data: bytes = log.SerializeToString()
    return data


def _why_not(signature: Signature) -> str:
    if signature.method != PREDICT_METHOD:
        return f"{signature.key} is a {signature.method.rsplit('/', 1)[-1]} signature"
    for spec in signature.inputs:
        if spec.encoding != DENSE:
            return (
                f"{signature.key}: input {spec.name} is a {spec.encoding} tensor, which one "
                "dense warmup tensor cannot feed"
            )
        if spec.shape is None:
            return f"{signature.key}: input {spec.name} has an unknown rank"
        if spec.dtype not in ITEM_BYTES:
            return f"{signature.key}: input {spec.name} is {spec.dtype}"
    if not signature.inputs:
        return f"{signature.key} has no inputs"
    return ""


def generate(
    model_name: str, signatures: tuple[Signature, ...], batch_sizes: tuple[int, ...] = (1,)
) -> tuple[list[bytes], list[str]]:
    """One record per signature that can be warmed safely, at each of `batch_sizes` where
    its first dimension is the batch, and why the others cannot be warmed."""
    records: list[bytes] = []
    skipped: list[str] = []
    for signature in signatures:
        reason = _why_not(signature)
        if reason:
            skipped.append(reason)
            continue
        for rows in batch_sizes if _batched(signature) else (1,):
            if len(records) < MAX_RECORDS:
                records.append(_request_record(model_name, signature, rows))
    return records, skipped


def plan_warmup(
    model_name: str, model: ResolvedModel, enabled: bool, batch_sizes: tuple[int, ...] = (1,)
) -> Warmup:
    if not model.resolved or model.artifact is None:
        return Warmup("unresolved", "decided once the model is fetched (pulumi up)")
    newest = max(model.artifact.versions)
    if model.warmup:
        return Warmup("model", f"the model's own {newest}/{WARMUP_FILE}")
    if not enabled:
        return Warmup("off", "none (warmup false): the first requests after each rollout are slow")
    if model.signatures is None:
        return Warmup("none", "none: the model's signatures could not be read")
    records, skipped = generate(model_name, model.signatures, batch_sizes)
    why = f" ({'; '.join(skipped)})" if skipped else ""
    if not records:
        return Warmup(
            "none",
            f"none: no signature can be warmed safely{why}; add your own "
            f"{newest}/{WARMUP_FILE} to the model",
        )
    warmed = [s.key for s in model.signatures if not _why_not(s)]
    sizes = f" at batch sizes {', '.join(map(str, batch_sizes))}" if batch_sizes != (1,) else ""
    return Warmup(
        "generated",
        f"generated: {len(records)} Predict request(s), {', '.join(warmed)}{sizes}, "
        f"zero-filled inputs{'; skipped' + why if skipped else ''}",
        encode(records),
        f"{newest}/{WARMUP_FILE}",
        tuple(skipped),
    )
