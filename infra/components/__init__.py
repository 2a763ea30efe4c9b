"""The Pulumi ComponentResources of a stack: the cluster, the serving image, the serving
workload and the dashboard, each declaring what the experiment's design decided, nothing
more."""
