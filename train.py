"""Trains SIAM: ``python train.py --config configs/w32_frame.py --workdir DIR``.

Overrides: ``--config.batch_size=64 --config.optimizer.learning_rate=3e-4`` (the config is locked,
so a misspelled key fails). Restarting with the same workdir resumes from its latest checkpoint.
Multi-host: launched by SLURM (``srun``), Open MPI (``mpirun``) or on a cloud TPU pod slice, the
processes find each other on their own; elsewhere set ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` on each host (``siam_jax.training.distributed``).
One workdir takes one run at a time (``WORKDIR/train.lock``). Before anything compiles,
``siam_jax.training.preflight`` checks every file the config needs and exits non-zero listing
each missing one. The trainer itself is
``siam_jax.training.loop.train_and_evaluate`` (docs/training.md).
"""

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Training config file (a get_config() module).", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from siam_jax.common import logging_setup

    logging_setup.quiet_library_logs()  # library INFO off unless --verbosity / --logtostderr
    from siam_jax.training import preflight

    try:  # every missing file at once, before anything compiles or the workdir is written
        preflight.check(_CONFIG.value)
    except preflight.PreflightError as err:
        raise SystemExit(f"error: {err}") from None

    from siam_jax.training import loop

    loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
