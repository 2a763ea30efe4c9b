"""The stack's Cloud Monitoring dashboard, as the Monitoring API's Dashboard JSON
(projects.dashboards: a mosaicLayout of tiles, each an xyChart of PromQL queries). Pure.

What it charts, for this stack's cluster, namespace and model:
- requests per second by status, and errors per second (TF Serving's
  :tensorflow:serving:request_count, scraped by the PodMonitoring);
- p50, p90 and p99 latency from TF Serving's own histogram
  (:tensorflow:serving:request_latency, microseconds, 33 exponential buckets);
- CPU and memory per serving pod, and the number of serving pods (GKE's system metrics,
  kubernetes.io/container/*, which Cloud Monitoring's PromQL names kubernetes_io:...);
- on a GPU pool, GKE's managed DCGM metrics of the cluster's GPUs (the serving pool's are
  its only ones): utilisation (mean and busiest GPU), the share of time the tensor cores
  were busy (how well batches fill the GPU), and frame-buffer memory used and free.
TF Serving's metric names start with a colon, so they are selected by __name__.
"""

from __future__ import annotations

from typing import Any

from infra.design.monitoring.names import REQUEST_COUNT, REQUEST_LATENCY
from infra.design.naming import label_value

COLUMNS = 48
TILE_WIDTH = 24
TILE_HEIGHT = 16
RATE_WINDOW = "2m"
SERVING_CONTAINER = "tfserving"
QUANTILES = (0.5, 0.9, 0.99)


def _tfserving(metric: str, cluster: str, namespace: str, model: str, extra: str = "") -> str:
    labels = f'cluster="{cluster}", namespace="{namespace}", model_name="{model}"'
    return f'{{__name__="{metric}", {labels}{extra}}}'


def _container(metric: str, cluster: str, namespace: str, extra: str = "") -> str:
    return (
        f'{metric}{{monitored_resource="k8s_container", cluster_name="{cluster}", '
        f'namespace_name="{namespace}", container_name="{SERVING_CONTAINER}"{extra}}}'
    )


def _chart(title: str, unit: str, *queries: tuple[str, str]) -> dict[str, Any]:
    """An xyChart widget of PromQL queries, each (query, legend)."""
    return {
        "title": title,
        "xyChart": {
            "dataSets": [
                {
                    "timeSeriesQuery": {"prometheusQuery": query, "unitOverride": unit},
                    "plotType": "LINE",
                    "legendTemplate": legend,
                    "targetAxis": "Y1",
                }
                for query, legend in queries
            ],
            "yAxis": {"label": unit, "scale": "LINEAR"},
            "chartOptions": {"mode": "COLOR"},
        },
    }


def widgets(cluster: str, namespace: str, model: str) -> list[dict[str, Any]]:
    requests = _tfserving(REQUEST_COUNT, cluster, namespace, model)
    errors = _tfserving(REQUEST_COUNT, cluster, namespace, model, ', status!="OK"')
    buckets = _tfserving(f"{REQUEST_LATENCY}_bucket", cluster, namespace, model)
    cpu = _container("kubernetes_io:container_cpu_core_usage_time", cluster, namespace)
    memory = _container(
        "kubernetes_io:container_memory_used_bytes",
        cluster,
        namespace,
        ', memory_type="non-evictable"',
    )
    uptime = _container("kubernetes_io:container_uptime", cluster, namespace)
    return [
        _chart(
            "Requests per second (TF Serving)",
            "1/s",
            (f"sum by (status) (rate({requests}[{RATE_WINDOW}]))", "${labels.status}"),
        ),
        _chart(
            "Latency, TF Serving's histogram (ms)",
            "ms",
            *(
                (
                    f"histogram_quantile({q}, sum by (le) (rate({buckets}[{RATE_WINDOW}]))) / 1000",
                    f"p{q * 100:g}",
                )
                for q in QUANTILES
            ),
        ),
        _chart(
            "Errors per second (status other than OK)",
            "1/s",
            (f"sum by (status) (rate({errors}[{RATE_WINDOW}]))", "${labels.status}"),
        ),
        _chart(
            "CPU per serving pod (cores)",
            "1",
            (f"sum by (pod_name) (rate({cpu}[{RATE_WINDOW}]))", "${labels.pod_name}"),
        ),
        _chart(
            "Memory per serving pod (non-evictable)",
            "By",
            (f"sum by (pod_name) ({memory})", "${labels.pod_name}"),
        ),
        _chart(
            "Serving pods",
            "1",
            (f"count(sum by (pod_name) ({uptime}))", "pods"),
        ),
    ]


def gpu_widgets(cluster: str) -> list[dict[str, Any]]:
    """GPU tiles from GKE's managed DCGM metrics (DCGM_FI_*, gauges per GPU)."""

    def dcgm(field: str) -> str:
        return f'{field}{{cluster="{cluster}"}}'

    return [
        _chart(
            "GPU utilisation (%)",
            "%",
            (f"avg({dcgm('DCGM_FI_DEV_GPU_UTIL')})", "mean"),
            (f"max({dcgm('DCGM_FI_DEV_GPU_UTIL')})", "busiest GPU"),
        ),
        _chart(
            "Tensor cores active (share of time)",
            "1",
            (f"avg({dcgm('DCGM_FI_PROF_PIPE_TENSOR_ACTIVE')})", "mean"),
        ),
        _chart(
            "GPU memory (MiB)",
            "MiBy",
            (f"sum({dcgm('DCGM_FI_DEV_FB_USED')})", "used"),
            (f"sum({dcgm('DCGM_FI_DEV_FB_FREE')})", "free"),
        ),
    ]


def dashboard(
    stack: str, cluster: str, namespace: str, model: str, gpu: bool = False
) -> dict[str, Any]:
    """The Dashboard resource's JSON (without name and etag, which the API assigns)."""
    tiles = []
    charts = widgets(cluster, namespace, model) + (gpu_widgets(cluster) if gpu else [])
    for index, widget in enumerate(charts):
        tiles.append(
            {
                "xPos": (index % 2) * TILE_WIDTH,
                "yPos": (index // 2) * TILE_HEIGHT,
                "width": TILE_WIDTH,
                "height": TILE_HEIGHT,
                "widget": widget,
            }
        )
    return {
        "displayName": f"TF Serving {model} on {stack} (tfserving-gke)",
        "labels": {"app": "tfserving-gke", "stack": label_value(stack)},
        "mosaicLayout": {"columns": COLUMNS, "tiles": tiles},
    }


def dashboard_url(dashboard_id: str, project: str) -> str:
    """The console link of a dashboard from its resource name (projects/N/dashboards/ID)."""
    return (
        "https://console.cloud.google.com/monitoring/dashboards/builder/"
        f"{dashboard_id.rsplit('/', 1)[-1]}?project={project}"
    )
