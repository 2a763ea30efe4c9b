"""The GKE cluster, its serving node pool, the nodes' identity, and a Kubernetes provider."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from infra.design.gpu import GpuDesign
from infra.design.load_generator import POOL_NAME, ROLE, ROLE_LABEL, TAINT_KEY, LoadGeneratorDesign
from infra.design.naming import NODE_POOL_NAME
from infra.design.scaling.design import AutoscalingDesign

# What nodes need and no more: GKE's minimal node role (logs, metrics, resource
# metadata), and reading the image, granted on the repository itself by the image component.
NODE_ROLES = ("roles/container.defaultNodeServiceAccount",)
# Creating service accounts needs the IAM API, and project IAM bindings the Cloud Resource
# Manager API; a fresh project has neither on.
REQUIRED_APIS = (
    "container.googleapis.com",
    "artifactregistry.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
)
# The dashboard and the managed metrics live in Cloud Monitoring.
METRICS_APIS = ("monitoring.googleapis.com",)
# What a GPU cluster's monitoring collects: GKE's system metrics and its managed DCGM ones.
DCGM_COMPONENTS = ("SYSTEM_COMPONENTS", "DCGM")
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class ClusterArgs:
    """Decided values for the cluster; nothing here is computed by the component."""

    gcp_project: str
    cluster_name: str
    location: str
    release_channel: str
    node_service_account_id: str
    machine_type: str
    node_count: int
    spot: bool
    disk_type: str
    disk_size_gb: int
    labels: dict[str, str]
    load_generator: LoadGeneratorDesign | None = None
    autoscaling: AutoscalingDesign | None = None
    # Managed Service for Prometheus collects what PodMonitorings select.
    metrics: bool = False
    # The serving nodes' network driver set to gVNIC (third-generation series run only
    # with it), and their boot disk's provisioned (IOPS, MiB/s) where its type takes them.
    gvnic: bool = False
    boot_disk_performance: tuple[int, int] | None = None
    # The serving nodes' GPUs (None: a CPU pool).
    gpu: GpuDesign | None = None


def _kubeconfig(name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig that authenticates with gke-gcloud-auth-plugin (no static credentials)."""
    context = f"gke_{name}"
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": context,
                    "cluster": {
                        "server": f"https://{endpoint}",
                        "certificate-authority-data": ca_certificate,
                    },
                }
            ],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "users": [
                {
                    "name": context,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "gke-gcloud-auth-plugin",
                            "installHint": "Install gke-gcloud-auth-plugin: "
                            "gcloud components install gke-gcloud-auth-plugin",
                            "provideClusterInfo": True,
                        }
                    },
                }
            ],
        }
    )


def _serving_node_extras(args: ClusterArgs) -> dict[str, Any]:
    """The serving pool's gVNIC and boot disk settings, only where the family or disk
    type needs them (a stack of the other families keeps the node config it had)."""
    extras: dict[str, Any] = {}
    if args.gvnic:
        extras["gvnic"] = {"enabled": True}
    if args.gpu is not None:
        extras.update(gpu_node_config(args.gpu))
    if args.boot_disk_performance is not None:
        iops, throughput = args.boot_disk_performance
        # The same type and size as disk_type and disk_size_gb, which must match them.
        extras["boot_disk"] = {
            "disk_type": args.disk_type,
            "size_gb": args.disk_size_gb,
            "provisioned_iops": iops,
            "provisioned_throughput": throughput,
        }
    return extras


def monitoring_config(args: ClusterArgs) -> dict[str, Any]:
    """Managed Service for Prometheus; on a GPU pool also GKE's managed DCGM metrics (GPU
    utilisation, memory, tensor-core activity), which GKE collects itself from its own
    DCGM exporter where it installed the driver (1.30.1-gke.1204000 and later). GKE
    needs its system components collected beside them."""
    config: dict[str, Any] = {"managed_prometheus": {"enabled": True}}
    if args.gpu is not None:
        config["enable_components"] = list(DCGM_COMPONENTS)
    return config


def gpu_node_config(gpu: GpuDesign) -> dict[str, Any]:
    """A GPU pool's node config: the accelerators with the driver GKE installs, time-sharing
    when more pods than GPUs share a node, and the taint that keeps pods without a GPU off
    it (GKE adds the same taint itself; declared, it is what the plan shows)."""
    accelerator: dict[str, Any] = {
        "type": gpu.gpu_type,
        "count": gpu.per_node,
        "gpu_driver_installation_config": {"gpu_driver_version": gpu.driver_version},
    }
    if gpu.shared_clients:
        accelerator["gpu_sharing_config"] = {
            "gpu_sharing_strategy": gpu.sharing_strategy,
            "max_shared_clients_per_gpu": gpu.shared_clients,
        }
    taint = gpu.taint
    return {
        "guest_accelerators": [accelerator],
        "taints": [{"key": taint["key"], "value": taint["value"], "effect": taint["effect"]}],
    }


def _serving_pool_size(args: ClusterArgs) -> tuple[dict[str, Any], pulumi.ResourceOptions]:
    """A fixed node count, or with autoscaling the cluster autoscaler's limits over all
    zones (total_*): it adds a node when a pod finds no room and removes one about ten
    minutes after it went idle. The initial count only matters at creation and is
    ForceNew in the provider, so later changes to it are ignored."""
    scaling = args.autoscaling
    if scaling is None:
        return {"node_count": args.node_count}, pulumi.ResourceOptions()
    return (
        {
            "initial_node_count": scaling.initial_nodes_per_zone,
            "autoscaling": {
                "total_min_node_count": scaling.min_nodes,
                "total_max_node_count": scaling.max_nodes,
                "location_policy": "BALANCED",
            },
        },
        pulumi.ResourceOptions(ignore_changes=["initialNodeCount"]),
    )


class GkeCluster(pulumi.ComponentResource):
    """A hardened zonal (or regional) GKE cluster with one serving node pool (E2, or
    another family of infra/data/families.yaml)."""

    project_services: list[pulumi.Resource]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    node_service_account_email: pulumi.Output[str]
    cluster_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving-gke:infra:GkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        apis = [
            gcp.projects.Service(
                f"{name}-api-{api.split('.')[0]}",
                project=args.gcp_project,
                service=api,
                # Other stacks in the project use the API too: never switch it off on destroy.
                disable_on_destroy=False,
                opts=child,
            )
            for api in (*REQUIRED_APIS, *(METRICS_APIS if args.metrics else ()))
        ]
        self.project_services = list(apis)
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=apis)

        node_account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            project=args.gcp_project,
            account_id=args.node_service_account_id,
            display_name=f"GKE nodes of {args.cluster_name} (tfserving-gke)",
            opts=after_apis,
        )
        self.node_service_account_email = node_account.email
        role_bindings = [
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('/')[1].replace('.', '-')}",
                project=args.gcp_project,
                role=role,
                member=node_account.email.apply(lambda email: f"serviceAccount:{email}"),
                opts=after_apis,
            )
            for role in NODE_ROLES
        ]

        node_config_common = {
            "service_account": node_account.email,
            "oauth_scopes": [CLOUD_PLATFORM_SCOPE],
            "shielded_instance_config": {
                "enable_secure_boot": True,
                "enable_integrity_monitoring": True,
            },
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "metadata": {"disable-legacy-endpoints": "true"},
        }
        cluster = gcp.container.Cluster(
            name,
            project=args.gcp_project,
            name=args.cluster_name,
            location=args.location,
            # The default pool only exists while the cluster is created.
            initial_node_count=1,
            remove_default_node_pool=True,
            node_config=node_config_common,
            deletion_protection=False,
            release_channel={"channel": args.release_channel},
            workload_identity_config={"workload_pool": f"{args.gcp_project}.svc.id.goog"},
            # Dataplane V2 enforces NetworkPolicy.
            datapath_provider="ADVANCED_DATAPATH",
            networking_mode="VPC_NATIVE",
            # A non-empty block: GKE picks the pod and service ranges.
            ip_allocation_policy={"stack_type": "IPV4"},
            enable_shielded_nodes=True,
            cost_management_config={"enabled": True},
            resource_labels=args.labels,
            **({"monitoring_config": monitoring_config(args)} if args.metrics else {}),
            opts=pulumi.ResourceOptions.merge(
                after_apis, pulumi.ResourceOptions(ignore_changes=["nodeConfig"])
            ),
        )
        self.cluster_name = cluster.name

        size, size_options = _serving_pool_size(args)
        node_pool = gcp.container.NodePool(
            f"{name}-{NODE_POOL_NAME}",
            project=args.gcp_project,
            name=NODE_POOL_NAME,
            cluster=cluster.name,
            location=cluster.location,
            **size,
            node_config={
                **node_config_common,
                "machine_type": args.machine_type,
                "disk_type": args.disk_type,
                "disk_size_gb": args.disk_size_gb,
                "image_type": "COS_CONTAINERD",
                "spot": args.spot,
                "labels": args.labels,
                "resource_labels": args.labels,
                **_serving_node_extras(args),
            },
            management={"auto_repair": True, "auto_upgrade": True},
            upgrade_settings={"max_surge": 1, "max_unavailable": 0},
            # The pool has a fixed name, so a change GKE cannot make in place (spot, say)
            # must delete it before creating its successor: created first, the new pool's
            # name would still be taken. A new machine type or disk is made in place (GKE
            # recreates the nodes one at a time, max_surge 1); the sweep asks for a
            # replacement instead when that is faster (infra/sweep/changes.py).
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(
                    parent=self, depends_on=role_bindings, delete_before_replace=True
                ),
                size_options,
            ),
        )

        if args.load_generator:
            self._load_generator_pool(name, args, cluster, node_config_common, role_bindings)

        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.master_auth.cluster_ca_certificate
            ).apply(lambda parts: _kubeconfig(parts[0], parts[1], parts[2]))
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # A cluster deleted by hand (or by GKE) must not make the stack undestroyable:
            # its Kubernetes objects went with it, so destroy drops them from state and goes
            # on to the repository and service account, which still bill. GKE deletes the
            # Service's load balancer with the cluster (one Service, well under its limits).
            delete_unreachable=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_pool]),
        )
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "node_service_account_email": self.node_service_account_email,
            }
        )

    def _load_generator_pool(
        self,
        name: str,
        args: ClusterArgs,
        cluster: gcp.container.Cluster,
        node_config_common: dict[str, Any],
        role_bindings: list[gcp.projects.IAMMember],
    ) -> None:
        pool = args.load_generator
        assert pool is not None
        gcp.container.NodePool(
            f"{name}-{POOL_NAME}",
            project=args.gcp_project,
            name=POOL_NAME,
            cluster=cluster.name,
            location=cluster.location,
            # Nothing runs here between benchmarks: the cluster autoscaler adds nodes when
            # a load-generator Job's pods wait for them and removes them about 10 minutes
            # after the pods are gone. The limits count all zones (min/max_node_count would
            # be per zone: three times the nodes, cost and quota on a regional cluster).
            initial_node_count=0,
            autoscaling={
                "total_min_node_count": 0,
                "total_max_node_count": pool.max_nodes,
                "location_policy": "ANY",
            },
            node_config={
                **node_config_common,
                "machine_type": pool.shape.machine_type,
                "disk_type": pool.disk_type,
                "disk_size_gb": pool.disk_size_gb,
                "image_type": "COS_CONTAINERD",
                "spot": pool.spot,
                "labels": {**args.labels, ROLE_LABEL: ROLE},
                "resource_labels": args.labels,
                # Serving pods never land here; load-generator pods tolerate it and select
                # this pool, so they never land on serving nodes either.
                "taints": [{"key": TAINT_KEY, "value": "true", "effect": "NO_SCHEDULE"}],
            },
            management={"auto_repair": True, "auto_upgrade": True},
            upgrade_settings={"max_surge": 1, "max_unavailable": 0},
            # Fixed name: see the serving pool.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=role_bindings, delete_before_replace=True
            ),
        )
