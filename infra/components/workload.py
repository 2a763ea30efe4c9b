"""The serving workload in the cluster: every object comes from infra.design.manifests."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.design.manifests import WorkloadManifests


def _fields(manifest: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in manifest.items() if key not in ("apiVersion", "kind")}


def _load_balancer_ip(status: Any) -> str:
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    return str(ingress[0].ip) if ingress else ""


class ServingWorkload(pulumi.ComponentResource):
    """Namespace, config, Deployment, Service, PodDisruptionBudget and NetworkPolicy; with
    the settings for them, a HorizontalPodAutoscaler and a PodMonitoring."""

    service_ip: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        manifests: WorkloadManifests,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tfserving-gke:infra:ServingWorkload", name, None, opts)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=provider)

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", **_fields(manifests.namespace), opts=on_cluster
        )
        in_namespace = pulumi.ResourceOptions.merge(
            on_cluster, pulumi.ResourceOptions(depends_on=[namespace])
        )
        configmap = k8s.core.v1.ConfigMap(
            f"{name}-config", **_fields(manifests.configmap), opts=in_namespace
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            **_fields(manifests.deployment),
            opts=pulumi.ResourceOptions.merge(
                in_namespace, pulumi.ResourceOptions(depends_on=[configmap])
            ),
        )
        service = k8s.core.v1.Service(
            f"{name}-service", **_fields(manifests.service), opts=in_namespace
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", **_fields(manifests.poddisruptionbudget), opts=in_namespace
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy", **_fields(manifests.networkpolicy), opts=in_namespace
        )
        if manifests.horizontalpodautoscaler:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-autoscaler",
                **_fields(manifests.horizontalpodautoscaler),
                opts=pulumi.ResourceOptions.merge(
                    in_namespace, pulumi.ResourceOptions(depends_on=[deployment])
                ),
            )
        if manifests.podmonitoring:
            # A custom resource: GKE installs its definition with managed collection
            # (the cluster's monitoring_config, infra/components/cluster.py).
            k8s.apiextensions.CustomResource(
                f"{name}-pod-monitoring",
                api_version=manifests.podmonitoring["apiVersion"],
                kind=manifests.podmonitoring["kind"],
                metadata=manifests.podmonitoring["metadata"],
                spec=manifests.podmonitoring["spec"],
                opts=in_namespace,
            )
        if manifests.load_generator_policy:
            k8s.networking.v1.NetworkPolicy(
                f"{name}-load-generator-policy",
                **_fields(manifests.load_generator_policy),
                opts=in_namespace,
            )
        if manifests.pods_service:
            k8s.core.v1.Service(
                f"{name}-pods-service", **_fields(manifests.pods_service), opts=in_namespace
            )
        self.service_ip = service.status.apply(
            lambda status: (
                status.load_balancer.ingress[0].ip
                if status and status.load_balancer and status.load_balancer.ingress
                else ""
            )
        )
        self.register_outputs({"service_ip": self.service_ip})
