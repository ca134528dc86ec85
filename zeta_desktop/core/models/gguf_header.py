"""A fast read of a GGUF header: its key-value pairs and tensor infos.

The `gguf` package's `GGUFReader` builds a numpy view for every part of
every field: for a 49,152-token vocabulary that is about 4 s of Python
holding the GIL (the demo model), which stalled the window while three roles
read headers at start-up. This walks the same layout with `struct` over a
memory map, keeping scalars and strings, the length of arrays (their items
are skipped), and each tensor's shape and type; the value types are the
`gguf` package's own. A file it cannot walk raises `HeaderError`.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"
# The GGUF value types (gguf.GGUFValueType, the spec's numbers): the package
# is imported only to name tensor types, so start-up does not pay for it.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY = range(10)
UINT64, INT64, FLOAT64 = 10, 11, 12
_SCALARS = {
    UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
    FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d",
}
MAX_COUNT = 1 << 40  # beyond any real file: a count this large means corruption


class HeaderError(ValueError):
    """Not a GGUF header this reader can walk; the message says where it broke."""


@dataclass
class ArrayInfo:
    item_type: int
    length: int
    first: Any = None  # the first item (per-layer arrays: enough for a size)
    largest: float | None = None  # of a numeric array


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_name: str

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass
class Header:
    version: int
    fields: dict[str, Any] = field(default_factory=dict)  # scalars, strings, ArrayInfo
    tensors: list[TensorInfo] = field(default_factory=list)


class _Cursor:
    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.at = data, 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise HeaderError(f"the header ends early (at byte {self.at})")
        value = struct.unpack_from(fmt, self.data, self.at)[0]
        self.at += size
        return value

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > len(self.data) - self.at:
            raise HeaderError(f"a string of {length} bytes at byte {self.at} runs past the file")
        raw = self.data[self.at:self.at + length]
        self.at += length
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        for _ in range(count):
            length = self.unpack("<Q")
            self.at += length
            if self.at > len(self.data):
                raise HeaderError("a string array runs past the end of the file")


def _value(cursor: _Cursor, kind: int) -> Any:
    if kind in _SCALARS:
        return cursor.unpack(_SCALARS[kind])
    if kind == STRING:
        return cursor.string()
    if kind == ARRAY:
        item_type, length = cursor.unpack("<I"), cursor.unpack("<Q")
        if length > MAX_COUNT:
            raise HeaderError(f"an array of {length} items")
        info = ArrayInfo(item_type, length)
        if item_type in _SCALARS:
            fmt = _SCALARS[item_type]
            size = struct.calcsize(fmt)
            if length:
                if cursor.at + size * length > len(cursor.data):
                    raise HeaderError("an array runs past the end of the file")
                info.first = struct.unpack_from(fmt, cursor.data, cursor.at)[0]
                if length <= 4096:  # per-layer values: the largest one counts
                    values = struct.unpack_from(f"<{length}{fmt[1]}", cursor.data, cursor.at)
                    info.largest = max(values)
            cursor.at += size * length
        elif item_type == STRING:
            cursor.skip_strings(length)
        else:  # nested arrays: walk each
            for _ in range(length):
                _value(cursor, item_type)
        return info
    raise HeaderError(f"unknown value type {kind} at byte {cursor.at}")


def read_header(path: Path) -> Header:
    with path.open("rb") as handle:
        try:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # an empty file cannot be mapped
            raise HeaderError("the file is empty") from exc
    try:
        cursor = _Cursor(data)
        if data[:4] != GGUF_MAGIC:
            raise HeaderError("no GGUF magic at its start")
        cursor.at = 4
        version = cursor.unpack("<I")
        if version not in (2, 3):
            raise HeaderError(f"GGUF version {version} (big-endian, or not supported)")
        n_tensors, n_fields = cursor.unpack("<Q"), cursor.unpack("<Q")
        if n_tensors > MAX_COUNT or n_fields > MAX_COUNT:
            raise HeaderError("impossible tensor or field counts")
        header = Header(version)
        for _ in range(n_fields):
            key = cursor.string()
            header.fields[key] = _value(cursor, cursor.unpack("<I"))
        for _ in range(n_tensors):
            name = cursor.string()
            n_dims = cursor.unpack("<I")
            if n_dims > 8:
                raise HeaderError(f"tensor {name} has {n_dims} dimensions")
            shape = tuple(cursor.unpack("<Q") for _ in range(n_dims))
            kind = cursor.unpack("<I")
            cursor.unpack("<Q")  # its offset in the data section
            try:
                import gguf

                type_name = gguf.GGMLQuantizationType(kind).name
            except ValueError:
                type_name = f"type {kind}"
            header.tensors.append(TensorInfo(name, shape, type_name))
        return header
    finally:
        data.close()
