"""TFRecord files of ``tf.train.Example`` records, read and written without TensorFlow.

Earth Engine exports training patches and points this way, and servir-aces consumes them.
A TFRecord file is a sequence of frames: ``uint64 length``, ``uint32 masked CRC32C of the
length``, the bytes, ``uint32 masked CRC32C of the bytes`` (little-endian). The Example
message is defined here from TensorFlow's ``example.proto``/``feature.proto`` in a private
descriptor pool, so it never clashes with an installed TensorFlow.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import google_crc32c
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from eoengine.errors import EOError, NotFound

_F = descriptor_pb2.FieldDescriptorProto


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _crc(data: bytes) -> int:
    return _mask(int(google_crc32c.value(data)))


@lru_cache(maxsize=1)
def example_class() -> Any:
    """The ``tensorflow.Example`` message class."""
    fd = descriptor_pb2.FileDescriptorProto(name="eoengine_tf_example.proto", package="tensorflow", syntax="proto3")

    def message(name: str, fields: list[tuple[str, int, int, int, str | None]]) -> descriptor_pb2.DescriptorProto:
        m = fd.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
        return m

    rep, opt = _F.LABEL_REPEATED, _F.LABEL_OPTIONAL
    message("BytesList", [("value", 1, _F.TYPE_BYTES, rep, None)])
    message("FloatList", [("value", 1, _F.TYPE_FLOAT, rep, None)]).field[0].options.packed = True
    message("Int64List", [("value", 1, _F.TYPE_INT64, rep, None)]).field[0].options.packed = True
    feature = message("Feature", [
        ("bytes_list", 1, _F.TYPE_MESSAGE, opt, ".tensorflow.BytesList"),
        ("float_list", 2, _F.TYPE_MESSAGE, opt, ".tensorflow.FloatList"),
        ("int64_list", 3, _F.TYPE_MESSAGE, opt, ".tensorflow.Int64List"),
    ])
    feature.oneof_decl.add(name="kind")
    for f in feature.field:
        f.oneof_index = 0
    features = message("Features", [("feature", 1, _F.TYPE_MESSAGE, rep, ".tensorflow.Features.FeatureEntry")])
    entry = features.nested_type.add(name="FeatureEntry")
    entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=opt)
    entry.field.add(name="value", number=2, type=_F.TYPE_MESSAGE, label=opt, type_name=".tensorflow.Feature")
    entry.options.map_entry = True
    message("Example", [("features", 1, _F.TYPE_MESSAGE, opt, ".tensorflow.Features")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def _open(path: Path, compression: str, mode: str) -> BinaryIO:
    if compression.upper() == "GZIP":
        return gzip.open(path, mode)  # type: ignore[return-value]
    if compression.upper() in ("NONE", ""):
        return open(path, mode)  # type: ignore[return-value]
    raise EOError(f"unknown TFRecord compression '{compression}'", "use GZIP or NONE")


def read_records(path: Path, compression: str = "GZIP") -> Iterator[bytes]:
    """The raw records of a TFRecord file, with their checksums verified."""
    if not path.exists():
        raise NotFound(f"TFRecord file not found: {path}", "check the path")
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if ".tfrecord" in p.name)[:3]
        hint = f" (it holds {', '.join(inside)}{', ...' if len(inside) == 3 else ''})" if inside else ""
        raise EOError(f"{path} is a directory, not a TFRecord file{hint}",
                      "pass its files one by one, e.g. train=DIR/part-0.tfrecord.gz train=DIR/part-1.tfrecord.gz")
    try:
        with _open(path, compression, "rb") as f:
            n = 0
            while head := f.read(12):
                if len(head) < 12:
                    raise EOError(f"{path}: truncated after record {n}", "re-export or re-download the file")
                (length,) = struct.unpack("<Q", head[:8])
                if _crc(head[:8]) != struct.unpack("<I", head[8:])[0]:
                    raise EOError(f"{path}: corrupt length of record {n}", "check --compression, or re-export the file")
                data = f.read(length)
                tail = f.read(4)
                if len(data) < length or len(tail) < 4 or _crc(data) != struct.unpack("<I", tail)[0]:
                    raise EOError(f"{path}: corrupt record {n}", "re-export or re-download the file")
                n += 1
                yield data
    except (OSError, EOFError) as exc:
        raise EOError(f"{path}: cannot read as {compression} TFRecord: {exc}", "check --compression (GZIP or NONE)") from None


def first_record(path: Path, compression: str = "GZIP") -> bytes:
    """The first record of a TFRecord file.

    Args:
        path: the file.
        compression: GZIP or NONE.

    Returns:
        The record's bytes.

    Raises:
        EOError: the file is unreadable or holds no records.

    """
    first = next(iter(read_records(path, compression)), None)
    if first is None:
        raise EOError(f"{path} holds no records", "check the file and --compression")
    return first


def write_records(path: Path, records: list[bytes], compression: str = "GZIP") -> None:
    """Write records as a TFRecord file."""
    with _open(path, compression, "wb") as f:
        for data in records:
            head = struct.pack("<Q", len(data))
            f.write(head + struct.pack("<I", _crc(head)) + data + struct.pack("<I", _crc(data)))


def encode_example(features: dict[str, np.ndarray]) -> bytes:
    """A serialized Example with one float list per feature (as Earth Engine writes them)."""
    ex = example_class()()
    for key, values in features.items():
        ex.features.feature[key].float_list.value.extend(np.asarray(values, dtype=np.float32).ravel().tolist())
    data: bytes = ex.SerializeToString()
    return data


def decode_example(data: bytes) -> dict[str, np.ndarray]:
    """Feature name → values (float32 for float lists, int64 for int64 lists)."""
    ex = example_class()()
    ex.ParseFromString(data)
    out: dict[str, np.ndarray] = {}
    for key, feat in ex.features.feature.items():
        kind = feat.WhichOneof("kind")
        if kind == "float_list":
            out[key] = np.asarray(feat.float_list.value, dtype=np.float32)
        elif kind == "int64_list":
            out[key] = np.asarray(feat.int64_list.value, dtype=np.int64)
    return out


FeatureKind = tuple[str, int]
"""A feature's list type (float, int64 or bytes) and its number of values."""


def describe_example(data: bytes) -> dict[str, FeatureKind]:
    """Every feature of a serialized Example: name -> (type, number of values), sorted by name.

    Args:
        data: one serialized ``tf.train.Example``.

    Returns:
        The features, bytes lists included (``decode_example`` skips them).

    """
    ex = example_class()()
    ex.ParseFromString(data)
    out: dict[str, FeatureKind] = {}
    for key in sorted(ex.features.feature):
        feat = ex.features.feature[key]
        kind = feat.WhichOneof("kind")
        if kind is not None:
            out[key] = (kind.removesuffix("_list"), len(getattr(feat, kind).value))
    return out


def numeric_features(kinds: dict[str, FeatureKind], label: str) -> list[str]:
    """The features that can be bands: numeric, not the label, as many values as the label.

    Args:
        kinds: a record's features, from :func:`describe_example`.
        label: the label feature's name.

    Returns:
        The band names, sorted.

    Raises:
        EOError: the record has no such label, or no feature besides it.

    """
    if label not in kinds:
        raise EOError(f"no label feature '{label}' (features: {sorted(kinds)})", "name the label with --label")
    size = kinds[label][1]
    bands = [k for k, (kind, n) in kinds.items() if k != label and kind != "bytes" and n == size]
    if not bands:
        raise EOError(f"no numeric feature with {size} values besides the label '{label}' (features: {sorted(kinds)})",
                      "check --label, or list the features with 'eoengine dataset inspect-tfrecord FILE'")
    return bands
