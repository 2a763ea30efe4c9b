"""Where TF Serving, in the serving image, finds the model and listens: its binary, its
ports and the model's base directory, shared by the image's Dockerfile and the pod."""

from __future__ import annotations

GRPC_PORT = 8500
REST_PORT = 8501
MODEL_BASE_DIR = "/models"
SERVER_BINARY = "/usr/bin/tensorflow_model_server"


def model_base_path(model_name: str) -> str:
    """--model_base_path: the directory holding the model's numeric version directories."""
    return f"{MODEL_BASE_DIR}/{model_name}"
