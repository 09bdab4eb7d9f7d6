"""BEDLAM (Black et al., CVPR 2023): synthetic video frames with exact SMPL bodies.

BEDLAM renders SMPL-X bodies and also releases their **SMPL** fits (the SMPL ground truth of its
download page, processed per scene by ``data_processing/df_full_body_smpl.py``). We store those SMPL
fits as they are (docs/choices.md): no SMPL-X -> SMPL conversion here; an SMPL-X label file
(``pose_cam`` of 165 values) is refused with a message naming it.

Per scene, one label npz with one row per person and frame (BEDLAM data_processing/ReadMe.md):
``imgname`` (``seq_000000/seq_000000_0000.png``), ``pose_cam`` (72 axis-angle, camera frame),
``shape`` (10 betas; 11 for the neutral model), ``trans_cam``, ``cam_int`` (3x3), ``cam_ext`` (4x4),
``gender``, ``gtkps`` (the projected SMPL joints), ``center``/``scale``/``pose_world``/
``trans_world``/``proj_verts``/``motion_info``/``sub`` (the subject). In df_full_body_smpl.py the
camera-frame body is ``SMPL(pose_cam, shape, trans_cam) + cam_ext[:3, 3]`` and ``gtkps`` its joints
projected with ``cam_int``, so ``transl = trans_cam + cam_ext[:3, 3]`` (Multi-HMR datasets/bedlam.py
does the same). Scenes named ``closeup`` are rendered rotated by 90 degrees: their labels are for
the image turned 90 degrees clockwise (cv2.ROTATE_90_CLOCKWISE in df_full_body_smpl.py), which is
what we store. The label's principal point is the image centre (``get_cam_int(..., W/2, H/2)``);
an image whose size disagrees is skipped and counted.

Every person: ``smpl_source`` 'dataset', ``has_smpl`` and every SMPL term on, ``joints_3d`` from
the gendered SMPL (``SMPL_{NEUTRAL,MALE,FEMALE}`` in the body-model folder), ``joints_2d`` their
projection. A neutral body whose 11th beta is not zero cannot be written with 10 betas: its pose
and orientation are kept (``has_pose``, ``has_global_orient``), shape and translation are not
supervised, and its 2D joints come from ``gtkps`` (``persons_eleventh_beta``). ``track_id`` numbers
the subjects (``sub``) of a sequence. One ``sequence_id`` per ``<scene>/<seq>``, ``frame_index`` the
frame number of the file name; BEDLAM's 6 fps labels keep every 5th frame.
"""

from __future__ import annotations

import collections
import glob
import logging
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from siam_jax.data import conversions as cv
from siam_jax.data import schema
from siam_jax.data.builders import labels
from siam_jax.data.builders.official import OfficialFormatBuilder

log = logging.getLogger(__name__)

SPLITS = {
    "train": (("processed_labels", "images"), ("training_labels", "training_images")),
    "validation": (("validation_labels", "validation_images"),),
}
REQUIRED_KEYS = ("imgname", "pose_cam", "shape", "trans_cam", "cam_int", "cam_ext", "gender",
                 "gtkps")  # fmt: skip
GENDERS = ("neutral", "male", "female")
ELEVENTH_BETA_TOLERANCE = 1e-4
GTKPS_TOLERANCE_PX = 2.0
_FRAME = re.compile(r"^(?P<seq>.+)_(?P<frame>\d+)\.\w+$")

_INSTRUCTIONS = """\
BEDLAM (https://bedlam.is.tue.mpg.de/, registration): download the 30 fps images (`<scene>-png`)
and the SMPL ground truth, and make the per-scene SMPL labels with BEDLAM's
data_processing/df_full_body_smpl.py (`--fps 6` keeps every 5th frame). Place as `manual_dir`:
  processed_labels/<scene>.npz            (or training_labels/<scene>.npz)
  images/<scene>/png/seq_000000/seq_000000_0000.png ...   (or training_images/...)
  validation_labels/<scene>.npz, validation_images/<scene>/png/...   (optional)
The SMPL models SMPL_NEUTRAL, SMPL_MALE, SMPL_FEMALE go in the body-model folder
(`--body_model_dir`, default manual_dir/body_models). SMPL-X label files (pose 165) are refused.
Licence: non-commercial scientific research, registration required (BEDLAM's README / licence
page; not verified further with our search tools).
"""


def split_layout(manual: str, split: str) -> tuple[str, str] | None:
    """``(labels folder, images folder)`` of a split: the first candidate with npz files."""
    for labels_dir, images_dir in SPLITS[split]:
        folder = os.path.join(manual, labels_dir)
        if glob.glob(os.path.join(folder, "*.npz")):
            return folder, os.path.join(manual, images_dir)
    return None


def read_labels(path: str) -> dict[str, np.ndarray]:
    """The checked arrays of a scene npz (module doc); object arrays are refused (they would
    need unpickling)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as err:
        raise ValueError(f"{path}: unreadable npz ({type(err).__name__}: {err})") from err
    with npz:
        missing = [k for k in REQUIRED_KEYS if k not in npz.files]
        if missing:
            raise ValueError(f"{path}: missing keys {missing}")
        try:
            data = {k: npz[k] for k in (*REQUIRED_KEYS, *(["sub"] if "sub" in npz.files else []))}
        except ValueError as err:  # object arrays
            raise ValueError(f"{path}: {err} (re-save the labels as plain arrays)") from None
    n = len(data["imgname"])
    pose = np.asarray(data["pose_cam"])
    if pose.ndim == 2 and pose.shape[1] == 165:
        raise ValueError(f"{path}: 'pose_cam' has 165 values (SMPL-X labels); this builder reads "
                         "BEDLAM's SMPL labels (df_full_body_smpl.py)")  # fmt: skip
    shapes = {"pose_cam": (n, 72), "trans_cam": (n, 3), "cam_int": (n, 3, 3), "cam_ext": (n, 4, 4)}
    out = {k: labels.as_array(data[k], s, f"{path}: {k!r}") for k, s in shapes.items()}
    betas = np.asarray(data["shape"], np.float64)
    if betas.shape not in ((n, 10), (n, 11)) or not np.isfinite(betas).all():
        raise ValueError(f"{path}: 'shape' has shape {betas.shape}, expected ({n}, 10 or 11)")
    kps = np.asarray(data["gtkps"], np.float64)
    if kps.ndim != 3 or kps.shape[0] != n or kps.shape[1] < 24 or kps.shape[2] not in (2, 3):
        raise ValueError(f"{path}: 'gtkps' has shape {kps.shape}, expected ({n}, >=24, 2|3)")
    genders = [str(g) for g in np.asarray(data["gender"]).reshape(-1)]
    bad = sorted(set(genders) - set(GENDERS))
    if len(genders) != n or bad:
        raise ValueError(f"{path}: 'gender' has {len(genders)} rows / values {bad}; want {n} of "
                         f"{GENDERS}")  # fmt: skip
    out.update(shape=betas, gtkps=kps[..., :2], gender=np.asarray(genders))
    out["imgname"] = np.asarray([str(x) for x in data["imgname"]])
    out["sub"] = np.asarray([str(x) for x in data["sub"]]) if "sub" in data else None
    return out


def frame_of(imgname: str, where: str) -> tuple[str, int]:
    """``('seq_000000', 5)`` of ``'seq_000000/seq_000000_0005.png'``."""
    m = _FRAME.match(os.path.basename(imgname))
    if m is None:
        raise ValueError(f"{where}: imgname {imgname!r} has no frame number")
    return os.path.dirname(imgname) or m.group("seq"), int(m.group("frame"))


class Bedlam(OfficialFormatBuilder):
    """BEDLAM frames with their SMPL fits (module doc); splits train and validation."""

    name = "bedlam"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Per-scene SMPL label npz + png frames, schema 2."}  # noqa: RUF012
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    IMAGE_FORMAT = "png"
    HOMEPAGE = "https://bedlam.is.tue.mpg.de/"

    def missing_files(self, manual: str) -> list[str]:
        missing = []
        if split_layout(manual, "train") is None:
            missing.append("train labels: processed_labels/<scene>.npz (or training_labels/)")
        missing += labels.missing_body_models(self._body_model_folder(manual), GENDERS)
        return missing

    def _split_generators(self, dl_manager):
        manual, models = labels.require_manual(self, dl_manager, "BEDLAM", GENDERS)
        self.info.metadata["video"] = True
        out = {}
        for split in SPLITS:
            layout = split_layout(manual, split)
            if layout is not None:
                out[split] = self._generate_examples(split, *layout, models)
        return out

    def _generate_examples(self, split, labels_dir, images_dir, models):
        counts: collections.Counter = collections.Counter()
        for path in sorted(glob.glob(os.path.join(labels_dir, "*.npz"))):
            scene = os.path.splitext(os.path.basename(path))[0]
            data = read_labels(path)
            counts["scenes"] += 1
            rows: dict[str, list[int]] = collections.defaultdict(list)
            for i, name in enumerate(data["imgname"]):
                rows[name].append(i)
            order = sorted(rows, key=lambda n: frame_of(n, path))
            counts["sequences"] += len({frame_of(n, path)[0] for n in order})
            tracks: dict[str, dict[str, int]] = collections.defaultdict(dict)
            for name in order:
                example = self._example(path, scene, images_dir, name, rows[name], data, models,
                                        tracks, counts)  # fmt: skip
                if example is not None:
                    yield f"{split}/{scene}/{name}", example
        labels.record(self.info.metadata, split, counts)

    def _example(self, path, scene, images_dir, name, rows, data, models, tracks, counts):
        where = f"{path}: {name}"
        seq, frame = frame_of(name, path)
        k = data["cam_int"][rows[0]]
        ext = data["cam_ext"][rows[0]]
        for r in rows[1:]:
            if not (np.allclose(data["cam_int"][r], k) and np.allclose(data["cam_ext"][r], ext)):
                raise ValueError(f"{where}: rows {rows[0]} and {r} disagree on the camera")
        image_path = os.path.join(images_dir, scene, "png", name)
        size = labels.image_size(image_path, counts, where)
        if size is None:
            return None
        rotate = "closeup" in scene
        width, height = (size[1], size[0]) if rotate else size
        if not np.allclose([2 * k[0, 2], 2 * k[1, 2]], [width, height], atol=1.0):
            counts["images_size_mismatch"] += 1
            log.warning("%s: image %dx%d, labels for %.0fx%.0f", where, width, height,
                        2 * k[0, 2], 2 * k[1, 2])  # fmt: skip
            return None
        persons = []
        for r in rows:
            sub = data["sub"][r] if data["sub"] is not None else None
            track = -1 if sub is None else tracks[seq].setdefault(sub, len(tracks[seq]))
            persons.append(self._person(data, r, ext, k, (width, height), models, track, counts))
            schema.check_person(persons[-1], f"{where} row {r}")
        counts["images"] += 1
        counts["persons"] += len(persons)
        return {
            "image": _rotated(image_path) if rotate else image_path,
            "intrinsics": k.astype(np.float32),
            "sequence_id": f"{scene}/{seq}",
            "frame_index": frame,
            "image_name": f"{scene}/png/{name}",
            "persons": schema.stack_persons(persons),
            # Synthetic: every body with labels (SAT-HMR detect_all True for BEDLAM).
            **schema.frame_annotation(True),
        }

    def _person(self, data, r, ext, k, size, models, track, counts) -> dict:
        pose = data["pose_cam"][r]
        betas = data["shape"][r]
        gender = data["gender"][r]
        transl = data["trans_cam"][r] + ext[:3, 3]  # df_full_body_smpl.py: verts + cam_trans
        person = schema.empty_person()
        person["gender"] = np.int32(schema.GENDERS.index(gender))
        person["smpl_source"] = np.int32(schema.SMPL_SOURCES.index("dataset"))
        person["track_id"] = np.int32(track)
        person["valid"] = np.bool_(True)
        gtkps = data["gtkps"][r, :24]
        exact = betas.size == 10 or abs(betas[10]) <= ELEVENTH_BETA_TOLERANCE
        if exact:
            labels.smpl_person(person, models[gender], betas[:10], pose[3:], pose[:3], transl, k,
                               size)  # fmt: skip
            err = np.abs(person["joints_2d"] - gtkps).max()
            counts["gtkps_over_2px"] += int(err > GTKPS_TOLERANCE_PX)
            for flag in ("has_smpl", "has_pose", "has_global_orient", "has_betas", "has_transl"):
                person[flag] = np.bool_(True)
        else:  # the 11th shape component has no place in 10 betas (module doc)
            counts["persons_eleventh_beta"] += 1
            person["betas"] = betas[:10].astype(np.float32)
            person["body_pose"] = pose[3:].reshape(23, 3).astype(np.float32)
            person["global_orient"] = pose[:3].astype(np.float32)
            person["transl"] = transl.astype(np.float32)
            person["joints_2d"] = gtkps.astype(np.float32)
            person["visibility"] = cv.in_image(gtkps, np.ones(24), *size)
            person["has_2d"] = np.bool_(True)
            person["has_pose"] = person["has_global_orient"] = np.bool_(True)
        vis = person["visibility"] > 0
        person["bbox"] = cv.bbox_from_points(person["joints_2d"][vis], *size)
        return person


def _rotated(path: str) -> np.ndarray:
    """The image turned 90 degrees clockwise (BEDLAM closeup scenes), as uint8 [H W 3]."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").transpose(Image.Transpose.ROTATE_270))
