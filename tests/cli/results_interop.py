#!/usr/bin/python3
"""`sluice results` on events files that sluice did not write.

The files are written here with Debian's python3-protobuf from message classes built from
TensorFlow's field numbers, and framed by the independent TFRecord/CRC32C code of
tests/formats/events_interop.py (no sluice code on this side). The layout is an Estimator-style
experiment: EXP/RUN/ holds training scalars in TF1 form (simple_value), EXP/RUN/eval/ evaluation
scalars in TF2 form (rank-0 DT_FLOAT/DT_DOUBLE tensors with "scalars" plugin metadata on the first
value only), and one run is restarted (a second eval file re-logging a step).

Checked: `sluice results --format json EXP` gives exactly the (step, value) points per run; `--format
csv` aligns the runs by step; a histogram-plugin value is not read as a scalar.
"""
import json
import os
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats"))
import events_interop as ev  # noqa: E402  (CRC32C, framing, Event classes; no sluice code)
import interop_common as ic  # noqa: E402  (the argument convention and the check counter)

DT_FLOAT, DT_DOUBLE = 1, 2
check = ic.Checker()


def same(got, want):
    """Equal tuples, where a number sluice printed may be the shortest text of a float32 (what a
    simple_value or DT_FLOAT holds), which reads back as that float32, not as the double."""
    return len(got) == len(want) and all(
        g == w or (g is not None and w is not None and ev.f32(g) == w) for g, w in zip(got, want))


def main():
    args = ic.parse_args()
    if args.cli == "none" or not os.path.exists(args.cli):
        sys.exit(f"results_interop: the sluice binary is missing ({args.cli}); build target sluice")

    C = ev.build_classes()
    Event, Summary, V = C["Event"], C["Summary"], C["Summary.Value"]
    SummaryMetadata, TensorProto = C["SummaryMetadata"], C["TensorProto"]

    def meta(plugin):
        m = SummaryMetadata()
        m.plugin_data.plugin_name = plugin
        return m

    def tf1(step, tag, value):
        return Event(wall_time=1000.0 + step, step=step,
                     summary=Summary(value=[V(tag=tag, simple_value=value)]))

    def tf2(step, tag, value, dtype=DT_FLOAT, plugin=None, content=False):
        t = TensorProto(dtype=dtype)
        if content:
            t.tensor_content = struct.pack("<f" if dtype == DT_FLOAT else "<d", value)
        elif dtype == DT_FLOAT:
            t.float_val.append(value)
        else:
            t.double_val.append(value)
        v = V(tag=tag, tensor=t)
        if plugin:
            v.metadata.CopyFrom(meta(plugin))
        return Event(wall_time=1000.0 + step, step=step, summary=Summary(value=[v]))

    def write(dir_, secs, events):
        os.makedirs(dir_, exist_ok=True)
        path = os.path.join(dir_, f"events.out.tfevents.{secs:010d}.pyhost")
        head = Event(wall_time=float(secs), file_version="brain.Event:2")
        with open(path, "wb") as f:
            f.write(b"".join(ev.frame(e.SerializeToString()) for e in [head, *events]))

    exp = os.path.join(args.work, "exp")
    shutil.rmtree(exp, ignore_errors=True)
    f32 = ev.f32
    # Run a: eval accuracy as DT_FLOAT float_val / tensor_content, a histogram under another tag.
    write(os.path.join(exp, "a"), 1700000000, [tf1(0, "loss", 2.5), tf1(500, "loss", 0.75)])
    write(os.path.join(exp, "a", "eval"), 1700000100, [
        tf2(500, "accuracy", 0.5, plugin="scalars"),
        tf2(1000, "accuracy", 0.6180339887, content=True),
        tf2(1000, "hist", 7.0, dtype=DT_DOUBLE, plugin="histograms"),
        tf2(1500, "accuracy", 0.875),
    ])
    # Run b: DT_DOUBLE accuracy; restarted, the second file re-logs step 1000.
    write(os.path.join(exp, "b", "eval"), 1700000000, [
        tf2(1000, "accuracy", 0.1, dtype=DT_DOUBLE, plugin="scalars"),
        tf2(2000, "accuracy", 0.2, dtype=DT_DOUBLE),
    ])
    write(os.path.join(exp, "b", "eval"), 1700000200, [
        tf2(1000, "accuracy", 0.3, dtype=DT_DOUBLE, plugin="scalars"),
        tf2(3000, "accuracy", 0.7, dtype=DT_DOUBLE),
    ])

    r = subprocess.run([args.cli, "results", "--format", "json", exp], capture_output=True,
                       text=True)
    check(r.returncode == 0, f"results exited {r.returncode}: {r.stderr}")
    got = json.loads(r.stdout)
    check(got["tag"] == "accuracy", f"default tag {got['tag']!r}")
    runs = {run["run"]: [(p["step"], p["value"]) for p in run["points"]] for run in got["runs"]}
    want = {
        os.path.join(exp, "a"): [(500, 0.5), (1000, f32(0.6180339887)), (1500, 0.875)],
        os.path.join(exp, "b"): [(1000, 0.3), (2000, 0.2), (3000, 0.7)],
    }
    check(runs.keys() == want.keys() and
          all(len(runs[k]) == len(want[k]) and all(same(g, w) for g, w in zip(runs[k], want[k]))
              for k in want), f"points:\n  got  {runs}\n  want {want}")

    r = subprocess.run([args.cli, "results", "--format", "csv", exp], capture_output=True,
                       text=True)
    check(r.returncode == 0, f"csv exited {r.returncode}: {r.stderr}")
    rows = [line.split(",") for line in r.stdout.splitlines()]
    check(rows[0] == ["step", os.path.join(exp, "a"), os.path.join(exp, "b")], f"header {rows[0]}")
    table = [(int(s), float(x) if x else None, float(y) if y else None) for s, x, y in rows[1:]]
    want_rows = [(500, 0.5, None), (1000, f32(0.6180339887), 0.3), (1500, 0.875, None),
                 (2000, None, 0.2), (3000, None, 0.7)]
    check(len(table) == len(want_rows) and all(same(g, w) for g, w in zip(table, want_rows)),
          f"csv rows {table}")

    r = subprocess.run([args.cli, "results", "--tag", "hist", os.path.join(exp, "a")],
                       capture_output=True, text=True)
    check(r.returncode == 1 and "tag 'hist' not found" in r.stderr,
          f"histogram value read as a scalar: rc {r.returncode} {r.stderr!r}")
    print(f"results_interop: OK: {check.count} checks (TF1 and TF2 events written by python-protobuf)")


if __name__ == "__main__":
    main()
