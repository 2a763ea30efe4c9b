"""`python -m infra rehearse`: a stack's own image, flags and config files run with Docker on
127.0.0.1 before any of it is paid for."""
