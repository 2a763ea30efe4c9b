"""TF Serving's command line and config files, from decided values.

Names follow TF Serving's own flags and proto fields so users can map ours to theirs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from infra.data import load
from infra.design.machine import family_facts
from infra.design.monitoring.names import METRICS_PATH
from infra.model.serving import GRPC_PORT, REST_PORT, model_base_path

CONFIG_DIR = "/etc/tfs-config"
BATCHING_FILE = "batching_config.txt"
MONITORING_FILE = "monitoring_config.txt"


@dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's BatchingParameters (servables/tensorflow/session_bundle_config.proto)."""

    max_batch_size: int
    batch_timeout_micros: int
    max_enqueued_batches: int
    num_batch_threads: int
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 0  # 0: not written (TF Serving uses max_batch_size)

    @property
    def execution_batch_size(self) -> int:
        """The most rows one executed batch holds (bundle_factory_util.h GetQueueOptions)."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size


@dataclass(frozen=True)
class ServerOptions:
    """Every flag value the server runs with."""

    model_name: str
    intra_op_parallelism: int
    inter_op_parallelism: int
    rest_api_num_threads: int
    grpc_max_threads: int
    batching: BatchingParameters | None
    # TF_ENABLE_ONEDNN_OPTS: "1" or "0", or "" to leave TensorFlow's default.
    onednn_env: str = ""
    # --per_process_gpu_memory_fraction on a GPU pool; 0.0: not passed (TensorFlow's own).
    gpu_memory_fraction: float = 0.0


# TensorFlow turns its oneDNN ops on by default only where the CPU has one of these
# (tensorflow/core/util/port.cc, IsMklEnabled via the CPU feature checks);
# TF_ENABLE_ONEDNN_OPTS=1 or 0 overrides (shared/facts/gke-families.md).
ONEDNN_INSTRUCTIONS = ("avx512-vnni", "avx512-bf16", "avx-vnni", "amx")
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"


def onednn(setting: str, family: str) -> tuple[str, str]:
    """(TF_ENABLE_ONEDNN_OPTS value or "" to leave TensorFlow's default, what the server
    will do on this machine family, in words) for oneDnn auto, on or off."""
    if setting == "on":
        return "1", "on (oneDnn on)"
    if setting == "off":
        return "0", "off (oneDnn off)"
    facts = family_facts(family)
    if facts.get("host_cpus_vary"):
        return "", (
            f"TensorFlow's default, which depends on the host {family.upper()} lands on: on "
            "with AVX512_VNNI or AMX (Intel Cascade Lake and newer), off on AMD Rome and Milan"
        )
    found = [i for i in ONEDNN_INSTRUCTIONS if i in facts.get("instructions", [])]
    if found:
        return "", f"on: TensorFlow's default on {family.upper()} ({', '.join(found)})"
    return "", (
        f"off: TensorFlow's default on {family.upper()}, whose CPUs have none of "
        f"{', '.join(ONEDNN_INSTRUCTIONS)} (set oneDnn on to measure it with oneDNN)"
    )


def batching_parameters_text(params: BatchingParameters) -> str:
    """The batching_parameters_file in protobuf text format."""
    lines = [
        f"max_batch_size {{ value: {params.max_batch_size} }}",
        f"batch_timeout_micros {{ value: {params.batch_timeout_micros} }}",
        f"max_enqueued_batches {{ value: {params.max_enqueued_batches} }}",
        f"num_batch_threads {{ value: {params.num_batch_threads} }}",
    ]
    lines += [f"allowed_batch_sizes: {size}" for size in params.allowed_batch_sizes]
    if params.pad_variable_length_inputs:
        lines.append("pad_variable_length_inputs: true")
    if params.enable_large_batch_splitting:
        lines.append("enable_large_batch_splitting { value: true }")
        if params.max_execution_batch_size:
            lines.append(f"max_execution_batch_size {{ value: {params.max_execution_batch_size} }}")
    return "\n".join(lines) + "\n"


def monitoring_config_text() -> str:
    """The monitoring_config_file: Prometheus metrics on the REST port."""
    return f'prometheus_config {{\n  enable: true\n  path: "{METRICS_PATH}"\n}}\n'


def config_files(options: ServerOptions) -> dict[str, str]:
    """Files mounted at CONFIG_DIR, by file name."""
    files = {MONITORING_FILE: monitoring_config_text()}
    if options.batching:
        files[BATCHING_FILE] = batching_parameters_text(options.batching)
    return files


def config_files_sha256(files: dict[str, str]) -> str:
    """A digest of the config files' names and contents, to roll pods when they change."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\0".encode())
    return digest.hexdigest()


def server_args(options: ServerOptions) -> list[str]:
    """tensorflow_model_server flags, all explicit (thread counts default to the host's CPUs)."""
    args = [
        f"--port={GRPC_PORT}",
        f"--rest_api_port={REST_PORT}",
        f"--model_name={options.model_name}",
        f"--model_base_path={model_base_path(options.model_name)}",
        f"--tensorflow_intra_op_parallelism={options.intra_op_parallelism}",
        f"--tensorflow_inter_op_parallelism={options.inter_op_parallelism}",
        f"--rest_api_num_threads={options.rest_api_num_threads}",
        f"--grpc_max_threads={options.grpc_max_threads}",
        f"--monitoring_config_file={CONFIG_DIR}/{MONITORING_FILE}",
    ]
    if options.gpu_memory_fraction:
        args.append(f"--per_process_gpu_memory_fraction={options.gpu_memory_fraction:g}")
    if options.batching:
        args += [
            "--enable_batching=true",
            f"--batching_parameters_file={CONFIG_DIR}/{BATCHING_FILE}",
        ]
    return args


def unknown_flags(args: list[str]) -> list[str]:
    """Flags in `args` that tensorflow_model_server does not define (it would print
    "unknown argument" and ignore them), per infra/data/tfserving_flags.yaml."""
    known = set(load("tfserving_flags")["flags"])
    return [arg for arg in args if arg.removeprefix("--").split("=", 1)[0] not in known]


def model_status_path(model_name: str) -> str:
    """REST path whose 200 answer means the model is loaded and AVAILABLE."""
    return f"/v1/models/{model_name}"
