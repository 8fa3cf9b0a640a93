#!/usr/bin/python3
"""Cross-checks sluice's safetensors files against an independent reader/writer.

The Python side is written from the format description (u64 LE header length, JSON header,
little-endian row-major data; see https://github.com/huggingface/safetensors), with struct, json and
numpy only, not from sluice's code:

  1. `safetensors_tool write` output is parsed here and every tensor, shape, dtype and metadata
     entry is compared with the values the tool is known to write; the layout rules are checked too
     (header padded with spaces to a multiple of 8, offsets contiguous in name order, no trailing
     bytes), and writing twice must give identical bytes.
  2. A file written here (tensors in dtype order, not name order, like the reference writer) must be
     read back by `safetensors_tool dump` with the same values.
  3. A file with a header length past its end must make `safetensors_tool dump` fail.
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np

NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U8": "u1", "BOOL": "?", "U64": "<u8", "U32": "<u4", "U16": "<u2",
}
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
         "BOOL": 1, "U64": 8, "U32": 4, "U16": 2}

# What safetensors_tool write produces (keep in step with tests/formats/tools/safetensors_tool.cc).
EXPECTED_METADATA = {"format": "pt", "step": "71108", "note": "r\u00e9sum\u00e9 \"quoted\""}
EXPECTED = {
    "conv1.weight": ("F32", [2, 1, 2, 2], [0.5 * i - 1.0 for i in range(8)]),
    "bn1.running_var": ("F64", [3], [1e-5, 1.0, 123456.789]),
    "global_step": ("I64", [], [71108]),
    "labels": ("I32", [2, 2], [-1, 0, 1, 2147483647]),
    "i16": ("I16", [2], [-32768, 32767]),
    "i8": ("I8", [2], [-128, 127]),
    "pixels": ("U8", [3], [0, 128, 255]),
    "mask": ("BOOL", [4], [True, False, False, True]),
    "half": ("F16", [4], [1.0, -5.0, 65504.0, 2.0 ** -24]),
    "bf16": ("BF16", [3], [1.0, -5.0, 3.140625]),
    "empty": ("F32", [0, 3], []),
}

checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    checks += 1


def decode(dtype, raw, shape):
    """Decodes raw little-endian bytes to a flat list of Python values."""
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        arr = bits.astype("<u4").view("<f4")
    else:
        arr = np.frombuffer(raw, dtype=NUMPY_DTYPES[dtype])
    count = int(np.prod(shape)) if shape else 1
    check(arr.size == count, f"element count {arr.size} != prod({shape})")
    return [v.item() for v in arr]


def parse(path):
    """Independent reader: returns (metadata, {name: (dtype, shape, values)}, layout)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    check(8 + n <= len(data), f"header length {n} within file of {len(data)} bytes")
    header_bytes = data[8:8 + n]
    header = json.loads(header_bytes.decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    spans = []
    for name, info in header.items():
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        count = int(np.prod(shape)) if shape else 1
        check(end - begin == count * SIZES[dtype], f"{name}: span {end - begin} matches shape")
        spans.append((begin, end, name))
        tensors[name] = (dtype, shape, decode(dtype, body[begin:end], shape))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        check(begin == pos, f"{name} starts at {begin}, expected {pos} (no gap or overlap)")
        pos = end
    check(pos == len(body), f"tensors end at {pos} = data size {len(body)}")
    return metadata, tensors, {"n": n, "header": header_bytes, "spans": spans}


def write_reference(path):
    """Writes a file from the spec: tensors ordered by dtype size then name, like the reference."""
    tensors = {
        "a.f64": ("F64", [2], np.array([-0.1, 1e300], dtype="<f8")),
        "b.f32": ("F32", [2, 3], np.arange(6, dtype="<f4") / 4 - 0.75),
        "c.f16": ("F16", [2], np.array([0.5, -1024.0], dtype="<f2")),
        "d.bf16": ("BF16", [2], np.array([0x3f80, 0xbfc0], dtype="<u2")),  # 1.0, -1.5
        "e.i64": ("I64", [], np.array([-(2 ** 62)], dtype="<i8")),
        "f.u8": ("U8", [1, 2], np.array([[3, 250]], dtype="u1")),
        "g.bool": ("BOOL", [2], np.array([False, True], dtype="?")),
        "h.i32": ("I32", [0], np.array([], dtype="<i4")),
    }
    order = sorted(tensors, key=lambda k: (-SIZES[tensors[k][0]], k))
    header = {"__metadata__": {"producer": "python", "epoch": "3"}}
    body = b""
    for name in order:
        dtype, shape, arr = tensors[name]
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + body)
    expected = {}
    for name, (dtype, shape, arr) in tensors.items():
        if dtype == "BF16":
            values = [float(np.array([int(b) << 16], dtype="<u4").view("<f4")[0]) for b in arr]
        else:
            values = [v.item() for v in arr.reshape(-1)]
        expected[name] = (dtype, shape, values)
    return {"producer": "python", "epoch": "3"}, expected


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--cli")
    ap.add_argument("--fixtures")
    args = ap.parse_args()
    tool = os.path.join(args.tools_dir, "safetensors_tool")
    os.makedirs(args.work, exist_ok=True)

    # 1. Our file, read independently.
    ours = os.path.join(args.work, "ours.safetensors")
    subprocess.run([tool, "write", ours], check=True)
    metadata, tensors, layout = parse(ours)
    check(metadata == EXPECTED_METADATA, f"metadata {metadata}")
    check(sorted(tensors) == sorted(EXPECTED), f"tensor names {sorted(tensors)}")
    for name, (dtype, shape, values) in EXPECTED.items():
        got = tensors[name]
        check(got[0] == dtype, f"{name} dtype {got[0]} == {dtype}")
        check(got[1] == shape, f"{name} shape {got[1]} == {shape}")
        check(got[2] == values, f"{name} values {got[2]} == {values}")
    check(layout["n"] % 8 == 0, f"header length {layout['n']} is a multiple of 8")
    stripped = layout["header"].rstrip(b" ")
    check(stripped.endswith(b"}") and len(layout["header"]) - len(stripped) < 8,
          "header padded with fewer than 8 spaces")
    names_by_offset = [name for _, _, name in layout["spans"]]
    check(names_by_offset == sorted(names_by_offset), f"data in name order: {names_by_offset}")
    again = os.path.join(args.work, "ours_again.safetensors")
    subprocess.run([tool, "write", again], check=True)
    with open(ours, "rb") as a, open(again, "rb") as b:
        check(a.read() == b.read(), "two writes are byte-identical")
    print(f"sluice -> python: {len(tensors)} tensors, {len(metadata)} metadata entries match")

    # 2. A file written from the spec, read by our tool.
    theirs = os.path.join(args.work, "theirs.safetensors")
    want_metadata, want = write_reference(theirs)
    out = subprocess.run([tool, "dump", theirs], check=True, capture_output=True).stdout
    dumped = json.loads(out.decode("utf-8"))
    check(dumped["metadata"] == want_metadata, f"metadata read back {dumped['metadata']}")
    check(sorted(dumped["tensors"]) == sorted(want), f"names read back {sorted(dumped['tensors'])}")
    for name, (dtype, shape, values) in want.items():
        got = dumped["tensors"][name]
        check(got["dtype"] == dtype, f"{name} dtype {got['dtype']}")
        check(got["shape"] == shape, f"{name} shape {got['shape']}")
        expect = [int(v) for v in values] if dtype == "BOOL" else values
        check(got["values"] == expect, f"{name} values {got['values']} == {expect}")
    print(f"python -> sluice: {len(want)} tensors, {len(want_metadata)} metadata entries match")

    # 3. A damaged file is refused.
    bad = os.path.join(args.work, "bad.safetensors")
    with open(theirs, "rb") as f:
        data = bytearray(f.read())
    data[0:8] = struct.pack("<Q", len(data))
    with open(bad, "wb") as f:
        f.write(data)
    r = subprocess.run([tool, "dump", bad], capture_output=True)
    err = r.stderr.decode("utf-8")
    check(r.returncode == 1 and "DATA_LOSS" in err, f"damaged file refused: {err!r}")
    print("damaged header length refused:", err.strip())
    print(f"OK: {checks} checks")


if __name__ == "__main__":
    main()
