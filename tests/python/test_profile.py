"""sluice.profile against ground truth: a generator paced to P items/s and a loop body that takes a
known time; the measured input-wait fraction equals what the loop measured itself and the model."""

import time

import numpy as np

import sluice


def paced(n, seconds):
    # Item k is ready at t0 + (k + 1) * seconds: a producer of exactly 1 / seconds items/s.
    t0 = time.perf_counter()
    for k in range(n):
        left = t0 + (k + 1) * seconds - time.perf_counter()
        if left > 0:
            time.sleep(left)
        yield np.zeros((4, 2)), np.zeros(4)


def test_an_input_bound_loop():
    prof = sluice.profile(paced(60, 0.010))   # 100 items/s
    waited = body = 0.0
    t = time.perf_counter()
    for _ in prof:
        got = time.perf_counter()
        waited += got - t
        time.sleep(0.004)                      # the "step": could run 250/s
        t = time.perf_counter()
        body += t - got
    s = prof.stats()
    assert s["items"] == 60 and s["samples"] == 240
    # Its own split (the first wait is warm-up in both) and the model 1 - 100/250 = 0.6.
    assert abs(s["input_wait_fraction"] - 0.6) < 0.08, s
    assert s["verdict"] == "highly input-bound"
    assert abs(s["step_s"] - body) < 0.02 and s["wait_s"] <= waited


def test_a_compute_bound_loop_is_not_input_bound():
    prof = sluice.profile(paced(30, 0.001))
    for _ in prof:
        time.sleep(0.010)
    s = prof.stats()
    assert s["input_wait_fraction"] < 0.05, s
    assert s["verdict"] == "not input-bound"


def test_wrapping_a_loader_agrees_with_the_loaders_own_profile(data):
    # An input-bound loop (one decode thread at 224 px, a 5 ms step) long enough that the wrapper's own Python
    # overhead per item (microseconds) is small beside each wait: both splits must agree, and the
    # wrapper's waits contain the loader's own.
    import os
    loader = sluice.Loader(os.path.join(data["imagenet"], "train-*"), preset="resnet-train",
                           batch_size=16, epochs=3, threads=1)
    prof = sluice.profile(loader)
    for _ in prof:
        time.sleep(0.005)
    ours, theirs = prof.stats(), loader.stats()
    assert ours["samples"] == theirs["images"] and ours["items"] == theirs["batches"] > 10
    assert theirs["input_wait_fraction"] > 0.1, theirs  # the case is input-bound
    assert abs(ours["input_wait_fraction"] - theirs["input_wait_fraction"]) < 0.05, (ours, theirs)
    assert ours["wait_s"] >= theirs["wait_s"] - 0.005, (ours, theirs)
