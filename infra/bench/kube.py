"""The official Kubernetes client for a stack's cluster, from its kubeconfig output (which
authenticates through gke-gcloud-auth-plugin: no static credentials)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes


def api_clients(kubeconfig: str) -> tuple[Any, Any, Any]:
    """CoreV1Api, BatchV1Api and CustomObjectsApi (for the metrics API) of the cluster."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config_from_dict(
        json.loads(kubeconfig), client_configuration=configuration
    )
    api = kubernetes.client.ApiClient(configuration)
    return (
        kubernetes.client.CoreV1Api(api),
        kubernetes.client.BatchV1Api(api),
        kubernetes.client.CustomObjectsApi(api),
    )
