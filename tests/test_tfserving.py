"""TF Serving flags and config files, checked with protobuf's text-format parser."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from infra.data import load
from infra.design.experiment import design_experiment
from infra.design.settings import resolve_settings
from infra.design.tfserving import (
    BatchingParameters,
    ServerOptions,
    batching_parameters_text,
    config_files,
    config_files_sha256,
    monitoring_config_text,
    server_args,
    unknown_flags,
)
from infra.plan.run import StackPlan
from tests import tfserving_protos
from tests.conftest import container

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


def test_splitting_writes_the_execution_batch_size_as_tf_serving_reads_it() -> None:
    params = BatchingParameters(
        max_batch_size=512,
        batch_timeout_micros=0,
        max_enqueued_batches=8,
        num_batch_threads=8,
        enable_large_batch_splitting=True,
        max_execution_batch_size=64,
    )
    parsed = text_format.Parse(
        batching_parameters_text(params), tfserving_protos.BatchingParameters()
    )
    assert parsed.enable_large_batch_splitting.value is True
    assert parsed.max_execution_batch_size.value == 64
    assert params.execution_batch_size == 64
    unsplit = text_format.Parse(
        batching_parameters_text(REFERENCE_BATCHING), tfserving_protos.BatchingParameters()
    )
    assert not unsplit.HasField("enable_large_batch_splitting")


def design(**config: object) -> object:
    settings = resolve_settings(
        stack="scratch", gcp_project="my-project", config=config, explicit_keys=set(config)
    )
    return design_experiment(settings)


def test_batching_sizes_request_threads_to_fill_a_batch() -> None:
    batched = design(nodeVcpus=8, nodeMemoryGb=32, enableBatching=True, maxBatchSize=128)
    server = batched.server  # type: ignore[attr-defined]
    # 2 x 128 requests in flight; REST keeps one more thread for libevent's event loop.
    assert (server.rest_api_num_threads, server.grpc_max_threads) == (257, 256)
    assert server.batching.enable_large_batch_splitting is True
    assert server.batching.max_execution_batch_size == 128
    split = design(
        nodeVcpus=8,
        nodeMemoryGb=32,
        enableBatching=True,
        maxBatchSize=512,
        maxExecutionBatchSize=32,
    ).server  # type: ignore[attr-defined]
    assert (split.rest_api_num_threads, split.grpc_max_threads) == (65, 64)
    plain = design(nodeVcpus=8, nodeMemoryGb=32).server  # type: ignore[attr-defined]
    assert (plain.rest_api_num_threads, plain.grpc_max_threads) == (32, 32)


def test_threads_set_below_what_batching_needs_are_kept_with_a_warning() -> None:
    low = design(
        nodeVcpus=8, nodeMemoryGb=32, enableBatching=True, maxBatchSize=64, grpcMaxThreads=16
    )
    assert low.server.grpc_max_threads == 16  # type: ignore[attr-defined]
    (warning,) = [w for w in low.warnings if "grpcMaxThreads 16" in w]  # type: ignore[attr-defined]
    # Only gRPC is short: REST was sized by the program.
    assert warning.startswith("grpcMaxThreads 16 (set explicitly) is below")
    assert "2 x 64 = 128 requests in flight" in warning
    # The advice names only what is still short, not what the program already sized.
    assert warning.endswith("To fill batches, set grpcMaxThreads 128.")
    assert "restApiNumThreads" not in warning


def test_flags_the_program_emits_all_exist_in_tf_serving_2_20(
    shipped_plans: dict[str, StackPlan],
) -> None:
    flags = load("tfserving_flags")
    assert flags["tf_serving_version"] == "2.20.0"
    emitted = {arg for plan in shipped_plans.values() for arg in container(plan)["args"]}
    emitted |= set(server_args(options(REFERENCE_BATCHING)))
    assert {arg.split("=", 1)[0] for arg in emitted} >= {
        "--enable_batching",
        "--batching_parameters_file",
        "--monitoring_config_file",
    }
    assert unknown_flags(sorted(emitted)) == []


def test_a_misspelt_flag_is_caught() -> None:
    assert unknown_flags(["--rest_api_num_thread=8", "--port=8500"]) == ["--rest_api_num_thread=8"]
