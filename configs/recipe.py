"""The poster's training recipe, shared by the four poster configs (not run on its own).

``apply(config, width)`` turns the embedded defaults of ``configs/default.py`` (procedural body,
synthetic renders, HRNet from scratch, rest-pose mean parameters) into the real recipe:

* every file lives under one data root, ``config.data_root`` (default: ``$SIAM_DATA_ROOT``, else
  ``data``); the paths below are references to it, so ``--config.data_root=/datasets/siam``
  moves all of them at once (data/README.md shows the layout);
* the SMPL neutral model, SPIN's ``smpl_mean_params.npz`` and the H36M joint regressor of the
  3DPW protocol (all from SPIN's data release / the SMPL site; not redistributable);
* an HRNet backbone pretrained on 2D pose: HigherHRNet COCO (``pose_higher_hrnet_w32_512.pth``,
  ``pose_higher_hrnet_w48_640.pth``), as the ROMP author advises (TRAINING_DATA.md, "Backbone
  init"); timm's ImageNet HRNet weights load too (``--config.model.backbone.pretrained=FILE``);
* the ROMP/BEV-style probability-weighted mixture ``MIXTURE`` (weights: docs/training.md,
  "The poster recipe");
* validation on 3DPW (``pw3d:full``, validation split) during training; the Table 1 numbers come
  from ``eval.py --dataset pw3d`` on the test split (ROMP/VIBE protocol);
* the schedule ``SCHEDULE`` (512 px, AdamW, warmup + cosine).

``python train.py`` checks every one of these files before compiling anything
(``siam_jax.training.preflight``) and lists what is missing with the command that prepares it.
"""

from __future__ import annotations

import os

import ml_collections

DATA_ROOT_ENV = "SIAM_DATA_ROOT"

# The devices the recipe's batch is laid out for (per-device batch = batch_size / this /
# optimizer.accumulate_steps); benchmark.py --train_memory compiles the step at that batch.
RECIPE_DEVICES = 8

# The training mixture: (dataset spec name[:config], split, weight, where the weight comes from).
# BEV's v6 weights for the sets BEV trains on; the mass of BEV's sets without a builder here (lsp
# .06, relative_human .16, posetrack .10 = .32) goes to the ROMP v1 sets that BEV dropped
# (mpi_inf_3dhp, mpii, crowdpose; ROMP .16/.10/.14), rounded, each <= .2 as ROMP's README
# advises. Pseudo-SMPL of the 2D sets: NeuralAnnot, as SAT-HMR (TRAINING_DATA.md section 1).
MIXTURE = (
    ("agora:1280x720", "train", 0.14, "BEV .14"),
    ("pw3d:full", "train", 0.14, "BEV .14"),
    ("h36m", "train", 0.14, "BEV .14 (ROMP .20)"),
    ("muco:augmented", "train", 0.14, "BEV .14 (ROMP .14)"),
    ("coco_keypoints:neuralannot", "train", 0.12, "BEV .12 (ROMP .20)"),
    ("mpi_inf_3dhp", "train", 0.12, "ROMP .16, rescaled"),
    ("crowdpose:neuralannot", "train", 0.12, "ROMP .14, rescaled"),
    ("mpii:neuralannot", "train", 0.08, "ROMP .10, rescaled"),
)

# HigherHRNet COCO bottom-up checkpoints (HigherHRNet-Human-Pose-Estimation README).
PRETRAINED = {32: "pose_higher_hrnet_w32_512.pth", 48: "pose_higher_hrnet_w48_640.pth"}

# Schedule. ROMP: batch 32, Adam 5e-5, 120 virtual epochs of <= 10,000 steps (38.4M samples;
# TRAINING_DATA.md section 1). Here batch 64 frames, lr 1e-4 (5e-5 scaled linearly with the batch),
# 600k steps = the same 38.4M samples. Video: 8 clips of 8 frames, the same 64 images per step.
SCHEDULE = {
    "frame": {"batch_size": 64, "eval_batch_size": 64},
    "video": {"batch_size": 8, "eval_batch_size": 8},
    "total_steps": 600_000,
    "learning_rate": 1e-4,
    "warmup_steps": 2000,
    "checkpoint_every_steps": 5000,
    "eval_every_steps": 10_000,
    "num_eval_examples": 512,  # clips of the 3DPW validation split per validation pass
}


def mixture_entries() -> list[tuple[str, float]]:
    """``MIXTURE`` as ``config.data.train`` holds it: ``(name[:config]/split, weight)`` per
    dataset, the one mixture representation the pipeline, the preflight check and the
    checkpoint metadata read (``siam_jax.data.mixture.parse_mixture``; docs/choices.md)."""
    return [(f"{n}/{s}", w) for n, s, w, _ in MIXTURE]


def apply(config: ml_collections.ConfigDict, width: int) -> ml_collections.ConfigDict:
    """The recipe on top of ``config`` (a ``default.poster_config``); returns it."""
    config.data_root = os.environ.get(DATA_ROOT_ENV, "data")
    root = config.get_ref("data_root")
    bm = config.model.body_model
    bm.path = root + "/body_models/smpl/SMPL_NEUTRAL.pkl"
    bm.h36m_regressor_path = root + "/body_models/J_regressor_h36m.npy"
    config.model.regressor.mean_params_path = root + "/body_models/smpl_mean_params.npz"
    config.model.backbone.pretrained = root + f"/pretrained/{PRETRAINED[width]}"
    # HigherHRNet's last module fuses into 1/4 only: its 1/8-1/32 fuse rows start from init
    # (65 of HRNet-W32's 1525 tensors; docs/choices.md). A timm file fills them all anyway.
    config.model.backbone.pretrained_allow_single_scale = True

    d = config.data
    d.data_dir = root + "/tensorflow_datasets"
    d.manual_dir = root + "/manual"
    d.real.body_model_dir = root + "/body_models/smpl"
    d.train = mixture_entries()
    d.eval_dataset = "pw3d:full"
    d.eval_split = "validation"
    d.num_eval_examples = SCHEDULE["num_eval_examples"]

    setting = "frame" if int(config.model.clip_len) == 1 else "video"
    config.batch_size = SCHEDULE[setting]["batch_size"]
    config.eval.batch_size = SCHEDULE[setting]["eval_batch_size"]
    config.total_steps = SCHEDULE["total_steps"]
    config.checkpoint_every_steps = SCHEDULE["checkpoint_every_steps"]
    config.eval_every_steps = SCHEDULE["eval_every_steps"]
    config.optimizer.learning_rate = SCHEDULE["learning_rate"]
    config.optimizer.warmup_steps = SCHEDULE["warmup_steps"]
    return config
