"""Checks made before a number is computed: the body model a benchmark needs, the H36M regressor,
3DPW-OCC against a checkpoint trained on 3DPW train, and what the report says of the intrinsics.

Each refusal names the missing file or the flag that overrides it; an override is printed and
recorded in the report (docs/evaluation.md, "What a report states").
"""

from __future__ import annotations

from collections.abc import Sequence

from siam_jax.body.io import SMPL_SOURCE

REAL_BENCHMARKS = ("pw3d", "pw3d_occ", "agora", "cmu_panoptic")
NEEDS_H36M = ("pw3d", "pw3d_occ", "cmu_panoptic")

# How the evaluated frames get their camera (each dataset's builder; docs/data.md). The network is
# fed these true intrinsics, and AGORA's translations (hence its 2D matching) depend on them.
INTRINSICS = {
    "pw3d": "3DPW cam_intrinsics of each sequence (sequenceFiles)",
    "pw3d_occ": "3DPW cam_intrinsics of each sequence (sequenceFiles)",
    "agora": "AGORA's camera per image: fx = f_mm/36*W, fy = f_mm/20.25*H, cx = W/2, cy = H/2, "
    "f_mm from the image name (28 default, 18 cam00-03, 50 hdri; projection.py)",
    "cmu_panoptic": "K fitted per sequence to CRMH's kpts3d/kpts2d (builder; the annotations "
    "carry no K)",
    "siam_synthetic": "the renderer's K of each frame",
}


def split_note(dataset: str, split: str) -> str | None:
    """A line saying which official splits the evaluated frames come from (3DPW-OCC)."""
    if dataset != "pw3d_occ":
        return None
    return (
        "3DPW-OCC: the published occlusion subset (ROMP's PW3D_OCsubset, 17 sequence names) "
        f"drawn from the official 3DPW splits {split.split('+')}"
    )


def check_body_model(body_config, dataset: str, allow_procedural: bool) -> str | None:
    """Refuses the procedural body on a real benchmark (its GT meshes and H36M joints would not
    be SMPL's) unless ``allow_procedural``; returns the warning to print when allowed."""
    if dataset not in REAL_BENCHMARKS or body_config.path:
        return None
    if not allow_procedural:
        raise FileNotFoundError(
            f"--dataset {dataset} needs the real SMPL model: config.model.body_model.path is "
            f"empty, so the procedural body would stand in for SMPL_NEUTRAL.pkl / "
            f"SMPL_NEUTRAL.npz ({SMPL_SOURCE}). Set --config.model.body_model.path, or pass "
            "--allow_procedural_body for a smoke test (its numbers are not SMPL's)"
        )
    return (
        f"WARNING: procedural body model on {dataset} (--allow_procedural_body): a smoke test, "
        "not comparable to published numbers"
    )


def check_h36m_regressor(body_model, body_config, dataset: str) -> None:
    """3DPW and CMU-Panoptic regress H36M joints: fail up front without the regressor."""
    if dataset in NEEDS_H36M and body_model.h36m_regressor is None:
        raise FileNotFoundError(
            f"--dataset {dataset} regresses H36M-17 joints but the SMPL model "
            f"{body_config.path!r} has none: set config.model.body_model.h36m_regressor_path to "
            "SPIN's J_regressor_h36m.npy (17 x 6890)"
        )


def _trains_on_pw3d_train(train_datasets: Sequence[str]) -> list[str]:
    hits = []
    for spec in train_datasets:
        name, _, split = str(spec).partition("/")
        if name.split(":")[0] == "pw3d" and (not split or "train" in split):
            hits.append(str(spec))
    return hits


def check_occ_train(
    dataset: str, split: str, train_datasets: Sequence[str] | None, allow: bool
) -> str | None:
    """3DPW-OCC draws sequences from 3DPW's train split too: refuse to score a checkpoint whose
    training mixture holds 3DPW train on it, unless ``allow`` (returns the printed warning)."""
    if dataset != "pw3d_occ" or "train" not in split.split("+"):
        return None
    hits = _trains_on_pw3d_train(train_datasets or ())
    if not hits:
        return None
    if not allow:
        raise ValueError(
            f"3DPW-OCC split {split!r} includes 3DPW train, and this checkpoint was trained on "
            f"{hits} (checkpoint meta 'train_datasets'): its numbers would include training "
            "frames. Use --split test (or validation+test), or --allow_occ_train_overlap"
        )
    return f"WARNING: 3DPW-OCC {split} scored with a checkpoint trained on {hits}"


__all__ = [
    "INTRINSICS",
    "NEEDS_H36M",
    "REAL_BENCHMARKS",
    "check_body_model",
    "check_h36m_regressor",
    "check_occ_train",
    "split_note",
]
