"""TensorBoard compatibility of sluice's training events and of `sluice results`, checked against the real
`tensorboard` and `tensorflow` packages.

1. A tiny `sluice train` run (ResNet-20 on the CIFAR PNG shards, 30 steps, an eval every 10) writes
   training events to MODEL_DIR/ and eval events to MODEL_DIR/eval/ (the Estimator layout) plus
   metrics.jsonl. TensorBoard's own `EventAccumulator` loads both directories; every scalar tag it finds
   must be a number in metrics.jsonl at the same steps with the same value after float32 rounding (the
   event's `simple_value` is a float, metrics.jsonl keeps the double), and every number in metrics.jsonl
   must be an event scalar. The steps themselves are checked against the flags, not against sluice.
   Differences by design, stated here and asserted exactly:
     - eval events carry `accuracy` as well as `top_1_accuracy` (the same value): `accuracy` is the
       tag TF's Estimator writes, so scripts written for TF runs find it; metrics.jsonl has only
       `top_1_accuracy`.
     - metrics.jsonl's eval line has `images` (how many images were evaluated), a count, not a scalar
       summary, and may have `checkpoint` (a path).
2. The seeds' "awful script", as people wrote it for TF 2: `tf.data.TFRecordDataset` over the eval events
   file and `Event.FromString` on each record, printing (step, accuracy). Its rows must be the rows of
   `sluice results MODEL_DIR` (table, %.4f) and, exactly, the values of `--format json`.
3. `sluice results` reads events that TensorFlow wrote: TF2's `tf.summary.scalar` (tensor summaries of
   DT_FLOAT), `tf.summary.write` of a DT_DOUBLE scalar, and TF1's `tf.compat.v1.summary.FileWriter` with
   `Summary.Value.simple_value`. The values written in the test must come back (float32 or double exact),
   one column per run when given the parent directory.

Runs in the interop venv (TensorFlow, no torch in this process); about 7 s, most of it importing TF.
"""

import glob
import json
import math
import os

import numpy as np
import pytest

from conftest import run_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.plugins.scalar import metadata as scalar_metadata  # noqa: E402
from tensorflow.core.util import event_pb2  # noqa: E402

TRAIN_STEPS = 30
EVAL_EVERY = 10
LOG_EVERY = 5
# Eval lines of metrics.jsonl that are not scalar summaries (see the module docstring).
EVAL_NOT_SCALARS = {"images", "checkpoint"}
# Eval event tags that metrics.jsonl names differently: event tag -> metrics.jsonl key.
EVAL_ALIASES = {"accuracy": "top_1_accuracy"}


@pytest.fixture(scope="module")
def run_dir(shards, tmp_path_factory):
    d = tmp_path_factory.mktemp("tb") / "r20"
    run_cli("train", "--recipe", "tf-cifar-resnet", "--model", "resnet20", "--data-dir", shards["cifar_png"],
            "--model-dir", d, "--train-steps", TRAIN_STEPS, "--batch", 16, "--eval-every", EVAL_EVERY,
            "--log-every", LOG_EVERY, "--train-threads", 1, "--pipeline-threads", 1, "--seed", 3)
    return str(d)


def _metrics(run_dir):
    """metrics.jsonl as {kind: {key: {step: value}}} for every number on each line."""
    out = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            kind, step = rec.pop("kind"), rec.pop("step")
            for key, value in rec.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out.setdefault(kind, {}).setdefault(key, {})[step] = value
                elif kind == "eval":
                    assert key in EVAL_NOT_SCALARS, f"non-numeric metrics.jsonl field {key}={value!r}"
    return out


def _accumulate(directory):
    acc = event_accumulator.EventAccumulator(directory, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    tags = acc.Tags()
    # Every summary sluice writes is a plain scalar: nothing for TensorBoard's other dashboards.
    for kind in ("images", "audio", "histograms", "tensors"):
        assert tags[kind] == [], (directory, kind, tags[kind])
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in tags["scalars"]}


def _assert_same(events, jsonl, aliases, where):
    expected_tags = set(jsonl) | {alias for alias, key in aliases.items() if key in jsonl}
    assert set(events) == expected_tags, (where, sorted(events), sorted(jsonl))
    for tag, points in events.items():
        want = jsonl[aliases.get(tag, tag)]
        assert [s for s, _ in points] == sorted(want), (where, tag)
        for step, value in points:
            assert value == float(np.float32(want[step])), (where, tag, step, value, want[step])


def test_event_files_are_where_tensorboard_looks(run_dir):
    for d in (run_dir, os.path.join(run_dir, "eval")):
        files = glob.glob(os.path.join(d, "events.out.tfevents.*"))
        assert len(files) == 1, (d, os.listdir(d))
        # TensorBoard's own test for an events file name.
        from tensorboard.backend.event_processing import io_wrapper
        assert io_wrapper.IsSummaryEventsFile(files[0])


def test_event_accumulator_scalars_equal_metrics_jsonl(run_dir):
    metrics = _metrics(run_dir)
    train = _accumulate(run_dir)
    evals = _accumulate(os.path.join(run_dir, "eval"))
    # Steps from the flags: a training scalar every LOG_EVERY steps, an eval every EVAL_EVERY and at the end.
    assert [s for s, _ in train["loss"]] == list(range(LOG_EVERY, TRAIN_STEPS + 1, LOG_EVERY))
    assert [s for s, _ in evals["accuracy"]] == list(range(EVAL_EVERY, TRAIN_STEPS + 1, EVAL_EVERY))
    _assert_same(train, metrics["train"], {}, "train")
    _assert_same(evals, {k: v for k, v in metrics["eval"].items() if k not in EVAL_NOT_SCALARS},
                 EVAL_ALIASES, "eval")
    # The alias is the same number, and accuracy is a fraction of the evaluated images.
    assert evals["accuracy"] == evals["top_1_accuracy"]
    for step, images in metrics["eval"]["images"].items():
        top1 = metrics["eval"]["top_1_accuracy"][step]
        assert images > 0 and math.isclose(top1 * images, round(top1 * images), abs_tol=1e-6)


def awful_script(run_dir):
    """What a seed wrote to get an accuracy table out of a TF 2 run: read the eval events file as
    TFRecords, parse each record as an Event, keep the `accuracy` values."""
    lines = []
    for path in sorted(glob.glob(os.path.join(run_dir, "eval", "*tfevents*"))):
        for raw in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(raw.numpy())
            for value in event.summary.value:
                if value.tag == "accuracy":
                    lines.append((event.step, value.simple_value))
    for step, acc in lines:
        print(f"{step}\t{acc:.4f}")
    return lines


def test_awful_script_prints_the_table_of_sluice_results(run_dir, capsys):
    rows = awful_script(run_dir)
    printed = capsys.readouterr().out.split("\n")
    assert len(rows) == TRAIN_STEPS // EVAL_EVERY
    table = run_cli("results", run_dir).stdout.splitlines()
    assert table[0].split() == ["step", run_dir]
    assert [line.split() for line in table[1:]] == [p.split("\t") for p in printed if p]
    for tag in (None, "accuracy"):
        args = ["results", run_dir, "--format", "json"] + (["--tag", tag] if tag else [])
        (run,) = json.loads(run_cli(*args).stdout)["runs"]
        assert [(p["step"], np.float32(p["value"])) for p in run["points"]] == \
            [(s, np.float32(v)) for s, v in rows]


def _sluice_points(path, tag):
    out = json.loads(run_cli("results", path, "--tag", tag, "--format", "json").stdout)
    assert out["tag"] == tag
    return {r["run"]: [(p["step"], p["value"]) for p in r["points"]] for r in out["runs"]}


def test_sluice_results_reads_events_tensorflow_wrote(tmp_path):
    exp = tmp_path / "exp"
    f32 = [(0, 0.1), (100, 1 / 3), (250, 0.71828182), (400, 1e-7), (400 + 2**33, 0.9999999)]
    f64 = [(1, 2 / 3), (7, math.pi / 10), (9, 0.1)]
    tf1 = [(5, 0.7), (10, 0.123456789), (15, 1.0)]

    writer = tf.summary.create_file_writer(str(exp / "tf2"))
    with writer.as_default():
        for step, v in f32:
            tf.summary.scalar("accuracy", v, step=step)  # TF2: a DT_FLOAT tensor summary
        for step, v in f64:
            tf.summary.write("accuracy_f64", tf.constant(v, tf.float64), step=step,
                             metadata=scalar_metadata.create_summary_metadata("accuracy_f64", ""))
    writer.close()

    with tf.Graph().as_default():  # TF1's FileWriter refuses eager mode
        fw = tf.compat.v1.summary.FileWriter(str(exp / "tf1"))
        for step, v in tf1:
            fw.add_summary(tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag="accuracy",
                                                                                 simple_value=v)]), step)
        fw.close()

    tf2_dir, tf1_dir = str(exp / "tf2"), str(exp / "tf1")
    got = _sluice_points(tf2_dir, "accuracy")[tf2_dir]
    assert [s for s, _ in got] == [s for s, _ in f32]
    assert [np.float32(v) for _, v in got] == [np.float32(v) for _, v in f32]
    assert _sluice_points(tf2_dir, "accuracy_f64")[tf2_dir] == f64  # doubles exactly
    got = _sluice_points(tf1_dir, "accuracy")[tf1_dir]
    assert [(s, np.float32(v)) for s, v in got] == [(s, np.float32(v)) for s, v in tf1]

    # The parent directory: one column per run, rows the union of steps, empty where a run lacks one.
    both = _sluice_points(str(exp), "accuracy")
    assert sorted(both) == sorted([tf1_dir, tf2_dir])
    csv = run_cli("results", exp, "--tag", "accuracy", "--format", "csv").stdout.splitlines()
    steps = sorted({s for s, _ in f32} | {s for s, _ in tf1})
    assert [int(line.split(",")[0]) for line in csv[1:]] == steps
    tf1_col = csv[0].split(",").index(tf1_dir)
    tf1_steps = {s for s, _ in tf1}
    for line in csv[1:]:
        cells = line.split(",")
        assert (cells[tf1_col] != "") == (int(cells[0]) in tf1_steps), line
