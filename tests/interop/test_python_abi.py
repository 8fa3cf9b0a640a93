"""The `sluice` extension built with Debian's pybind11 2.10 must refuse NumPy 2 with a clear ImportError.

pybind11 before 2.12 reads NumPy's dtype struct with NumPy 1's layout: under NumPy 2 (this venv's, which
TensorFlow needs) the Loader's structured origins array came out misread (offsets and indices garbage)
instead of failing. The interop venv is the place such a mix happens: Debian's python3 with a registry
NumPy 2. The package's own `pip install .` pins pybind11 2.13 and is checked by python.pip_install_jax.
"""
import os
import subprocess
import sys

import numpy


def test_numpy2_is_refused_by_a_pybind11_210_build():
    assert int(numpy.__version__.split(".")[0]) >= 2, "the interop venv is meant to have NumPy 2"
    env = dict(os.environ, PYTHONPATH=os.environ["SLUICE_PYTHONPATH"])
    code = "import sluice._sluice as m; print(tuple(m._pybind11_version))"
    r = subprocess.run([sys.executable, "-c", "import sluice"], capture_output=True, text=True, env=env)
    # Which pybind11 built it, asked through Debian's python3 (NumPy 1.24), where the package imports.
    built_with = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, env=env)
    assert built_with.returncode == 0, built_with.stderr
    major, minor = eval(built_with.stdout.strip())
    if (major, minor) < (2, 12):
        assert r.returncode != 0
        assert "ImportError" in r.stderr and "NumPy 2 needs pybind11 >= 2.12" in r.stderr, r.stderr
    else:  # a newer pybind11 reads NumPy 2 correctly: then the package must import
        assert r.returncode == 0, r.stderr
