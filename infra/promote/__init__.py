"""`python -m infra promote`: from the winning experiment (a sweep report, or a preset) to
a production stack file. config.py decides its settings (pure); cli.py reads the input,
checks the result as `pulumi up` would, and writes Pulumi.<stack>.yaml."""
