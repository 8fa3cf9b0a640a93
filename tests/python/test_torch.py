"""Feeding PyTorch (Debian's 1.13): zero-copy hand-off and a training loop that learns."""

import os

import numpy as np
import torch

import sluice


def test_from_numpy_and_from_dlpack_share_the_loaders_memory(data):
    x, y = next(iter(sluice.Loader(os.path.join(data["cifar"], "train-*"), preset="cifar-train",
                                   batch_size=8)))
    t = torch.from_numpy(x)
    assert t.data_ptr() == x.ctypes.data
    d = torch.from_dlpack(x)
    assert d.data_ptr() == x.ctypes.data
    assert torch.from_dlpack(y).data_ptr() == y.ctypes.data
    x[0, 0, 0, 0] = 12345.0          # one memory: a write shows through both tensors
    assert t[0, 0, 0, 0].item() == 12345.0 and d[0, 0, 0, 0].item() == 12345.0


def test_a_small_cnn_learns_on_the_cifar_sample(data):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    train = sluice.Loader(os.path.join(data["cifar"], "train-*"), preset="cifar-train",
                          batch_size=50, epochs=8, threads=1, seed=1)
    losses = []
    for images, labels in train:
        loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(images)),
                                                 torch.from_numpy(labels))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    correct = total = 0
    with torch.no_grad():
        for images, labels in sluice.Loader(os.path.join(data["cifar"], "test-*"),
                                            preset="cifar-eval", batch_size=100, epochs=1):
            pred = net(torch.from_numpy(images)).argmax(1).numpy()
            correct += int((pred == labels).sum())
            total += len(labels)
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    print(f"loss {first:.3f} -> {last:.3f}; test accuracy {correct / total:.3f} on {total}")
    assert last < first * 0.7, (first, last)
    assert correct / total > 0.3, "chance is 0.1"
