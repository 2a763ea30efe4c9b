"""The stack's Cloud Monitoring dashboard (JSON from infra.design.monitoring.dashboard)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.design.monitoring.dashboard import dashboard_url


class StackDashboard(pulumi.ComponentResource):
    """One dashboard; `url` links to it in the console."""

    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        gcp_project: str,
        dashboard: dict[str, Any],
        required_services: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tfserving-gke:infra:StackDashboard", name, None, opts)
        board = gcp.monitoring.Dashboard(
            name,
            project=gcp_project,
            # Sorted keys: the same dashboard is the same string, so no spurious diffs.
            dashboard_json=json.dumps(dashboard, sort_keys=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=required_services),
        )
        self.url = board.id.apply(lambda resource_id: dashboard_url(resource_id, gcp_project))
        self.register_outputs({"url": self.url})
