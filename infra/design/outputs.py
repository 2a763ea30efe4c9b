"""The stack outputs users read (`pulumi stack output`), decided from plain values."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from infra.design.experiment import ExperimentDesign
from infra.design.load_generator import POOL_NAME
from infra.design.tfserving import model_status_path
from infra.design.ttl import EXPIRY_OUTPUT
from infra.model.serving import GRPC_PORT, REST_PORT
from infra.model.signatures import serving_inputs
from infra.model.source import ResolvedModel


def experiment_outputs(
    design: ExperimentDesign, model: ResolvedModel, expires_at: str
) -> dict[str, Any]:
    """What was deployed, what it costs, and when the cleanup may destroy it."""
    server = design.server
    return {
        "experiment": design.settings.experiment,
        "machineType": design.shape.machine_type,
        "nodeCount": design.nodes_total,
        "replicas": design.replicas,
        "serving": {
            "intraOp": server.intra_op_parallelism,
            "interOp": server.inter_op_parallelism,
            "batching": asdict(server.batching) if server.batching else None,
        },
        "modelName": design.settings.model_name,
        "namespace": design.settings.namespace,
        # Where the bench reads GPU metrics from (GKE's DCGM, with metrics true).
        "gcpProject": design.settings.gcp_project,
        "metrics": design.settings.metrics,
        "gpu": None
        if design.gpu is None
        else {
            "type": design.gpu.gpu_type,
            "perNode": design.gpu.per_node,
            "sharedClientsPerGpu": design.gpu.shared_clients,
        },
        "modelSource": model.source,
        "modelReleaseTag": model.release_tag,
        "modelSha256": model.sha256,
        "modelVersions": list(model.artifact.versions) if model.artifact else [],
        "servingInputs": serving_inputs(model.signatures) if model.signatures else None,
        EXPIRY_OUTPUT: expires_at,
        "costUsdPerHour": round(design.cost.usd_per_hour, 4),
        "costUsdPerMonth": round(design.cost.usd_per_month, 2),
        "autoscaling": None
        if design.autoscaling is None or design.cost_at_max is None
        else {
            "minReplicas": design.autoscaling.min_replicas,
            "maxReplicas": design.autoscaling.max_replicas,
            "targetCpuUtilization": design.autoscaling.target_cpu_utilization,
            "minNodes": design.autoscaling.min_nodes,
            "maxNodes": design.autoscaling.max_nodes,
            # costUsdPerHour above is at the fewest nodes.
            "costUsdPerHourAtMaxNodes": round(design.cost_at_max.usd_per_hour, 4),
        },
    }


def endpoint_outputs(service_ip: Any, model_name: str) -> dict[str, Any]:
    """REST and gRPC endpoints and a ready-to-run status check, from the Service's address
    (a Pulumi Output, or anything with `.apply`)."""
    status = model_status_path(model_name)
    return {
        "restEndpoint": service_ip.apply(lambda ip: f"http://{ip}:{REST_PORT}"),
        "grpcEndpoint": service_ip.apply(lambda ip: f"{ip}:{GRPC_PORT}"),
        "modelStatusCurl": service_ip.apply(lambda ip: f"curl -sS http://{ip}:{REST_PORT}{status}"),
    }


def load_generator_outputs(design: ExperimentDesign, image_digest: Any) -> dict[str, Any]:
    """What `bench <stack>` needs to run the load from the cluster: the pool and the image
    (None for a stack without a load generator)."""
    pool = design.load_generator
    return {
        "loadGenerator": None
        if pool is None
        else {
            "pool": POOL_NAME,
            "machineType": pool.shape.machine_type,
            "maxNodes": pool.max_nodes,
            "processesPerNode": pool.processes_per_node,
            "maxProcesses": pool.max_processes,
            "costUsdPerHourWhileBenchmarking": round(design.cost.benchmarking_usd_per_hour, 4),
        },
        "loadGeneratorImage": image_digest,
    }
