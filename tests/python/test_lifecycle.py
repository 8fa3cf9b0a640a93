"""Leaving a loop early in every way a training script does: none hangs, crashes or leaks threads.
Each scenario runs in its own interpreter with a timeout, so a hang fails the test."""

import os
import subprocess
import sys
import textwrap

import pytest

SCENARIOS = {
    "break": """
        for i, (x, y) in enumerate(sluice.Loader(P, preset="cifar-train", batch_size=16)):
            if i == 3: break
    """,
    "del_mid_epoch": """
        l = sluice.Loader(P, preset="cifar-train", batch_size=16, epochs=None, prefetch=4)
        kept = [next(l) for _ in range(5)]
        del l
        gc.collect()
        assert all(x.sum() == x.sum() for x, _ in kept)   # arrays outlive their loader
    """,
    "keyboard_interrupt": """
        try:
            for i, (x, y) in enumerate(sluice.Loader(P, preset="cifar-train", batch_size=16, epochs=None)):
                if i == 2: os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            print("interrupted")
        else:
            raise SystemExit("no KeyboardInterrupt")
    """,
    "two_loaders": """
        a = sluice.Loader(P, preset="cifar-train", batch_size=16, epochs=1, threads=1)
        b = sluice.Loader(P, preset="cifar-eval", batch_size=16, epochs=1, threads=1)
        na = nb = 0
        for (xa, _), (xb, _) in zip(a, b):
            na += 1; nb += 1
        assert na == nb > 0
    """,
    "exit_with_loader_running": """
        l = sluice.Loader(P, preset="cifar-train", batch_size=16, epochs=None)
        x, y = next(l)
        sys.exit(0)
    """,
    "torch_multiprocessing": """
        import torch.multiprocessing as mp
        def work(rank, pattern, q):
            import sluice
            n = sum(1 for _ in sluice.Loader(pattern, preset="cifar-train", batch_size=16, epochs=1,
                                             threads=1, num_workers=2, worker_index=rank))
            q.put((rank, n))
        if __name__ == "__main__":
            q = mp.get_context("spawn").SimpleQueue()
            mp.start_processes(work, args=(P, q), nprocs=2, start_method="spawn")
            got = dict(q.get() for _ in range(2))
            assert got[0] == got[1] > 0, got
            print("ranks", got)
    """,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_no_hang_no_crash(data, tmp_path, name):
    pattern = os.path.join(data["cifar"], "train-*")
    script = tmp_path / f"{name}.py"
    script.write_text("import gc, os, signal, sys\nimport sluice\n"
                      f"P = {pattern!r}\n" + textwrap.dedent(SCENARIOS[name]))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       env=os.environ)
    assert r.returncode == 0, f"{name}: exit {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    if name == "keyboard_interrupt":
        assert "interrupted" in r.stdout
