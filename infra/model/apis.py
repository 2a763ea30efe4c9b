"""TF Serving's request and log messages, declared from their published field numbers
(tensorflow_serving/apis/model.proto, predict.proto, classification.proto,
regression.proto, inference.proto, prediction_log.proto, and TensorFlow's tensor.proto):
what the load generator sends, what generated warmup records hold, and what a model's own
warmup records are checked against. Parts this project never reads (a request's
tf.Example input, a session-run request) are kept as raw bytes."""

from __future__ import annotations

from infra.model.protos import INT64_VALUE, F, Field, build_messages, tensor_shape_fields

_PACKAGE = "tensorflow.serving"


def _message(name: str) -> str:
    return f".{_PACKAGE}.{name}"


_MESSAGES = build_messages(
    "tfserving_gke/serving_apis_subset.proto",
    _PACKAGE,
    {
        **tensor_shape_fields(_PACKAGE),
        "TensorProto": [
            Field("dtype", 1, F.TYPE_INT32),
            Field("tensor_shape", 2, F.TYPE_MESSAGE, _message("TensorShapeProto")),
            Field("version_number", 3, F.TYPE_INT32),
            Field("tensor_content", 4, F.TYPE_BYTES),
            Field("float_val", 5, F.TYPE_FLOAT, repeated=True),
            Field("double_val", 6, F.TYPE_DOUBLE, repeated=True),
            Field("int_val", 7, F.TYPE_INT32, repeated=True),
            Field("string_val", 8, F.TYPE_BYTES, repeated=True),
            Field("scomplex_val", 9, F.TYPE_FLOAT, repeated=True),
            Field("int64_val", 10, F.TYPE_INT64, repeated=True),
            Field("bool_val", 11, F.TYPE_BOOL, repeated=True),
            Field("dcomplex_val", 12, F.TYPE_DOUBLE, repeated=True),
            Field("half_val", 13, F.TYPE_INT32, repeated=True),
            Field("uint32_val", 16, F.TYPE_UINT32, repeated=True),
            Field("uint64_val", 17, F.TYPE_UINT64, repeated=True),
        ],
        "ModelSpec": [
            Field("name", 1, F.TYPE_STRING),
            Field("version", 2, F.TYPE_MESSAGE, INT64_VALUE),
            Field("signature_name", 3, F.TYPE_STRING),
        ],
        "PredictRequest": [
            Field("model_spec", 1, F.TYPE_MESSAGE, _message("ModelSpec")),
            Field("inputs", 2, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, _message("TensorProto"))),
            Field("output_filter", 3, F.TYPE_STRING, repeated=True),
        ],
        "PredictResponse": [
            Field(
                "outputs", 1, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, _message("TensorProto"))
            ),
            Field("model_spec", 2, F.TYPE_MESSAGE, _message("ModelSpec")),
        ],
        # Classification and regression requests carry tf.Examples (input.proto), kept raw.
        "ClassificationRequest": [
            Field("model_spec", 1, F.TYPE_MESSAGE, _message("ModelSpec")),
            Field("input", 2, F.TYPE_BYTES),
        ],
        "RegressionRequest": [
            Field("model_spec", 1, F.TYPE_MESSAGE, _message("ModelSpec")),
            Field("input", 2, F.TYPE_BYTES),
        ],
        "InferenceTask": [
            Field("model_spec", 1, F.TYPE_MESSAGE, _message("ModelSpec")),
            Field("method_name", 2, F.TYPE_STRING),
        ],
        "MultiInferenceRequest": [
            Field("tasks", 1, F.TYPE_MESSAGE, _message("InferenceTask"), repeated=True),
            Field("input", 2, F.TYPE_BYTES),
        ],
        "ClassifyLog": [Field("request", 1, F.TYPE_MESSAGE, _message("ClassificationRequest"))],
        "RegressLog": [Field("request", 1, F.TYPE_MESSAGE, _message("RegressionRequest"))],
        "PredictLog": [
            Field("request", 1, F.TYPE_MESSAGE, _message("PredictRequest")),
            Field("response", 2, F.TYPE_MESSAGE, _message("PredictResponse")),
        ],
        "PredictStreamedLog": [
            Field("request", 1, F.TYPE_MESSAGE, _message("PredictRequest"), repeated=True)
        ],
        "MultiInferenceLog": [
            Field("request", 1, F.TYPE_MESSAGE, _message("MultiInferenceRequest"))
        ],
        "SessionRunLog": [Field("request", 1, F.TYPE_BYTES)],
        "PredictionLog": [
            Field("log_metadata", 1, F.TYPE_BYTES),
            Field("classify_log", 2, F.TYPE_MESSAGE, _message("ClassifyLog"), oneof="log_type"),
            Field("regress_log", 3, F.TYPE_MESSAGE, _message("RegressLog"), oneof="log_type"),
            Field(
                "multi_inference_log",
                4,
                F.TYPE_MESSAGE,
                _message("MultiInferenceLog"),
                oneof="log_type",
            ),
            Field(
                "session_run_log", 5, F.TYPE_MESSAGE, _message("SessionRunLog"), oneof="log_type"
            ),
            Field("predict_log", 6, F.TYPE_MESSAGE, _message("PredictLog"), oneof="log_type"),
            Field(
                "predict_streamed_log",
                7,
                F.TYPE_MESSAGE,
                _message("PredictStreamedLog"),
                oneof="log_type",
            ),
        ],
    },
)
TensorProto = _MESSAGES["TensorProto"]
PredictRequest = _MESSAGES["PredictRequest"]
PredictResponse = _MESSAGES["PredictResponse"]
PredictionLog = _MESSAGES["PredictionLog"]
