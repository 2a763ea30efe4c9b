"""The PodMonitoring (monitoring.googleapis.com/v1) of the serving pods. Pure.

GKE's managed collection (on with the cluster's monitoring_config) runs a collector on
every node (the `collector` DaemonSet of namespace gmp-system, pods labelled
app.kubernetes.io/name=collector) that scrapes the pods a PodMonitoring selects and writes
the samples to Cloud Monitoring, labelled with project, location, cluster, namespace, job
(the PodMonitoring's name) and instance, plus the target labels asked for below.
"""

from __future__ import annotations

from typing import Any

from infra.monitoring.names import METRICS_PATH

API_VERSION = "monitoring.googleapis.com/v1"
SCRAPE_INTERVAL = "30s"
SCRAPE_TIMEOUT = "10s"
# Where the managed collectors run: the NetworkPolicy admits them to the REST port.
COLLECTOR_NAMESPACE = "gmp-system"
COLLECTOR_LABELS = {"app.kubernetes.io/name": "collector"}


def pod_monitoring(metadata: dict[str, Any], selector: dict[str, str], port: str) -> dict[str, Any]:
    """Scrape TF Serving's Prometheus page on the named container port of every pod the
    selector matches (TF Serving serves it on the REST port)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "PodMonitoring",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector},
            "endpoints": [
                {
                    "port": port,
                    "path": METRICS_PATH,
                    "interval": SCRAPE_INTERVAL,
                    "timeout": SCRAPE_TIMEOUT,
                }
            ],
            "targetLabels": {"metadata": ["pod", "container", "node"]},
        },
    }


def collector_ingress(port: int) -> dict[str, Any]:
    """A NetworkPolicy ingress rule admitting the managed collectors to `port`."""
    return {
        "from": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": COLLECTOR_NAMESPACE}
                },
                "podSelector": {"matchLabels": COLLECTOR_LABELS},
            }
        ],
        "ports": [{"port": port, "protocol": "TCP"}],
    }
