"""Autoscaling of the serving workload: how many pods and nodes (design.py, pure) and the
HorizontalPodAutoscaler that scales the pods (manifests.py); GKE's cluster autoscaler
scales the serving pool's nodes with them (infra/components/cluster.py)."""
