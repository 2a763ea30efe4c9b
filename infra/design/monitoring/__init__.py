"""Metrics of a serving stack: the PodMonitoring that has Google Cloud Managed Service for
Prometheus scrape TF Serving's Prometheus page from every serving pod
(podmonitoring.py), and the stack's Cloud Monitoring dashboard (dashboard.py). Pure: the
components declare what these build."""
