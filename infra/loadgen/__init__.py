"""The in-cluster load generator: its node pool and pods sized, its image, its Job, and the
driver that runs a load test from the cluster and brings the results back."""
