"""The entry scripts' quiet console: library INFO lines off by default, absl's switches bring
them back (a child process per case: absl flags are process-global)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import logging as py_logging
from absl import app, logging
from siam_jax.common import logging_setup

def main(argv):
    logging_setup.quiet_library_logs()
    logging.info("absl-info-line")  # Orbax's CheckpointManager logs like this
    py_logging.getLogger("orbax.checkpoint").info("orbax-info-line")
    logging.warning("absl-warning-line")

app.run(main)
"""


@pytest.mark.parametrize(
    "args, shown",
    [
        ([], False),
        (["--verbosity=0"], True),
        (["-v", "1"], True),
        (["--logtostderr"], True),
        (["--nologtostderr"], False),
    ],
)
def test_info_lines_only_when_asked(args, shown):
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "absl-warning-line" in out  # warnings and errors always show
    assert ("absl-info-line" in out) == shown, out
    assert ("orbax-info-line" in out) == shown, out


# Each entry script, its first library call replaced by one that logs like Orbax and stops: the
# INFO lines must already be off when main reaches the library.
ENTRY = """
import importlib, importlib.util, logging as py_logging, sys
from absl import app, logging

script, owner, attr, *args = sys.argv[1:]
spec = importlib.util.spec_from_file_location("entry_script", script)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)

def library_work(*a, **k):
    logging.info("absl-info-line")
    py_logging.getLogger("orbax.checkpoint").info("orbax-info-line")
    logging.warning("absl-warning-line")
    raise SystemExit(0)

setattr(mod if owner == "script" else importlib.import_module(owner), attr, library_work)
sys.argv = [script, *args]
app.run(mod.main)
"""


def _entries(tmp):
    cfg = ["--config", "configs/tiny.py"]
    return {
        "train.py": ("siam_jax.training.preflight", "check", [*cfg, "--workdir", tmp]),
        "eval.py": (
            "siam_jax.evaluation.datasets",
            "dataset_spec",
            [*cfg, "--dataset", "siam_synthetic", "--workdir", tmp],
        ),
        "demo.py": (
            "siam_jax.inference.demo",
            "run_demo",
            [*cfg, "--checkpoint", tmp, "--input", "clip.mp4", "--output", tmp],
        ),
        "benchmark.py": ("script", "_suite", []),
    }


def test_every_entry_script_is_quiet_by_default(tmp_path):
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root, JAX_PLATFORMS="cpu")
    runs = {}
    for script, (owner, attr, args) in _entries(str(tmp_path)).items():
        for extra in ([], ["--verbosity=0"]):
            cmd = [sys.executable, "-c", ENTRY, script, owner, attr, *args, *extra]
            runs[script, bool(extra)] = subprocess.Popen(
                cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
    for (script, verbose), proc in runs.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{script}: {out[-3000:]}"
        assert "absl-warning-line" in out, f"{script}: {out[-3000:]}"
        assert ("absl-info-line" in out) == verbose, f"{script} verbose={verbose}: {out[-3000:]}"
        assert ("orbax-info-line" in out) == verbose, f"{script} verbose={verbose}: {out[-3000:]}"
