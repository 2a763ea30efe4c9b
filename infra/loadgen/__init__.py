"""The load-generator process, exactly what the load-generator image runs
(`python -m infra.loadgen.worker`): its spec, the start barrier, the request payloads, the
open- and closed-loop load over every serving pod, the per-request statistics it reduces
to mergeable histograms, and TF Serving's own counters over the measured window.

It imports nothing of the driver (infra.bench), which imports it.
"""
