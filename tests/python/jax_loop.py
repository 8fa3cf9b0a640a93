"""The installed package (not the build tree's copy) feeding a JAX training loop through DLPack:
zero-copy hand-off, and a small model that learns on the CIFAR-style sample shards.
usage: jax_loop.py WORK (WORK/cifar holds the shards the pytest fixture ingested)"""

import os
import sys

import jax
import jax.experimental
import jax.numpy as jnp
import numpy as np

import sluice

work = sys.argv[1]
assert "site-packages" in sluice.__file__, f"expected the pip-installed package, got {sluice.__file__}"
train = os.path.join(work, "cifar", "train-*")
test = os.path.join(work, "cifar", "test-*")
if not os.path.exists(os.path.join(work, "cifar", "manifest.json")):
    sys.exit(f"no shards in {work}/cifar (the python.package test makes them)")

# Zero-copy: the JAX arrays' buffers are the loader's memory (XLA copies a buffer that is not
# 64-byte aligned: every batch's must be).
for i, (x, y) in enumerate(sluice.Loader(train, preset="cifar-train", batch_size=8, layout="nhwc")):
    jx = jax.dlpack.from_dlpack(x)
    assert jx.unsafe_buffer_pointer() == x.ctypes.data, f"batch {i}: from_dlpack copied the images"
    with jax.experimental.enable_x64():  # without x64 JAX narrows int64 labels (a copy by design)
        jy = jax.dlpack.from_dlpack(y)
        assert jy.unsafe_buffer_pointer() == y.ctypes.data, f"batch {i}: from_dlpack copied the labels"
    assert np.array_equal(np.asarray(jx), x)
    if i == 20:
        break

# A linear softmax classifier on 8x8 average-pooled images, plain SGD, jit-compiled step.
def features(images):
    n = images.shape[0]
    return images.reshape(n, 8, 4, 8, 4, 3).mean(axis=(2, 4)).reshape(n, -1)

def loss_fn(params, images, labels):
    logits = features(images) @ params["w"] + params["b"]
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

@jax.jit
def step(params, images, labels):
    loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
    return jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads), loss

params = {"w": jnp.zeros((8 * 8 * 3, 10)), "b": jnp.zeros(10)}
losses = []
for images, labels in sluice.Loader(train, preset="cifar-train", batch_size=50, epochs=10,
                                    layout="nhwc", threads=1):
    params, loss = step(params, jax.dlpack.from_dlpack(images), jax.dlpack.from_dlpack(labels))
    losses.append(float(loss))
correct = total = 0
for images, labels in sluice.Loader(test, preset="cifar-eval", batch_size=100, epochs=1, layout="nhwc"):
    pred = np.asarray(jnp.argmax(features(jax.dlpack.from_dlpack(images)) @ params["w"] + params["b"], 1))
    correct += int((pred == labels).sum())
    total += len(labels)
first, last = np.mean(losses[:5]), np.mean(losses[-5:])
print(f"jax {jax.__version__}: loss {first:.3f} -> {last:.3f}, test accuracy {correct / total:.3f} on {total}")
assert last < first * 0.8, (first, last)
assert correct / total > 0.25, "chance is 0.1"
print("1 passed, 0 failed")
