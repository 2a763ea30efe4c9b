"""TF Serving's BatchingParameters and MonitoringConfig messages, from their published
field definitions, so the files we write are checked by protobuf's text-format parser.

Fields from tensorflow_serving/servables/tensorflow/session_bundle_config.proto and
tensorflow_serving/config/monitoring_config.proto. enable_large_batch_splitting and
max_execution_batch_size are declared with the wrapper types TF Serving's own tests write
(saved_model_bundle_factory_test.cc: `enable_large_batch_splitting { value: True }`); the
text format matches fields by name, so their numbers here only need to be unique.
"""

from __future__ import annotations

from infra.protos import BOOL_VALUE, INT64_VALUE, STRING_VALUE, F, Field, build_messages

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
