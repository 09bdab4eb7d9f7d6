"""demo.py / benchmark.py's quiet console: INFO off unless --verbosity is given."""

import logging as py_logging

from absl import flags, logging

from siam_jax.inference.console import NOISY_LOGGERS, quiet_library_logs


def test_info_is_off_by_default_and_verbosity_brings_it_back(monkeypatch):
    fl = flags.FLAGS
    if not fl.is_parsed():
        fl(["prog"])
    before = logging.get_verbosity()
    levels = {n: py_logging.getLogger(n).level for n in NOISY_LOGGERS}
    try:
        logging.set_verbosity(logging.INFO)
        monkeypatch.setattr(fl["verbosity"], "present", 0)
        quiet_library_logs()
        assert logging.get_verbosity() == logging.WARNING
        assert py_logging.getLogger("orbax").getEffectiveLevel() == py_logging.WARNING
        assert not py_logging.getLogger("absl").isEnabledFor(py_logging.INFO)
        # --verbosity 0 given on the command line: left as the user asked.
        logging.set_verbosity(logging.INFO)
        monkeypatch.setattr(fl["verbosity"], "present", 1)
        quiet_library_logs()
        assert logging.get_verbosity() == logging.INFO
    finally:
        logging.set_verbosity(before)
        for n, level in levels.items():
            py_logging.getLogger(n).setLevel(level)
