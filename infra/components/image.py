"""The Artifact Registry repository and the TF Serving image with the model baked in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_gcp as gcp

# Keep the last few images for rollbacks; delete the rest, tagged or not. A KEEP rule only
# exempts versions from DELETE rules, so the deletion needs its own rule; when both match,
# Artifact Registry keeps the version.
KEEP_RECENT_VERSIONS = 5


@dataclass(frozen=True)
class ContextImage:
    """One image to build from a context directory and push as repository:tag."""

    repository: str
    tag: str
    context_dir: str


@dataclass(frozen=True)
class ImageArgs:
    """Decided values for the images: where they go and what they are built from."""

    gcp_project: str
    region: str
    repository_id: str
    image_repository: str
    image_tag: str
    context_dir: str
    labels: dict[str, str]
    # The in-cluster load generator's image, pushed beside the serving image.
    load_generator: ContextImage | None = None


def registry_host(region: str) -> str:
    return f"{region}-docker.pkg.dev"


class ServingImage(pulumi.ComponentResource):
    """Builds the serving image, pushes it, and exposes its reference by digest."""

    image_name: pulumi.Output[str]
    repo_digest: pulumi.Output[str]
    load_generator_digest: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        args: ImageArgs,
        reader_service_account_email: pulumi.Input[str],
        required_services: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tfserving-gke:infra:ServingImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        repository = gcp.artifactregistry.Repository(
            f"{name}-repository",
            project=args.gcp_project,
            location=args.region,
            repository_id=args.repository_id,
            format="DOCKER",
            description="TF Serving images of one tfserving-gke stack",
            labels=args.labels,
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                {
                    "id": "keep-recent",
                    "action": "KEEP",
                    "most_recent_versions": {"keep_count": KEEP_RECENT_VERSIONS},
                },
                {
                    "id": "delete-older",
                    "action": "DELETE",
                    "condition": {"tag_state": "ANY"},
                },
            ],
            # The Artifact Registry API must be on before the repository can exist.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(required_services)),
        )
        reader = gcp.artifactregistry.RepositoryIamMember(
            f"{name}-node-reader",
            project=args.gcp_project,
            location=args.region,
            repository=repository.repository_id,
            role="roles/artifactregistry.reader",
            member=pulumi.Output.from_input(reader_service_account_email).apply(
                lambda email: f"serviceAccount:{email}"
            ),
            opts=child,
        )

        host = registry_host(args.region)
        # An access token lives about an hour. Read it once the repository and its reader
        # binding exist, right before the build, not at program start: the push then has
        # the whole hour, however long the cluster took.
        token = gcp.organizations.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[reader])
        ).access_token
        registry = docker.RegistryArgs(
            server=host, username="oauth2accesstoken", password=pulumi.Output.secret(token)
        )

        def push(resource_name: str, built: ContextImage) -> docker.Image:
            return docker.Image(
                resource_name,
                image_name=repository.repository_id.apply(
                    lambda repo: f"{host}/{args.gcp_project}/{repo}/{built.repository}:{built.tag}"
                ),
                build=docker.DockerBuildArgs(
                    context=built.context_dir,
                    dockerfile=f"{built.context_dir}/Dockerfile",
                    platform="linux/amd64",
                ),
                registry=registry,
                skip_push=False,
                # Nodes can pull the digest a pod gets only once they may read the repo.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[reader]),
            )

        image = push(
            f"{name}-serving",
            ContextImage(args.image_repository, args.image_tag, args.context_dir),
        )
        self.image_name = image.image_name
        self.repo_digest = image.repo_digest
        self.load_generator_digest = (
            push(f"{name}-load-generator", args.load_generator).repo_digest
            if args.load_generator
            else None
        )
        self.register_outputs({"image_name": self.image_name, "repo_digest": self.repo_digest})
