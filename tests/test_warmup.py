"""Warm starts: the warmup file the image gets when the model has none, read back here by a
reader of our own (TFRecord framing checked with Google's CRC32C, records parsed with TF
Serving's PredictionLog definition), and the model's own file winning."""

from __future__ import annotations

import math
import shutil
import struct
from dataclasses import replace
from pathlib import Path

import google_crc32c
import pytest
from google.protobuf.unknown_fields import UnknownFieldSet

from infra.model.build_context import write_build_context
from infra.model.signatures import Signature, TensorSpec
from infra.model.source import (
    WARMUP_FILE,
    FetchEnvironment,
    ModelRequest,
    ResolvedModel,
    resolve_model,
)
from infra.model.warmup.records import Warmup, generate, plan_warmup
from infra.model.warmup.tfrecord import (
    crc32c,
    crc32c_reference,
    decode,
    encode,
    masked_crc32c,
)
from tests.conftest import ROOT, PlanFn
from tests.model_archives import TINY_MODEL
from tests.tfserving_protos import LOG_TYPES, PredictionLog

CONTEXT_WARMUP = f"models/tiny_classifier/1/{WARMUP_FILE}"


def masked(data: bytes) -> int:
    """TensorFlow's mask over Google's CRC32C (crc32c.h), independent of infra.model.warmup."""
    crc = int(google_crc32c.value(data))
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecord(data: bytes) -> list[bytes]:
    """Records of a TFRecord file, each length and body checked against its masked CRC."""
    records, offset = [], 0
    while offset < len(data):
        length_bytes = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        assert struct.unpack("<I", data[offset + 8 : offset + 12])[0] == masked(length_bytes)
        body = data[offset + 12 : offset + 12 + length]
        assert len(body) == length, "truncated record"
        (crc,) = struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])
        assert crc == masked(body)
        records.append(body)
        offset += 16 + length
    return records


def test_crc32c_and_its_mask_match_google_and_tensorflow() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c_reference(b"123456789") == 0xE3069283
    for data in (b"", b"a", bytes(1000), b"tfserving-gke" * 300, bytes(range(256)) * 7):
        # The C library against the table-driven CRC written here, byte by byte.
        assert crc32c(data) == crc32c_reference(data)
        assert masked_crc32c(data) == masked(data)


def test_framing_round_trips_and_refuses_damage() -> None:
    records = [b"", b"first", bytes(70000)]
    data = encode(records)
    assert decode(data) == records == read_tfrecord(data)
    flipped = bytearray(data)
    flipped[16 + 12 + 2] ^= 0xFF  # inside the second record's body (the first takes 16)
    with pytest.raises(ValueError, match="corrupted record data at byte 16"):
        decode(bytes(flipped))
    with pytest.raises(ValueError, match="truncated"):
        decode(data[:-3])


def tiny_model(path: Path = TINY_MODEL, project_dir: Path = ROOT) -> ResolvedModel:
    return resolve_model(
        ModelRequest(str(path), "tiny_classifier", 1), FetchEnvironment(project_dir=project_dir)
    )


def warmup_in_image(model: ResolvedModel, warmup: Warmup, project_dir: Path) -> Path:
    """Where the image's build context holds the served version's warmup file."""
    context = write_build_context(
        "tiny_classifier", model, "2.20.0", "cpu", project_dir, warmup=warmup
    )
    return project_dir / context.directory / CONTEXT_WARMUP


def test_the_image_gets_a_warmup_file_generated_from_the_signature(tmp_path: Path) -> None:
    model = tiny_model()
    warmup = plan_warmup("tiny_classifier", model, enabled=True)
    assert warmup.source == "generated"
    assert warmup.path == f"1/{WARMUP_FILE}"
    written = warmup_in_image(model, warmup, tmp_path)
    assert written.stat().st_mode & 0o777 == 0o644
    (record,) = read_tfrecord(written.read_bytes())
    log = PredictionLog()
    log.ParseFromString(record)
    assert [kind for kind in LOG_TYPES if log.HasField(kind)] == ["predict_log"]
    assert len(UnknownFieldSet(log)) == 0
    request = log.predict_log.request
    assert request.model_spec.name == "tiny_classifier"
    assert request.model_spec.signature_name == "serving_default"
    assert list(request.inputs) == ["image_input"]
    tensor = request.inputs["image_input"]
    assert tensor.dtype == 1  # DT_FLOAT
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    assert shape == [1, 224, 224, 3]  # the batch dimension (-1) as 1
    assert tensor.tensor_content == bytes(math.prod(shape) * 4)


def test_the_plan_says_where_warmup_comes_from(plan: PlanFn) -> None:
    generated = plan("dev")
    assert generated.recording.stack_outputs["modelWarmup"].startswith(
        "generated: 1 Predict request(s), serving_default"
    )
    off = plan("dev", warmup=False)
    assert off.recording.stack_outputs["modelWarmup"].startswith("none (warmup false)")
    context = next(r for r in off.recording.resources if r.name == "image-serving")
    assert not (ROOT / context.inputs["build"]["context"] / CONTEXT_WARMUP).exists()
    unresolved = plan("8vcpu-16gb-interop4")
    assert "decided once the model is fetched" in unresolved.recording.stack_outputs["modelWarmup"]


def test_the_models_own_warmup_file_wins(tmp_path: Path) -> None:
    source = tmp_path / "model"
    shutil.copytree(TINY_MODEL, source / "1")
    own = (ROOT / "tests" / "data" / "warmup" / "tiny_classifier_ok").read_bytes()
    (source / "1" / "assets.extra").mkdir()
    (source / "1" / WARMUP_FILE).write_bytes(own)
    model = tiny_model(source, tmp_path)
    warmup = plan_warmup("tiny_classifier", model, enabled=True)
    assert warmup.source == "model" and warmup.data == b""
    assert warmup_in_image(model, warmup, tmp_path).read_bytes() == own


def predict(key: str, *inputs: TensorSpec) -> Signature:
    return Signature(key, "tensorflow/serving/predict", inputs, ())


def test_only_signatures_that_surely_load_are_warmed() -> None:
    classify = Signature(
        "classify", "tensorflow/serving/classify", (TensorSpec("inputs", "string", (-1,)),), ()
    )
    signatures = (
        predict(
            "tokens", TensorSpec("ids", "int64", (-1, -1)), TensorSpec("mask", "bool", (-1, 8))
        ),
        predict("half", TensorSpec("x", "float16", (2,))),
        classify,
        predict("text", TensorSpec("sentence", "string", (-1,))),
        predict("ragged", TensorSpec("x", "float32", None)),
    )
    records, skipped = generate("m", signatures)
    assert skipped == [
        "classify is a classify signature",
        "text: input sentence is string",
        "ragged: input x has an unknown rank",
    ]
    logs = []
    for record in records:
        log = PredictionLog()
        log.ParseFromString(record)
        logs.append(log.predict_log.request)
    tokens, half = logs
    assert [d.size for d in tokens.inputs["ids"].tensor_shape.dim] == [1, 1]
    assert tokens.inputs["ids"].dtype == 9 and len(tokens.inputs["ids"].tensor_content) == 8
    assert tokens.inputs["mask"].dtype == 10 and tokens.inputs["mask"].tensor_content == bytes(8)
    assert half.inputs["x"].dtype == 19 and half.inputs["x"].tensor_content == bytes(4)


def test_a_model_nothing_can_warm_says_so() -> None:
    model = replace(
        tiny_model(),
        signatures=(predict("text", TensorSpec("sentence", "string", (-1,))),),
    )
    warmup = plan_warmup("tiny_classifier", model, enabled=True)
    assert warmup.source == "none"
    assert "text: input sentence is string" in warmup.description
    assert f"1/{WARMUP_FILE}" in warmup.description
