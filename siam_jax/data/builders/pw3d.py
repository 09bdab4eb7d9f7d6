"""TFDS builder for 3DPW (von Marcard et al., ECCV 2018) and its 3DPW-OCC subset.

Reads the official layout from ``manual_dir`` (PROTOCOLS.md section 2.1). One example per image
frame, frames of a sequence written in order (``sequence_id`` = the sequence name,
``frame_index`` = the image number) so the input pipeline can cut clips of consecutive frames.

Per person (actor): SMPL params moved into the camera of that frame (``cam_poses[t]``, world ->
camera): ``global_orient' = R_c R`` (SPIN datasets/preprocess/pw3d.py), and ``transl`` too, which
SPIN drops but we need for projection: ``t' = R_c (J0 + t) + t_c - J0`` (DESIGN.md). ``betas[:10]``.
``joints_3d`` come from the body model (gendered when SMPL_MALE and SMPL_FEMALE are in the
body-model folder, else neutral; the choice is in ``info.metadata['joints_body_model']``).
``joints_2d`` = ``joints_3d`` projected with ``cam_intrinsics``.
``valid`` = ``campose_valid[actor][t]``; where it is 0 the camera pose is unreliable, so the person
is kept (for slot bookkeeping) with every ``has_*`` flag off.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import tensorflow_datasets as tfds

from siam_jax.body import RestRoot
from siam_jax.common import safe_pickle
from siam_jax.data import conversions as cv
from siam_jax.data import schema
from siam_jax.data.builders import labels
from siam_jax.data.builders.official import OfficialFormatBuilder

log = logging.getLogger(__name__)

# 3DPW-OCC: the occluded-sequence subset evaluated by ROMP/BEV
# (Arthur151/ROMP romp/lib/dataset/pw3d.py: PW3D_OCsubset). A sequence belongs to it when its name
# without the trailing '_NN' is in this list; ROMP takes these sequences from all three splits
# (mode 'OC' with split 'all').
PW3D_OCC_SEQUENCES = (
    "courtyard_backpack",
    "courtyard_basketball",
    "courtyard_bodyScannerMotions",
    "courtyard_box",
    "courtyard_golf",
    "courtyard_jacket",
    "courtyard_laceShoe",
    "downtown_stairs",
    "flat_guitar",
    "flat_packBags",
    "outdoors_climbing",
    "outdoors_crosscountry",
    "outdoors_fencing",
    "outdoors_freestyle",
    "outdoors_golf",
    "outdoors_parcours",
    "outdoors_slalom",
)

# Keys every sequence file must hold (3DPW README; PROTOCOLS.md 2.1).
REQUIRED_KEYS = (
    "sequence",
    "betas",
    "poses",
    "trans",
    "genders",
    "cam_poses",
    "campose_valid",
    "cam_intrinsics",
)
SPLIT_FOLDERS = {"train": "train", "validation": "validation", "test": "test"}
GENDER_CODES = {"m": "male", "f": "female", "male": "male", "female": "female"}

_INSTRUCTIONS = """\
Download 3DPW (https://virtualhumans.mpi-inf.mpg.de/3DPW/) and place under `manual_dir`:
  sequenceFiles/train/*.pkl, sequenceFiles/validation/*.pkl, sequenceFiles/test/*.pkl
  imageFiles/<sequence>/image_00000.jpg ...   (one folder per sequence name)
The SMPL body models go in the body-model folder (builder argument `body_model_dir`, default
`manual_dir/body_models`): SMPL_NEUTRAL.npz|.pkl (required), and SMPL_MALE.npz|.pkl +
SMPL_FEMALE.npz|.pkl for gendered ground-truth joints (optional; neutral is used without them).
"""


def occ_member(sequence: str) -> bool:
    """True when ``sequence`` (e.g. 'courtyard_backpack_00') is in 3DPW-OCC."""
    base = sequence[:-3] if len(sequence) > 3 and sequence[-3] == "_" else sequence
    return base in PW3D_OCC_SEQUENCES


def read_sequence(path: str) -> dict:
    """Loads a 3DPW sequence pickle (latin1, Python-2 era) and checks its keys and shapes."""
    try:
        seq = safe_pickle.load(path, "3DPW sequence file")
    except safe_pickle.UnsafePickleError:
        raise
    except Exception as err:
        raise ValueError(f"3DPW sequence file {path} is unreadable: {err}") from err
    if not isinstance(seq, dict):
        raise ValueError(f"3DPW sequence file {path} holds {type(seq).__name__}, expected dict")
    missing = [k for k in REQUIRED_KEYS if k not in seq]
    if missing:
        raise ValueError(f"3DPW sequence file {path} lacks keys {missing}")
    n = np.asarray(seq["cam_poses"]).shape[0]
    if np.asarray(seq["cam_poses"]).shape != (n, 4, 4):
        raise ValueError(
            f"{path}: 'cam_poses' has shape {np.shape(seq['cam_poses'])}, want (N,4,4)"
        )
    if np.asarray(seq["cam_intrinsics"]).shape != (3, 3):
        raise ValueError(f"{path}: 'cam_intrinsics' has shape {np.shape(seq['cam_intrinsics'])}")
    actors = len(seq["genders"])
    for key in ("betas", "poses", "trans", "campose_valid"):
        if len(seq[key]) != actors:
            raise ValueError(f"{path}: '{key}' has {len(seq[key])} actors, 'genders' has {actors}")
    for a in range(actors):
        for key, shape in (("poses", (n, 72)), ("trans", (n, 3)), ("campose_valid", (n,))):
            got = np.asarray(seq[key][a]).shape
            if got != shape:
                raise ValueError(f"{path}: '{key}'[{a}] has shape {got}, expected {shape}")
        if np.asarray(seq["betas"][a]).reshape(-1).shape[0] < schema.NUM_BETAS:
            raise ValueError(f"{path}: 'betas'[{a}] has fewer than {schema.NUM_BETAS} values")
        if str(seq["genders"][a]) not in GENDER_CODES:
            raise ValueError(f"{path}: 'genders'[{a}] = {seq['genders'][a]!r}, expected 'm'/'f'")
    return seq


def sequence_persons(seq: dict, models: dict, image_size: tuple[int, int]) -> list[list[dict]]:
    """Per frame, the schema person dicts of every actor (camera frame, see module doc)."""
    width, height = image_size
    k = np.asarray(seq["cam_intrinsics"], np.float64)
    cam = np.asarray(seq["cam_poses"], np.float64)
    n = cam.shape[0]
    frames: list[list[dict]] = [[] for _ in range(n)]
    for a in range(len(seq["genders"])):
        gender = GENDER_CODES[str(seq["genders"][a])]
        model = models.get(gender, models["neutral"])
        betas = np.asarray(seq["betas"][a], np.float64).reshape(-1)[: schema.NUM_BETAS]
        poses = np.asarray(seq["poses"][a], np.float64)
        trans = np.asarray(seq["trans"][a], np.float64)
        j0 = RestRoot.from_body_model(model)(betas)
        orient = np.zeros((n, 3))
        transl = np.zeros((n, 3))
        for t in range(n):
            r_c, t_c = cv.pw3d_world_to_camera(cam[t])
            orient[t], transl[t] = cv.transform_smpl_root(r_c, t_c, poses[t, :3], trans[t], j0)
        body_pose = poses[:, 3:].reshape(n, 23, 3)
        joints = cv.smpl_joints(model, np.broadcast_to(betas, (n, 10)), body_pose, orient, transl)
        j2d = cv.project_points(joints, k)
        valid = np.asarray(seq["campose_valid"][a]).astype(bool)
        for t in range(n):
            p = schema.empty_person()
            p["betas"] = betas.astype(np.float32)
            p["global_orient"] = orient[t].astype(np.float32)
            p["body_pose"] = body_pose[t].astype(np.float32)
            p["transl"] = transl[t].astype(np.float32)
            p["joints_3d"] = joints[t].astype(np.float32)
            p["joints_2d"] = j2d[t].astype(np.float32)
            p["visibility"] = cv.in_image(j2d[t], joints[t, :, 2], width, height)
            p["bbox"] = cv.bbox_from_points(j2d[t][p["visibility"] > 0], width, height)
            ok = bool(valid[t])
            p["has_smpl"] = p["has_3d"] = p["has_2d"] = np.bool_(ok)
            p["has_pose"] = p["has_global_orient"] = np.bool_(ok)
            p["has_betas"] = p["has_transl"] = np.bool_(ok)
            p["smpl_source"] = np.int32(schema.SMPL_SOURCES.index("dataset"))
            p["valid"] = np.bool_(ok)
            p["gender"] = np.int32(schema.GENDERS.index(gender))
            frames[t].append(p)
    return frames


def _invalid_actor_boxes(persons: list[dict]) -> np.ndarray:
    """``[m 4]`` boxes of the actors whose camera pose is not valid in this frame."""
    boxes = [p["bbox"] for p in persons if not bool(p["valid"])]
    return np.asarray(boxes, np.float32).reshape(-1, 4)


@dataclasses.dataclass(kw_only=True)
class Pw3dConfig(tfds.core.BuilderConfig):
    """``occ_only`` keeps the 3DPW-OCC sequences (PW3D_OCC_SEQUENCES)."""

    occ_only: bool = False


class Pw3d(OfficialFormatBuilder):
    """3DPW frames in the shared schema (``pw3d``) and the 3DPW-OCC subset (``pw3d/pw3d_occ``)."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {  # noqa: RUF012
        "1.0.0": "Official sequenceFiles/imageFiles layout.",
        "1.1.0": "Schema 2: per-term flags, smpl_source, all_persons_annotated False "
        "(bystanders are not annotated), keypoint superset fields (empty).",
        "1.2.0": "Actors with campose_valid 0 in a frame: their box is an ignore box (issue 20).",
    }

    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = [  # noqa: RUF012
        Pw3dConfig(name="full", description="All 3DPW sequences of each split."),
        Pw3dConfig(
            name="pw3d_occ",
            occ_only=True,
            description="3DPW-OCC: the ROMP/BEV occlusion sequences (PW3D_OCC_SEQUENCES), "
            "kept in whichever official split holds them; the benchmark uses "
            "split='train+validation+test'.",
        ),
    ]
    IMAGE_FORMAT = "jpeg"
    HOMEPAGE = "https://virtualhumans.mpi-inf.mpg.de/3DPW/"

    def missing_files(self, manual: str) -> list[str]:
        """Required files absent from ``manual`` (``prepare`` prints them with the instructions)."""
        return labels.missing_globs(
            manual, ("sequenceFiles/*/*.pkl", "imageFiles/*")
        ) + labels.missing_body_models(self._body_model_folder(manual))

    def _models(self, manual_dir: str, models: dict) -> dict:
        """``models`` (the neutral one) with the gendered ones when the folder has them."""
        folder = self._body_model_folder(manual_dir)
        try:
            models.update(cv.load_body_models(folder, ("male", "female")))
            self.info.metadata["joints_body_model"] = "gendered"
        except FileNotFoundError as err:
            log.warning("3DPW: %s; ground-truth joints use the neutral model", err)
            self.info.metadata["joints_body_model"] = "neutral"
        return models

    def _split_generators(self, dl_manager):
        manual, models = labels.require_manual(self, dl_manager, "3DPW", ("neutral",))
        models = self._models(manual, models)
        out = {}
        for split, folder in SPLIT_FOLDERS.items():
            seq_dir = os.path.join(manual, "sequenceFiles", folder)
            # 3DPW names each file after its sequence; TFDS refuses empty splits, so a split
            # without (selected) sequences is left out and reported.
            names = self._selected_files(seq_dir)
            self.info.metadata[f"num_sequences_{split}"] = len(names)
            if names:
                out[split] = self._generate_examples(manual, seq_dir, names, split, models)
            else:
                log.warning(
                    "3DPW: no selected sequence files in %s; split %r left out", seq_dir, split
                )
        if not out:
            raise FileNotFoundError(
                f"3DPW: no sequence files under {manual}/sequenceFiles/{{train,validation,test}}"
            )
        return out

    def _selected_files(self, seq_dir: str) -> list[str]:
        if not os.path.isdir(seq_dir):
            return []
        names = sorted(f for f in os.listdir(seq_dir) if f.endswith(".pkl"))
        if self.builder_config.occ_only:
            names = [f for f in names if occ_member(f[: -len(".pkl")])]
        return names

    def _generate_examples(
        self, manual: str, seq_dir: str, files: list[str], split: str, models: dict
    ):
        skipped = 0
        for name in files:
            path = os.path.join(seq_dir, name)
            seq = read_sequence(path)
            seq_name = str(seq["sequence"])
            if self.builder_config.occ_only and not occ_member(seq_name):
                continue
            image_dir = os.path.join(manual, "imageFiles", seq_name)
            n = np.asarray(seq["cam_poses"]).shape[0]
            sizes = {}
            for t in range(n):
                img = os.path.join(image_dir, f"image_{t:05d}.jpg")  # SPIN/VIBE convention
                try:
                    sizes[t] = cv.check_image(img)
                except (FileNotFoundError, ValueError) as err:
                    log.warning("3DPW %s: skipping frame %d: %s", seq_name, t, err)
                    skipped += 1
            if not sizes:
                continue
            persons = sequence_persons(seq, models, next(iter(sizes.values())))
            k = np.asarray(seq["cam_intrinsics"], np.float32)
            for t in sorted(sizes):
                yield (
                    f"{seq_name}/{t:05d}",
                    {
                        "image": os.path.join(image_dir, f"image_{t:05d}.jpg"),
                        "intrinsics": k,
                        "sequence_id": seq_name,
                        "frame_index": t,
                        "image_name": f"imageFiles/{seq_name}/image_{t:05d}.jpg",
                        "persons": schema.stack_persons(persons[t]),
                        # Only the actors are annotated, not bystanders (BEV, ROMP). An actor
                        # with campose_valid 0 stands in the image without a trusted fit: its
                        # box is don't-care for the centre loss, not background (issue 20).
                        **schema.frame_annotation(False, _invalid_actor_boxes(persons[t])),
                    },
                )
        self.info.metadata[f"skipped_frames_{split}"] = skipped
        if skipped:
            log.warning("3DPW %s: skipped %d frames with missing/unreadable images", split, skipped)
