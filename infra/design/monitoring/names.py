"""Where TF Serving publishes its metrics and what it names them (its Prometheus page, on
with the monitoring config the image gets). Names from tensorflow_serving/servables/
tensorflow/util.cc; the page from monitoring_config.proto's prometheus_config. No imports:
the load-generator image carries this module too."""

METRICS_PATH = "/monitoring/prometheus/metrics"
# Counter by model_name and status.
REQUEST_COUNT = ":tensorflow:serving:request_count"
# Histogram in microseconds, by model_name, API and entrypoint.
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
