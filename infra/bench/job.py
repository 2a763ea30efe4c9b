"""The Kubernetes objects of one in-cluster load test, as plain dicts. Pure.

An Indexed Job runs one load-generator process per pod (`python -m infra.loadgen.worker`,
its index from JOB_COMPLETION_INDEX). A headless Service named like the Job gives each pod
a DNS name (<job>-<index>.<job>), so every process finds process 0 for the start barrier.
The pods select the load-generator pool and tolerate its taint, run as the serving pods do
(non-root, read-only root, no privileges, no API token), and reach the serving Service by
its cluster address.
"""

from __future__ import annotations

from typing import Any

from infra.design.cluster_names import BARRIER_PORT
from infra.design.load_generator import POOL_NAME, ROLE, TAINT_KEY
from infra.design.machine import Resources
from infra.design.manifests import APP_NAME, CONTAINER_SECURITY, POD_SECURITY, PODS_SERVICE_NAME
from infra.model.serving import GRPC_PORT, REST_PORT

NAME_PREFIX = "tfserving-bench"
RUN_LABEL = "tfserving-gke.io/bench-run"
COMPONENT = ROLE
# A finished Job (and its pods) deletes itself after this long, should the driver that
# created it be gone before it could.
FINISHED_TTL_S = 600
EXIT_MARGIN_S = 60


def serving_addresses(namespace: str) -> tuple[str, str]:
    """The serving Service's REST URL and gRPC target inside the cluster."""
    host = f"{APP_NAME}.{namespace}.svc.cluster.local"
    return f"http://{host}:{REST_PORT}", f"{host}:{GRPC_PORT}"


def pods_host(namespace: str) -> str:
    """The headless Service's DNS name: every ready serving pod's address."""
    return f"{PODS_SERVICE_NAME}.{namespace}.svc.cluster.local"


def coordinator(name: str) -> str:
    """Process 0's address for the start barrier: its pod's name under the headless Service."""
    return f"{name}-0.{name}:{BARRIER_PORT}"


def _labels(name: str, stack_label: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": COMPONENT,
        "app.kubernetes.io/instance": stack_label,
        "app.kubernetes.io/part-of": "tfserving-gke",
        RUN_LABEL: name,
    }


def peers_service(name: str, namespace: str, stack_label: str) -> dict[str, Any]:
    """The headless Service that names the Job's pods in DNS."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(name, stack_label)},
        "spec": {
            "clusterIP": "None",
            # The pods have no readiness probe; they are found as soon as they run.
            "publishNotReadyAddresses": True,
            "selector": {RUN_LABEL: name},
            "ports": [{"name": "barrier", "port": BARRIER_PORT, "protocol": "TCP"}],
        },
    }


def job(
    *,
    name: str,
    namespace: str,
    stack_label: str,
    image: str,
    spec_json: str,
    processes: int,
    run_deadline_s: float,
    requests: Resources,
) -> dict[str, Any]:
    """The Indexed Job: `processes` pods, one load-generator process each."""
    labels = _labels(name, stack_label)
    container = {
        "name": COMPONENT,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--spec", spec_json],
        "ports": [{"name": "barrier", "containerPort": BARRIER_PORT, "protocol": "TCP"}],
        "resources": {
            # One core each; no CPU limit: throttling would make the generator lag.
            "requests": {"cpu": f"{requests.cpu_m}m", "memory": f"{requests.memory_mib}Mi"},
            "limits": {"memory": f"{requests.memory_mib}Mi"},
        },
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec = {
        "subdomain": name,
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 5,
        "nodeSelector": {"cloud.google.com/gke-nodepool": POOL_NAME},
        "tolerations": [
            {"key": TAINT_KEY, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        ],
        # Spread the processes over the pool's nodes: each node's network is its own.
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {RUN_LABEL: name}},
            }
        ],
        "securityContext": POD_SECURITY,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                "checkov.io/skip1": "CKV_K8S_11=No CPU limit on purpose: a throttled load "
                "generator sends late; each pod requests its core",
            },
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": processes,
            "parallelism": processes,
            # A retried process would send its share at the wrong time: fail the run instead.
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(run_deadline_s + EXIT_MARGIN_S),
            "ttlSecondsAfterFinished": FINISHED_TTL_S,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
