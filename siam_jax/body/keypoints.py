"""The named keypoint superset of the training data, and each dataset's own joint set.

A COCO or H36M hip is not an SMPL hip, and a head top or a nose is no SMPL joint (SPIN, ROMP):
every dataset keeps its own joints, stored by *name* in one fixed-size superset per person
(``siam_jax.data.schema.KEYPOINT_FIELDS``), and each superset point says how the same point is
regressed from an SMPL mesh, so a loss compares like with like.

Sources of the superset points (``KEYPOINTS``, in this order):
  * ``smpl_*`` (24): the SMPL kinematic joints (smplx joint order, ``joint_sets.SMPL_JOINT_NAMES``).
  * the smplx vertex joints (11): nose, eyes, ears, big/small toes, heels, one mesh vertex each
    (smplx/vertex_ids.py 'smplh', the ids of ``joint_sets.EXTRA_JOINT_VERTEX_IDS``; fingertips are
    left out: no dataset of the mixture labels them).
  * SPIN's ``data/J_regressor_extra.npy`` (9 rows, [9 6890]): SPIN models/smpl.py appends them after
    smplx's 45 joints, so they are SPIN constants.py JOINT_MAP entries 45..53: 'Right Hip',
    'Left Hip', 'Neck (LSP)', 'Top of Head (LSP)', 'Pelvis (MPII)', 'Thorax (MPII)',
    'Spine (H36M)', 'Jaw (H36M)', 'Head (H36M)' (ROMP constants.py SMPL_EXTRA_30: R_Hip ... Head).
  * SPIN's ``data/J_regressor_h36m.npy`` (17 rows): ``h36m17_*``, rows named as
    ``joint_sets.H36M_JOINT_NAMES`` reads them.

Dataset joints map onto these points as SPIN (datasets/preprocess/*.py into its 24 'GT' joints)
and ROMP (constants.py, ``joint_mapping(<dataset>, SMPL_ALL_54)``) do: limbs (shoulders, elbows,
wrists, knees, ankles) onto the SMPL joints, dataset hips onto SPIN's extra-regressor hips, head
tops and necks onto the LSP points, pelvis/thorax onto the MPII points. Where the two disagree the
choice is written beside the joint set. ``None`` marks a dataset joint with no regressable
counterpart (it is read, counted, and not stored). docs/training_data.md has the tables.
"""

from __future__ import annotations

import dataclasses
import os

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from siam_jax.body import joint_sets

SOURCES = ("smpl", "vertex", "extra", "h36m")


@dataclasses.dataclass(frozen=True)
class PointSpec:
    """How one superset point is regressed from a posed mesh: ``source`` and its ``index`` (the
    SMPL joint, the vertex id, or the row of J_regressor_extra / J_regressor_h36m)."""

    name: str
    source: str
    index: int


# SPIN constants.py JOINT_MAP 45..53, in J_regressor_extra row order.
EXTRA_REGRESSOR_NAMES: tuple[str, ...] = (
    "lsp_right_hip", "lsp_left_hip", "lsp_neck", "lsp_head_top", "mpii_pelvis", "mpii_thorax",
    "h36m_spine", "h36m_jaw", "h36m_head",
)  # fmt: skip
NUM_EXTRA_REGRESSOR_ROWS = len(EXTRA_REGRESSOR_NAMES)
_NUM_VERTEX_POINTS = 11  # nose .. right_heel of joint_sets.EXTRA_JOINT_NAMES

KEYPOINTS: tuple[PointSpec, ...] = (
    *(PointSpec(f"smpl_{n}", "smpl", i) for i, n in enumerate(joint_sets.SMPL_JOINT_NAMES)),
    *(
        PointSpec(n, "vertex", v)
        for n, v in zip(
            joint_sets.EXTRA_JOINT_NAMES[:_NUM_VERTEX_POINTS],
            joint_sets.EXTRA_JOINT_VERTEX_IDS[:_NUM_VERTEX_POINTS],
            strict=True,
        )
    ),
    *(PointSpec(n, "extra", i) for i, n in enumerate(EXTRA_REGRESSOR_NAMES)),
    *(PointSpec(f"h36m17_{n}", "h36m", i) for i, n in enumerate(joint_sets.H36M_JOINT_NAMES)),
)
KEYPOINT_NAMES: tuple[str, ...] = tuple(p.name for p in KEYPOINTS)
NUM_KEYPOINTS = len(KEYPOINTS)
KEYPOINT_INDEX: dict[str, int] = {n: i for i, n in enumerate(KEYPOINT_NAMES)}
assert len(KEYPOINT_INDEX) == NUM_KEYPOINTS, "superset names must be unique"

# The files a regressor source needs (SPIN's data release, fetch_data.sh).
REGRESSOR_FILES = {"extra": "J_regressor_extra.npy", "h36m": "J_regressor_h36m.npy"}


def mirror_name(name: str) -> str:
    """The left/right counterpart of a joint name ('smpl_left_hip' <-> 'smpl_right_hip')."""
    parts = name.split("_")
    swap = {"left": "right", "right": "left"}
    return "_".join(swap.get(p, p) for p in parts)


def flip_permutation(names: tuple[str, ...]) -> tuple[int, ...]:
    """Index permutation that swaps every left point with its right counterpart."""
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in names if mirror_name(n) not in index]
    if missing:
        raise ValueError(f"joint names without a mirrored counterpart: {missing}")
    return tuple(index[mirror_name(n)] for n in names)


KEYPOINT_FLIP_PERM: tuple[int, ...] = flip_permutation(KEYPOINT_NAMES)

# ----------------------------------------------------------------------------- dataset joint sets
# (dataset joint name in the dataset's own order, superset point or None).

_LIMBS_LEFT_RIGHT = {
    f"{side}_{part}": f"smpl_{side}_{part}"
    for side in ("left", "right")
    for part in ("shoulder", "elbow", "wrist", "knee", "ankle")
}
_HIPS = {"left_hip": "lsp_left_hip", "right_hip": "lsp_right_hip"}


def _set(names: tuple[str, ...], special: dict[str, str | None]) -> tuple[tuple[str, str | None]]:
    table = {**_LIMBS_LEFT_RIGHT, **_HIPS, **special}
    return tuple((n, table[n]) for n in names)


# COCO person_keypoints categories[0]['keypoints'] (cocodataset.org #format-data); ROMP COCO_17.
COCO_17 = _set(
    (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    {n: n for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")},
)  # fmt: skip

# CrowdPose json categories keypoints (ROMP Crowdpose_14: Head_top, Neck_LSP).
CROWDPOSE_14 = _set(
    (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
        "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "head", "neck",
    ),
    {"head": "lsp_head_top", "neck": "lsp_neck"},
)  # fmt: skip

# MPII-16 as its COCO-style (3DMPPE / NeuralAnnot) json orders them (I2L/Hand4Whole MPII.py
# joints_name; the MPII release order). Upper neck -> LSP neck as SPIN mpii preprocessing does
# (ROMP maps it to the SMPL neck instead).
MPII_16 = _set(
    (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
        "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    ),
    {
        "pelvis": "mpii_pelvis", "thorax": "mpii_thorax", "upper_neck": "lsp_neck",
        "head_top": "lsp_head_top",
    },
)  # fmt: skip

# MuCo-3DHP 21 (I2L-MeshNet data/MuCo/MuCo.py muco_joints_name); ROMP MuCo_21 mapping: thorax and
# spine have no counterpart ('..._unkown'), toes -> big toes, head -> H36M head, hands -> SMPL.
MUCO_21 = _set(
    (
        "head_top", "thorax", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
        "left_knee", "left_ankle", "pelvis", "spine", "head", "right_hand", "left_hand",
        "right_toe", "left_toe",
    ),
    {
        "head_top": "lsp_head_top", "thorax": None, "spine": None, "pelvis": "mpii_pelvis",
        "head": "h36m_head", "right_hand": "smpl_right_hand", "left_hand": "smpl_left_hand",
        "right_toe": "right_big_toe", "left_toe": "left_big_toe",
    },
)  # fmt: skip

# PoseTrack18 categories keypoints (poseval POSETRACK18_LM_NAMES_COCO_ORDER). The ears are never
# labelled. head_bottom is MPII's upper neck (PoseTrack follows the MPII protocol) -> LSP neck, as
# for MPII; ROMP's Posetrack_17 maps it to the SMPL neck and, through a repeated dict key, drops
# the head top, which we keep (-> LSP head top, as for MPII).
POSETRACK_17 = _set(
    (
        "nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    {
        "nose": "nose", "head_bottom": "lsp_neck", "head_top": "lsp_head_top",
        "left_ear": None, "right_ear": None,
    },
)  # fmt: skip

# LSP-14 (SPIN constants.py J24 names [:14]) for LSP / LSPet.
LSP_14 = _set(joint_sets.LSP_JOINT_NAMES, {"neck": "lsp_neck", "head_top": "lsp_head_top"})

# H36M-17 for the Human3.6M builder: dataset joint i is what J_regressor_h36m row i was fitted
# to (SPIN/I2L regress H36M GT joints with it), so joint i -> h36m17 row i, named as
# joint_sets.H36M_JOINT_NAMES. The H36M builder must check this naming against its json order.
H36M_17 = tuple((n, f"h36m17_{n}") for n in joint_sets.H36M_JOINT_NAMES)

# MPI-INF-3DHP 28 (annot.mat order: all_joint_names of the dataset's mpii_get_joint_set.m, as
# quoted by its users; ROMP constants.py MPI_INF_28). Spine points and clavicles have no
# counterpart; 'foot' (ROMP: SmallToe) is left unmapped, the toe goes to the big toe.
MPI_INF_28 = _set(
    (
        "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top",
        "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
        "right_clavicle", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
        "left_hip", "left_knee", "left_ankle", "left_foot", "left_toe", "right_hip",
        "right_knee", "right_ankle", "right_foot", "right_toe",
    ),
    {
        "spine3": None, "spine4": None, "spine2": None, "spine": None,
        "pelvis": "mpii_pelvis", "neck": "smpl_neck", "head": "h36m_head",
        "head_top": "lsp_head_top", "left_clavicle": None, "right_clavicle": None,
        "left_hand": "smpl_left_hand", "right_hand": "smpl_right_hand", "left_foot": None,
        "right_foot": None, "left_toe": "left_big_toe", "right_toe": "right_big_toe",
    },
)  # fmt: skip

# The 17 of the 28 that the MPI-INF-3DHP test set annotates and its evaluation scores
# (mpii_get_joints('relevant'), 1-based [8 6 15 16 17 10 11 12 24 25 26 19 20 21 5 4 7]; the test
# set's own names: head_top, neck, right_shoulder, ..., pelvis, spine, head). SPIN trains on the
# same 17 (datasets/preprocess/mpi_inf_3dhp.py joints17_idx, in H36M order). Each joint keeps its
# 28-joint name and superset point.
MPI_INF_28_TO_17: tuple[int, ...] = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)
MPI_INF_17 = tuple(MPI_INF_28[i] for i in MPI_INF_28_TO_17)

DATASET_JOINTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "coco_17": COCO_17,
    "crowdpose_14": CROWDPOSE_14,
    "mpii_16": MPII_16,
    "muco_21": MUCO_21,
    "posetrack_17": POSETRACK_17,
    "lsp_14": LSP_14,
    "h36m_17": H36M_17,
    "mpi_inf_28": MPI_INF_28,
    "mpi_inf_17": MPI_INF_17,
}


def dataset_joint_names(joint_set: str) -> tuple[str, ...]:
    """The dataset's own joint names, in its own order."""
    return tuple(n for n, _ in _joint_set(joint_set))


def dataset_to_superset(joint_set: str) -> np.ndarray:
    """``[J]`` int: the superset index of each dataset joint, -1 where it has none."""
    return np.array(
        [-1 if p is None else KEYPOINT_INDEX[p] for _, p in _joint_set(joint_set)], np.int64
    )


def _joint_set(joint_set: str):
    if joint_set not in DATASET_JOINTS:
        raise KeyError(f"unknown joint set {joint_set!r}; known: {sorted(DATASET_JOINTS)}")
    return DATASET_JOINTS[joint_set]


def _check_tables() -> None:
    for name, table in DATASET_JOINTS.items():
        targets = [p for _, p in table if p is not None]
        unknown = [p for p in targets if p not in KEYPOINT_INDEX]
        if unknown or len(set(targets)) != len(targets):
            raise AssertionError(f"joint set {name}: unknown or repeated superset points")
        # Mirrored dataset joints must land on mirrored points, or the flip would break them.
        lookup = dict(table)
        for joint, point in table:
            partner = lookup.get(mirror_name(joint), "missing")
            if point is not None and partner != "missing" and partner != mirror_name(point):
                raise AssertionError(f"joint set {name}: {joint} -> {point} breaks left/right")


_check_tables()

# ----------------------------------------------------------------------------- regression


@dataclasses.dataclass(frozen=True)
class KeypointRegressors:
    """The regressor matrices beyond the body model: SPIN's J_regressor_extra [9 V] and
    J_regressor_h36m [17 V]; ``None`` where not loaded."""

    extra: np.ndarray | None = None
    h36m: np.ndarray | None = None

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, num_vertices: int = 6890):
        """Loads whichever of SPIN's two files exist in ``folder`` (missing ones stay None)."""
        out = {}
        for source, file in REGRESSOR_FILES.items():
            path = os.path.join(folder, file)
            if os.path.isfile(path):
                out[source] = load_regressor(path, source, num_vertices)
        return cls(**out)


# Rows of SPIN's J_regressor_extra approximated by the body model's own regressors, for a model
# without SPIN's file (the procedural model): each extra point as the H36M-17 row SPIN itself
# equates it with (SPIN constants.py H36M_TO_J17: LSP neck <- H36M thorax, LSP head top <- H36M
# head; SPIN's 'Jaw (H36M)' / 'Head (H36M)' are H36M joints 9 / 10, 'Spine (H36M)' joint 7).
MODEL_EXTRA_ROWS: dict[str, str] = {
    "lsp_right_hip": "right_hip", "lsp_left_hip": "left_hip", "lsp_neck": "thorax",
    "lsp_head_top": "head_top", "mpii_pelvis": "pelvis", "mpii_thorax": "thorax",
    "h36m_spine": "spine", "h36m_jaw": "neck_nose", "h36m_head": "head_top",
}  # fmt: skip


def model_extra_regressor(h36m_regressor: Float[Array, "17 v"]) -> Float[Array, "9 v"]:
    """``[9 V]``: the extra points as rows of the model's H36M regressor (``MODEL_EXTRA_ROWS``);
    numpy or JAX arrays (also traced: the body model may be a jit argument)."""
    rows = [joint_sets.H36M_JOINT_NAMES.index(MODEL_EXTRA_ROWS[n]) for n in EXTRA_REGRESSOR_NAMES]
    return jnp.asarray(h36m_regressor)[jnp.asarray(rows)]


def regressors_of_model(body_model) -> KeypointRegressors:
    """The superset regressors a body model carries itself: its H36M regressor (None if it has
    none) and, from it, ``model_extra_regressor`` (the procedural model's extra regressor; with a
    real SMPL pass SPIN's J_regressor_extra.npy through ``KeypointRegressors.from_folder``)."""
    h36m = getattr(body_model, "h36m_regressor", None)
    if h36m is None:
        return KeypointRegressors()
    return KeypointRegressors(extra=model_extra_regressor(h36m), h36m=h36m)


def available_names(regressors: KeypointRegressors) -> tuple[str, ...]:
    """The superset points ``regress_keypoints`` can compute with ``regressors``."""
    have = {"smpl", "vertex"}
    have |= {s for s in ("extra", "h36m") if getattr(regressors, s) is not None}
    return tuple(p.name for p in KEYPOINTS if p.source in have)


def load_regressor(path: str | os.PathLike, source: str, num_vertices: int = 6890) -> np.ndarray:
    """A dense SPIN regressor ``.npy`` ([9 V] extra or [17 V] h36m), its shape checked."""
    rows = {"extra": NUM_EXTRA_REGRESSOR_ROWS, "h36m": len(joint_sets.H36M_JOINT_NAMES)}[source]
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} does not exist (SPIN's data/{REGRESSOR_FILES[source]}, fetch_data.sh)"
        )
    reg = np.load(path, allow_pickle=False)
    if reg.shape != (rows, num_vertices):
        raise ValueError(
            f"{path}: regressor has shape {reg.shape}, expected ({rows}, {num_vertices})"
        )
    return reg


def required_sources(names: tuple[str, ...] = KEYPOINT_NAMES) -> set[str]:
    """The regressor sources the named superset points need."""
    return {KEYPOINTS[KEYPOINT_INDEX[n]].source for n in names}


def regress_keypoints(
    vertices: Float[Array, "... v 3"],
    joints: Float[Array, "... 24 3"],
    regressors: KeypointRegressors = KeypointRegressors(),  # frozen and empty: safe
    names: tuple[str, ...] = KEYPOINT_NAMES,
) -> Float[Array, "... k 3"]:
    """The named superset points of posed meshes (``BodyOutput.vertices`` / ``.joints``), in the
    order of ``names``. Raises naming the missing SPIN file when a point needs a regressor that
    ``regressors`` lacks."""
    unknown = [n for n in names if n not in KEYPOINT_INDEX]
    if unknown:
        raise KeyError(f"unknown superset points {unknown}")
    specs = [KEYPOINTS[KEYPOINT_INDEX[n]] for n in names]
    for source, matrix in (("extra", regressors.extra), ("h36m", regressors.h36m)):
        needs = [s.name for s in specs if s.source == source]
        if needs and matrix is None:
            raise ValueError(
                f"superset points {needs} are regressed with SPIN's {REGRESSOR_FILES[source]}, "
                f"which was not loaded: KeypointRegressors.from_folder(<folder with "
                f"{REGRESSOR_FILES[source]}>) or load_regressor(path, {source!r})"
            )
    vertices = jnp.asarray(vertices)
    joints = jnp.asarray(joints)
    blocks, offsets = [joints], {"smpl": 0}
    size = joints.shape[-2]
    vids = sorted({s.index for s in specs if s.source == "vertex"})
    if vids:
        offsets["vertex"] = size
        blocks.append(vertices[..., jnp.asarray(vids), :])
        size += len(vids)
    for source, matrix in (("extra", regressors.extra), ("h36m", regressors.h36m)):
        if any(s.source == source for s in specs):
            offsets[source] = size
            reg = jnp.asarray(matrix, vertices.dtype)
            blocks.append(jnp.einsum("jv,...vc->...jc", reg, vertices))
            size += reg.shape[0]
    everything = jnp.concatenate(blocks, axis=-2)
    take = [
        offsets[s.source] + (vids.index(s.index) if s.source == "vertex" else s.index)
        for s in specs
    ]
    return everything[..., jnp.asarray(take, jnp.int32), :]


__all__ = [
    "DATASET_JOINTS",
    "EXTRA_REGRESSOR_NAMES",
    "KEYPOINTS",
    "KEYPOINT_FLIP_PERM",
    "KEYPOINT_INDEX",
    "KEYPOINT_NAMES",
    "MODEL_EXTRA_ROWS",
    "MPI_INF_28_TO_17",
    "NUM_KEYPOINTS",
    "KeypointRegressors",
    "PointSpec",
    "available_names",
    "dataset_joint_names",
    "dataset_to_superset",
    "flip_permutation",
    "load_regressor",
    "mirror_name",
    "model_extra_regressor",
    "regress_keypoints",
    "regressors_of_model",
    "required_sources",
]
