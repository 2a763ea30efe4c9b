"""`python -m infra sweep`: campaigns of measurements on one stack, always torn down: a
list of experiments in the cheapest order, or a search over a space of configurations
(search/: which to measure next, its strategies, and its replay), run by one loop.

Pure decisions first: experiment.py (what the sweep knows of each planned experiment),
order.py (which comes when), changes.py (what each step creates, replaces or updates, and
how the serving pool changes shape), durations.py and estimate.py (time and cost),
quota.py (the region's CPU quota against the largest phase). Then what plans and runs:
design.py (offline plans under the SDK's mocks, for the dry run and before a real run),
manifest.py (the resumable sweep directory), run.py (the run loop over a list's or a
search's steps: the Automation API stack and the in-cluster capacity search), report.py,
cli.py.
"""
