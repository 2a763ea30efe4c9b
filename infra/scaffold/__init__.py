"""`python -m infra init`: a new stack for a model of one's own, written, checked, planned."""
