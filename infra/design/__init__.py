"""The experiment's design, pure: settings and their layers (settings, stack_config), machine
shapes and families (machine), prices (pricing), TF Serving's flags and files (tfserving),
the design every resource is declared from (experiment) with the load generator's
(load_generator) and autoscaling's (scaling/), the Kubernetes manifests (manifests), the
metrics' PodMonitoring and dashboard (monitoring/), names (naming, cluster_names), stack
outputs (outputs) and expiry (ttl)."""
