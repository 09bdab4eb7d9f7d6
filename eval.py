"""Evaluates a trained SIAM, or the prediction files of any method.

    python eval.py --config CONFIG --workdir DIR --dataset NAME          # a checkpoint
    python eval.py --config CONFIG --dataset NAME --predictions PATH     # files of any method

NAME: pw3d | pw3d_occ | agora | cmu_panoptic | siam_synthetic. ``--predictions``: AGORA, a folder
of official per-person pickles (``<image>_personId_<k>.pkl``); 3DPW / CMU-Panoptic, a folder of
per-frame ``.npz`` files (docs/prediction_format.md). The config names the SMPL model and the data.
Options: ``--split``, ``--checkpoint STEP`` (default: the latest), ``--protocol romp_vibe|spin``
(3DPW), ``--agora_gt_dir`` (AGORA's SMPL/ folder of GT dataframes), ``--body_verts_index``
(AGORA's utils/body_verts_smpl.npy), ``--kid_template_path`` (SMIL kid template),
``--export_agora DIR``, ``--max_examples N``, ``--allow_procedural_body`` (smoke tests only),
``--allow_occ_train_overlap``. Writes ``<workdir or predictions>/eval/<dataset>_<split>.json``;
the batches (``config.eval.batch_size``, global; 0 = the training batch) are split over every
device (``siam_jax.evaluation.sharding``). The logic is ``siam_jax.evaluation.runner``
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
_AGORA_GT = flags.DEFINE_string("agora_gt_dir", "", "AGORA GT dataframes (SMPL/<split>_*.pkl).")
_KID = flags.DEFINE_string("kid_template_path", "", "SMIL kid template .npy (AGORA kids).")
_PREDICTIONS = flags.DEFINE_string(
    "predictions", None, "Score these prediction files instead of a checkpoint."
)
_ALLOW_PROCEDURAL = flags.DEFINE_bool(
    "allow_procedural_body", False, "Smoke test: allow the procedural body on a real benchmark."
)
_ALLOW_OCC = flags.DEFINE_bool(
    "allow_occ_train_overlap", False, "Score 3DPW-OCC train with a model trained on 3DPW train."
)
flags.mark_flags_as_required(["config", "dataset"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not _WORKDIR.value and not _PREDICTIONS.value:
        raise app.UsageError("give --workdir (a checkpoint) or --predictions (prediction files)")
    from siam_jax.common import logging_setup

    logging_setup.quiet_library_logs()  # library INFO off unless --verbosity / --logtostderr
    from siam_jax.evaluation import datasets, runner, sharding
    from siam_jax.training import preflight

    # The body model, the regressor and the split, checked before anything compiles.
    try:
        preflight.check_evaluation(
            _CONFIG.value,
            *datasets.dataset_spec(_CONFIG.value, _DATASET.value, _SPLIT.value),
            # AGORA prediction files are scored on the official GT dataframes, not on TFDS data.
            need_dataset=not (_PREDICTIONS.value and _DATASET.value == "agora"),
        )
    except preflight.PreflightError as err:
        raise SystemExit(f"error: {err}") from None
    opts = runner.EvalOptions(
        split=_SPLIT.value,
        checkpoint=_CHECKPOINT.value,
        protocol=_PROTOCOL.value,
        export_agora=_EXPORT.value,
        max_examples=_MAX.value,
        body_verts_index=_VERTS.value,
        agora_gt_dir=_AGORA_GT.value,
        kid_template_path=_KID.value,
        predictions=_PREDICTIONS.value,
        allow_procedural_body=_ALLOW_PROCEDURAL.value,
        allow_occ_train_overlap=_ALLOW_OCC.value,
    )
    runner.evaluate(
        sharding.with_eval_batch(_CONFIG.value),  # batch_size = config.eval.batch_size
        _WORKDIR.value,
        _DATASET.value,
        opts,
        make_forward_fn=sharding.make_sharded_forward,
    )


if __name__ == "__main__":
    app.run(main)
