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
