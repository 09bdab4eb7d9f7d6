"""A quiet console for the entry scripts (demo.py, benchmark.py): library logs below WARNING off.

absl's ``--verbosity`` (``-v``) stays the switch: left at its default, absl logging (which
Orbax, Grain and this package log through) and the Python loggers of the libraries print
warnings and errors only; ``--verbosity 0`` (INFO) or higher brings every line back. XLA's and
TensorFlow's C++ logs are held at WARNING through ``TF_CPP_MIN_LOG_LEVEL`` unless already set.
"""

from __future__ import annotations

import logging as py_logging
import os

from absl import flags, logging

# Python loggers that print INFO lines by default (Orbax's checkpoint manager logs through
# absl, the others through the standard logging module).
NOISY_LOGGERS = ("absl", "orbax", "jax", "jax._src", "grain", "tensorflow", "etils", "PIL")


def quiet_library_logs() -> None:
    """Call in ``main`` (after flag parsing): quiets libraries unless ``--verbosity`` was set."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # C++ (XLA, TF): warnings and errors
    if "verbosity" in flags.FLAGS and flags.FLAGS["verbosity"].present:
        return
    logging.set_verbosity(logging.WARNING)
    for name in NOISY_LOGGERS:
        py_logging.getLogger(name).setLevel(py_logging.WARNING)
