"""tfserving-gke: TensorFlow Serving experiments on GKE, declared with Pulumi."""
