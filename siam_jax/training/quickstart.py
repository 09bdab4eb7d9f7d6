"""The quickstart's extras around the normal trainer (``config.quickstart = True``):

1. ``ensure_synthetic_data``: builds ``siam_synthetic`` into ``config.data.data_dir`` when it is not
   there yet (sizes from ``config.data.synthetic``).
2. ``report``: after training, the mean-pose baseline on the same validation persons, both
   numbers printed and written to ``WORKDIR/quickstart.json`` (``val_mpjpe_mm``,
   ``baseline_mpjpe_mm``).
3. Detection (``detection_report``): the trained model run as at inference (its own top-k centre
   peaks) on every validation frame, the person-free ones included; the centre-score threshold
   of best F1 (AGORA's 2D matcher, ``siam_jax.evaluation.detection``) is stored with the final
   checkpoint (``META_CENTER_THRESHOLD``, ``store_threshold``), which the demo and evaluation
   then apply; ``quickstart.json`` gains ``val_precision``, ``val_recall``, ``val_f1``,
   ``false_detections_per_empty_frame``, ``threshold`` and ``false_detections_per_noise_frame``
   (the same model at that threshold on 32 frames of uniform pixel noise, ``noise_images``).

The baseline is the regressor's starting point: the mean SMPL parameters (pose, betas) of
``config.model.regressor.mean_params_path`` (built-in rest posture when empty), placed at each GT
person's translation. Both errors are pelvis-aligned MPJPE over the 24 SMPL joints, so the
translation cancels and the comparison measures what training learnt about pose and shape.
``constant_pose_mpjpe_mm`` is a diagnostic beside them: the per-joint mean of the validation GT
given to everyone, i.e. about the best an image-blind predictor can do. On this data it already
beats the mean-pose baseline by about 17%, because the baseline faces the camera while yaw is
uniform; only a model below it has learnt from the pixels.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np

from siam_jax.evaluation import detection
from siam_jax.training import losses as losses_lib

REQUIRED_IMPROVEMENT = 0.25  # the quickstart must beat the baseline by at least 25%
# Pure-noise frames the trained model is also run on (issue 19: < 0.1 false detections each).
NOISE_FRAMES = 32
NOISE_SEED = 19


def _synthetic_names(config) -> list[str]:
    from siam_jax.data import mixture

    specs = [e[0] for e in config.data.train] + [config.data.eval_dataset]
    names = []
    for spec in specs:
        s = mixture.DatasetSpec.parse(spec, "train")
        if s.name.split("/")[0] == "siam_synthetic" and s.name not in names:
            names.append(s.name)
    return names


_DESCRIPTION_PREFIX = "built by the quickstart from config.data.synthetic: "


def _synthetic_params(config) -> dict:
    s = config.data.synthetic
    return dict(
        num_train=int(s.num_train),
        num_validation=int(s.num_validation),
        image_size=int(s.image_size),
        max_people=int(s.max_people),
        clip_len=int(s.clip_len),
        seed=int(s.seed),
        depth_range=[float(x) for x in s.depth_range],
        empty_fraction=float(s.empty_fraction),
        num_test=int(s.num_validation if s.get("num_test") is None else s.num_test),
    )


def _check_built_params(builder, params: dict) -> None:
    """A dataset built earlier under this name must have the parameters asked for now: else the
    run would silently train on other data. The parameters live in the config description."""
    path = os.path.join(builder.data_dir, "dataset_info.json")
    with open(path) as f:
        description = json.load(f).get("configDescription", "")
    built = (
        json.loads(description[len(_DESCRIPTION_PREFIX) :])
        if description.startswith(_DESCRIPTION_PREFIX)
        else None
    )
    if built != params:
        diff = (
            {k: (built.get(k), v) for k, v in params.items() if built.get(k) != v}
            if built is not None
            else "unrecorded"
        )
        raise ValueError(
            f"{builder.data_dir} holds siam_synthetic/{builder.builder_config.name} built with "
            f"other parameters than config.data.synthetic (built, asked): {diff}. Delete that "
            "folder to rebuild it, or give config.data.train/eval_dataset another config name."
        )


def build_synthetic(config, name: str) -> bool:
    """Builds ``name`` (``siam_synthetic[/config]``) into ``config.data.data_dir`` unless it is
    there; True when it built. A registered builder config (``default``, ``tiny``) keeps its own
    sizes; any other config name takes them from ``config.data.synthetic``, and a dataset already
    built under that name must have been built from the same values (else a ValueError)."""
    from siam_jax.data.builders.siam_synthetic.builder import SiamSynthetic, SiamSyntheticConfig

    cfg_name = name.partition("/")[2] or "default"
    registered = {c.name: c for c in SiamSynthetic.BUILDER_CONFIGS}
    params = None
    if cfg_name in registered:
        builder_config = registered[cfg_name]
    else:
        params = _synthetic_params(config)
        builder_config = SiamSyntheticConfig(
            name=cfg_name,
            description=_DESCRIPTION_PREFIX + json.dumps(params, sort_keys=True),
            **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()},
        )
    builder = SiamSynthetic(
        config=builder_config,
        data_dir=config.data.data_dir,
        file_format="array_record",
        # How many processes render it: the records are the same whatever the count.
        num_processes=int(config.data.synthetic.get("build_processes", 1)),
    )
    if builder.is_prepared():
        if params is not None:
            _check_built_params(builder, params)
        return False
    builder.download_and_prepare()
    return True


def ensure_synthetic_data(config) -> None:
    """Builds the synthetic dataset(s) the config reads when they are absent (process 0 builds,
    the others wait at a barrier)."""
    for name in _synthetic_names(config):
        if jax.process_index() == 0:
            t0 = time.perf_counter()
            if build_synthetic(config, name):
                print(
                    f"built {name} into {config.data.data_dir} in {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("siam_synthetic built")


def mean_pose_joints(config, body_model) -> np.ndarray:
    """Pelvis-aligned 24 joints [24 3] of the regressor's mean parameters."""
    from siam_jax.body import rotations
    from siam_jax.models.mean_params import NUM_JOINTS, get_mean_params

    mean = get_mean_params(config.model.regressor.mean_params_path)
    rot = rotations.rot6d_to_matrix(jnp.asarray(mean["pose"]).reshape(NUM_JOINTS, 6))
    out = body_model(
        betas=jnp.asarray(mean["shape"]),
        body_pose=rot[1:],
        global_orient=rot[:1],
        transl=None,
    )
    j = np.asarray(out.joints[..., :NUM_JOINTS, :], np.float64)
    return j - j[losses_lib.PELVIS]


def evaluable_gt_joints(batches) -> np.ndarray:
    """Pelvis-aligned GT joints [n 24 3] (float64) of every evaluable person in ``batches``."""
    out = []
    for batch in batches:
        mask = np.asarray(batch["person_valid"], bool) & np.asarray(batch["has_3d"], bool)
        mask &= np.asarray(batch["batch_valid"], bool)[:, None, None]
        gt = np.asarray(batch["joints_3d"], np.float64)[mask]  # [n 24 3]
        out.append(gt - gt[:, losses_lib.PELVIS : losses_lib.PELVIS + 1])
    return np.concatenate(out) if out else np.zeros((0, 24, 3))


def _mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> float:
    return 1000.0 * float(np.linalg.norm(gt - pred, axis=-1).mean()) if len(gt) else 0.0


def mean_pose_baseline(config, body_model, batches) -> tuple[float, int]:
    """(MPJPE in mm of the mean pose vs every evaluable GT person, number of persons)."""
    gt = evaluable_gt_joints(batches)
    return _mpjpe_mm(mean_pose_joints(config, body_model)[None], gt), len(gt)


def constant_pose_mpjpe(gt: np.ndarray) -> float:
    """MPJPE (mm) of the per-joint mean of ``gt`` [n 24 3] predicted for everyone: what a
    predictor that ignores the image can reach at best (near enough; the exact optimum is the
    per-joint geometric median). A model below it has learnt something from the pixels."""
    return _mpjpe_mm(gt.mean(axis=0, keepdims=True), gt)


def detection_frames(model, batches) -> list[detection.FrameDetections]:
    """Every validation frame's candidate detections (all top-k centre peaks, whatever their
    score) and GT people, for the threshold sweep. ``model``: restored, in eval mode."""
    from siam_jax.evaluation.forward import make_forward

    model.threshold = float("-inf")  # keep every peak; the sweep applies the thresholds
    forward = make_forward(model)
    frames = []
    for batch in batches:
        out = jax.device_get(forward(jnp.asarray(batch["image"]), jnp.asarray(batch["intrinsics"])))
        for b in np.flatnonzero(np.asarray(batch["batch_valid"], bool)):
            for t in range(np.shape(batch["image"])[1]):
                peak = np.asarray(out["valid"][b, t], bool)
                gt = np.asarray(batch["person_valid"][b, t], bool)
                frames.append(
                    detection.FrameDetections(
                        scores=np.asarray(out["scores"][b, t], np.float64)[peak],
                        joints_2d=np.asarray(out["pred_keypoints_2d"][b, t], np.float64)[peak],
                        gt_joints_2d=np.asarray(batch["joints_2d"][b, t], np.float64)[gt],
                        gt_valid=detection.gt_valid(
                            np.asarray(batch["occlusion"][b, t])[gt], np.ones(int(gt.sum()), bool)
                        ),
                    )
                )
    return frames


def store_threshold(workdir: str, step: int, threshold: float) -> None:
    """Writes ``threshold`` as ``META_CENTER_THRESHOLD`` into the ``meta`` item of checkpoint
    ``step`` of ``workdir``, keeping its other keys (the training loop wrote that checkpoint
    before the threshold was known). The new item is written beside the old one by Orbax's own
    JSON handler and swapped in by renames, so a reader sees the old meta or the new one."""
    import orbax.checkpoint as ocp
    from etils import epath

    from siam_jax import checkpoints

    directory = checkpoints.checkpoint_dir(workdir)
    with checkpoints.Checkpointer(directory, async_save=False, create=False) as ckpt:
        if step not in ckpt.all_steps():
            raise FileNotFoundError(f"{directory}: no checkpoint at step {step}")
        meta = ckpt.read_meta(step)
    meta[checkpoints.META_CENTER_THRESHOLD] = float(threshold)
    where = os.path.join(directory, str(step), "meta")  # manager.META_ITEM
    new, old = where + ".new", where + ".old"
    for stale in (new, old):
        shutil.rmtree(stale, ignore_errors=True)
    os.makedirs(new)
    ocp.JsonCheckpointHandler().save(epath.Path(new), args=ocp.args.JsonSave(meta))
    if os.path.isdir(where):
        os.rename(where, old)
    os.rename(new, where)
    shutil.rmtree(old, ignore_errors=True)


def noise_images(size: int, *, num_frames: int = NOISE_FRAMES, seed: int = NOISE_SEED):
    """``[num_frames 1 size size 3]`` frames of independent uniform RGB pixels in [0, 1] (at the
    input size itself: no resampling smooths them), a fixed seed apart from the dataset's."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (num_frames, 1, size, size, 3)).astype(np.float32) / 255.0


def noise_false_detections(model, threshold: float, images: np.ndarray) -> float:
    """Mean detections per frame of ``images`` (pure noise: every detection is a false one) at
    ``threshold``, with the model's default camera. ``model``: restored, in eval mode (its
    threshold is set here)."""
    from siam_jax.evaluation.forward import make_forward

    n, t, size = images.shape[:3]
    intrinsics = model.intrinsics_or_default(None, n, t, size)
    model.threshold = float(threshold)
    out = jax.device_get(make_forward(model)(jnp.asarray(images), intrinsics))
    return float(np.asarray(out["valid"], bool).sum() / (n * t))


def detection_report(config, workdir: str, body_model, batches, step: int) -> dict:
    """Restores the trained model, sweeps the centre threshold on the validation frames (best
    F1), stores the chosen one with checkpoint ``step`` (process 0) and returns its metrics,
    with the false detections per pure-noise frame at that threshold."""
    from siam_jax import checkpoints

    model, restored = checkpoints.restore_model(config, workdir, step, body_model=body_model)
    best, _ = detection.sweep_thresholds(detection_frames(model, batches))
    noise = noise_images(int(config.model.input_size))
    best["false_detections_per_noise_frame"] = noise_false_detections(
        model, best["threshold"], noise
    )
    if jax.process_index() == 0:
        store_threshold(workdir, restored, best["threshold"])
    return best


def report(config, workdir: str, body_model, make_eval_iterator, result: dict) -> dict:
    """Prints validation MPJPE, the baselines and the detection metrics; stores the chosen
    centre threshold with the final checkpoint; writes ``WORKDIR/quickstart.json``."""
    from siam_jax.common import files

    host_body = jax.device_get(body_model)
    gt = evaluable_gt_joints(make_eval_iterator(config, jax.process_index(), jax.process_count()))
    baseline, persons = _mpjpe_mm(mean_pose_joints(config, host_body)[None], gt), len(gt)
    constant = constant_pose_mpjpe(gt)
    # Detection over the whole validation split (every process the same), at the model's
    # own top-k peaks rather than the GT cells the MPJPE above reads its tokens at.
    det = detection_report(
        config, workdir, host_body, make_eval_iterator(config, 0, 1), int(result["step"])
    )
    val = float(result["val_mpjpe_mm"])
    improvement = 1.0 - val / baseline if baseline > 0 else 0.0
    summary = {
        "val_mpjpe_mm": val,
        "val_pa_mpjpe_mm": float(result["val_pa_mpjpe_mm"]),
        "val_pve_mm": float(result["val_pve_mm"]),
        "baseline_mpjpe_mm": baseline,
        # diagnostic, not a baseline: the best constant pose, fitted to the validation GT
        "constant_pose_mpjpe_mm": constant,
        "improvement": improvement,
        "beats_baseline_by_25_percent": bool(improvement >= REQUIRED_IMPROVEMENT),
        "val_persons": persons,
        "steps": int(result["step"]),
        "wall_seconds": float(result.get("wall_seconds", 0.0)),
        # detection at the threshold of best validation F1 (stored with the checkpoint)
        "val_precision": det["precision"],
        "val_recall": det["recall"],
        "val_f1": det["f1"],
        "false_detections_per_empty_frame": det["false_detections_per_empty_frame"],
        # the same on frames of pure pixel noise (noise_false_detections)
        "false_detections_per_noise_frame": det["false_detections_per_noise_frame"],
        "threshold": det["threshold"],
    }
    if jax.process_index() == 0:
        path = os.path.join(workdir, "quickstart.json")
        files.write_json(path, summary)
        verdict = "beats" if summary["beats_baseline_by_25_percent"] else "does NOT beat"
        print(
            f"quickstart: validation MPJPE {val:.1f} mm vs mean-pose baseline {baseline:.1f} mm "
            f"({100 * improvement:.0f}% better; {verdict} the 25% bar) over {persons} persons; "
            f"an image-blind constant pose fitted to these persons would score {constant:.1f} mm.\n"
            f"detection at centre threshold {det['threshold']:.2f} (best validation F1, stored "
            f"with the checkpoint): precision {det['precision']:.3f}, recall {det['recall']:.3f}, "
            f"F1 {det['f1']:.3f}, {det['false_detections_per_empty_frame']:.2f} false detections "
            f"per person-free frame, {det['false_detections_per_noise_frame']:.2f} per frame "
            f"of pure noise; written to {path}",
            flush=True,
        )
    return summary
