"""Cross-checks our TFRecord + tf.Example bytes against Python's protobuf runtime and an independent
framing/CRC implementation (interop_common.py), in both directions:
  1. example_tool (our encoder, our writer; plain, gzip, zlib) -> Python parses and compares.
  2. Python writes Examples (packed and unpacked lists) -> `sluice inspect --json` reads them.
  3. The TensorFlow-written dmlab fixtures: Python and `sluice inspect --json` agree on every feature.
"""
import gzip
import hashlib
import json
import math
import os
import random
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(__file__))
import interop_common as ic  # noqa: E402

check = ic.Checker()


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def random_spec(rng, n):
    spec = []
    for _ in range(n):
        ex = {}
        for k in range(rng.randrange(0, 7)):
            key = rng.choice(["image/encoded", "label", "bbox/xmin", "name", f"k{k}", "ü/ключ"])
            kind = rng.choice(["bytes", "float", "int64", "none"])
            if kind == "bytes":
                vals = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))).hex()
                        for _ in range(rng.randrange(0, 3))]
            elif kind == "float":
                vals = [f32(rng.uniform(-1e6, 1e6)) for _ in range(rng.randrange(0, 5))]
            elif kind == "int64":
                vals = [rng.randrange(-2**63, 2**63) for _ in range(rng.randrange(0, 5))]
            else:
                vals = []
            ex[key] = {"kind": kind, "values": vals}
        spec.append(ex)
    return spec


def features_of(msg):
    out = {}
    for key, feat in msg.features.feature.items():
        kind = feat.WhichOneof("kind")
        if kind == "bytes_list":
            out[key] = ("bytes", [bytes(v) for v in feat.bytes_list.value])
        elif kind == "float_list":
            out[key] = ("float", list(feat.float_list.value))
        elif kind == "int64_list":
            out[key] = ("int64", list(feat.int64_list.value))
        else:
            out[key] = ("none", [])
    return out


def main():
    args = ic.parse_args()
    os.makedirs(args.work, exist_ok=True)
    classes = ic.example_classes(packed=True)
    Example = classes["Example"]
    rng = random.Random(20261122)

    # 1. Our writer -> Python.
    spec = random_spec(rng, 60)
    spec_path = os.path.join(args.work, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    for comp, opener in [("none", lambda b: b), ("gzip", gzip.decompress),
                         ("zlib", zlib.decompress)]:
        out = os.path.join(args.work, f"ours.{comp}")
        subprocess.run([os.path.join(args.tools_dir, "example_tool"), "write", spec_path, out, comp],
                       check=True)
        raw = opener(open(out, "rb").read())
        records = list(ic.read_records(raw))
        check(len(records) == len(spec), f"{comp}: {len(records)} records, want {len(spec)}")
        for (_, rec), want in zip(records, spec):
            msg = Example()
            msg.ParseFromString(rec)
            got = features_of(msg)
            check(set(got) == set(want), f"{comp}: keys {sorted(got)} vs {sorted(want)}")
            for key, w in want.items():
                kind, vals = got[key]
                check(kind == w["kind"], f"{comp}: kind of {key}: {kind} vs {w['kind']}")
                if kind == "bytes":
                    check(vals == [bytes.fromhex(h) for h in w["values"]], f"{comp}: bytes {key}")
                else:
                    check(vals == w["values"], f"{comp}: values of {key}: {vals} vs {w['values']}")
            # Our encoding writes map keys sorted; Python's deterministic serialization must agree.
            check(msg.SerializeToString(deterministic=True) == rec, f"{comp}: canonical bytes")

    if args.cli == "none" or not os.path.exists(args.cli):
        print(f"example_interop: {check.count} checks passed (no CLI: skipped directions 2 and 3)")
        return

    # 2. Python writer (packed and unpacked lists) -> sluice inspect --json.
    for packed in (True, False):
        E = ic.example_classes(packed=packed, package=f"p{int(packed)}")["Example"]
        spec = random_spec(rng, 40)
        blob = b""
        for ex in spec:
            msg = E()
            for key, f in ex.items():
                feat = msg.features.feature[key]
                if f["kind"] == "bytes":
                    feat.bytes_list.value.extend(bytes.fromhex(h) for h in f["values"])
                elif f["kind"] == "float":
                    feat.float_list.value.extend(f["values"])
                elif f["kind"] == "int64":
                    feat.int64_list.value.extend(f["values"])
            blob += ic.frame(msg.SerializeToString())
        path = os.path.join(args.work, f"python_{packed}.tfrecord")
        open(path, "wb").write(blob)
        out = subprocess.run([args.cli, "inspect", "--json", path], check=True,
                             capture_output=True, text=True).stdout.splitlines()
        check(len(out) == len(spec), f"inspect lines {len(out)} vs {len(spec)}")
        for line, want in zip(out, spec):
            got = json.loads(line)["features"]
            check(set(got) == set(want), f"packed={packed}: keys")
            for key, w in want.items():
                g = got[key]
                # An empty list on the wire is indistinguishable from an unset oneof only when the
                # sub-message is absent; Python writes the empty sub-message, so kinds must match.
                check(g["kind"] == w["kind"] or (w["values"] == [] and g["kind"] == "none"),
                      f"packed={packed}: kind {key}: {g['kind']} vs {w['kind']}")
                if w["kind"] == "bytes":
                    for gv, hv in zip(g["values"], w["values"]):
                        b = bytes.fromhex(hv)
                        if "text" in gv:
                            check(gv["text"].encode() == b, "bytes text")
                        else:
                            check(gv["length"] == len(b) and
                                  gv["sha256"] == hashlib.sha256(b).hexdigest(), "bytes digest")
                    check(len(g["values"]) == len(w["values"]), "bytes count")
                elif w["kind"] == "float":
                    check(all(math.isclose(a, b, rel_tol=0, abs_tol=0) or a == b
                              for a, b in zip(g["values"], w["values"])), "floats")
                    check(len(g["values"]) == len(w["values"]), "float count")
                elif w["kind"] == "int64":
                    check(g["values"] == w["values"], f"ints {g['values']} vs {w['values']}")

    # 3. TensorFlow-written fixtures: Python and sluice agree.
    dmlab = os.path.join(args.fixtures, "tfds", "dmlab")
    if os.path.isdir(dmlab):
        for name in sorted(os.listdir(dmlab)):
            path = os.path.join(dmlab, name)
            records = list(ic.read_records(open(path, "rb").read()))
            out = subprocess.run([args.cli, "inspect", "--json", path], check=True,
                                 capture_output=True, text=True).stdout.splitlines()
            check(len(records) == 2 and len(out) == 2, f"{name}: 2 records")
            for (offset, rec), line in zip(records, out):
                j = json.loads(line)
                check(j["offset"] == offset and j["size"] == len(rec), f"{name}: offset/size")
                msg = Example()
                msg.ParseFromString(rec)
                feats = features_of(msg)
                check(set(feats) == {"image", "label", "filename"}, f"{name}: keys {set(feats)}")
                img = feats["image"][1][0]
                check(img[:3] == b"\xff\xd8\xff", f"{name}: image is JPEG")
                check(j["features"]["image"]["values"][0]["sha256"] ==
                      hashlib.sha256(img).hexdigest(), f"{name}: image digest")
                check(j["features"]["label"]["values"] == feats["label"][1], f"{name}: label")
                check(j["features"]["filename"]["values"][0]["text"].encode() ==
                      feats["filename"][1][0], f"{name}: filename")
    print(f"example_interop: {check.count} checks passed")


if __name__ == "__main__":
    main()
