"""Kubernetes manifests of the serving workload, as plain dicts.

Pure: from the experiment design (and the image reference, which may be a Pulumi
Output) to the objects the workload component declares and the plan writes as YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.design.cluster_names import BARRIER_PORT, LOAD_GENERATOR
from infra.design.experiment import ExperimentDesign
from infra.design.gpu import GpuDesign
from infra.design.monitoring.podmonitoring import collector_ingress, pod_monitoring
from infra.design.naming import NODE_POOL_NAME, label_value
from infra.design.scaling.manifests import horizontal_pod_autoscaler
from infra.design.tfserving import (
    CONFIG_DIR,
    ONEDNN_ENV,
    config_files,
    config_files_sha256,
    model_status_path,
    server_args,
)
from infra.model.build_context import RUN_AS_GID, RUN_AS_UID, entrypoint
from infra.model.serving import GRPC_PORT, REST_PORT

APP_NAME = "tfserving"
# A headless Service naming every ready serving pod in DNS: the in-cluster load generator
# sends to each pod in turn (a Service's virtual IP balances connections, not requests).
PODS_SERVICE_NAME = f"{APP_NAME}-pods"
CONFIG_HASH_ANNOTATION = "tfserving-gke.io/config-sha256"
INTERNAL_LB_ANNOTATION = "networking.gke.io/load-balancer-type"
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"
# Seconds Pulumi waits for the Deployment to become ready (image pull, model load and
# warmup included). The Service gets the same budget: pulumi-kubernetes' Service await
# (provider/pkg/await/service.go) succeeds only once the load balancer has an address and
# the endpoints are ready pods, so on a first deploy it waits as long as the pods do.
ROLLOUT_TIMEOUT_SECONDS = 900
STARTUP_SECONDS_MAX = 600
PROBE_PERIOD_SECONDS = 5
# Time for the Service's endpoints to drop a terminating pod before the server stops.
DRAIN_SECONDS = 10
# After the drain, SIGTERM ends the server at once (tini forwards it; TF Serving has no
# handler, so the default action applies): a few seconds cover the exit itself.
EXIT_SECONDS = 5
TERMINATION_GRACE_SECONDS = DRAIN_SECONDS + EXIT_SECONDS
CHECKOV_SKIP_ANNOTATION = "checkov.io/skip1"
# Every pod this project runs (serving and load generators): the Pod Security Standards'
# restricted level, a UID of its own, no privileges, a read-only root.
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_UID,
    "runAsGroup": RUN_AS_GID,
    "fsGroup": RUN_AS_GID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
MANIFEST_ORDER = (
    "namespace",
    "configmap",
    "deployment",
    "service",
    "poddisruptionbudget",
    "networkpolicy",
    "horizontalpodautoscaler",
    "podmonitoring",
)
# Kinds every stack has; the others come with settings (load generator, autoscaling, metrics).
REQUIRED_KINDS = MANIFEST_ORDER[:6]


# What the written YAML says above each object, where the manifest alone cannot tell why.
MANIFEST_NOTES = {
    "deployment": f"""\
Termination, as it really happens (rollouts, scale-down, destroy):
 1. The pod leaves the Service's endpoints; at the same time the kubelet runs the preStop
    hook, a {DRAIN_SECONDS} s sleep, while nodes stop sending it new connections.
 2. The kubelet sends SIGTERM to PID 1, tini, which forwards it to tensorflow_model_server.
    TF Serving installs no SIGTERM handler (tensorflow/serving#1853), so the default action
    ends it at once: requests still running then fail, which is why the drain comes first.
 3. tini exits with the server (status 143 reported as 0); SIGKILL follows only if nothing
    has exited {TERMINATION_GRACE_SECONDS} s after the deletion (the grace period).
Probes: every REST request (status, metadata, predict, metrics) queues for the same pool
of rest_api_num_threads workers (http_server.cc, evhttp_server.cc), so only the startup
probe asks for the model's status. Liveness and readiness are TCP checks, answered on
accept (the kernel and libevent's own loop) however busy the workers are: an overloaded
server stays in the Service and is never restarted for being slow. The model cannot become
unavailable after startup (it is baked into the image), and the server opens its ports only
once it has loaded it.""",
    "service": f"""\
Pulumi waits up to {ROLLOUT_TIMEOUT_SECONDS} s for the load balancer's address and ready
endpoints, as long as for the Deployment, so a slow first rollout does not fail the Service.""",
}


@dataclass(frozen=True)
class WorkloadManifests:
    """One manifest per kind of object the workload declares."""

    namespace: dict[str, Any]
    configmap: dict[str, Any]
    deployment: dict[str, Any]
    service: dict[str, Any]
    poddisruptionbudget: dict[str, Any]
    networkpolicy: dict[str, Any]
    # What the in-cluster load generator's pods may reach, and the headless Service that
    # names the serving pods for them (with a load generator only).
    load_generator_policy: dict[str, Any] | None = None
    pods_service: dict[str, Any] | None = None
    # With autoscaling.
    horizontalpodautoscaler: dict[str, Any] | None = None
    # With metrics: Managed Service for Prometheus scrapes the serving pods.
    podmonitoring: dict[str, Any] | None = None

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        objects = [(kind, getattr(self, kind)) for kind in REQUIRED_KINDS]
        if self.load_generator_policy:
            objects.append(("networkpolicy", self.load_generator_policy))
        if self.pods_service:
            objects.append(("service", self.pods_service))
        objects += [
            (kind, getattr(self, kind))
            for kind in MANIFEST_ORDER[len(REQUIRED_KINDS) :]
            if getattr(self, kind) is not None
        ]
        return objects


def selector_labels(design: ExperimentDesign) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": label_value(design.settings.stack),
    }


def common_labels(design: ExperimentDesign) -> dict[str, str]:
    return {
        **selector_labels(design),
        "app.kubernetes.io/part-of": "tfserving-gke",
        "app.kubernetes.io/managed-by": "pulumi",
        "tfserving-gke.io/experiment": label_value(design.settings.label),
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
            annotations={
                TIMEOUT_ANNOTATION: str(ROLLOUT_TIMEOUT_SECONDS),
                # checkov's own way to record a deliberate exception, with the reason.
                CHECKOV_SKIP_ANNOTATION: "CKV_K8S_11=No CPU limit on purpose: CFS throttling "
                "adds tail latency; the pod requests its share of the node and threads are "
                "sized from it",
            },
        ),
        "spec": {
            # With autoscaling the HorizontalPodAutoscaler owns the count: declared here,
            # every `pulumi up` would reset it.
            **({} if design.autoscaling else {"replicas": design.replicas}),
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
    service_annotations = {TIMEOUT_ANNOTATION: str(ROLLOUT_TIMEOUT_SECONDS)}
    if s.exposure == "internal":
        service_annotations[INTERNAL_LB_ANNOTATION] = "Internal"
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
                },
                # With metrics, the managed collectors scrape the REST port: the rule above
                # admits them already; this one says so, and stays if that one narrows.
                *([collector_ingress(REST_PORT)] if s.metrics else []),
            ],
            "egress": [],
        },
    }
    return WorkloadManifests(
        namespace,
        configmap,
        deployment,
        service,
        pdb,
        network_policy,
        _load_generator_policy(design) if design.load_generator else None,
        _pods_service(design) if design.load_generator else None,
        horizontal_pod_autoscaler(_metadata(design, APP_NAME), APP_NAME, design.autoscaling)
        if design.autoscaling
        else None,
        pod_monitoring(_metadata(design, APP_NAME), selector_labels(design), "http")
        if s.metrics
        else None,
    )


def load_generator_selector(design: ExperimentDesign) -> dict[str, str]:
    """The labels of this stack's load-generator pods (infra.bench.job sets them)."""
    return {
        "app.kubernetes.io/name": LOAD_GENERATOR,
        "app.kubernetes.io/instance": label_value(design.settings.stack),
    }


def _pods_service(design: ExperimentDesign) -> dict[str, Any]:
    """The headless Service whose DNS name answers with every ready serving pod's address."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(design, PODS_SERVICE_NAME),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(design),
            "ports": [
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
                {"name": "http", "port": REST_PORT, "targetPort": "http", "protocol": "TCP"},
            ],
        },
    }


def _load_generator_policy(design: ExperimentDesign) -> dict[str, Any]:
    """The load-generator pods reach the serving pods, each other (the start barrier) and
    cluster DNS, nothing else; only each other reach them."""
    peers = {"podSelector": {"matchLabels": load_generator_selector(design)}}
    barrier = [{"port": BARRIER_PORT, "protocol": "TCP"}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(design, f"{APP_NAME}-{LOAD_GENERATOR}"),
        "spec": {
            **peers,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [peers], "ports": barrier}],
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": selector_labels(design)}}],
                    "ports": [
                        {"port": GRPC_PORT, "protocol": "TCP"},
                        {"port": REST_PORT, "protocol": "TCP"},
                    ],
                },
                {"to": [peers], "ports": barrier},
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                },
            ],
        },
    }


# The node pool API's taint effects, as Kubernetes spells them.
TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule",
                 "NO_EXECUTE": "NoExecute"}  # fmt: skip


def _on_gpus(spec: dict[str, Any], gpu: GpuDesign) -> None:
    """A serving pod on GPU nodes: one nvidia.com/gpu (a whole GPU, or a time-shared one),
    and the toleration of the GPU nodes' taint."""
    container = spec["containers"][0]
    container["resources"]["limits"][gpu.resource] = "1"
    taint = gpu.taint
    spec["tolerations"] = [
        {
            "key": taint["key"],
            "operator": "Equal",
            "value": taint["value"],
            "effect": TAINT_EFFECTS[taint["effect"]],
        }
    ]


def _pod_spec(design: ExperimentDesign, image: Any, configmap_name: str) -> dict[str, Any]:
    s = design.settings
    status = {"path": model_status_path(s.model_name), "port": "http"}
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "nodeSelector": {"cloud.google.com/gke-nodepool": NODE_POOL_NAME},
        "securityContext": POD_SECURITY,
        "containers": [
            {
                "name": APP_NAME,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": entrypoint(),
                "args": server_args(design.server),
                **(
                    {"env": [{"name": ONEDNN_ENV, "value": design.server.onednn_env}]}
                    if design.server.onednn_env
                    else {}
                ),
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
                # See MANIFEST_NOTES["deployment"] for why only startup asks for the status.
                "startupProbe": {
                    "httpGet": status,
                    "periodSeconds": PROBE_PERIOD_SECONDS,
                    "timeoutSeconds": PROBE_PERIOD_SECONDS,
                    "failureThreshold": STARTUP_SECONDS_MAX // PROBE_PERIOD_SECONDS,
                },
                "readinessProbe": {
                    "tcpSocket": {"port": "grpc"},
                    "periodSeconds": PROBE_PERIOD_SECONDS,
                    "timeoutSeconds": 2,
                    "failureThreshold": 3,
                },
                "livenessProbe": {
                    "tcpSocket": {"port": "http"},
                    "periodSeconds": 15,
                    "timeoutSeconds": 5,
                    "failureThreshold": 4,
                },
                "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
                "securityContext": CONTAINER_SECURITY,
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
    if design.gpu is not None:
        _on_gpus(spec, design.gpu)
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
