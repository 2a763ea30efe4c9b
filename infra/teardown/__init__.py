"""Tearing a stack down when the operation before was cut off: a stale lock cleared, the
creates it interrupted resolved against what exists in the cloud, then the destroy.
pending.py and locks.py decide (pure), cloud.py asks GCP what exists, run.py drives the
Automation API, cli.py is `python -m infra teardown`."""
