"""The model read as TF Serving reads it, on SavedModels and warmup files written by
TensorFlow itself (tests/data/models, tests/data/warmup): the MetaGraph tagged exactly
{serve}, sparse and composite inputs shown as what they are and never warmed with a dense
tensor, and a model's own warmup file checked against TF Serving's rules before any image
is built."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from infra.inputs.errors import ModelSourceError
from infra.model.signatures import COMPOSITE, DENSE, SPARSE, TensorSpec
from infra.model.source import (
    WARMUP_FILE,
    FetchEnvironment,
    ModelRequest,
    ResolvedModel,
    describe_model,
    resolve_model,
)
from infra.model.warmup.check import MAX_RECORDS, warmup_file_problems
from infra.model.warmup.records import plan_warmup
from infra.model.warmup.tfrecord import decode, encode
from tests.conftest import ROOT, PlanFn
from tests.model_archives import TINY_MODEL
from tests.tfserving_protos import PredictionLog

MODELS = ROOT / "tests" / "data" / "models"
WARMUP = ROOT / "tests" / "data" / "warmup"


def resolve(path: Path, name: str = "m") -> ResolvedModel:
    return resolve_model(ModelRequest(str(path), name, 1), FetchEnvironment(project_dir=ROOT))


def inputs(model: ResolvedModel) -> dict[str, TensorSpec]:
    assert model.signatures is not None
    (signature,) = [s for s in model.signatures if s.key == "serving_default"]
    return {spec.name: spec for spec in signature.inputs}


# --- tag sets -------------------------------------------------------------------------------


def test_the_graph_tagged_exactly_serve_is_read_not_the_first_with_serve() -> None:
    model = resolve(MODELS / "serve_gpu_first")
    # TensorFlow's loader picks the {serve} graph (its input x), not {serve, gpu} (gpu_x).
    assert inputs(model) == {"x": TensorSpec("x", "float32", (-1, 4))}
    warmup = plan_warmup("m", model, enabled=True)
    assert warmup.source == "generated"
    log = PredictionLog()
    (record,) = decode(warmup.data)
    log.ParseFromString(record)
    assert list(log.predict_log.request.inputs) == ["x"]


def test_a_model_without_a_serve_graph_is_refused_before_the_image(
    plan: PlanFn, tmp_path: Path
) -> None:
    with pytest.raises(ModelSourceError) as refused:
        resolve(MODELS / "gpu_only")
    message = str(refused.value)
    assert "no MetaGraph tagged exactly {serve}" in message
    assert "{gpu, serve}" in message and "--saved_model_tags" in message
    # The offline plan (the program's own path) refuses it before declaring anything.
    with pytest.raises(Exception, match="tagged exactly") as planned:
        plan("dev", modelSource=str(MODELS / "gpu_only"))
    assert "Traceback" not in str(planned.value)


# --- sparse and composite inputs ------------------------------------------------------------


def test_sparse_and_composite_inputs_are_shown_as_what_they_are() -> None:
    sparse = inputs(resolve(MODELS / "sparse_input"))
    assert sparse["ids"] == TensorSpec("ids", "float32", (-1, 16), SPARSE)
    assert sparse["dense"].encoding == DENSE
    ragged = inputs(resolve(MODELS / "ragged_input"))
    assert ragged["tokens"].encoding == COMPOSITE
    shown = describe_model(resolve(MODELS / "sparse_input"))
    assert "ids: float32 (-1, 16) sparse (COO: values, indices, dense shape)" in shown
    assert "tokens: composite tensor" in describe_model(resolve(MODELS / "ragged_input"))


@pytest.mark.parametrize(
    ("model", "input_name"), [("sparse_input", "ids"), ("ragged_input", "tokens")]
)
def test_warmup_skips_a_signature_it_cannot_feed_and_warns(model: str, input_name: str) -> None:
    warmup = plan_warmup("m", resolve(MODELS / model), enabled=True)
    assert warmup.source == "none"
    assert f"input {input_name} is a" in warmup.description
    (warning,) = warmup.warnings
    assert input_name in warning


def test_string_inputs_are_not_warmed_but_the_rest_of_a_model_is() -> None:
    model = resolve(MODELS / "mixed_dtypes")
    assert {spec.dtype for spec in inputs(model).values()} == {
        "string", "float16", "bfloat16", "float32",
    }  # fmt: skip
    warmup = plan_warmup("m", model, enabled=True)
    assert warmup.source == "none" and "input text is string" in warmup.description


# --- a model's own warmup file ----------------------------------------------------------------


def with_warmup(tmp_path: Path, data: bytes) -> Path:
    model = tmp_path / "model"
    shutil.copytree(TINY_MODEL, model / "1")
    (model / "1" / "assets.extra").mkdir()
    (model / "1" / WARMUP_FILE).write_bytes(data)
    return model


def refusal(tmp_path: Path, data: bytes) -> str:
    with pytest.raises(ModelSourceError) as refused:
        resolve(with_warmup(tmp_path, data), "tiny_classifier")
    message = str(refused.value)
    assert "would fail the model's load on every pod" in message
    return message


def test_a_warmup_file_tensorflow_runs_is_kept(tmp_path: Path) -> None:
    model = resolve(with_warmup(tmp_path, (WARMUP / "tiny_classifier_ok").read_bytes()))
    assert model.warmup
    assert plan_warmup("tiny_classifier", model, enabled=True).source == "model"


def test_a_warmup_file_naming_another_input_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, (WARMUP / "tiny_classifier_wrong_input").read_bytes())
    assert "record 0: inputs ['image'] are not in signature 'serving_default'" in message
    assert "inputs ['image_input'] of signature 'serving_default' are missing" in message


def test_a_session_run_log_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, (WARMUP / "tiny_classifier_session_run").read_bytes())
    assert "session_run_log" in message and "Unimplemented" in message


def test_damaged_framing_is_refused(tmp_path: Path) -> None:
    data = bytearray((WARMUP / "tiny_classifier_ok").read_bytes())
    data[-6] ^= 0xFF  # inside the record's body: its CRC no longer matches
    assert "DataLoss" in refusal(tmp_path, bytes(data))


def predict_record(
    signature: str = "serving_default",
    name: str = "image_input",
    dtype: int = 1,
    shape: tuple[int, ...] = (1, 224, 224, 3),
    content: bytes | None = None,
) -> bytes:
    log = PredictionLog()
    request = log.predict_log.request
    request.model_spec.name = "tiny_classifier"
    request.model_spec.signature_name = signature
    tensor = request.inputs[name]
    tensor.dtype = dtype
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    if content is None:
        tensor.float_val.append(0.5)
    else:
        tensor.tensor_content = content
    data: bytes = log.SerializeToString()
    return data


def problems(*records: bytes) -> list[str]:
    model = resolve(TINY_MODEL, "tiny_classifier")
    assert model.signatures is not None
    return warmup_file_problems(encode(list(records)), model.signatures)


def test_each_rule_of_tf_serving_is_checked() -> None:
    assert problems(predict_record()) == []
    assert problems(b"") == []  # a PredictionLog without a log type: the server skips it
    assert problems(predict_record(signature="nope")) == [
        "record 0: signature 'nope' is not in the model's serve graph (it has serving_default)"
    ]
    assert problems(predict_record(dtype=3)) == [
        "record 0: input 'image_input' is int32; the signature takes float32"
    ]
    assert problems(predict_record(shape=(1, 10))) == [
        "record 0: input 'image_input' has shape (1, 10); the signature takes (-1, 224, 224, 3)"
    ]
    short = predict_record(content=struct.pack("<3f", 0, 0, 0))
    assert "tensor_content holds 12 bytes" in problems(short)[0]
    assert problems(b"\xff\xff") == ["record 0: not a PredictionLog"]
    classify = PredictionLog()
    classify.classify_log.SetInParent()
    assert problems(classify.SerializeToString()) == [
        "record 0: signature 'serving_default' is a tensorflow/serving/predict signature, "
        "not tensorflow/serving/classify"
    ]
    too_many = problems(*[b""] * (MAX_RECORDS + 1))
    assert too_many == [f"{MAX_RECORDS + 1} records, more than TF Serving's {MAX_RECORDS}"]
