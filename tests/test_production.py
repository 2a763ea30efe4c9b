"""What a production stack adds: autoscaling (a HorizontalPodAutoscaler and GKE's cluster
autoscaler on the serving pool, with the cost range) and metrics (a PodMonitoring checked
against its CRD's schema, the scraper admitted, managed collection on, a Cloud Monitoring
dashboard checked with the Monitoring API's own message definitions)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from google.cloud.monitoring_dashboard_v1.types import Dashboard
from google.protobuf.json_format import ParseError

from infra.data import load
from infra.design.naming import cluster_name
from infra.inputs.errors import ConfigError
from infra.plan.render import kubernetes_manifests, plan_json, write_plan
from infra.plan.run import StackPlan, plan_stack
from tests.conftest import PlanFn, declared, manifest, serving_pool
from tests.crd_schemas import validate_custom

EXPERIMENT = "8vcpu-16gb-interop4"
VERSIONS = load("gke")["kubernetes_versions"]


@pytest.fixture(scope="module")
def production() -> StackPlan:
    return plan_stack(
        EXPERIMENT,
        {"autoscaling": True, "minReplicas": 2, "maxReplicas": 6, "metrics": True},
    )


def test_autoscaling_scales_pods_on_cpu_without_flapping(production: StackPlan) -> None:
    hpa = manifest(production, "HorizontalPodAutoscaler")
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": manifest(production, "Deployment")["metadata"]["name"],
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)
    (metric,) = spec["metrics"]
    assert metric["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 70},
    }
    behavior = spec["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] >= 60
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]
    # The autoscaler owns the replica count: `pulumi up` must not reset it.
    deployment = manifest(production, "Deployment")
    assert "replicas" not in deployment["spec"]
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_the_serving_pool_scales_with_the_pods(production: StackPlan) -> None:
    pool = serving_pool(production)
    assert pool["autoscaling"] == {
        "totalMinNodeCount": 2,
        "totalMaxNodeCount": 6,
        "locationPolicy": "BALANCED",
    }
    assert "nodeCount" not in pool
    assert pool["initialNodeCount"] == 2


def test_the_plan_shows_the_cost_from_fewest_to_most_nodes(production: StackPlan) -> None:
    cost = plan_json(production)["cost"]
    at_max = cost["at_max_nodes"]
    assert at_max["nodes"] == 6
    # Four more nodes at the most, each with its boot disk, at the fewest nodes' prices.
    per_node = (
        sum(
            line["usd_per_hour"]
            for line in cost["lines"]
            if "nodes" in line["item"] or "disks" in line["item"]
        )
        / 2
    )
    assert at_max["usd_per_hour"] - cost["usd_per_hour"] == pytest.approx(4 * per_node, rel=1e-3)
    outputs = production.recording.stack_outputs["autoscaling"]
    assert outputs["minReplicas"] == 2 and outputs["maxNodes"] == 6
    assert outputs["costUsdPerHourAtMaxNodes"] == round(at_max["usd_per_hour"], 4)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"maxReplicas": 1, "minReplicas": 3}, "maxReplicas: 1 is below minReplicas 3"),
        ({"maxReplicas": 6, "maxNodes": 4}, "fewer than maxReplicas 6: the autoscaler could"),
        ({"minNodes": 5, "maxNodes": 4}, "maxNodes: 4 is below minNodes 5"),
        ({"targetCpuUtilization": 5}, "targetCpuUtilization: 5 is out of range; allowed 10 to 95"),
        ({"minReplicas": 0}, "minReplicas: 0 is out of range"),
    ],
)
def test_autoscaling_that_cannot_scale_is_refused(
    plan: PlanFn, overrides: dict[str, int], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(EXPERIMENT, autoscaling=True, **overrides)


def test_scaling_settings_without_autoscaling_are_called_out(plan: PlanFn) -> None:
    fixed = plan(EXPERIMENT, maxReplicas=8)
    assert any("autoscaling is false, so maxReplicas has no effect" in w for w in fixed.warnings)
    assert fixed.design.autoscaling is None
    ignored = plan(EXPERIMENT, autoscaling=True, replicas=2)
    assert any("autoscaling is true, so replicas" in w for w in ignored.warnings)


def test_experiments_run_a_fixed_number_of_pods(shipped_plans: dict[str, StackPlan]) -> None:
    for plan in shipped_plans.values():
        assert plan.design.autoscaling is None
        kinds = {r.type for r in plan.recording.resources}
        assert "kubernetes:autoscaling/v2:HorizontalPodAutoscaler" not in kinds
        assert "replicas" in manifest(plan, "Deployment")["spec"]


def test_every_manifest_of_a_production_stack_passes_strict_schemas(
    production: StackPlan, tmp_path: Path
) -> None:
    target = write_plan(production, tmp_path)
    kinds = []
    for path in sorted(target.glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            kinds.append(obj["kind"])
            for version in VERSIONS:
                if obj["apiVersion"].startswith("monitoring.googleapis.com/"):
                    validate_custom(obj, version)
                else:
                    kubernetes_validate.validate(obj, version, strict=True)
    assert "HorizontalPodAutoscaler" in kinds and "PodMonitoring" in kinds


def test_the_pod_monitoring_scrapes_tf_serving_on_every_serving_pod(
    production: StackPlan,
) -> None:
    monitoring = manifest(production, "PodMonitoring")
    deployment = manifest(production, "Deployment")
    assert (
        monitoring["spec"]["selector"]["matchLabels"]
        == deployment["spec"]["selector"]["matchLabels"]
    )
    (endpoint,) = monitoring["spec"]["endpoints"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports[endpoint["port"]] == 8501
    assert endpoint["path"] == "/monitoring/prometheus/metrics"
    broken = copy.deepcopy(monitoring)
    broken["spec"]["endpoints"][0]["scrapeInterval"] = "30s"
    with pytest.raises(jsonschema.ValidationError, match="scrapeInterval"):
        validate_custom(broken, VERSIONS[-1])


def test_the_network_policy_admits_the_managed_collectors(production: StackPlan) -> None:
    (policy,) = [
        obj
        for _, obj in kubernetes_manifests(production)
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] == "tfserving"
    ]
    collector = [rule for rule in policy["spec"]["ingress"] if "from" in rule]
    assert collector == [
        {
            "from": [
                {
                    # GKE runs the managed collectors in gke-gmp-system; gmp-system is the
                    # operator's own namespace (older GKE, self-deployed collection).
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "In",
                                "values": ["gke-gmp-system", "gmp-system"],
                            }
                        ]
                    }
                }
            ],
            "ports": [{"port": 8501, "protocol": "TCP"}],
        }
    ]
    cluster = declared(production, "gcp:container/cluster:Cluster", "cluster")
    assert cluster["monitoringConfig"] == {"managedPrometheus": {"enabled": True}}


def test_the_dashboard_is_what_the_monitoring_api_accepts(production: StackPlan) -> None:
    board = declared(production, "gcp:monitoring/dashboard:Dashboard", "dashboard")
    text = board["dashboardJson"]
    parsed = Dashboard.from_json(text, ignore_unknown_fields=False)
    tiles = parsed.mosaic_layout.tiles
    assert len(tiles) == 6
    titles = [tile.widget.title for tile in tiles]
    assert any("Requests per second" in t for t in titles)
    assert any("Latency" in t for t in titles)
    assert any("Errors" in t for t in titles)
    assert any("CPU" in t for t in titles) and any("Memory" in t for t in titles)
    assert any("pods" in t for t in titles)
    queries = [
        data_set.time_series_query.prometheus_query
        for tile in tiles
        for data_set in tile.widget.xy_chart.data_sets
    ]
    cluster = cluster_name(EXPERIMENT)
    assert all(f'cluster="{cluster}"' in q or f'cluster_name="{cluster}"' in q for q in queries)
    assert any("histogram_quantile(0.99" in q for q in queries)
    assert all("__name__" in q or "kubernetes_io:" in q for q in queries)
    # A misspelt field is refused, as the API would refuse it.
    broken = json.loads(text)
    broken["mosaicLayout"]["tiles"][0]["widget"]["xyChart"]["dataSets"][0]["plotTyp"] = "LINE"
    with pytest.raises(ParseError):
        Dashboard.from_json(json.dumps(broken), ignore_unknown_fields=False)


def test_the_dashboard_is_linked_and_needs_the_monitoring_api(production: StackPlan) -> None:
    url = production.recording.stack_outputs["dashboardUrl"]
    assert url.startswith("https://console.cloud.google.com/monitoring/dashboards/builder/")
    assert url.endswith("?project=your-gcp-project")
    board = next(r for r in production.recording.resources if r.name == "dashboard" and r.custom)
    assert any("api-monitoring" in dependency for dependency in board.dependencies)


def test_metrics_are_off_for_experiments(shipped_plans: dict[str, StackPlan]) -> None:
    for plan in shipped_plans.values():
        assert plan.recording.stack_outputs.get("dashboardUrl") is None
        assert not any("monitoring" in r.type.lower() for r in plan.recording.resources)
