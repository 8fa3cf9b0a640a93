#!/usr/bin/python3
"""Cross-checks sluice's TensorBoard event files against an independent implementation.

The Python side shares nothing with sluice: TFRecord framing and CRC32C are implemented here from
the format description, and the Event / Summary / TensorProto message classes are built at run time
from a FileDescriptorProto written from TensorFlow's .proto files (event.proto, summary.proto,
tensor.proto, tensor_shape.proto: field numbers and types only), parsed by Debian's
python3-protobuf.

  1. `events_tool write` output: the file name pattern, the framing and both CRCs of every record,
     the first record (file_version "brain.Event:2", the start time, step 0) and every scalar
     (wall_time, step, tag, simple_value) are checked against the values the tool is known to write.
  2. A TF2-style file written here (scalars as rank-0 DT_FLOAT / DT_DOUBLE tensors in float_val,
     double_val and tensor_content, plugin metadata on the first value of a tag only, plus values
     that are not scalars) must be read back by `events_tool dump` with exactly the scalars
     TensorBoard would show.
  3. A file with one flipped bit must make `events_tool dump` fail with DATA_LOSS.
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    checks += 1


# ---- CRC32C and TFRecord framing, from the spec -------------------------------------------------

def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data):
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked_crc(length)) + data +
            struct.pack("<I", masked_crc(data)))


def read_records(path):
    with open(path, "rb") as f:
        buf = f.read()
    pos, out = 0, []
    while pos < len(buf):
        check(pos + 12 <= len(buf), f"record header at {pos} complete")
        (length,) = struct.unpack_from("<Q", buf, pos)
        (length_crc,) = struct.unpack_from("<I", buf, pos + 8)
        check(length_crc == masked_crc(buf[pos:pos + 8]), f"length CRC of record at {pos}")
        end = pos + 12 + length
        check(end + 4 <= len(buf), f"record at {pos} complete")
        data = buf[pos + 12:end]
        (data_crc,) = struct.unpack_from("<I", buf, end)
        check(data_crc == masked_crc(data), f"data CRC of record at {pos}")
        out.append(data)
        pos = end + 4
    return out


# ---- Message classes from field numbers ---------------------------------------------------------

F = descriptor_pb2.FieldDescriptorProto


def _message(parent, name, fields, nested=()):
    m = parent.add()
    m.name = name
    for fname, number, ftype, label, type_name, oneof in fields:
        f = m.field.add()
        f.name, f.number, f.type, f.label = fname, number, ftype, label
        if type_name:
            f.type_name = type_name
        if oneof is not None:
            f.oneof_index = oneof
    for nested_name, nested_fields in nested:
        _message(m.nested_type, nested_name, nested_fields)
    return m


def build_classes():
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    fd = descriptor_pb2.FileDescriptorProto(name="interop_event.proto", package="tfcheck",
                                            syntax="proto3")
    # tensorflow/core/util/event.proto
    event = _message(fd.message_type, "Event", [
        ("wall_time", 1, F.TYPE_DOUBLE, opt, None, None),
        ("step", 2, F.TYPE_INT64, opt, None, None),
        ("file_version", 3, F.TYPE_STRING, opt, None, 0),
        ("graph_def", 4, F.TYPE_BYTES, opt, None, 0),
        ("summary", 5, F.TYPE_MESSAGE, opt, ".tfcheck.Summary", 0),
    ])
    event.oneof_decl.add().name = "what"
    # tensorflow/core/framework/summary.proto
    summary = _message(fd.message_type, "Summary", [
        ("value", 1, F.TYPE_MESSAGE, rep, ".tfcheck.Summary.Value", None),
    ], nested=[("Value", [
        ("node_name", 7, F.TYPE_STRING, opt, None, None),
        ("tag", 1, F.TYPE_STRING, opt, None, None),
        ("metadata", 9, F.TYPE_MESSAGE, opt, ".tfcheck.SummaryMetadata", None),
        ("simple_value", 2, F.TYPE_FLOAT, opt, None, 0),
        ("obsolete_old_style_histogram", 3, F.TYPE_BYTES, opt, None, 0),
        ("image", 4, F.TYPE_BYTES, opt, None, 0),  # a message; opaque bytes suffice here
        ("tensor", 8, F.TYPE_MESSAGE, opt, ".tfcheck.TensorProto", 0),
    ])])
    summary.nested_type[0].oneof_decl.add().name = "value"
    _message(fd.message_type, "SummaryMetadata", [
        ("plugin_data", 1, F.TYPE_MESSAGE, opt, ".tfcheck.SummaryMetadata.PluginData", None),
        ("display_name", 2, F.TYPE_STRING, opt, None, None),
        ("summary_description", 3, F.TYPE_STRING, opt, None, None),
        ("data_class", 4, F.TYPE_INT32, opt, None, None),  # enum DataClass on the wire
    ], nested=[("PluginData", [
        ("plugin_name", 1, F.TYPE_STRING, opt, None, None),
        ("content", 2, F.TYPE_BYTES, opt, None, None),
    ])])
    # tensorflow/core/framework/tensor_shape.proto, tensor.proto
    _message(fd.message_type, "TensorShapeProto", [
        ("dim", 2, F.TYPE_MESSAGE, rep, ".tfcheck.TensorShapeProto.Dim", None),
        ("unknown_rank", 3, F.TYPE_BOOL, opt, None, None),
    ], nested=[("Dim", [
        ("size", 1, F.TYPE_INT64, opt, None, None),
        ("name", 2, F.TYPE_STRING, opt, None, None),
    ])])
    _message(fd.message_type, "TensorProto", [
        ("dtype", 1, F.TYPE_INT32, opt, None, None),  # enum DataType on the wire
        ("tensor_shape", 2, F.TYPE_MESSAGE, opt, ".tfcheck.TensorShapeProto", None),
        ("version_number", 3, F.TYPE_INT32, opt, None, None),
        ("tensor_content", 4, F.TYPE_BYTES, opt, None, None),
        ("float_val", 5, F.TYPE_FLOAT, rep, None, None),
        ("double_val", 6, F.TYPE_DOUBLE, rep, None, None),
        ("int_val", 7, F.TYPE_INT32, rep, None, None),
        ("string_val", 8, F.TYPE_BYTES, rep, None, None),
        ("int64_val", 10, F.TYPE_INT64, rep, None, None),
        ("half_val", 13, F.TYPE_INT32, rep, None, None),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    # Nested classes are not attributes of dynamically built ones (Summary.Value): look them up too.
    names = ["Event", "Summary", "Summary.Value", "SummaryMetadata", "TensorProto"]
    descs = {n: pool.FindMessageTypeByName("tfcheck." + n) for n in names}
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return {n: message_factory.GetMessageClass(d) for n, d in descs.items()}
    factory = message_factory.MessageFactory(pool)  # protobuf 3.x / 4.21 (Debian bookworm)
    return {n: factory.GetPrototype(d) for n, d in descs.items()}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


# What events_tool write produces (keep in step with tests/formats/tools/events_tool.cc).
START = 1700000000.5
EXPECTED = [  # wall_time, step, tag, value
    (1700000001.0, 0, "loss", 2.5),
    (1700000002.0, 1, "loss", 1.25),
    (1700000002.0, 1, "accuracy", 0.5),
    (1700000003.25, 1000000, "lr", f32(0.1)),
    (1700000004.0, 2, "r\u00e9sum\u00e9/x", -3.0),
]
DT_FLOAT, DT_DOUBLE, DT_INT32 = 1, 2, 3


def run_tool(tool, *args, check_rc=True):
    r = subprocess.run([tool, *args], capture_output=True)
    out, err = r.stdout.decode("utf-8"), r.stderr.decode("utf-8")
    if check_rc and r.returncode != 0:
        print("FAIL:", tool, args, "exited", r.returncode, err)
        sys.exit(1)
    return r.returncode, out, err


def check_ours(tool, classes, work):
    Event = classes["Event"]
    out_dir = os.path.join(work, "ours")
    if os.path.isdir(out_dir):
        for name in os.listdir(out_dir):
            os.remove(os.path.join(out_dir, name))
    _, out, _ = run_tool(tool, "write", out_dir)
    path = out.strip()
    name = os.path.basename(path)
    check(re.fullmatch(r"events\.out\.tfevents\.\d{10}\.interop", name) is not None,
          f"file name {name}")
    check(name.split(".")[3] == "1700000000", f"seconds in {name}")
    records = read_records(path)
    check(len(records) == 1 + len(EXPECTED), f"{len(records)} records")
    first = Event.FromString(records[0])
    check(first.WhichOneof("what") == "file_version", "first record is file_version")
    check(first.file_version == "brain.Event:2", f"file_version {first.file_version!r}")
    check(first.wall_time == START and first.step == 0, f"first record time/step {first}")
    for record, (wall_time, step, tag, value) in zip(records[1:], EXPECTED):
        e = Event.FromString(record)
        check(e.WhichOneof("what") == "summary", f"summary event {e}")
        check(e.wall_time == wall_time and e.step == step, f"wall_time/step of {e}")
        check(len(e.summary.value) == 1, f"one value in {e}")
        v = e.summary.value[0]
        check(v.tag == tag, f"tag {v.tag!r} == {tag!r}")
        check(v.WhichOneof("value") == "simple_value", f"simple_value in {v}")
        check(v.simple_value == value, f"{tag}: {v.simple_value} == {value}")
        check(e.SerializeToString() == record, f"re-encoding of {tag} is byte-identical")
    print(f"sluice -> python: {name}: version record + {len(EXPECTED)} scalars match")


def check_theirs(tool, classes, work):
    Event, Summary = classes["Event"], classes["Summary"]
    SummaryMetadata, TensorProto = classes["SummaryMetadata"], classes["TensorProto"]

    def scalar_meta(plugin="scalars", data_class=1):
        m = SummaryMetadata(data_class=data_class)
        m.plugin_data.plugin_name = plugin
        return m

    def tensor(dtype, dims=(), **fields):
        t = TensorProto(dtype=dtype, **fields)
        for d in dims:
            t.tensor_shape.dim.add(size=d)
        return t

    def event(wall_time, step, *values):
        return Event(wall_time=wall_time, step=step, summary=Summary(value=list(values)))

    V = classes["Summary.Value"]
    events = [
        Event(wall_time=100.0, file_version="brain.Event:2"),
        event(101.0, 1, V(tag="loss", metadata=scalar_meta(),
                          tensor=tensor(DT_FLOAT, float_val=[0.75]))),
        event(102.0, 2, V(tag="loss", tensor=tensor(DT_FLOAT, float_val=[0.5]))),
        event(103.0, 3, V(tag="lr", metadata=scalar_meta(),
                          tensor=tensor(DT_DOUBLE, double_val=[0.1])),
              V(tag="c", metadata=scalar_meta(),
                tensor=tensor(DT_FLOAT, tensor_content=struct.pack("<f", -1.5))),
              V(tag="cd", metadata=scalar_meta(),
                tensor=tensor(DT_DOUBLE, dims=(1,), tensor_content=struct.pack("<d", 1e-300)))),
        # Not scalars: a vector, an int tensor, a histogram-plugin tag (later without metadata).
        event(104.0, 4, V(tag="vec", metadata=scalar_meta(),
                          tensor=tensor(DT_FLOAT, dims=(2,), float_val=[1.0, 2.0])),
              V(tag="count", metadata=scalar_meta(), tensor=tensor(DT_INT32, int_val=[3])),
              V(tag="hist", metadata=scalar_meta("histograms", 2),
                tensor=tensor(DT_DOUBLE, double_val=[7.0]))),
        event(105.0, 5, V(tag="hist", tensor=tensor(DT_DOUBLE, double_val=[8.0]))),
        event(106.0, 2 ** 40, V(tag="tf1", simple_value=f32(3.3))),
    ]
    want = [
        (101.0, 1, "loss", f32(0.75)), (102.0, 2, "loss", 0.5), (103.0, 3, "lr", 0.1),
        (103.0, 3, "c", -1.5), (103.0, 3, "cd", 1e-300), (106.0, 2 ** 40, "tf1", f32(3.3)),
    ]
    path = os.path.join(work, "events.out.tfevents.0000000100.python")
    data = b"".join(frame(e.SerializeToString()) for e in events)
    with open(path, "wb") as f:
        f.write(data)
    _, out, _ = run_tool(tool, "dump", path)
    dumped = json.loads(out)
    check(dumped["file_version"] == "brain.Event:2", f"file_version {dumped['file_version']!r}")
    got = [(s["wall_time"], s["step"], s["tag"], s["value"]) for s in dumped["scalars"]]
    check(got == want, f"scalars read back:\n  got  {got}\n  want {want}")
    print(f"python -> sluice: {len(want)} scalars (TF2 tensor form and simple_value) from "
          f"{len(events) - 1} summary events read back; vector, int and histogram values skipped")
    return data


def check_damage(tool, data, work):
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x10
    path = os.path.join(work, "events.out.tfevents.0000000100.damaged")
    with open(path, "wb") as f:
        f.write(bad)
    rc, _, err = run_tool(tool, "dump", path, check_rc=False)
    check(rc == 1 and "DATA_LOSS" in err and path in err, f"damaged file refused: {err!r}")
    print("flipped bit refused:", err.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--cli")
    ap.add_argument("--fixtures")
    args = ap.parse_args()
    tool = os.path.join(args.tools_dir, "events_tool")
    os.makedirs(args.work, exist_ok=True)

    # The independent CRC and framing must themselves match the published vectors.
    check(crc32c(b"123456789") == 0xE3069283, "crc32c check value")
    check(frame(b"hello").hex() == "0500000000000000eab2043e68656c6c6fbb1f1c19", "hello record")

    classes = build_classes()
    check_ours(tool, classes, args.work)
    data = check_theirs(tool, classes, args.work)
    check_damage(tool, data, args.work)
    print(f"OK: {checks} checks")


if __name__ == "__main__":
    main()
