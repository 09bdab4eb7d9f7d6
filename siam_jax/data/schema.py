"""The example schema shared by every dataset builder (synthetic, AGORA, 3DPW, CMU-Panoptic).

One example is one frame. Persons are a padded sequence (``tfds.features.Sequence``) so frames with
different numbers of people share one schema. Every builder writes every field; what a dataset
does not annotate is zero-filled and flagged off by ``has_smpl`` / ``has_3d`` / ``has_2d`` /
``has_h36m``. Conventions (docs/architecture.md): metres, OpenCV camera frame, pixels with the
centre of the top-left pixel at (0, 0), SMPL joint order of smplx, axis-angle pose.
"""

from __future__ import annotations

import numpy as np

NUM_BETAS = 10
NUM_SMPL_JOINTS = 24
NUM_H36M_JOINTS = 17

# Gender codes stored per person (AGORA / 3DPW genders; synthetic persons are neutral).
GENDERS = ("neutral", "male", "female")

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
    "has_smpl": ((), "bool"),
    "has_3d": ((), "bool"),
    "has_2d": ((), "bool"),
    "has_h36m": ((), "bool"),
    "gender": ((), "int32"),  # index into GENDERS
    "kid": ((), "bool"),
    "occlusion": ((), "float32"),  # percent occluded, 0-100 (AGORA); 0 where unknown
    "valid": ((), "bool"),  # evaluable person (AGORA isValid, 3DPW campose_valid)
}

FRAME_FIELDS: dict[str, tuple[tuple[int, ...], str]] = {
    "intrinsics": ((3, 3), "float32"),
}


def features(image_format: str = "png"):
    """The ``tfds.features.FeaturesDict`` of one example."""
    import tensorflow_datasets as tfds

    person = {
        name: tfds.features.Tensor(shape=shape, dtype=np.dtype(dtype))
        for name, (shape, dtype) in PERSON_FIELDS.items()
    }
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format=image_format),
            "intrinsics": tfds.features.Tensor(shape=(3, 3), dtype=np.float32),
            "sequence_id": tfds.features.Text(),
            "frame_index": tfds.features.Scalar(dtype=np.int64),
            "image_name": tfds.features.Text(),
            "persons": tfds.features.Sequence(person),
        }
    )


def empty_person() -> dict[str, np.ndarray]:
    """A person with every field zero / flag off; builders fill what they annotate."""
    return {
        name: np.zeros(shape, dtype=np.dtype(dtype))
        for name, (shape, dtype) in PERSON_FIELDS.items()
    }


def stack_persons(persons: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """List of person dicts -> dict of arrays with a leading person axis (possibly 0)."""
    out = {}
    for name, (shape, dtype) in PERSON_FIELDS.items():
        if persons:
            out[name] = np.stack([np.asarray(p[name], dtype=dtype) for p in persons])
        else:
            out[name] = np.zeros((0, *shape), dtype=dtype)
    return out


def check_person(person: dict[str, np.ndarray], where: str) -> None:
    """Raises ValueError naming ``where`` and the key when a person dict breaks the schema."""
    missing = sorted(set(PERSON_FIELDS) - set(person))
    if missing:
        raise ValueError(f"{where}: person is missing keys {missing}")
    for name, (shape, _) in PERSON_FIELDS.items():
        got = np.shape(person[name])
        if tuple(got) != shape:
            raise ValueError(f"{where}: person[{name!r}] has shape {got}, expected {shape}")
        if not np.all(np.isfinite(np.asarray(person[name], dtype=np.float64))):
            raise ValueError(f"{where}: person[{name!r}] holds non-finite values")
