"""The HorizontalPodAutoscaler of the serving Deployment (autoscaling/v2). Pure.

Behaviour, so that a burst does not make pods (and nodes) come and go: a new serving pod
usually needs a new node, a minute or two to boot and then the image and the model, so a
scale-up waits for a minute of sustained load and adds at most two pods or doubles them a
minute; a scale-down waits ten minutes of lower load and removes one pod every five.
"""

from __future__ import annotations

from typing import Any

from infra.design.scaling.design import AutoscalingDesign

SCALE_UP_WINDOW_S = 60
SCALE_DOWN_WINDOW_S = 600


def horizontal_pod_autoscaler(
    metadata: dict[str, Any], deployment: str, scaling: AutoscalingDesign
) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization,
                        },
                    },
                }
            ],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": SCALE_UP_WINDOW_S,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Pods", "value": 2, "periodSeconds": 60},
                        {"type": "Percent", "value": 100, "periodSeconds": 60},
                    ],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": SCALE_DOWN_WINDOW_S,
                    "selectPolicy": "Min",
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                },
            },
        },
    }
