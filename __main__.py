"""tfserving-gke: one TF Serving experiment on GKE per Pulumi stack.

settings -> experiment design -> cluster -> image -> serving workload -> outputs.
Every decision is made (and every bad setting rejected) before the first resource.
"""

import pulumi

from infra.bench.image import IMAGE_REPOSITORY, write_load_generator_context
from infra.components.cluster import ClusterArgs, GkeCluster
from infra.components.dashboard import StackDashboard
from infra.components.image import ContextImage, ImageArgs, ServingImage
from infra.components.workload import ServingWorkload
from infra.design.experiment import design_experiment
from infra.design.manifests import render_manifests
from infra.design.monitoring.dashboard import dashboard
from infra.design.naming import (
    cluster_name,
    cost_labels,
    image_repository_name,
    node_service_account_id,
    repository_id,
)
from infra.design.outputs import endpoint_outputs, experiment_outputs, load_generator_outputs
from infra.design.settings import PROJECT_DIR
from infra.design.stack_config import deploy_time, serving_context, settings_from_pulumi
from infra.design.ttl import expires_at
from infra.inputs.errors import ConfigError, ModelSourceError

try:
    settings, fetch = settings_from_pulumi()
    design = design_experiment(settings)
    settings = design.settings  # as designed: a family's boot disk, when diskType was left
    serving = serving_context(settings, fetch, PROJECT_DIR, design.warmup_batch_sizes)
    model, warmup, context = serving.model, serving.warmup, serving.context
    load_generator = write_load_generator_context() if design.load_generator else None
except (ConfigError, ModelSourceError) as error:
    raise pulumi.RunError(str(error)) from None

for warning in (*design.warnings, *model.warnings, *warmup.warnings):
    pulumi.log.warn(warning)
labels = cost_labels(settings.project, settings.stack, settings.label)

cluster = GkeCluster(
    "cluster",
    ClusterArgs(
        gcp_project=settings.gcp_project,
        cluster_name=cluster_name(settings.stack),
        location=settings.cluster_location,
        release_channel=settings.release_channel,
        node_service_account_id=node_service_account_id(settings.stack),
        machine_type=design.shape.machine_type,
        node_count=settings.node_count,
        spot=settings.spot,
        disk_type=settings.disk_type,
        disk_size_gb=settings.disk_size_gb,
        labels=labels,
        load_generator=design.load_generator,
        autoscaling=design.autoscaling,
        metrics=settings.metrics,
        gvnic=design.gvnic,
        boot_disk_performance=design.boot_disk_performance,
        gpu=design.gpu,
    ),
)
image = ServingImage(
    "image",
    ImageArgs(
        gcp_project=settings.gcp_project,
        region=settings.region,
        repository_id=repository_id(settings.stack),
        image_repository=image_repository_name(settings.model_name),
        image_tag=context.image_tag,
        context_dir=context.directory.as_posix(),
        labels=labels,
        load_generator=ContextImage(
            IMAGE_REPOSITORY, load_generator[1], load_generator[0].as_posix()
        )
        if load_generator
        else None,
    ),
    reader_service_account_email=cluster.node_service_account_email,
    required_services=cluster.project_services,
)
workload = ServingWorkload(
    "serving", render_manifests(design, image.repo_digest), provider=cluster.provider
)

board = (
    StackDashboard(
        "dashboard",
        settings.gcp_project,
        dashboard(
            settings.stack,
            cluster_name(settings.stack),
            settings.namespace,
            settings.model_name,
            gpu=design.gpu is not None,
        ),
        required_services=cluster.project_services,
    )
    if settings.metrics
    else None
)

outputs = {
    **experiment_outputs(design, model, expires_at(settings.ttl_hours, deploy_time())),
    **endpoint_outputs(workload.service_ip, settings.model_name),
    **load_generator_outputs(design, image.load_generator_digest),
    "clusterName": cluster.cluster_name,
    "kubeconfig": cluster.kubeconfig,
    "imageDigest": image.repo_digest,
    "dashboardUrl": board.url if board else None,
    "modelWarmup": warmup.description,
}
for name, value in outputs.items():
    pulumi.export(name, value)
