"""What a real campaign reaches beyond this machine for: the models' releases, the
project's quotas, the sweep stack through the Automation API and the capacity search in
its cluster. Everything here runs only when a campaign measures for real; the dry runs and
replays never call it, and the tests replace it at this module's names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.design.settings import PROJECT_DIR, project_name
from infra.design.stack_config import fetch_environment
from infra.inputs.errors import ConfigError, ModelSourceError
from infra.model.source import ModelRequest, resolve_model
from infra.plan.run import config_string
from infra.sweep.design import SEARCH_SIGNATURE, SweepDesign
from infra.sweep.experiment import Planned
from infra.sweep.quota import (
    QuotaError,
    check,
    fetch_project,
    fetch_region,
    gcloud_access_token,
    needs,
    preemptible_gpu_quota,
    preemptible_quota,
)
from infra.sweep.run import ROLLOUT_SETTLE_S, ConfigValues, Measure, MeasureError

StopWhen = Callable[[str, float | None, float | None], str]


def resolve_models(design: SweepDesign) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Each experiment's model resolved online, as `pulumi up` would (downloaded once into
    the cache): {source: {release_tag, sha256}} and {experiment: sha256}."""
    resolved: dict[str, dict[str, str]] = {}
    pins: dict[str, str] = {}
    for experiment, request in design.model_requests().items():
        source = str(request["modelSource"])
        environment = fetch_environment(
            str(request["githubApiUrl"]), int(request["modelMaxDownloadMb"])
        )
        try:
            model = resolve_model(
                ModelRequest(
                    source,
                    str(request["modelName"]),
                    int(request["modelVersion"]),
                    str(request["modelSha256"] or ""),
                ),
                environment,
            )
        except ModelSourceError as error:
            raise ConfigError(f"experiment {experiment}", str(error)) from None
        resolved[source] = {"release_tag": model.release_tag, "sha256": model.sha256}
        pins[experiment] = model.sha256
    return resolved, pins


def check_quota(design: SweepDesign) -> str:
    """The project's quotas in the design's region against what its largest phases need
    (on Spot VMs, the preemptible CPU quota where the project has one): a ConfigError
    naming every shortfall, or the line saying it fits."""
    try:
        token = gcloud_access_token()
        region = fetch_region(design.gcp_project, design.region, token)
        project = fetch_project(design.gcp_project, token)
    except QuotaError as error:
        raise ConfigError("quota", f"{error} (or pass --skip-quota-check)") from None
    need = design.need
    on_spot = any(e.spot or e.load_generator_spot for e in design.experiments)
    spot_gpus = preemptible_gpu_quota(region) if on_spot else frozenset()
    if on_spot and (preemptible_quota(region) or spot_gpus):
        need = needs(
            design.steps,
            design.durations,
            preemptible=preemptible_quota(region),
            preemptible_gpus=spot_gpus,
        )
    problems = check(region, project, need, design.gcp_project)
    if problems:
        raise ConfigError("quota", " ".join(problems))
    return (
        f"Quota: the sweep's largest phases fit the quotas of {design.region} and the "
        f"project ({need.describe()})."
    )


def automation_stack(name: str) -> Any:
    """The sweep stack, created or selected through the Automation API (the Pulumi CLI)."""
    from pulumi import automation as auto  # noqa: PLC0415 - only a real run needs it

    return auto.create_or_select_stack(stack_name=name, work_dir=str(PROJECT_DIR))


def config_values(design: SweepDesign) -> ConfigValues:
    """The stack config of an experiment, as `config set-all` takes it: plain values in
    one call, and each list item as a path key (`key[0]`) in a second call with --path.
    Pulumi's typed project config refuses a list given as one string
    (pkg/workspace/config.go: an array setting's stack value must be an object value)."""
    from pulumi import automation as auto  # noqa: PLC0415

    project = project_name()

    def values(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        plain = {
            f"{project}:{key}": auto.ConfigValue(value=config_string(value), secret=False)
            for key, value in settings.items()
            if not isinstance(value, (list, tuple))
        }
        plain["gcp:project"] = auto.ConfigValue(value=design.gcp_project, secret=False)
        paths = {
            f"{project}:{key}[{index}]": auto.ConfigValue(value=str(item), secret=False)
            for key, value in settings.items()
            if isinstance(value, (list, tuple))
            for index, item in enumerate(value)
        }
        return plain, paths

    return values


def cluster_measure(
    design: SweepDesign,
    say: Callable[[str], None] = print,
    stop_when: StopWhen | None = None,
    seed: int = 0,
) -> Measure:
    """Each experiment's capacity, searched from inside its cluster once its pods settled;
    `stop_when(experiment, low, high)` may stop a search early (a search over a space
    stops a configuration that cannot win). Each run's arrivals are seeded from `seed`,
    the experiment, the rate and the repeat."""
    # The load generator's side (the kubernetes client) only for a real run: every other
    # command imports this module.
    from infra.bench.capacity import Objective  # noqa: PLC0415
    from infra.bench.cluster import ClusterRunError  # noqa: PLC0415
    from infra.bench.session import BenchError, capacity_search, cluster_runs  # noqa: PLC0415
    from infra.loadgen.spec import WorkerSpec  # noqa: PLC0415
    from infra.loadgen.stats import max_send_lag_ms  # noqa: PLC0415

    search = design.search
    assert search.p99_ms is not None, "a real run has an objective"
    objective = Objective(search.p99_ms, search.max_error_rate)

    def measure(
        experiment: Planned,
        outputs: dict[str, Any],
        rate: float,
        after_step: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        try:
            runs = cluster_runs(
                design.stack, outputs, lambda: str(outputs["kubeconfig"]), None, say
            )
            assert runs.cluster is not None
            runs.cluster.wait_for_serving(int(outputs["replicas"]), ROLLOUT_SETTLE_S)
            spec = WorkerSpec(
                protocol=search.protocol,
                rest_url=str(outputs["restEndpoint"]),
                grpc_target=str(outputs["grpcEndpoint"]),
                model=str(outputs["modelName"]),
                signature=SEARCH_SIGNATURE,
                batch=1,
                mode="open",
                rate=rate,
                users=1,
                duration_s=search.duration_s,
                warmup_s=search.warmup_s,
                timeout_s=30.0,
                max_in_flight=1000,
                arrivals=search.arrivals,
                seed=seed,
                max_send_lag_ms=max_send_lag_ms(search.p99_ms),
            )
            return capacity_search(
                runs, spec, outputs, objective, max_steps=search.max_steps,
                max_repeats=search.max_repeats, say=say,
                after_step=after_step,
                stop_when=(
                    (lambda low, high: stop_when(experiment.name, low, high))
                    if stop_when else None
                ),
            )  # fmt: skip
        except (BenchError, ClusterRunError) as error:
            raise MeasureError(str(error)) from None

    return measure
