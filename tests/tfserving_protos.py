"""TF Serving's BatchingParameters and MonitoringConfig messages, and the PredictionLog of
warmup records, from their published field definitions, so the files we write are checked
by protobuf's own parsers.

Fields from tensorflow_serving/servables/tensorflow/session_bundle_config.proto and
tensorflow_serving/config/monitoring_config.proto. enable_large_batch_splitting and
max_execution_batch_size are declared with the wrapper types TF Serving's own tests write
(saved_model_bundle_factory_test.cc: `enable_large_batch_splitting { value: True }`); the
text format matches fields by name, so their numbers here only need to be unique.
"""

from __future__ import annotations

from infra.model.protos import BOOL_VALUE, INT64_VALUE, STRING_VALUE, F, Field, build_messages

_MESSAGES = build_messages(
    "tfserving_gke_test/serving_config.proto",
    "tensorflow.serving",
    {
        "BatchingParameters": [
            Field("max_batch_size", 1, F.TYPE_MESSAGE, INT64_VALUE),
            Field("batch_timeout_micros", 2, F.TYPE_MESSAGE, INT64_VALUE),
            Field("max_enqueued_batches", 3, F.TYPE_MESSAGE, INT64_VALUE),
            Field("num_batch_threads", 4, F.TYPE_MESSAGE, INT64_VALUE),
            Field("thread_pool_name", 5, F.TYPE_MESSAGE, STRING_VALUE),
            Field("allowed_batch_sizes", 6, F.TYPE_INT64, repeated=True),
            Field("pad_variable_length_inputs", 7, F.TYPE_BOOL),
            Field("enable_large_batch_splitting", 8, F.TYPE_MESSAGE, BOOL_VALUE),
            Field("max_execution_batch_size", 9, F.TYPE_MESSAGE, INT64_VALUE),
        ],
        "PrometheusConfig": [Field("enable", 1, F.TYPE_BOOL), Field("path", 2, F.TYPE_STRING)],
        "MonitoringConfig": [
            Field("prometheus_config", 1, F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig")
        ],
    },
)
BatchingParameters = _MESSAGES["BatchingParameters"]
MonitoringConfig = _MESSAGES["MonitoringConfig"]


# A warmup record: tensorflow_serving/apis/prediction_log.proto (PredictionLog and the logs
# of its oneof log_type), predict.proto, model.proto, logging.proto, and TensorFlow's
# tensor.proto, tensor_shape.proto, with their published field numbers. The logs this
# project never writes are declared empty: their content would only be unknown fields.
_PACKAGE = "tensorflow.serving"
_LOG_MESSAGES = build_messages(
    "tfserving_gke_test/prediction_log.proto",
    _PACKAGE,
    {
        "Dim": [Field("size", 1, F.TYPE_INT64), Field("name", 2, F.TYPE_STRING)],
        "TensorShapeProto": [
            Field("dim", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.Dim", repeated=True),
            Field("unknown_rank", 3, F.TYPE_BOOL),
        ],
        "TensorProto": [
            Field("dtype", 1, F.TYPE_INT32),
            Field("tensor_shape", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.TensorShapeProto"),
            Field("version_number", 3, F.TYPE_INT32),
            Field("tensor_content", 4, F.TYPE_BYTES),
            Field("float_val", 5, F.TYPE_FLOAT, repeated=True),
            Field("double_val", 6, F.TYPE_DOUBLE, repeated=True),
            Field("int_val", 7, F.TYPE_INT32, repeated=True),
            Field("string_val", 8, F.TYPE_BYTES, repeated=True),
            Field("int64_val", 10, F.TYPE_INT64, repeated=True),
            Field("bool_val", 11, F.TYPE_BOOL, repeated=True),
            Field("half_val", 13, F.TYPE_INT32, repeated=True),
        ],
        "ModelSpec": [
            Field("name", 1, F.TYPE_STRING),
            Field("version", 2, F.TYPE_MESSAGE, INT64_VALUE),
            Field("signature_name", 3, F.TYPE_STRING),
            Field("version_label", 4, F.TYPE_STRING),
        ],
        "PredictRequest": [
            Field("model_spec", 1, F.TYPE_MESSAGE, f".{_PACKAGE}.ModelSpec"),
            Field(
                "inputs", 2, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, f".{_PACKAGE}.TensorProto")
            ),
            Field("output_filter", 3, F.TYPE_STRING, repeated=True),
        ],
        "PredictResponse": [
            Field(
                "outputs", 1, F.TYPE_MESSAGE, map_value=(F.TYPE_MESSAGE, f".{_PACKAGE}.TensorProto")
            ),
            Field("model_spec", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.ModelSpec"),
        ],
        "LogMetadata": [Field("model_spec", 1, F.TYPE_MESSAGE, f".{_PACKAGE}.ModelSpec")],
        "PredictLog": [
            Field("request", 1, F.TYPE_MESSAGE, f".{_PACKAGE}.PredictRequest"),
            Field("response", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.PredictResponse"),
        ],
        "ClassifyLog": [],
        "RegressLog": [],
        "MultiInferenceLog": [],
        "SessionRunLog": [],
        "PredictStreamedLog": [],
        "PredictionLog": [
            Field("log_metadata", 1, F.TYPE_MESSAGE, f".{_PACKAGE}.LogMetadata"),
            Field("classify_log", 2, F.TYPE_MESSAGE, f".{_PACKAGE}.ClassifyLog"),
            Field("regress_log", 3, F.TYPE_MESSAGE, f".{_PACKAGE}.RegressLog"),
            Field("multi_inference_log", 4, F.TYPE_MESSAGE, f".{_PACKAGE}.MultiInferenceLog"),
            Field("session_run_log", 5, F.TYPE_MESSAGE, f".{_PACKAGE}.SessionRunLog"),
            Field("predict_log", 6, F.TYPE_MESSAGE, f".{_PACKAGE}.PredictLog"),
            Field("predict_streamed_log", 7, F.TYPE_MESSAGE, f".{_PACKAGE}.PredictStreamedLog"),
        ],
    },
)
PredictionLog = _LOG_MESSAGES["PredictionLog"]
LOG_TYPES = (
    "classify_log",
    "regress_log",
    "multi_inference_log",
    "session_run_log",
    "predict_log",
    "predict_streamed_log",
)
