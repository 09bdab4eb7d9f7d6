"""Evaluates a trained SIAM: ``python eval.py --config CONFIG --workdir DIR --dataset NAME``.

NAME: pw3d | pw3d_occ | agora | cmu_panoptic | siam_synthetic. Options: ``--split``,
``--checkpoint STEP`` (default: the latest), ``--protocol romp_vibe|spin`` (3DPW),
``--export_agora DIR`` (official per-person prediction pickles), ``--max_examples N``,
``--body_verts_index FILE`` (AGORA's utils/body_verts_smpl.npy). Writes
``DIR/eval/<dataset>_<split>.json``; the logic is ``siam_jax.evaluation.runner``
(docs/evaluation.md).
"""

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file of the trained model (a get_config() module).", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir holding checkpoints/.")
_DATASET = flags.DEFINE_enum(
    "dataset", None, ["pw3d", "pw3d_occ", "agora", "cmu_panoptic", "siam_synthetic"], "Benchmark."
)
_SPLIT = flags.DEFINE_string("split", None, "TFDS split (default: the benchmark's).")
_CHECKPOINT = flags.DEFINE_integer("checkpoint", None, "Checkpoint step (default: latest).")
_PROTOCOL = flags.DEFINE_enum("protocol", "romp_vibe", ["romp_vibe", "spin"], "3DPW protocol.")
_EXPORT = flags.DEFINE_string("export_agora", None, "Write AGORA prediction pickles here.")
_MAX = flags.DEFINE_integer("max_examples", None, "Evaluate only the first N clips.")
_VERTS = flags.DEFINE_string("body_verts_index", "", "AGORA body_verts_smpl.npy (4010 indices).")
flags.mark_flags_as_required(["config", "workdir", "dataset"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from siam_jax.common import logging_setup

    logging_setup.quiet_library_logs()  # library INFO off unless --verbosity / --logtostderr
    from siam_jax.evaluation import runner

    runner.evaluate(
        _CONFIG.value,
        _WORKDIR.value,
        _DATASET.value,
        split=_SPLIT.value,
        checkpoint=_CHECKPOINT.value,
        protocol=_PROTOCOL.value,
        export_agora=_EXPORT.value,
        max_examples=_MAX.value,
        body_verts_index=_VERTS.value,
    )


if __name__ == "__main__":
    app.run(main)
