"""A quiet console for the entry scripts: library logs below WARNING off by default.

What a user sees is the progress bar, the summary and errors. absl's switches bring every line
back: ``--verbosity`` / ``-v`` (0 = INFO, higher = more), ``--logtostderr`` or
``--alsologtostderr``. Left at their defaults, absl logging (which Orbax, Grain and this package
log through) and the Python loggers of the libraries print warnings and errors only, and the C++
logs of XLA and TensorFlow are held at WARNING through ``TF_CPP_MIN_LOG_LEVEL`` unless it is set.
(absl's own default is INFO: every Orbax save printed some 30 INFO lines.)
"""

from __future__ import annotations

import logging as py_logging
import os

from absl import flags, logging

# Python loggers that print INFO lines by default (Orbax's checkpoint manager logs through
# absl, the others through the standard logging module).
NOISY_LOGGERS = ("absl", "orbax", "jax", "jax._src", "grain", "tensorflow", "etils", "PIL")
# absl flags that, given on the command line, ask for the library logs.
VERBOSE_FLAGS = ("verbosity", "logtostderr", "alsologtostderr")


def verbose_requested(flag_values: flags.FlagValues = flags.FLAGS) -> bool:
    """True when the command line set one of ``VERBOSE_FLAGS`` (to any value but a false one)."""
    for name in VERBOSE_FLAGS:
        if name in flag_values and flag_values[name].present:
            value = flag_values[name].value
            if name == "verbosity" or bool(value):
                return True
    return False


def quiet_library_logs(flag_values: flags.FlagValues = flags.FLAGS) -> bool:
    """Call first in ``main`` (after flag parsing). Returns True when it quieted the logs (no
    verbose flag given)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # C++ (XLA, TF): warnings and errors
    if verbose_requested(flag_values):
        return False
    logging.set_verbosity(logging.WARNING)
    for name in NOISY_LOGGERS:
        py_logging.getLogger(name).setLevel(py_logging.WARNING)
    return True
