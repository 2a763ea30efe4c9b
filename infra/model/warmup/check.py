"""A model's own warmup file, checked as TF Serving would run it. Pure.

TF Serving fails the model's load, on every pod, when its warmup file does
(saved_model_warmup_util.cc, saved_model_warmup.cc, predict_util.cc): a record whose
TFRecord framing or checksum is bad (DataLoss); more than 1000 records; a record that is
not a PredictionLog; a session-run log (Unimplemented); a request naming a signature the
`serve` graph lacks, or one of the wrong method; a Predict request whose inputs are not
the signature's (an extra one, or a missing one with no default), or a tensor that does
not convert or does not fit the signature (another dtype, rank or known dimension; a
`tensor_content` of the wrong size). Records without a log type, and streamed Predict
logs, are skipped by the server, so here too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from google.protobuf.message import DecodeError

from infra.model.apis import PredictionLog
from infra.model.signatures import DENSE, DTYPES, ITEM_BYTES, Signature, TensorSpec
from infra.model.warmup.tfrecord import decode

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
# TF Serving stops at 1000 records (WarmupConsts::kMaxNumRecords).
MAX_RECORDS = 1000
# How many problems a refusal lists before "and N more".
SHOWN = 5


def _signature(
    signatures: dict[str, Signature], model_spec: Any, methods: tuple[str, ...]
) -> tuple[Signature | None, str]:
    name = model_spec.signature_name or DEFAULT_SIGNATURE
    signature = signatures.get(name)
    if signature is None:
        return None, (
            f"signature {name!r} is not in the model's serve graph (it has "
            f"{', '.join(sorted(signatures)) or 'none'})"
        )
    if signature.method not in methods:
        return None, (
            f"signature {name!r} is a {signature.method} signature, not {' or '.join(methods)}"
        )
    return signature, ""


def _tensor_problem(alias: str, tensor: Any, spec: TensorSpec) -> str:
    if spec.encoding != DENSE:
        return f"input {alias!r} is a {spec.encoding} tensor, which Predict cannot feed"
    dtype = DTYPES.get(tensor.dtype, f"dtype {tensor.dtype}")
    if dtype != spec.dtype:
        return f"input {alias!r} is {dtype}; the signature takes {spec.dtype}"
    dims = tuple(int(d.size) for d in tensor.tensor_shape.dim)
    if any(size < 0 for size in dims):
        return f"input {alias!r} has shape {dims}: a request's dimensions are all known"
    if spec.shape is not None:
        fits = len(dims) == len(spec.shape) and all(
            want < 0 or want == got for want, got in zip(spec.shape, dims, strict=True)
        )
        if not fits:
            return f"input {alias!r} has shape {dims}; the signature takes {spec.shape}"
    if tensor.tensor_content and dtype in ITEM_BYTES:
        expected = math.prod(dims) * ITEM_BYTES[dtype]
        if len(tensor.tensor_content) != expected:
            return (
                f"input {alias!r}: tensor_content holds {len(tensor.tensor_content)} bytes, "
                f"{dims} of {dtype} needs {expected}"
            )
    return ""


def _predict_problems(signatures: dict[str, Signature], request: Any) -> Iterator[str]:
    signature, problem = _signature(
        signatures, request.model_spec, (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD)
    )
    if signature is None:
        yield problem
        return
    expected = {spec.name: spec for spec in signature.inputs}
    extra = sorted(set(request.inputs) - set(expected))
    missing = sorted(set(expected) - set(request.inputs) - signature.defaults)
    if extra:
        yield f"inputs {extra} are not in signature {signature.key!r} ({sorted(expected)})"
    if missing:
        yield f"inputs {missing} of signature {signature.key!r} are missing"
    for alias in sorted(set(request.inputs) & set(expected)):
        problem = _tensor_problem(alias, request.inputs[alias], expected[alias])
        if problem:
            yield problem
    outputs = {spec.name for spec in signature.outputs}
    unknown = sorted(set(request.output_filter) - outputs)
    if unknown:
        yield f"output_filter {unknown} is not in signature {signature.key!r}'s outputs"
    if len(set(request.output_filter)) != len(request.output_filter):
        yield "output_filter names an output twice"


def _record_problems(signatures: dict[str, Signature], log: Any) -> Iterator[str]:
    kind = log.WhichOneof("log_type")
    if kind == "session_run_log":
        yield "a session_run_log, which TF Serving does not run for warmup (Unimplemented)"
    elif kind == "predict_log":
        yield from _predict_problems(signatures, log.predict_log.request)
    elif kind in ("classify_log", "regress_log"):
        method = CLASSIFY_METHOD if kind == "classify_log" else REGRESS_METHOD
        request = getattr(log, kind).request
        _, problem = _signature(signatures, request.model_spec, (method,))
        if problem:
            yield problem
    elif kind == "multi_inference_log":
        for task in log.multi_inference_log.request.tasks:
            _, problem = _signature(signatures, task.model_spec, (task.method_name,))
            if problem:
                yield problem


def warmup_file_problems(data: bytes, signatures: tuple[Signature, ...]) -> list[str]:
    """What in a warmup file would fail the model's load, one line each (empty: it loads)."""
    try:
        records = decode(data)
    except ValueError as error:
        return [f"the TFRecord framing is damaged ({error}): TF Serving reports DataLoss"]
    problems = []
    if len(records) > MAX_RECORDS:
        problems.append(f"{len(records)} records, more than TF Serving's {MAX_RECORDS}")
    by_key = {signature.key: signature for signature in signatures}
    for index, record in enumerate(records[: MAX_RECORDS + 1]):
        log = PredictionLog()
        try:
            log.ParseFromString(record)
        except DecodeError:
            problems.append(f"record {index}: not a PredictionLog")
            continue
        problems += [f"record {index}: {problem}" for problem in _record_problems(by_key, log)]
    return problems


def describe_problems(problems: list[str]) -> str:
    shown = "; ".join(problems[:SHOWN])
    more = f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return shown + more
