"""Protobuf message classes built at run time from published field definitions.

TensorFlow's and TF Serving's .proto files come with packages that need TensorFlow; the
few messages this project reads or writes are declared here field by field instead, and
protobuf's own parser does the rest (unknown fields are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

F = descriptor_pb2.FieldDescriptorProto
INT64_VALUE = ".google.protobuf.Int64Value"
BOOL_VALUE = ".google.protobuf.BoolValue"
STRING_VALUE = ".google.protobuf.StringValue"


@dataclass(frozen=True)
class Field:
    """One field: name, number, protobuf type, the message type it holds, repeated or map."""

    name: str
    number: int
    kind: int
    type_name: str = ""
    repeated: bool = False
    map_value: tuple[int, str] | None = None  # (value kind, value type name) for map<string, V>
    oneof: str = ""  # the oneof the field belongs to, if any


def _field_proto(field: Field, message: str) -> Any:
    proto = F(
        name=field.name,
        number=field.number,
        type=field.kind,
        label=F.LABEL_REPEATED if field.repeated or field.map_value else F.LABEL_OPTIONAL,
    )
    if field.map_value:
        proto.type = F.TYPE_MESSAGE
        proto.type_name = f"{message}.{_entry_name(field.name)}"
    elif field.type_name:
        proto.type_name = field.type_name
    return proto


def _entry_name(field_name: str) -> str:
    return "".join(part.capitalize() for part in field_name.split("_")) + "Entry"


def build_messages(
    file_name: str, package: str, messages: dict[str, list[Field]]
) -> dict[str, type[Any]]:
    """Message classes by name for a package declared as {message: [fields]}."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file_proto = descriptor_pb2.FileDescriptorProto(
        name=file_name,
        package=package,
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    for name, fields in messages.items():
        message = file_proto.message_type.add(name=name)
        full_name = f".{package}.{name}"
        oneofs = list(dict.fromkeys(field.oneof for field in fields if field.oneof))
        for oneof in oneofs:
            message.oneof_decl.add(name=oneof)
        for field in fields:
            proto = _field_proto(field, full_name)
            if field.oneof:
                proto.oneof_index = oneofs.index(field.oneof)
            message.field.append(proto)
            if field.map_value:
                entry = message.nested_type.add(name=_entry_name(field.name))
                entry.options.map_entry = True
                entry.field.append(
                    F(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
                )
                value = F(name="value", number=2, type=field.map_value[0], label=F.LABEL_OPTIONAL)
                if field.map_value[1]:
                    value.type_name = field.map_value[1]
                entry.field.append(value)
    pool.Add(file_proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
        for name in messages
    }


def tensor_shape_fields(package: str) -> dict[str, list[Field]]:
    """TensorShapeProto and its Dim (tensorflow/core/framework/tensor_shape.proto), declared
    in `package` for messages that hold shapes."""
    return {
        "Dim": [Field("size", 1, F.TYPE_INT64), Field("name", 2, F.TYPE_STRING)],
        "TensorShapeProto": [
            Field("dim", 2, F.TYPE_MESSAGE, f".{package}.Dim", repeated=True),
            Field("unknown_rank", 3, F.TYPE_BOOL),
        ],
    }
