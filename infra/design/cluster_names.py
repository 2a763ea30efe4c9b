"""Names and port numbers the serving workload, the load-generator pods and the
load-generator process agree on, defined once for all of them (the load-generator image
carries this file)."""

from __future__ import annotations

# The load-generator pods' app.kubernetes.io/name, and their node pool's role label value.
LOAD_GENERATOR = "load-generator"
# Process 0 of a run listens here for the others' start barrier.
BARRIER_PORT = 7077
