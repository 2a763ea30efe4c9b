"""The creates a killed `pulumi up` left pending, and what to do with each. Pure.

A create the CLI started and never saw finish is in the stack's state as a pending
operation of type "creating" (`pulumi stack export`: deployment.pending_operations), and a
destroy never deletes it. For resources whose name this program fixes, the name says
where the resource would be, so GCP can be asked whether it exists: a cluster or node pool
that does bills, and is imported into the state (`refresh --import-pending-creates URN
ID`, with the provider's import ID) so the destroy deletes it; one that does not is
dropped (`--clear-pending-creates`). Everything else the program creates goes with those
(Kubernetes objects with the cluster, images with their repository) or costs nothing, and
is dropped. The import IDs are terraform-provider-google's (`d.SetId` of each resource;
pulumi-gcp bridges it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CREATING = "creating"


@dataclass(frozen=True)
class CloudResource:
    """Where a pending create would be: the GCP API URL that reads it, and its import ID."""

    kind: str  # for messages: "GKE cluster", "node pool"...
    name: str
    api: str  # which API answers (container, artifactregistry, iam)
    path: str  # the REST path under that API's base URL
    import_id: str
    describe_command: str  # how a person checks by hand


@dataclass(frozen=True)
class PendingCreate:
    urn: str
    type: str
    cloud: CloudResource | None  # None: nothing to check; dropped


def _cluster(inputs: Mapping[str, Any], project: str) -> CloudResource:
    name, location = inputs["name"], inputs["location"]
    path = f"projects/{project}/locations/{location}/clusters/{name}"
    return CloudResource(
        "GKE cluster",
        name,
        "container",
        f"/v1/{path}",
        path,
        f"gcloud container clusters describe {name} --location {location} --project {project}",
    )


def _node_pool(inputs: Mapping[str, Any], project: str) -> CloudResource:
    name, location, cluster = inputs["name"], inputs["location"], inputs["cluster"]
    path = f"projects/{project}/locations/{location}/clusters/{cluster}/nodePools/{name}"
    return CloudResource(
        "node pool",
        name,
        "container",
        f"/v1/{path}",
        path,
        f"gcloud container node-pools describe {name} --cluster {cluster} --location "
        f"{location} --project {project}",
    )


def _repository(inputs: Mapping[str, Any], project: str) -> CloudResource:
    name, location = inputs["repositoryId"], inputs["location"]
    path = f"projects/{project}/locations/{location}/repositories/{name}"
    return CloudResource(
        "Artifact Registry repository",
        name,
        "artifactregistry",
        f"/v1/{path}",
        path,
        f"gcloud artifacts repositories describe {name} --location {location} --project {project}",
    )


def _service_account(inputs: Mapping[str, Any], project: str) -> CloudResource:
    email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
    path = f"projects/{project}/serviceAccounts/{email}"
    return CloudResource(
        "service account",
        email,
        "iam",
        f"/v1/{path}",
        path,
        f"gcloud iam service-accounts describe {email} --project {project}",
    )


# The program's resources with fixed names that bill, or whose leftover blocks the next
# `up` ("already exists"): where each would be.
CHECKED = {
    "gcp:container/cluster:Cluster": _cluster,
    "gcp:container/nodePool:NodePool": _node_pool,
    "gcp:artifactregistry/repository:Repository": _repository,
    "gcp:serviceaccount/account:Account": _service_account,
}


def pending_operations(deployment: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The state's pending operations (any type)."""
    operations = (deployment or {}).get("pending_operations") or []
    return [op for op in operations if isinstance(op, dict)]


def pending_creates(deployment: Mapping[str, Any] | None, project: str) -> list[PendingCreate]:
    """Every pending create, with where to look for the ones that bill."""
    found = []
    for operation in pending_operations(deployment):
        if operation.get("type") != CREATING:
            continue
        resource = operation.get("resource") or {}
        type_ = str(resource.get("type", ""))
        inputs = resource.get("inputs") or {}
        locate = CHECKED.get(type_)
        cloud = None
        if locate is not None:
            try:
                cloud = locate(inputs, str(inputs.get("project") or project))
            except KeyError:
                cloud = None  # inputs not recorded: nothing to derive a name from
        found.append(PendingCreate(str(resource.get("urn", "")), type_, cloud))
    return found


@dataclass(frozen=True)
class Resolution:
    """What the refresh does with the pending creates."""

    imports: tuple[tuple[str, str], ...]  # (urn, import id): exist, into the state
    dropped: tuple[str, ...]  # urns cleared: do not exist, or nothing to check
    unknown: tuple[tuple[PendingCreate, str], ...]  # could not be checked, and why

    @property
    def import_arguments(self) -> list[str]:
        """--import-pending-creates takes URN and ID one after the other."""
        return [part for pair in self.imports for part in pair]


def resolve(creates: list[PendingCreate], exists: Mapping[str, bool | str]) -> Resolution:
    """Given what GCP said of each checked create (True, False, or why it could not say),
    which to import, which to drop, which stay unknown."""
    imports, dropped, unknown = [], [], []
    for create in creates:
        if create.cloud is None:
            dropped.append(create.urn)
            continue
        answer = exists.get(create.urn, "not checked")
        if answer is True:
            imports.append((create.urn, create.cloud.import_id))
        elif answer is False:
            dropped.append(create.urn)
        else:
            unknown.append((create, str(answer)))
    return Resolution(tuple(imports), tuple(dropped), tuple(unknown))
