"""Load tests of deployed TF Serving endpoints and comparisons of their results."""
