"""The PodMonitoring (monitoring.googleapis.com/v1) of the serving pods. Pure.

GKE's managed collection (on with the cluster's monitoring_config) runs a collector on
every node (the `collector` DaemonSet; in namespace gke-gmp-system on GKE, which GKE
manages and nobody else may create pods in; gmp-system is where the operator's own
manifests put it, and where older GKE versions ran it) that scrapes the pods a
PodMonitoring selects and writes
the samples to Cloud Monitoring, labelled with project, location, cluster, namespace, job
(the PodMonitoring's name) and instance, plus the target labels asked for below.
"""

from __future__ import annotations

from typing import Any

from infra.design.monitoring.names import METRICS_PATH

API_VERSION = "monitoring.googleapis.com/v1"
SCRAPE_INTERVAL = "30s"
SCRAPE_TIMEOUT = "10s"
# Where the managed collectors run: the NetworkPolicy admits these namespaces' pods to the
# REST port. Both are GKE's own (the settings refuse gke-* and gmp-* namespaces), so no pod
# label is relied on.
COLLECTOR_NAMESPACES = ("gke-gmp-system", "gmp-system")


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
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "In",
                            "values": list(COLLECTOR_NAMESPACES),
                        }
                    ]
                }
            }
        ],
        "ports": [{"port": port, "protocol": "TCP"}],
    }
