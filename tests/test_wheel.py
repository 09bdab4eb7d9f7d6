"""The built wheel, unpacked outside the source tree, imports every module of ``siam_jax``.

An installed wheel has no ``configs`` package and no entry scripts beside it, so any library
import of them (or of a file that is not packaged) fails here. The subprocess starts in an
empty folder with only the unpacked wheel on ``sys.path`` ahead of the environment.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

_IMPORT_ALL = """
import importlib, pkgutil, sys
import siam_jax
assert siam_jax.__file__.startswith(sys.argv[1]), siam_jax.__file__
names = [m.name for m in pkgutil.walk_packages(siam_jax.__path__, "siam_jax.")]
for name in names:
    importlib.import_module(name)
for banned in ("configs", "train", "eval", "demo", "benchmark"):
    assert banned not in sys.modules, f"importing siam_jax pulled in {banned!r}"
print(len(names))
"""


@pytest.mark.slow
def test_wheel_imports_every_module_outside_the_source_tree(tmp_path):
    # Built from a copy, so setuptools' build/ folder never lands in the checkout.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "siam_jax", src / "siam_jax", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(src)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = wheels.glob("siam_jax-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    assert not (site / "configs").exists()
    run = tmp_path / "run"
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    env["CUDA_VISIBLE_DEVICES"] = ""
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, str(site)],
        capture_output=True, text=True, cwd=run, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    assert int(out.stdout.strip().splitlines()[-1]) > 50
