"""TFDS builder for AGORA (Patel et al., CVPR 2021), SMPL ground truth.

Reads the official downloads from ``manual_dir`` (PROTOCOLS.md 1.3): the SMPL "Camera dataframes"
(pandas pickles, one row per image, person columns as lists), the per-person SMPL fits at
``gt_path_smpl`` with ``.pkl`` (AGORA's SMPL-X -> SMPL conversion stores ``root_pose``,
``body_pose``, ``betas``, ``translation``, sometimes as ``global_orient``/``transl``, as torch
tensors or arrays; agora_evaluation get_joints_verts_from_dataframe.py: get_smpl_vertices renames
them and runs the *neutral* SMPL), and the images.

Per person:
  * ``joints_3d`` = ``gt_joints_3d[:24]`` (camera frame, metres) and ``joints_2d`` =
    ``gt_joints_2d[:24]`` scaled from 3840x2160 to the stored image (x H/2160,
    agora_evaluation docs/gt_dataframe.md);
    the first 24 of smplx's 45 SMPL joints are the kinematic ones.
  * adults: the fit moved into the camera by the projection.py chain
    (conversions.agora_fit_to_camera)
    -> ``has_smpl``; the builder re-poses it and counts persons whose joints miss ``gt_joints_3d``
    by more than 2 cm (``info.metadata['fit_joint_mismatch_<split>']``).
  * kids (``kid`` True): their fits have 11 betas (the 11th scales the SMIL kid template); our
    schema has 10, so kids keep ``has_smpl=False`` but their dataframe joints (``has_3d/has_2d``).
  * ``valid`` = ``isValid`` and 0 <= occlusion <= 90 (agora_evaluation matching.py); ``occlusion``
    in percent; ``gender``; ``kid``.
The test split has images only (AGORA hides its ground truth): examples with no persons.
"""

from __future__ import annotations

import dataclasses
import glob
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

REQUIRED_COLUMNS = (
    "imgPath",
    "X",
    "Y",
    "Z",
    "Yaw",
    "camX",
    "camY",
    "camZ",
    "camYaw",
    "gender",
    "kid",
    "occlusion",
    "isValid",
    "gt_path_smpl",
    "gt_joints_2d",
    "gt_joints_3d",
)
FIT_MISMATCH_M = 0.02  # re-posed fit vs dataframe joints, metres

_INSTRUCTIONS = """\
Download AGORA (https://agora.is.tue.mpg.de/download.php) and place under `manual_dir`:
  SMPL/train_0_withjv.pkl ... SMPL/train_9_withjv.pkl        (train Camera dataframes, SMPL)
  SMPL/validation_0_withjv.pkl ... validation_9_withjv.pkl   (validation Camera dataframes, SMPL)
  smpl_gt/...                        (the SMPL fits: each `gt_path_smpl` entry with .obj -> .pkl,
                                      relative to manual_dir, e.g. smpl_gt/trainset_.../x.pkl)
  images_1280x720/train_<k>/<imgPath stem>_1280x720.png   (images of SMPL/train_<k>_withjv.pkl;
  images_1280x720/validation/<...>_1280x720.png            a single images_1280x720/train/ folder
  images_1280x720/test/<...>.png                           also works)
  (config `3840x2160`: images_3840x2160/<same folders>/<imgPath>)
The neutral SMPL model goes in the body-model folder (builder argument `body_model_dir`, default
`manual_dir/body_models`): SMPL_NEUTRAL.npz or SMPL_NEUTRAL.pkl.
"""


def _as_array(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def read_fit(path: str) -> dict[str, np.ndarray]:
    """An AGORA SMPL fit pickle -> ``betas (nb,)``, ``global_orient (3,)``, ``body_pose (23,3)``,
    ``transl (3,)`` (the fit's own frame). Raises naming the file and key on bad content."""
    # The allow-list loader; torch tensors inside are re-loaded with weights_only=True on the CPU.
    raw = safe_pickle.load(path, "AGORA fit")
    if not isinstance(raw, dict):
        raise ValueError(f"AGORA fit {path} holds {type(raw).__name__}, expected dict")
    aliases = {
        "global_orient": ("global_orient", "root_pose"),
        "transl": ("transl", "translation"),
        "body_pose": ("body_pose",),
        "betas": ("betas",),
    }
    out = {}
    for key, names in aliases.items():
        name = next((n for n in names if n in raw), None)
        if name is None:
            raise ValueError(f"AGORA fit {path} lacks key {' / '.join(names)}")
        out[key] = _as_array(raw[name]).reshape(-1)
    sizes = {"global_orient": 3, "transl": 3, "body_pose": 69}
    for key, size in sizes.items():
        if out[key].shape[0] != size:
            raise ValueError(
                f"AGORA fit {path}: {key!r} has {out[key].shape[0]} values, want {size}"
            )
    if out["betas"].shape[0] < schema.NUM_BETAS:
        raise ValueError(f"AGORA fit {path}: 'betas' has {out['betas'].shape[0]} values")
    out["body_pose"] = out["body_pose"].reshape(23, 3)
    return out


def read_dataframe(path: str):
    """A Camera dataframe pickle, with its columns checked."""
    import pandas as pd

    try:
        df = safe_pickle.load(path, "AGORA dataframe")
    except safe_pickle.UnsafePickleError:
        raise
    except Exception as err:
        raise ValueError(f"AGORA dataframe {path} is unreadable: {err}") from err
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"AGORA dataframe {path} holds {type(df).__name__}, not a DataFrame")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"AGORA dataframe {path} lacks columns {missing}")
    return df


def image_file_name(img_path: str, resolution: tuple[int, int]) -> str:
    """The stored file name of a dataframe ``imgPath`` at the chosen resolution."""
    name = os.path.basename(img_path)
    if resolution == (1280, 720) and not name.endswith("_1280x720.png"):
        name = name[: -len(".png")] + "_1280x720.png"  # agora_evaluation projection.py
    return name


# Person columns of a Camera dataframe: one list entry per person, as long as 'gt_path_smpl'.
PERSON_COLUMNS = ("X", "Y", "Z", "Yaw", "gender", "kid", "occlusion", "isValid",
                  "gt_joints_2d", "gt_joints_3d")  # fmt: skip


def _check_row_lengths(row, where: str) -> int:
    n = len(row["gt_path_smpl"])
    for col in PERSON_COLUMNS:
        if len(row[col]) != n:
            raise ValueError(
                f"{where}: column {col!r} has {len(row[col])} entries, 'gt_path_smpl' has {n}"
            )
    return n


def _dataframe_person(row, i: int, image_size: tuple[int, int], where: str) -> dict:
    """A schema person with the dataframe's joints, box and flags (no SMPL yet)."""
    width, height = image_size
    p = schema.empty_person()
    j3d_all = np.asarray(row["gt_joints_3d"][i], np.float64)
    j2d_all = np.asarray(row["gt_joints_2d"][i], np.float64) * (height / cv.AGORA_GT_SIZE[1])
    if j3d_all.ndim != 2 or j3d_all.shape[0] < 24 or j2d_all.shape[0] < 24:
        raise ValueError(
            f"{where}: person {i} 'gt_joints_3d'/'gt_joints_2d' have shapes "
            f"{j3d_all.shape}/{j2d_all.shape}, need >= 24 joints"
        )
    p["joints_3d"] = j3d_all[:24].astype(np.float32)
    p["joints_2d"] = j2d_all[:24].astype(np.float32)
    p["visibility"] = cv.in_image(j2d_all[:24], j3d_all[:24, 2], width, height)
    vis_all = cv.in_image(j2d_all, j3d_all[:, 2], width, height) > 0
    p["bbox"] = cv.bbox_from_points(j2d_all[vis_all], width, height)
    p["has_3d"] = p["has_2d"] = np.bool_(True)
    occ = float(row["occlusion"][i])
    p["occlusion"] = np.float32(occ)
    p["valid"] = np.bool_(bool(row["isValid"][i]) and 0.0 <= occ <= 90.0)
    p["kid"] = np.bool_(bool(row["kid"][i]))
    gender = str(row["gender"][i]).lower()
    p["gender"] = np.int32(schema.GENDERS.index(gender) if gender in schema.GENDERS else 0)
    return p


def _add_fit(p: dict, fit: dict, row, i: int, model, rest_root, counts: dict) -> None:
    """Moves person i's SMPL fit into the camera (module doc) and stores it in ``p``."""
    camera = cv.agora_camera(row["imgPath"], row["camX"], row["camY"], row["camZ"], row["camYaw"])
    betas = fit["betas"][: schema.NUM_BETAS]
    a, b = cv.agora_fit_to_camera(
        camera, row["Yaw"][i], np.array([row["X"][i], row["Y"][i], row["Z"][i]])
    )
    orient, transl = cv.transform_smpl_root(
        a, b, fit["global_orient"], fit["transl"], rest_root(betas)
    )
    joints = cv.smpl_joints(model, betas, fit["body_pose"], orient, transl)
    if np.abs(joints - p["joints_3d"].astype(np.float64)).max() > FIT_MISMATCH_M:
        counts["fit_joint_mismatch"] += 1
    p["betas"] = betas.astype(np.float32)
    p["global_orient"] = orient.astype(np.float32)
    p["body_pose"] = fit["body_pose"].astype(np.float32)
    p["transl"] = transl.astype(np.float32)
    p["has_smpl"] = np.bool_(True)
    # BEV does not supervise AGORA's global orientation (TRAINING_DATA.md s. 3).
    p["has_pose"] = p["has_betas"] = p["has_transl"] = np.bool_(True)
    p["smpl_source"] = np.int32(schema.SMPL_SOURCES.index("dataset"))


def row_persons(
    row, manual: str, model, image_size: tuple[int, int], counts: dict, where: str
) -> list[dict]:
    """Schema persons of one dataframe row (module doc); adults get their SMPL fit."""
    rest_root = RestRoot.from_body_model(model)
    persons = []
    for i in range(_check_row_lengths(row, where)):
        p = _dataframe_person(row, i, image_size, where)
        if not p["kid"]:
            fit_path = os.path.join(manual, str(row["gt_path_smpl"][i]).replace(".obj", ".pkl"))
            try:
                fit = read_fit(fit_path)
            except (OSError, ValueError) as err:
                log.warning("%s: person %d has no usable fit: %s", where, i, err)
                counts["persons_without_fit"] += 1
            else:
                _add_fit(p, fit, row, i, model, rest_root, counts)
        persons.append(p)
    return persons


@dataclasses.dataclass(kw_only=True)
class AgoraConfig(tfds.core.BuilderConfig):
    """``resolution`` (width, height) of the image release the config reads."""

    resolution: tuple[int, int] = (1280, 720)


class Agora(OfficialFormatBuilder):
    """AGORA images with SMPL ground truth in the shared schema."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {  # noqa: RUF012
        "1.0.0": "Official SMPL Camera dataframes + SMPL fits.",
        "1.1.0": "Schema 2: per-term flags (has_global_orient off, as BEV), smpl_source, "
        "all_persons_annotated (train/validation) and empty ignore_boxes, keypoint superset "
        "fields (empty).",
    }

    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = [  # noqa: RUF012
        AgoraConfig(name="1280x720", resolution=(1280, 720), description="720p images."),
        AgoraConfig(name="3840x2160", resolution=(3840, 2160), description="4K images."),
    ]
    IMAGE_FORMAT = "png"
    HOMEPAGE = "https://agora.is.tue.mpg.de/"

    def missing_files(self, manual: str) -> list[str]:
        """Required files absent from ``manual`` (``prepare`` prints them with the instructions)."""
        return labels.missing_globs(
            manual, ("SMPL/train_*.pkl", "SMPL/validation_*.pkl")
        ) + labels.missing_body_models(self._body_model_folder(manual))

    def _split_generators(self, dl_manager):
        manual, models = labels.require_manual(self, dl_manager, "AGORA", ("neutral",))
        model = models["neutral"]
        w, h = self.builder_config.resolution
        image_root = os.path.join(manual, f"images_{w}x{h}")
        splits = {
            "train": self._generate_examples(manual, image_root, "train", model),
            "validation": self._generate_examples(manual, image_root, "validation", model),
        }
        if os.path.isdir(os.path.join(image_root, "test")):  # optional: images only
            splits["test"] = self._generate_test(image_root)
        return splits

    def _find_image(self, image_root: str, df_path: str, split: str, img_path: str) -> str:
        name = image_file_name(img_path, self.builder_config.resolution)
        stem = os.path.basename(df_path).split("_withjv")[0]  # train_3 / validation_0
        for folder in (stem, split):
            candidate = os.path.join(image_root, folder, name)
            if os.path.isfile(candidate):
                return candidate
        return os.path.join(image_root, split, name)

    def _generate_examples(self, manual: str, image_root: str, split: str, model):
        frames = sorted(glob.glob(os.path.join(manual, "SMPL", f"{split}_*.pkl")))
        if not frames:
            raise FileNotFoundError(f"AGORA: no {split} dataframes at {manual}/SMPL/{split}_*.pkl")
        counts = {"skipped_images": 0, "persons_without_fit": 0, "fit_joint_mismatch": 0}
        for df_path in frames:
            df = read_dataframe(df_path)
            for r in range(len(df)):
                row = df.iloc[r]
                image = self._find_image(image_root, df_path, split, row["imgPath"])
                where = f"{df_path} row {r} ({row['imgPath']})"
                try:
                    size = cv.check_image(image)
                except (FileNotFoundError, ValueError) as err:
                    log.warning("AGORA %s: skipping: %s", where, err)
                    counts["skipped_images"] += 1
                    continue
                persons = row_persons(row, manual, model, size, counts, where)
                camera = cv.agora_camera(row["imgPath"])
                yield (
                    os.path.basename(image),
                    {
                        "image": image,
                        "intrinsics": cv.agora_intrinsics(camera.focal_mm, *size).astype(
                            np.float32
                        ),
                        "sequence_id": os.path.basename(df_path)[: -len(".pkl")],
                        "frame_index": r,
                        "image_name": os.path.basename(image),
                        "persons": schema.stack_persons(persons),
                        # Every rendered person is in the dataframe.
                        **schema.frame_annotation(True),
                    },
                )
        for key, value in counts.items():
            self.info.metadata[f"{key}_{split}"] = value
            if value:
                log.warning("AGORA %s: %s = %d", split, key, value)

    def _generate_test(self, image_root: str):
        folder = os.path.join(image_root, "test")
        names = sorted(os.listdir(folder))
        skipped = 0
        for i, name in enumerate(n for n in names if n.endswith(".png")):
            path = os.path.join(folder, name)
            try:
                size = cv.check_image(path)
            except (FileNotFoundError, ValueError) as err:
                log.warning("AGORA test: skipping %s", err)
                skipped += 1
                continue
            camera = cv.agora_camera(name)  # dataframe-less: the default f = 28 mm camera
            yield (
                name,
                {
                    "image": path,
                    "intrinsics": cv.agora_intrinsics(camera.focal_mm, *size).astype(np.float32),
                    "sequence_id": "test",
                    "frame_index": i,
                    "image_name": name,
                    "persons": schema.stack_persons([]),
                    **schema.frame_annotation(False),  # test GT withheld
                },
            )
        self.info.metadata["skipped_images_test"] = skipped
