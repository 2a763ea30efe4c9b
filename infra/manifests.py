"""Kubernetes manifests of the serving workload, as plain dicts.

Pure: from the experiment design (and the image reference, which may be a Pulumi
Output) to the objects the workload component declares and the plan writes as YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.build_context import RUN_AS_GID, RUN_AS_UID
from infra.experiment import ExperimentDesign
from infra.naming import NODE_POOL_NAME
from infra.tfserving import (
    CONFIG_DIR,
    GRPC_PORT,
    REST_PORT,
    SERVER_BINARY,
    config_files,
    config_files_sha256,
    model_status_path,
    server_args,
)

APP_NAME = "tfserving"
CONFIG_HASH_ANNOTATION = "tfserving-gke.io/config-sha256"
INTERNAL_LB_ANNOTATION = "networking.gke.io/load-balancer-type"
# Seconds Pulumi waits for the Deployment to become ready (model load and warmup included).
ROLLOUT_TIMEOUT_SECONDS = 900
STARTUP_SECONDS_MAX = 600
PROBE_PERIOD_SECONDS = 5
# Time for the load balancer to stop sending new connections before the server stops.
DRAIN_SECONDS = 10
TERMINATION_GRACE_SECONDS = 40
MANIFEST_ORDER = (
    "namespace",
    "configmap",
    "deployment",
    "service",
    "poddisruptionbudget",
    "networkpolicy",
)


@dataclass(frozen=True)
class WorkloadManifests:
    """One manifest per kind of object the workload declares."""

    namespace: dict[str, Any]
    configmap: dict[str, Any]
    deployment: dict[str, Any]
    service: dict[str, Any]
    poddisruptionbudget: dict[str, Any]
    networkpolicy: dict[str, Any]

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        return [(kind, getattr(self, kind)) for kind in MANIFEST_ORDER]


def selector_labels(design: ExperimentDesign) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": design.settings.stack,
    }


def common_labels(design: ExperimentDesign) -> dict[str, str]:
    return {
        **selector_labels(design),
        "app.kubernetes.io/part-of": "tfserving-gke",
        "app.kubernetes.io/managed-by": "pulumi",
        "tfserving-gke.io/experiment": design.settings.experiment,
    }


def _metadata(design: ExperimentDesign, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": design.settings.namespace,
        "labels": common_labels(design),
        **extra,
    }


def render_manifests(design: ExperimentDesign, image: Any) -> WorkloadManifests:
    """Every object of the serving workload; `image` is the image reference by digest."""
    s = design.settings
    files = config_files(design.server)
    files_sha256 = config_files_sha256(files)
    # The name carries the content hash: a change makes a new ConfigMap, the Deployment
    # points at it (rolling the pods), and the old one goes once nothing uses it.
    configmap_name = f"{APP_NAME}-config-{files_sha256[:10]}"
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": s.namespace,
            "labels": {
                **common_labels(design),
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(design, configmap_name),
        "data": files,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            design,
            APP_NAME,
            annotations={"pulumi.com/timeoutSeconds": str(ROLLOUT_TIMEOUT_SECONDS)},
        ),
        "spec": {
            "replicas": design.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_labels(design)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": design.rollout.max_surge,
                    "maxUnavailable": design.rollout.max_unavailable,
                },
            },
            "template": {
                "metadata": {
                    "labels": common_labels(design),
                    "annotations": {CONFIG_HASH_ANNOTATION: files_sha256},
                },
                "spec": _pod_spec(design, image, configmap_name),
            },
        },
    }
    service_annotations = {INTERNAL_LB_ANNOTATION: "Internal"} if s.exposure == "internal" else {}
    service_spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "selector": selector_labels(design),
        "ports": [
            {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
            {"name": "http", "port": REST_PORT, "targetPort": "http", "protocol": "TCP"},
        ],
    }
    if s.load_balancer_source_ranges:
        service_spec["loadBalancerSourceRanges"] = list(s.load_balancer_source_ranges)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(design, APP_NAME, annotations=service_annotations),
        "spec": service_spec,
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(design, APP_NAME),
        # One pod at a time may go for node upgrades and repairs: never all of them, and
        # never blocking a drain when there is a single replica.
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(design)}},
    }
    network_policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(design, APP_NAME),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(design)},
            "policyTypes": ["Ingress", "Egress"],
            # Requests on the serving ports only; the server needs no egress at all (the
            # model is in the image).
            "ingress": [
                {
                    "ports": [
                        {"port": GRPC_PORT, "protocol": "TCP"},
                        {"port": REST_PORT, "protocol": "TCP"},
                    ]
                }
            ],
            "egress": [],
        },
    }
    return WorkloadManifests(namespace, configmap, deployment, service, pdb, network_policy)


def _pod_spec(design: ExperimentDesign, image: Any, configmap_name: str) -> dict[str, Any]:
    s = design.settings
    status = {"path": model_status_path(s.model_name), "port": "http"}
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "nodeSelector": {"cloud.google.com/gke-nodepool": NODE_POOL_NAME},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_UID,
            "runAsGroup": RUN_AS_GID,
            "fsGroup": RUN_AS_GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": APP_NAME,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": [SERVER_BINARY],
                "args": server_args(design.server),
                "ports": [
                    {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
                    {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
                ],
                "resources": {
                    # No CPU limit: CFS throttling hurts tail latency, and the thread
                    # counts are set from the node's CPUs explicitly.
                    "requests": {
                        "cpu": f"{design.pod_requests.cpu_m}m",
                        "memory": f"{design.pod_requests.memory_mib}Mi",
                    },
                    "limits": {"memory": f"{design.pod_requests.memory_mib}Mi"},
                },
                "startupProbe": {
                    "httpGet": status,
                    "periodSeconds": PROBE_PERIOD_SECONDS,
                    "failureThreshold": STARTUP_SECONDS_MAX // PROBE_PERIOD_SECONDS,
                },
                "readinessProbe": {
                    "httpGet": status,
                    "periodSeconds": PROBE_PERIOD_SECONDS,
                    "timeoutSeconds": 2,
                    "failureThreshold": 2,
                },
                "livenessProbe": {
                    "httpGet": status,
                    "periodSeconds": 15,
                    "timeoutSeconds": 5,
                    "failureThreshold": 4,
                },
                "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": configmap_name}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ],
    }
    if s.pods_per_node == 1:
        spec["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": selector_labels(design)},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    else:
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": selector_labels(design)},
            }
        ]
    return spec
