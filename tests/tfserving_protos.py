"""TF Serving's BatchingParameters and MonitoringConfig messages, built as protobuf
descriptors from their published field definitions, so the files we write are checked by
protobuf's own text-format parser.

Fields from tensorflow_serving/servables/tensorflow/session_bundle_config.proto and
tensorflow_serving/config/monitoring_config.proto.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

F = descriptor_pb2.FieldDescriptorProto
_POOL = descriptor_pool.DescriptorPool()
_POOL.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)


def _field(name: str, number: int, kind: int, type_name: str = "", repeated: bool = False) -> Any:
    field = F(
        name=name,
        number=number,
        type=kind,
        label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL,
    )
    if type_name:
        field.type_name = type_name
    return field


def _build() -> dict[str, Any]:
    proto = descriptor_pb2.FileDescriptorProto(
        name="tfserving_gke_test/serving_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    int64 = ".google.protobuf.Int64Value"
    batching = proto.message_type.add(name="BatchingParameters")
    batching.field.extend(
        [
            _field("max_batch_size", 1, F.TYPE_MESSAGE, int64),
            _field("batch_timeout_micros", 2, F.TYPE_MESSAGE, int64),
            _field("max_enqueued_batches", 3, F.TYPE_MESSAGE, int64),
            _field("num_batch_threads", 4, F.TYPE_MESSAGE, int64),
            _field("thread_pool_name", 5, F.TYPE_MESSAGE, ".google.protobuf.StringValue"),
            _field("allowed_batch_sizes", 6, F.TYPE_INT64, repeated=True),
            _field("pad_variable_length_inputs", 7, F.TYPE_BOOL),
        ]
    )
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.extend([_field("enable", 1, F.TYPE_BOOL), _field("path", 2, F.TYPE_STRING)])
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.append(
        _field("prometheus_config", 1, F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig")
    )
    _POOL.Add(proto)
    return {
        name: message_factory.GetMessageClass(
            _POOL.FindMessageTypeByName(f"tensorflow.serving.{name}")
        )
        for name in ("BatchingParameters", "MonitoringConfig")
    }


MESSAGES = _build()
BatchingParameters = MESSAGES["BatchingParameters"]
MonitoringConfig = MESSAGES["MonitoringConfig"]
