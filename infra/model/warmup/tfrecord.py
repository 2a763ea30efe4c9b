"""TFRecord framing, as TensorFlow's record_writer.cc writes it and record_reader.cc
checks it (no compression): per record, the length as a little-endian uint64, the masked
CRC32C of those 8 bytes as a little-endian uint32, the data, and the masked CRC32C of the
data. A mask rotates the CRC right by 15 bits and adds 0xa282ead8 (crc32c.h), so a record
holding CRCs does not confuse a CRC over it. TF Serving fails the model's load on a bad
checksum (DataLoss), so the reader here checks as strictly."""

from __future__ import annotations

import struct

import google_crc32c

MASK_DELTA = 0xA282EAD8
_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_POLY if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _table()


def crc32c_reference(data: bytes) -> int:
    """CRC-32C byte by byte: what the fast one is checked against."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c(data: bytes) -> int:
    """CRC-32C by Google's C library (a GPU model's warmup records run to megabytes, which
    the byte loop takes seconds for)."""
    return int(google_crc32c.value(bytes(data)))


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def encode(records: list[bytes]) -> bytes:
    """The records framed one after another."""
    out = bytearray()
    for record in records:
        length = struct.pack("<Q", len(record))
        out += length + struct.pack("<I", masked_crc32c(length))
        out += record + struct.pack("<I", masked_crc32c(record))
    return bytes(out)


def decode(data: bytes) -> list[bytes]:
    """The records of a framed file; ValueError naming the offset of any damage."""
    records = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 12:
            raise ValueError(f"truncated record header at byte {offset}")
        length_bytes = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        if length_crc != masked_crc32c(length_bytes):
            raise ValueError(f"corrupted record length at byte {offset}")
        start, end = offset + 12, offset + 12 + length
        if end + 4 > len(data):
            raise ValueError(f"truncated record at byte {offset}")
        record = data[start:end]
        (data_crc,) = struct.unpack("<I", data[end : end + 4])
        if data_crc != masked_crc32c(record):
            raise ValueError(f"corrupted record data at byte {offset}")
        records.append(record)
        offset = end + 4
    return records
