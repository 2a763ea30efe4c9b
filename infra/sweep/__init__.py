"""`python -m infra sweep`: many experiments on one stack, in the cheapest order, measured
and always torn down.

Pure decisions first: experiment.py (what the sweep knows of each planned experiment),
order.py (which comes when), changes.py (what each step creates, replaces or updates, and
how the serving pool changes shape), durations.py and estimate.py (time and cost),
quota.py (the region's CPU quota against the largest phase). Then what plans and runs:
design.py (offline plans under the SDK's mocks, for the dry run and before a real run),
manifest.py (the resumable sweep directory), run.py (the Automation API stack and the
in-cluster capacity search), report.py, cli.py.
"""
