"""The example schema shared by every dataset builder (version 2: per-term supervision flags).

One example is one frame. Persons are a padded sequence (``tfds.features.Sequence``) so frames with
different numbers of people share one schema. Every builder writes every field; what a dataset
does not annotate is zero-filled and flagged off. Conventions (docs/architecture.md): metres, OpenCV
camera frame, pixels with the centre of the top-left pixel at (0, 0), SMPL joint order of smplx,
axis-angle pose. docs/training_data.md describes every field and what each dataset sets.

Supervision is flagged per person and per term, each on its own (ROMP's vmask_2d / vmask_3d,
HMR2's has_body_pose / has_betas; reference/TRAINING_DATA.md section 3):

* ``has_smpl``: the SMPL parameters are the dataset's own reference fit (AGORA, 3DPW, synthetic;
  evaluation compares against them). Pseudo fits from a side-car (NeuralAnnot, EFT) are stored
  with ``has_smpl`` False and ``smpl_source`` naming where they come from.
* ``has_pose`` (``body_pose``), ``has_global_orient``, ``has_betas``, ``has_transl``: which SMPL
  parameters a loss may supervise (pseudo fits: pose and orientation, not shape or translation,
  as ROMP does with EFT; AGORA: no global orientation, as BEV).
* ``has_3d`` / ``has_2d``: the SMPL-24 ``joints_3d`` (all 24 known) / ``joints_2d`` (per joint
  ``visibility``; for 2D datasets the limb joints that coincide with SMPL joints, SPIN/ROMP).
* ``has_keypoints_3d`` / ``has_keypoints_2d``: the dataset's own joints in the named keypoint
  superset (``KEYPOINT_FIELDS``, ``siam_jax.body.keypoints``), with per-point visibility.

Per frame, ``all_persons_annotated`` says every person outside ``ignore_boxes`` is a stored person
(gates the centre-heatmap negatives); ``ignore_boxes`` are regions (COCO/CrowdPose crowds and
unlabelled persons, PoseTrack ignore regions) the centre loss treats as don't-care.
"""

from __future__ import annotations

import numpy as np

from siam_jax.body import keypoints as keypoints_lib

SCHEMA_VERSION = 2
NUM_BETAS = 10
NUM_SMPL_JOINTS = 24
NUM_H36M_JOINTS = 17
NUM_KEYPOINTS = keypoints_lib.NUM_KEYPOINTS

# Gender codes stored per person (AGORA / 3DPW genders; synthetic persons are neutral).
GENDERS = ("neutral", "male", "female")
# Where a person's SMPL parameters come from (``smpl_source``): none stored; the dataset's own
# reference fit; NeuralAnnot pseudo-GT (mks0601/NeuralAnnot_RELEASE); EFT pseudo-GT
# (facebookresearch/eft).
SMPL_SOURCES = ("none", "dataset", "neuralannot", "eft")

# Fields carried into training batches (``siam_jax.data.targets`` pads every one of them).
PERSON_FIELDS: dict[str, tuple[tuple[int, ...], str]] = {
    # name: (shape, dtype)
    "betas": ((NUM_BETAS,), "float32"),
    "global_orient": ((3,), "float32"),  # axis-angle, camera frame
    "body_pose": ((23, 3), "float32"),  # axis-angle, SMPL joints 1..23
    "transl": ((3,), "float32"),  # SMPL transl, metres, camera frame
    "joints_3d": ((NUM_SMPL_JOINTS, 3), "float32"),  # SMPL-24 (smplx order), camera frame
    "joints_2d": ((NUM_SMPL_JOINTS, 2), "float32"),  # pixels of the stored image
    "visibility": ((NUM_SMPL_JOINTS,), "float32"),  # 1 visible/annotated, 0 not
    "joints_h36m_3d": ((NUM_H36M_JOINTS, 3), "float32"),  # H36M-17, camera frame (Panoptic GT)
    "h36m_visibility": ((NUM_H36M_JOINTS,), "float32"),
    "bbox": ((4,), "float32"),  # x0, y0, x1, y1 in pixels of the stored image
    "has_smpl": ((), "bool"),  # the dataset's reference SMPL fit (module doc)
    "has_3d": ((), "bool"),  # joints_3d: all 24 SMPL joints known
    "has_2d": ((), "bool"),  # joints_2d with per-joint visibility
    "has_h36m": ((), "bool"),
    "has_pose": ((), "bool"),  # body_pose supervised
    "has_global_orient": ((), "bool"),  # global_orient supervised
    "has_betas": ((), "bool"),  # betas supervised
    "has_transl": ((), "bool"),  # transl (depth and position in the frame camera) supervised
    "has_keypoints_2d": ((), "bool"),  # keypoints_2d (superset) with per-point visibility
    "has_keypoints_3d": ((), "bool"),  # keypoints_3d (superset), camera frame, absolute
    "smpl_source": ((), "int32"),  # index into SMPL_SOURCES
    "track_id": ((), "int32"),  # identity within a sequence (PoseTrack track_id); -1 unknown
    "gender": ((), "int32"),  # index into GENDERS
    "kid": ((), "bool"),
    "occlusion": ((), "float32"),  # percent occluded, 0-100 (AGORA); 0 where unknown
    "valid": ((), "bool"),  # evaluable person (AGORA isValid, 3DPW campose_valid)
}

# The dataset's own joints, by name in the superset (siam_jax.body.keypoints.KEYPOINT_NAMES).
# Stored per person like PERSON_FIELDS, but not yet carried into batches: augmentation must move
# them first (siam_jax.data.keypoint_fill.transform_keypoints), docs/training_data.md.
KEYPOINT_FIELDS: dict[str, tuple[tuple[int, ...], str]] = {
    "keypoints_2d": ((NUM_KEYPOINTS, 2), "float32"),  # pixels of the stored image
    "keypoints_2d_visibility": ((NUM_KEYPOINTS,), "float32"),  # 1 labelled (COCO v>0), 0 not
    "keypoints_3d": ((NUM_KEYPOINTS, 3), "float32"),  # metres, camera frame, absolute
    "keypoints_3d_visibility": ((NUM_KEYPOINTS,), "float32"),
}
STORED_PERSON_FIELDS = {**PERSON_FIELDS, **KEYPOINT_FIELDS}

# Per-person defaults that are not zero.
_NONZERO_DEFAULTS = {"track_id": -1}

FRAME_FIELDS: dict[str, tuple[tuple[int | None, ...], str]] = {
    "intrinsics": ((3, 3), "float32"),
    "all_persons_annotated": ((), "bool"),
    "ignore_boxes": ((None, 4), "float32"),  # x0, y0, x1, y1 pixels; don't-care regions
}


def features(image_format: str = "png"):
    """The ``tfds.features.FeaturesDict`` of one example."""
    import tensorflow_datasets as tfds

    person = {
        name: tfds.features.Tensor(shape=shape, dtype=np.dtype(dtype))
        for name, (shape, dtype) in STORED_PERSON_FIELDS.items()
    }
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format=image_format),
            "intrinsics": tfds.features.Tensor(shape=(3, 3), dtype=np.float32),
            "sequence_id": tfds.features.Text(),
            "frame_index": tfds.features.Scalar(dtype=np.int64),
            "image_name": tfds.features.Text(),
            "all_persons_annotated": tfds.features.Scalar(dtype=np.bool_),
            "ignore_boxes": tfds.features.Tensor(shape=(None, 4), dtype=np.float32),
            "persons": tfds.features.Sequence(person),
        }
    )


def frame_annotation(all_persons_annotated: bool, ignore_boxes=None) -> dict[str, np.ndarray]:
    """The per-frame annotation fields of an example (``**frame_annotation(...)`` in a builder)."""
    boxes = np.zeros((0, 4), np.float32) if ignore_boxes is None else ignore_boxes
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not np.all(np.isfinite(boxes)):
        raise ValueError("ignore_boxes hold non-finite values")
    return {"all_persons_annotated": np.bool_(all_persons_annotated), "ignore_boxes": boxes}


def empty_person() -> dict[str, np.ndarray]:
    """A person with every field zero / flag off (``track_id`` -1); builders fill what they
    annotate."""
    out = {
        name: np.zeros(shape, dtype=np.dtype(dtype))
        for name, (shape, dtype) in STORED_PERSON_FIELDS.items()
    }
    for name, value in _NONZERO_DEFAULTS.items():
        out[name] = np.asarray(value, dtype=STORED_PERSON_FIELDS[name][1])
    return out


def stack_persons(persons: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """List of person dicts -> dict of arrays with a leading person axis (possibly 0)."""
    out = {}
    for name, (shape, dtype) in STORED_PERSON_FIELDS.items():
        if persons:
            out[name] = np.stack([np.asarray(p[name], dtype=dtype) for p in persons])
        else:
            out[name] = np.zeros((0, *shape), dtype=dtype)
    return out


def check_person(person: dict[str, np.ndarray], where: str) -> None:
    """Raises ValueError naming ``where`` and the key when a person dict breaks the schema or its
    flags contradict each other (``check_flags``)."""
    missing = sorted(set(STORED_PERSON_FIELDS) - set(person))
    if missing:
        raise ValueError(f"{where}: person is missing keys {missing}")
    for name, (shape, _) in STORED_PERSON_FIELDS.items():
        got = np.shape(person[name])
        if tuple(got) != shape:
            raise ValueError(f"{where}: person[{name!r}] has shape {got}, expected {shape}")
        if not np.all(np.isfinite(np.asarray(person[name], dtype=np.float64))):
            raise ValueError(f"{where}: person[{name!r}] holds non-finite values")
    check_flags(person, where)


def check_flags(person: dict[str, np.ndarray], where: str) -> None:
    """The flag invariants every builder keeps (docs/training_data.md):

    * a supervised SMPL term (``has_pose``, ``has_global_orient``, ``has_betas``, ``has_transl``)
      or ``has_smpl`` needs stored parameters (``smpl_source`` != 'none');
    * ``has_smpl`` means the dataset's own fit (``smpl_source`` == 'dataset');
    * ``has_keypoints_*`` needs at least one visible superset point, and visible points only
      where the flag is on.
    """
    source = int(person["smpl_source"])
    if not 0 <= source < len(SMPL_SOURCES):
        raise ValueError(f"{where}: smpl_source {source} is not an index into {SMPL_SOURCES}")
    terms = [k for k in ("has_pose", "has_global_orient", "has_betas", "has_transl", "has_smpl")
             if bool(person[k])]  # fmt: skip
    if terms and source == 0:
        raise ValueError(f"{where}: {terms} set but smpl_source is 'none'")
    if bool(person["has_smpl"]) and SMPL_SOURCES[source] != "dataset":
        raise ValueError(f"{where}: has_smpl set for a {SMPL_SOURCES[source]} fit")
    for dim in ("2d", "3d"):
        flag = bool(person[f"has_keypoints_{dim}"])
        visible = bool(np.any(np.asarray(person[f"keypoints_{dim}_visibility"]) > 0))
        if flag != visible:
            raise ValueError(
                f"{where}: has_keypoints_{dim} is {flag} but keypoints_{dim}_visibility "
                f"{'has' if visible else 'has no'} visible points"
            )
