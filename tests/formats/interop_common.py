"""Independent implementations for the interop scripts: CRC32C, TFRecord framing, and protobuf
message classes built from field numbers alone (no .proto from this repository, no sluice code)."""
import argparse
import json
import math
import struct

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    header = struct.pack("<Q", len(record))
    return (header + struct.pack("<I", masked_crc(header)) + record +
            struct.pack("<I", masked_crc(record)))


def read_records(data: bytes):
    """Yields (offset, record) and checks both CRCs; raises on any framing error."""
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"truncated header at {pos}")
        (length,) = struct.unpack_from("<Q", data, pos)
        (lcrc,) = struct.unpack_from("<I", data, pos + 8)
        if lcrc != masked_crc(data[pos:pos + 8]):
            raise ValueError(f"length crc mismatch at {pos}")
        end = pos + 12 + length
        if end + 4 > len(data):
            raise ValueError(f"truncated record at {pos}")
        record = data[pos + 12:end]
        (dcrc,) = struct.unpack_from("<I", data, end)
        if dcrc != masked_crc(record):
            raise ValueError(f"data crc mismatch at {pos}")
        yield pos, record
        pos = end + 4


F = descriptor_pb2.FieldDescriptorProto


def field(name, number, ftype, label=F.LABEL_OPTIONAL, type_name=None, packed=None, oneof=None):
    f = F(name=name, number=number, type=ftype, label=label)
    if type_name:
        f.type_name = type_name
    if packed is not None:
        f.options.packed = packed
    if oneof is not None:
        f.oneof_index = oneof
    return f


def build_classes(file_name, package, messages):
    """messages: list of DescriptorProto. Returns {name: class}."""
    fdp = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    fdp.message_type.extend(messages)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    out = {}
    for m in messages:
        desc = pool.FindMessageTypeByName(f"{package}.{m.name}")
        if hasattr(message_factory, "GetMessageClass"):
            out[m.name] = message_factory.GetMessageClass(desc)
        else:
            out[m.name] = message_factory.MessageFactory(pool).GetPrototype(desc)
    return out


def example_classes(packed=True, package="interop"):
    """tf.Example from TensorFlow's field numbers: Example{features=1}, Features{map feature=1},
    Feature{oneof bytes_list=1, float_list=2, int64_list=3}, lists {repeated value=1}."""
    R = F.LABEL_REPEATED
    D = descriptor_pb2.DescriptorProto
    bytes_list = D(name="BytesList", field=[field("value", 1, F.TYPE_BYTES, R)])
    float_list = D(name="FloatList", field=[field("value", 1, F.TYPE_FLOAT, R, packed=packed)])
    int64_list = D(name="Int64List", field=[field("value", 1, F.TYPE_INT64, R, packed=packed)])
    feature = D(name="Feature", field=[
        field("bytes_list", 1, F.TYPE_MESSAGE, type_name=f".{package}.BytesList", oneof=0),
        field("float_list", 2, F.TYPE_MESSAGE, type_name=f".{package}.FloatList", oneof=0),
        field("int64_list", 3, F.TYPE_MESSAGE, type_name=f".{package}.Int64List", oneof=0),
    ])
    feature.oneof_decl.add(name="kind")
    entry = D(name="FeatureEntry", field=[
        field("key", 1, F.TYPE_STRING),
        field("value", 2, F.TYPE_MESSAGE, type_name=f".{package}.Feature"),
    ])
    entry.options.map_entry = True
    features = D(name="Features", field=[
        field("feature", 1, F.TYPE_MESSAGE, R, type_name=f".{package}.Features.FeatureEntry")])
    features.nested_type.append(entry)
    example = D(name="Example", field=[
        field("features", 1, F.TYPE_MESSAGE, type_name=f".{package}.Features")])
    return build_classes(f"{package}.proto", package,
                         [bytes_list, float_list, int64_list, feature, features, example])


class Checker:
    """Counts passed checks; the first failure prints what failed and exits 1."""

    def __init__(self):
        self.count = 0

    def __call__(self, cond, what):
        if not cond:
            print("FAIL:", what)
            raise SystemExit(1)
        self.count += 1


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--tools-dir", required=True)
    p.add_argument("--cli", default="none")
    p.add_argument("--fixtures", default="")
    p.add_argument("--work", required=True)
    return p.parse_args()


class InteropError(Exception):
    """A file an interop script reads is not what it should be."""


SAFETENSORS_DTYPES = {"F32": ("<f4", 4), "I64": ("<i8", 8)}


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata) in file order. Only the F32 and I64 dtypes are
    expected here. The safetensors layout: u64 LE header length, a JSON header, little-endian
    row-major data."""
    import numpy as np  # here: the TFRecord scripts that import this module do not need numpy
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InteropError(f"cannot read {path}: {e}")
    if len(data) < 8:
        raise InteropError(f"{path}: {len(data)} bytes, shorter than the header length")
    (n,) = struct.unpack_from("<Q", data, 0)
    if 8 + n > len(data):
        raise InteropError(f"{path}: header length {n} past the end of the {len(data)}-byte file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InteropError(f"{path}: bad JSON header: {e}")
    if not isinstance(header, dict):
        raise InteropError(f"{path}: the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], list(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise InteropError(f"{path}: bad header entry {name}: {info!r}")
        if dtype not in SAFETENSORS_DTYPES:
            raise InteropError(f"{path}: {name} has dtype {dtype}, expected F32 or I64")
        np_dtype, size = SAFETENSORS_DTYPES[dtype]
        count = math.prod(shape)
        if not 0 <= begin <= end <= len(body) or end - begin != count * size:
            raise InteropError(f"{path}: {name} data_offsets [{begin}, {end}] do not fit shape "
                            f"{shape} {dtype} in a {len(body)}-byte body")
        arr = np.frombuffer(body[begin:end], dtype=np_dtype).reshape(shape).copy()
        tensors[name] = arr
    return tensors, metadata
