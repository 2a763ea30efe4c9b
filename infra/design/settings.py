"""Settings: parsed once, at the edge, into one immutable typed object.

Three layers, later wins: the defaults declared in Pulumi.yaml, the experiment preset
(experiments/<name>.yaml), and the stack's own config. Every value remembers the layer
it came from, so the plan can show it. Nothing else in the program reads Pulumi config.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import ipaddress
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.data import load, read_yaml
from infra.design.machine import is_gpu_machine
from infra.design.naming import image_repository_name
from infra.inputs.errors import ConfigError, InputError, did_you_mean
from infra.inputs.values import project_problem as gcp_project_problem

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROJECT_FILE = PROJECT_DIR / "Pulumi.yaml"
EXPERIMENTS_DIR = PROJECT_DIR / "experiments"
NO_PRESET = "none"
# Read at the edge (infra.design.stack_config) straight into the fetch environment, never into
# Settings, so they cannot reach the plan, outputs or logs.
SECRET_SETTINGS = frozenset({"githubToken"})
# The GCP project a stack without gcp:project is planned with.
PLACEHOLDER_GCP_PROJECT = "your-gcp-project"

DEFAULT = "default"
STACK = "stack"
FROM_MODEL_SOURCE = "modelSource"  # a model name taken from the stack's modelSource

RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
VARIANTS = ("cpu", "gpu")
# Boot disk types; which a machine family attaches is infra/data/families.yaml's.
DISK_TYPES = ("pd-standard", "pd-balanced", "pd-ssd", "hyperdisk-balanced")
EXPOSURES = ("internal", "external")
ONE_DNN = ("auto", "on", "off")
# The settings of TF Serving's batching: they take effect only with enableBatching.
BATCHING_SETTINGS = (
    "maxBatchSize",
    "enableLargeBatchSplitting",
    "maxExecutionBatchSize",
    "batchTimeoutMicros",
    "maxEnqueuedBatches",
    "numBatchThreads",
    "allowedBatchSizes",
    "padVariableLengthInputs",
)
MIN_DISK_GB = 10
MAX_NODE_COUNT = 100
# Namespaces the program must not create, label and delete on destroy: Kubernetes' own
# (and its reserved kube- prefix) and GKE's managed ones.
RESERVED_NAMESPACES = ("default", "gmp-system", "gmp-public")
RESERVED_NAMESPACE_PREFIXES = ("kube-", "gke-")

_ZONE = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SAFE_API_URL = re.compile(
    r"^(https://[^/\s]+|http://(127\.\d+\.\d+\.\d+|localhost)(:\d+)?)(/\S*)?$"
)


@dataclass(frozen=True)
class Declaration:
    """One setting as Pulumi.yaml declares it."""

    key: str
    type: str
    default: Any
    description: str


@dataclass(frozen=True)
class Settings:
    """Every setting of one stack, validated. Field names are the config keys in snake_case."""

    project: str
    stack: str
    gcp_project: str
    experiment: str
    experiment_label: str
    zone: str
    regional: bool
    release_channel: str
    machine_type: str
    node_vcpus: int
    node_memory_gb: int
    node_count: int
    spot: bool
    disk_type: str
    disk_size_gb: int
    pods_per_node: int
    replicas: int
    autoscaling: bool
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int
    min_nodes: int
    max_nodes: int
    model_name: str
    model_source: str
    model_sha256: str
    model_version: int
    model_max_download_mb: int
    github_api_url: str
    tf_serving_version: str
    tf_serving_variant: str
    gpu_type: str
    gpu_count: int
    gpu_driver_version: str
    gpu_memory_percent: int
    one_dnn: str
    tensorflow_intra_op_parallelism: int
    tensorflow_inter_op_parallelism: int
    rest_api_num_threads: int
    grpc_max_threads: int
    enable_batching: bool
    max_batch_size: int
    enable_large_batch_splitting: bool
    max_execution_batch_size: int
    batch_timeout_micros: int
    max_enqueued_batches: int
    num_batch_threads: int
    allowed_batch_sizes: tuple[int, ...]
    pad_variable_length_inputs: bool
    load_generator: bool
    load_generator_machine_type: str
    load_generator_max_nodes: int
    load_generator_spot: bool
    metrics: bool
    warmup: bool
    ttl_hours: int
    namespace: str
    exposure: str
    load_balancer_source_ranges: tuple[str, ...]
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    # Keys a preset or the stack sets to exactly their declared default.
    restating_default: frozenset[str] = field(default_factory=frozenset, compare=False)
    warnings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The `experiment` label's value on what the stack creates."""
        return self.experiment_label or self.experiment

    @property
    def region(self) -> str:
        match = _ZONE.match(self.zone)
        assert match, "zone is validated on load"
        return match[1]

    @property
    def cluster_location(self) -> str:
        return self.region if self.regional else self.zone

    def value_of(self, key: str) -> Any:
        """The value of a setting by its config key (camelCase)."""
        return getattr(self, snake_case(key))

    def changed(self, key: str) -> bool:
        """Whether a preset or the stack gives `key` a value other than its default."""
        return self.sources.get(key, DEFAULT) != DEFAULT and key not in self.restating_default


def no_effect(keys: list[str], because: str, fix: str) -> str:
    """The warning for settings that a switched-off feature ignores."""
    one = len(keys) == 1
    verb, them = ("has", "it") if one else ("have", "them")
    return f"{because}, so {', '.join(keys)} {verb} no effect; {fix.format(them=them)}."


def snake_case(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


@functools.lru_cache(maxsize=8)
def _project_document(project_file: Path, modified_ns: int) -> dict[str, Any]:
    document: dict[str, Any] = read_yaml(project_file)
    return document


def _project(project_file: Path) -> dict[str, Any]:
    """Pulumi.yaml, parsed once per version of the file (plans read it for every stack)."""
    return _project_document(project_file, project_file.stat().st_mtime_ns)


def load_declarations(project_file: Path = PROJECT_FILE) -> dict[str, Declaration]:
    """Every setting declared in Pulumi.yaml's config section."""
    project = _project(project_file)
    return {
        key: Declaration(
            key, spec["type"], spec.get("default"), " ".join(spec["description"].split())
        )
        for key, spec in project["config"].items()
    }


def project_name(project_file: Path = PROJECT_FILE) -> str:
    return str(_project(project_file)["name"])


def available_presets() -> list[str]:
    return sorted(path.stem for path in EXPERIMENTS_DIR.glob("*.yaml"))


def load_preset(name: str, declarations: Mapping[str, Declaration]) -> dict[str, Any]:
    """The settings of experiments/<name>.yaml, checked against the declarations."""
    path = EXPERIMENTS_DIR / f"{name}.yaml"
    if not path.is_file():
        presets = available_presets()
        raise ConfigError(
            "experiment",
            f"no preset named {name!r}.{did_you_mean(name, presets)} Presets: "
            f'{", ".join(presets)}. Use one of these, or "{NO_PRESET}" for no preset.',
        )
    preset = read_yaml(path, "an experiment preset (description, settings: {key: value})") or {}
    values: dict[str, Any] = preset.get("settings") or {}
    if not isinstance(values, dict):
        raise InputError(
            f"{path}: `settings` is a YAML {type(values).__name__}; it must be a mapping of "
            "setting names to values, e.g. `settings:` then `  nodeCount: 3`"
        )
    unknown = sorted(set(values) - set(declarations))
    if unknown:
        raise ConfigError(
            "experiment",
            f"preset {path.name} sets undeclared settings {unknown}."
            f"{did_you_mean(unknown[0], declarations)}",
        )
    return values


def coerce_setting(declaration: Declaration, raw: Any) -> Any:
    """A config value (string from Pulumi, or native from YAML) as its declared type."""
    key, kind = declaration.key, declaration.type
    if kind == "string":
        if isinstance(raw, (dict, list)):
            raise ConfigError(key, f"expected a string, got {raw!r}.")
        return str(raw)
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "false"):
            return str(raw).lower() == "true"
        raise ConfigError(key, f"expected true or false, got {raw!r}.")
    if kind == "integer":
        if isinstance(raw, bool):
            raise ConfigError(key, f"expected a whole number, got {raw!r}.")
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ConfigError(key, f"expected a whole number, got {raw!r}.") from None
    if kind == "array":
        items = raw
        if isinstance(raw, str):
            try:
                items = json.loads(raw)
            except json.JSONDecodeError:
                raise ConfigError(
                    key, f'expected a list (e.g. ["a", "b"] as JSON), got {raw!r}.'
                ) from None
        if not isinstance(items, list):
            raise ConfigError(key, f"expected a list, got {raw!r}.")
        return tuple(items)
    raise ConfigError(key, f"Pulumi.yaml declares unsupported type {kind!r}.")


def resolve_settings(
    *,
    stack: str,
    gcp_project: str,
    config: Mapping[str, Any],
    explicit_keys: set[str],
    declarations: Mapping[str, Declaration] | None = None,
) -> Settings:
    """Layer defaults, preset and stack config into validated Settings.

    `config` holds the project's config values as Pulumi passes them (declared defaults
    already merged in); `explicit_keys` are the keys the stack itself sets.
    """
    decls = declarations if declarations is not None else load_declarations()
    unknown = sorted(set(config) - set(decls))
    if unknown:
        raise ConfigError(
            unknown[0],
            f"is not a setting of this project.{did_you_mean(unknown[0], decls)} Settings: "
            f"{', '.join(sorted(decls))}.",
        )
    stack_set = {key for key in config if key in explicit_keys or _differs(decls[key], config[key])}

    experiment = str(config["experiment"]) if "experiment" in stack_set else ""
    preset_name = experiment or (stack if (EXPERIMENTS_DIR / f"{stack}.yaml").is_file() else "")
    if preset_name == NO_PRESET:
        preset_name = ""
    preset = load_preset(preset_name, decls) if preset_name else {}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    restating: set[str] = set()
    for key, decl in decls.items():
        if key in SECRET_SETTINGS:
            continue
        if key in stack_set:
            raw, source = config[key], STACK
        elif key in preset:
            raw, source = preset[key], f"preset {preset_name}"
        else:
            raw, source = decl.default, DEFAULT
        values[snake_case(key)] = coerce_setting(decl, raw)
        sources[key] = source
        if source != DEFAULT and not _differs(decl, raw):
            restating.add(key)
    if sources["modelSource"] == STACK and sources["modelName"] != STACK:
        # The stack brings its own model but does not name it: the default's or a preset's
        # name belongs to another model.
        values["model_name"] = model_name_from_source(str(values["model_source"]))
        sources["modelName"] = FROM_MODEL_SOURCE
    values["experiment"] = preset_name or NO_PRESET
    if "experiment" not in stack_set and preset_name:
        sources["experiment"] = "stack name"
    if not gcp_project:
        raise ConfigError(
            "gcp:project", "is not set. Run `pulumi config set gcp:project <your-project-id>`."
        )
    settings = Settings(
        project=project_name(),
        stack=stack,
        gcp_project=gcp_project,
        sources=sources,
        restating_default=frozenset(restating),
        **values,
    )
    return dataclasses.replace(settings, warnings=tuple(validate(settings)))


def resolve_values(stack: str, values: Mapping[str, Any], gcp_project: str) -> Settings:
    """Settings as the program resolves them from a stack file holding exactly `values`
    (short keys) and `gcp_project` (a placeholder when empty): what a file about to be
    written would give."""
    config = {key: decl.default for key, decl in load_declarations().items()}
    config = {key: value for key, value in config.items() if key not in SECRET_SETTINGS}
    return resolve_settings(
        stack=stack,
        gcp_project=gcp_project or PLACEHOLDER_GCP_PROJECT,
        config=config | dict(values),
        explicit_keys=set(values),
    )


_ARCHIVE_SUFFIX = re.compile(r"(\.tar\.gz|\.tgz|\.tar\.bz2|\.tbz2|\.tar\.xz|\.txz|\.tar|\.zip)$")
# Asset and directory names that say nothing of the model: the repository names it instead.
_GENERIC_NAMES = {"saved_model", "savedmodel", "model", "models", "export", "exported_model"}


def model_name_from_source(source: str) -> str:
    """A TF Serving model name for a modelSource that does not come with one: the archive's
    or directory's name, or the repository's when that name is generic (saved_model)."""
    github = re.match(r"^github:([^/]+)/([^@#]+)(?:@[^#]*)?(?:#(.+))?$", source.strip())
    candidates: list[str] = []
    if github:
        candidates = [github[3] or "", github[2]]
    else:
        path = re.sub(r"^[a-z]+://[^/]*", "", source.strip()).split("?")[0].rstrip("/")
        parts = [p for p in path.split("/") if p]
        candidates = [parts[-1] if parts else "", parts[-2] if len(parts) > 1 else ""]
    for candidate in candidates:
        stem = _ARCHIVE_SUFFIX.sub("", candidate.lower())
        name = re.sub(r"[^a-z0-9_.-]+", "-", stem).strip("-_.")
        if name and name not in _GENERIC_NAMES and _MODEL_NAME.match(name):
            return name
    return "model"


def _differs(declaration: Declaration, value: Any) -> bool:
    try:
        return bool(
            coerce_setting(declaration, value) != coerce_setting(declaration, declaration.default)
        )
    except ConfigError:
        return True


def _check_region(zone: str) -> None:
    """A zone of a region GCP has (the price catalogue lists them, and its refresh keeps the
    list current); a real region without prices is priced at the fallback rates."""
    region = _ZONE.match(zone)[1]  # type: ignore[index]
    catalogue = load("prices")
    regions = catalogue["catalogues"][str(catalogue["current"])].get("regions") or []
    if regions and region not in regions:
        close = difflib.get_close_matches(region, regions, n=1, cutoff=0.6)
        suggestion = f" The closest is {close[0]}: zone {close[0]}-{zone[-1]}." if close else ""
        raise ConfigError(
            "zone",
            f"{zone!r} is in {region}, which is not a GCP region.{suggestion} Regions: "
            f"{', '.join(regions)}.",
        )


def validate(settings: Settings) -> list[str]:
    """Raise ConfigError for the first invalid setting; return warnings for risky ones."""
    s = settings
    warnings: list[str] = []
    if s.sources.get("modelName") == FROM_MODEL_SOURCE:
        warnings.append(
            f"modelName is not set: the model from {s.model_source} is served as "
            f"{s.model_name!r} (/v1/models/{s.model_name}), a name taken from its source. Set "
            "modelName to serve it under another."
        )
    if not _ZONE.match(s.zone):
        raise ConfigError("zone", f"{s.zone!r} is not a zone name; expected e.g. us-central1-a.")
    _check_region(s.zone)
    project_problem = gcp_project_problem(s.gcp_project)
    if project_problem:
        raise ConfigError("gcp:project", f"{project_problem}.")
    if s.experiment_label and not _LABEL.match(s.experiment_label):
        raise ConfigError(
            "experimentLabel",
            f"{s.experiment_label!r} is not a label value GCP and Kubernetes both accept, and "
            "would be rewritten: use at most 63 lower-case letters, digits, '-' and '_', "
            "starting and ending with a letter or digit (e.g. big-test).",
        )
    if s.rest_api_num_threads == 1:
        raise ConfigError(
            "restApiNumThreads",
            "1 leaves no thread to serve: one thread of TF Serving's REST pool runs its event "
            "loop. Use 0 (automatic) or at least 2.",
        )
    checked = str(load("tfserving_flags")["tf_serving_version"])
    if _VERSION.match(s.tf_serving_version) and s.tf_serving_version != checked:
        raise ConfigError(
            "tfServingVersion",
            f"{s.tf_serving_version!r} is not a version whose flags this project checked "
            f"(infra/data/tfserving_flags.yaml lists {checked}'s): use {checked}, or check "
            "the new version's flags in that file first.",
        )
    _one_of("releaseChannel", s.release_channel, RELEASE_CHANNELS)
    _one_of("diskType", s.disk_type, DISK_TYPES)
    _one_of("exposure", s.exposure, EXPOSURES)
    _one_of("oneDnn", s.one_dnn, ONE_DNN)
    _one_of("tfServingVariant", s.tf_serving_variant, VARIANTS)
    gpus = load("gpus")
    if s.gpu_type:
        _one_of("gpuType", s.gpu_type, tuple(gpus["accelerators"]))
    _one_of("gpuDriverVersion", s.gpu_driver_version, tuple(gpus["driver_versions"]))
    _at_least("gpuCount", s.gpu_count, 0, 8)
    _at_least("gpuMemoryPercent", s.gpu_memory_percent, 0, 100)
    _at_least("modelMaxDownloadMb", s.model_max_download_mb, 1, 1024 * 1024)
    if s.model_sha256 and not _SHA256.match(s.model_sha256.lower().removeprefix("sha256:")):
        raise ConfigError(
            "modelSha256",
            f"{s.model_sha256!r} is not a sha256 digest: 64 hex characters, optionally "
            "prefixed with sha256:.",
        )
    if not _SAFE_API_URL.match(s.github_api_url):
        raise ConfigError(
            "githubApiUrl",
            f"{s.github_api_url!r} must be an https:// URL (plain http only for 127.0.0.1 or "
            "localhost), e.g. https://api.github.com.",
        )
    _at_least("nodeCount", s.node_count, 1, MAX_NODE_COUNT)
    _at_least("diskSizeGb", s.disk_size_gb, MIN_DISK_GB, 65536)
    _at_least("podsPerNode", s.pods_per_node, 1, 110)
    _at_least("replicas", s.replicas, 0, 10000)
    _at_least("modelVersion", s.model_version, 1, 2**63 - 1)
    _at_least("ttlHours", s.ttl_hours, 0, 24 * 365)
    _at_least("loadGeneratorMaxNodes", s.load_generator_max_nodes, 1, MAX_NODE_COUNT)
    for key in (
        "tensorflowIntraOpParallelism",
        "tensorflowInterOpParallelism",
        "restApiNumThreads",
        "grpcMaxThreads",
        "maxEnqueuedBatches",
        "numBatchThreads",
        "batchTimeoutMicros",
    ):
        _at_least(key, s.value_of(key), 0, 1_000_000_000)
    _at_least("maxBatchSize", s.max_batch_size, 1, 1_000_000)
    _at_least("maxExecutionBatchSize", s.max_execution_batch_size, 0, 1_000_000)
    if s.max_execution_batch_size > s.max_batch_size:
        # shared_batch_scheduler.h (AddQueue): with splitting, input_batch_size_limit
        # (max_batch_size) must be >= max_execution_batch_size, or the model fails to load.
        raise ConfigError(
            "maxExecutionBatchSize",
            f"{s.max_execution_batch_size} is above maxBatchSize {s.max_batch_size}; TF "
            "Serving refuses to load the model then (max_batch_size caps each request, "
            "max_execution_batch_size each executed batch). Lower maxExecutionBatchSize, or "
            f"raise maxBatchSize to at least {s.max_execution_batch_size}.",
        )
    if not _MODEL_NAME.match(s.model_name):
        raise ConfigError(
            "modelName",
            f"{s.model_name!r} cannot name a model in TF Serving URLs; use letters, digits, "
            "'_', '-' and '.', starting with a letter or digit.",
        )
    if not s.model_source.strip():
        raise ConfigError(
            "modelSource",
            "is empty; give github:<owner>/<repo>@<tag or latest>#<asset>, an https:// URL "
            "(with modelSha256), or a local path (a SavedModel directory or a .tar.gz).",
        )
    if not _VERSION.match(s.tf_serving_version):
        raise ConfigError(
            "tfServingVersion",
            f"{s.tf_serving_version!r} is not a pinned release; use a version tag such as "
            "2.20.0 (never latest, so every build is reproducible).",
        )
    if not _DNS_LABEL.match(s.namespace):
        raise ConfigError(
            "namespace",
            f"{s.namespace!r} is not a Kubernetes namespace name (lower-case letters, digits "
            "and '-', at most 63 characters).",
        )
    if s.namespace in RESERVED_NAMESPACES or s.namespace.startswith(RESERVED_NAMESPACE_PREFIXES):
        raise ConfigError(
            "namespace",
            f"{s.namespace!r} belongs to Kubernetes or GKE ({', '.join(RESERVED_NAMESPACES)} "
            f"and names starting {' or '.join(RESERVED_NAMESPACE_PREFIXES)}); the program "
            "creates its namespace, sets its Pod Security level and deletes it on destroy. "
            "Use a namespace of its own, e.g. tfserving.",
        )
    repository = image_repository_name(s.model_name)
    if repository != s.model_name.lower():
        warnings.append(
            f"modelName {s.model_name!r} is not a valid image repository name (lower-case "
            "letters and digits joined by '.', '_', '__' or hyphens), so the image is pushed "
            f"as {repository!r}; TF Serving still serves the model as {s.model_name!r}."
        )
    _check_batch_sizes(s)
    warnings += _check_source_ranges(s)
    unused = [
        k
        for k in ("loadGeneratorMachineType", "loadGeneratorMaxNodes", "loadGeneratorSpot")
        if s.changed(k)
    ]
    if not s.load_generator and unused:
        warnings.append(
            no_effect(
                unused,
                "loadGenerator is false",
                "set loadGenerator true to declare the load-generator pool {them} shapes",
            )
        )
    sized = [k for k in ("nodeVcpus", "nodeMemoryGb") if s.changed(k)]
    if s.machine_type and sized:
        warnings.append(
            no_effect(
                sized,
                f"machineType is {s.machine_type}",
                "leave machineType empty to size the nodes by {them}",
            )
        )
    if not s.enable_batching:
        ignored = [key for key in BATCHING_SETTINGS if s.changed(key)]
        if ignored:
            warnings.append(
                no_effect(
                    ignored, "enableBatching is false", "set enableBatching true to use {them}"
                )
            )
    elif s.max_execution_batch_size and not s.enable_large_batch_splitting:
        warnings.append(
            "maxExecutionBatchSize has no effect with enableLargeBatchSplitting false (TF "
            "Serving reads it only when splitting); batches hold up to maxBatchSize rows."
        )
    if s.regional:
        warnings.append(
            "regional is true: nodeCount nodes run in each zone of the region (about 3x the "
            "node cost) and the GKE free-tier credit does not apply."
        )
    if s.tf_serving_variant == "gpu" and not s.gpu_type and not is_gpu_machine(s.machine_type):
        warnings.append(
            f"tfServingVariant is gpu, but {s.machine_type or 'these E2 nodes'} have no GPU: "
            "the larger -gpu image will serve on the CPU. For a GPU pool, use a G2 "
            "machineType (g2-standard-4: one NVIDIA L4) or N1 with gpuType nvidia-tesla-t4."
        )
    if s.spot:
        warnings.append(
            "spot is true: nodes can be preempted at any time; fine for dev and for measuring "
            "(a sweep runs again a step during which a serving pod went away), not for "
            "serving production traffic."
        )
    return warnings


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(
            key,
            f"{value!r} is not allowed; use one of {', '.join(allowed)}."
            f"{did_you_mean(value, allowed)}",
        )


def _at_least(key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(key, f"{value} is out of range; allowed {low} to {high}.")


def _check_batch_sizes(s: Settings) -> None:
    sizes = list(s.allowed_batch_sizes)
    if not sizes:
        return
    if not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes):
        raise ConfigError("allowedBatchSizes", f"{sizes} must hold positive whole numbers only.")
    if any(later <= earlier for earlier, later in itertools.pairwise(sizes)):
        raise ConfigError(
            "allowedBatchSizes",
            f"{sizes} must be strictly increasing, or TF Serving fails to load the model.",
        )
    if sizes[-1] != s.max_batch_size:
        raise ConfigError(
            "allowedBatchSizes",
            f"the last entry ({sizes[-1]}) must equal maxBatchSize ({s.max_batch_size}), or "
            f"TF Serving fails to load the model. End the list with {s.max_batch_size} or "
            "change maxBatchSize.",
        )


def _check_source_ranges(s: Settings) -> list[str]:
    for cidr in s.load_balancer_source_ranges:
        try:
            ipaddress.ip_network(str(cidr), strict=True)
        except ValueError as error:
            raise ConfigError(
                "loadBalancerSourceRanges",
                f"{cidr!r} is not a CIDR range ({error}); write e.g. 203.0.113.7/32.",
            ) from None
    if s.exposure == "external" and not s.load_balancer_source_ranges:
        raise ConfigError(
            "loadBalancerSourceRanges",
            "is empty but exposure is external, which would open gRPC and REST to the whole "
            "internet. Set the ranges allowed in, e.g. `pulumi config set --path "
            "'loadBalancerSourceRanges[0]' 203.0.113.7/32`, or use exposure internal.",
        )
    if any(ipaddress.ip_network(str(c)).prefixlen == 0 for c in s.load_balancer_source_ranges):
        return [
            "loadBalancerSourceRanges admits the whole internet (a /0 range): anyone can "
            "send requests to the model."
        ]
    return []
