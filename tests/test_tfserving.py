"""TF Serving flags and config files, checked with protobuf's text-format parser."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from infra.tfserving import (
    BatchingParameters,
    ServerOptions,
    batching_parameters_text,
    config_files,
    config_files_sha256,
    monitoring_config_text,
    server_args,
)
from tests import tfserving_protos

REFERENCE_BATCHING = BatchingParameters(
    max_batch_size=128, batch_timeout_micros=0, max_enqueued_batches=2, num_batch_threads=2
)


def options(batching: BatchingParameters | None = None) -> ServerOptions:
    return ServerOptions(
        model_name="resnet",
        intra_op_parallelism=8,
        inter_op_parallelism=4,
        rest_api_num_threads=32,
        grpc_max_threads=32,
        batching=batching,
    )


def test_reference_batching_file_parses_as_batching_parameters() -> None:
    parsed = text_format.Parse(
        batching_parameters_text(REFERENCE_BATCHING), tfserving_protos.BatchingParameters()
    )
    assert parsed.max_batch_size.value == 128
    assert parsed.HasField("batch_timeout_micros")
    assert parsed.batch_timeout_micros.value == 0
    assert parsed.max_enqueued_batches.value == 2
    assert parsed.num_batch_threads.value == 2
    assert list(parsed.allowed_batch_sizes) == []


def test_allowed_sizes_and_padding_are_written_as_plain_fields() -> None:
    params = BatchingParameters(
        max_batch_size=64,
        batch_timeout_micros=2000,
        max_enqueued_batches=8,
        num_batch_threads=8,
        allowed_batch_sizes=(8, 16, 32, 64),
        pad_variable_length_inputs=True,
    )
    parsed = text_format.Parse(
        batching_parameters_text(params), tfserving_protos.BatchingParameters()
    )
    assert list(parsed.allowed_batch_sizes) == [8, 16, 32, 64]
    assert parsed.pad_variable_length_inputs is True
    assert parsed.batch_timeout_micros.value == 2000


def test_monitoring_config_enables_prometheus_on_the_rest_port() -> None:
    parsed = text_format.Parse(monitoring_config_text(), tfserving_protos.MonitoringConfig())
    assert parsed.prometheus_config.enable is True
    assert parsed.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_threads_are_always_explicit() -> None:
    args = server_args(options())
    assert "--tensorflow_intra_op_parallelism=8" in args
    assert "--tensorflow_inter_op_parallelism=4" in args
    assert "--rest_api_num_threads=32" in args
    assert "--grpc_max_threads=32" in args
    assert not any(arg.startswith("--tensorflow_session_parallelism") for arg in args)


def test_batching_file_is_passed_only_with_batching_enabled() -> None:
    assert not any("batching" in arg for arg in server_args(options()))
    assert "batching_config.txt" not in config_files(options())
    args = server_args(options(REFERENCE_BATCHING))
    assert "--enable_batching=true" in args
    assert "--batching_parameters_file=/etc/tfs-config/batching_config.txt" in args


@pytest.mark.parametrize("field", ["max_batch_size", "num_batch_threads", "batch_timeout_micros"])
def test_any_batching_change_changes_the_config_digest(field: str) -> None:
    changed = REFERENCE_BATCHING.__class__(
        **{**REFERENCE_BATCHING.__dict__, field: getattr(REFERENCE_BATCHING, field) + 1}
    )
    before = config_files_sha256(config_files(options(REFERENCE_BATCHING)))
    after = config_files_sha256(config_files(options(changed)))
    assert before != after


def test_the_parser_rejects_a_wrapper_field_written_as_a_plain_value() -> None:
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_size: 128", tfserving_protos.BatchingParameters())
