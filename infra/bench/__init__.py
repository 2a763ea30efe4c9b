"""Load tests driven from this machine: `bench` and `compare`, one run or a capacity search
with its confidence (session, capacity), the load-generator processes on this machine
(fanout) or in the cluster (cluster, job, kube), the load-generator pool and image the
program declares (pool, image), and the results and their comparison (results, report).
The process itself is infra.loadgen's."""
