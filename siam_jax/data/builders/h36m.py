"""Human3.6M (Ionescu et al., TPAMI 2014) from the COCO-style json quartet of Moon et al.
(3DMPPE / I2L-MeshNet, ``data/Human36M/Human36M.py``) with NeuralAnnot SMPL fits.

Per subject, under ``manual_dir/annotations``:

* ``Human36M_subject{S}_data.json``: COCO-style; images carry ``subject``, ``action_idx``,
  ``subaction_idx``, ``cam_idx`` (1-4), ``frame_idx`` (0-based), ``file_name``
  (``s_01_act_02_subact_01_ca_01/s_01_act_02_subact_01_ca_01_000001.jpg``), width, height;
  annotations ``bbox`` [x, y, w, h] and ``keypoints_vis`` (17 bools).
* ``Human36M_subject{S}_camera.json``: ``{cam_idx: {R 3x3, t [3] mm, f [2], c [2]}}``, world ->
  camera ``X_c = R X_w + t`` (I2L utils/transforms.py world2cam), pixels ``f X/Z + c`` (cam2pixel).
* ``Human36M_subject{S}_joint_3d.json``: ``{action: {subaction: {frame: 17x3 world mm}}}`` in
  the H36M-17 order, joint i = row i of J_regressor_h36m (``keypoints.H36M_17``).
* ``Human36M_subject{S}_SMPL_NeuralAnnot.json`` (older name ``_smpl_param.json``): ``{action:
  {subaction: {frame: {pose 72, shape 10, trans 3}}}}``, the neutral SMPL in **world** metres.

A fit is moved into each camera rigidly (``conversions.transform_smpl_root`` with ``A = R``,
``b = t / 1000``): ``global_orient' = R global_orient`` (I2L get_smpl_coord left-multiplies the
root pose by R) and ``transl' = R (J0 + trans) + t/1000 - J0``, so that the posed root joint lands
at ``R (J0 + trans) + t``; J0 depends on the betas (``siam_jax.body.RestRoot``). As in I2L
(``fitting_thr`` 25 mm) a fit whose H36M joints (the body model's H36M regressor) are further than
``FIT_ERROR_MM`` (mean per joint, after aligning the means) from the dataset's 3D joints is not
attached (``fits_rejected_error``); without a regressor in the body model the check cannot run and
``info.metadata['fit_error_checked']`` says so.

NeuralAnnot fits of H36M are made to the multi-view 3D joints in calibrated cameras, so every SMPL
term is supervised (``has_pose``, ``has_global_orient``, ``has_betas``, ``has_transl``), with
``smpl_source`` 'neuralannot' and ``has_smpl`` False (not the dataset's own reference: evaluation
uses the 3D joints). ``joints_3d``/``joints_2d`` come from the fit; the dataset's joints are in
``keypoints_3d``/``keypoints_2d`` and ``joints_h36m_3d``. One person per frame, every person
annotated. Subjects S1, S5-S8 train, S9 and S11 validation (the field's protocol); one
``sequence_id`` per (subject, action, subaction, camera) video (the image folder name),
``frame_index`` = ``frame_idx``; frames kept where ``frame_idx % stride == 0`` (every 5th for
training as I2L/SPIN, every 64th for evaluation as I2L's protocol, configurable).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os

import numpy as np
import tensorflow_datasets as tfds

from siam_jax.body import RestRoot
from siam_jax.data import conversions as cv
from siam_jax.data import keypoint_fill, schema
from siam_jax.data.builders import labels
from siam_jax.data.builders.coco_family import annotations as ann_lib
from siam_jax.data.builders.coco_family.sidecars import load_json
from siam_jax.data.builders.official import OfficialFormatBuilder

log = logging.getLogger(__name__)

SUBJECTS = {"train": (1, 5, 6, 7, 8), "validation": (9, 11)}
FIT_ERROR_MM = 25.0  # I2L-MeshNet Human36M.py fitting_thr
NUM_JOINTS = 17
CAMERAS = (1, 2, 3, 4)
IMAGE_KEYS = ("subject", "action_idx", "subaction_idx", "cam_idx", "frame_idx")
SMPL_NAMES = ("SMPL_NeuralAnnot", "smpl_param")

_INSTRUCTIONS = """\
Human3.6M (http://vision.imar.ro/human3.6m/, registration) in the parsed form of 3DMPPE /
I2L-MeshNet (github.com/mks0601/I2L-MeshNet_RELEASE, "Human3.6M parsed data") with NeuralAnnot SMPL
fits (github.com/mks0601/NeuralAnnot_RELEASE). Place as `manual_dir`:
  annotations/Human36M_subject{S}_data.json, _camera.json, _joint_3d.json,
  annotations/Human36M_subject{S}_SMPL_NeuralAnnot.json   (configs neuralannot*)
  images/s_01_act_02_subact_01_ca_01/s_01_act_02_subact_01_ca_01_000001.jpg ...
for S in 1 5 6 7 8 (train; all required) and 9 11 (validation; optional). The neutral SMPL model
goes in the body-model folder (`--body_model_dir`, default manual_dir/body_models), optionally with
the H36M regressor (save_body_model of a model loaded with h36m_regressor_path) for the fit check.
Licence: Human3.6M is for non-commercial research after registration, no redistribution (not
verified with our search tools: read the terms on the site).
"""


@dataclasses.dataclass(kw_only=True)
class H36mConfig(tfds.core.BuilderConfig):
    """``smpl``: attach the NeuralAnnot fits; ``strides``: keep ``frame_idx % stride == 0`` per
    split; ``val_cameras``: cameras of the validation split (empty: all four)."""

    smpl: bool = True
    strides: tuple[tuple[str, int], ...] = (("train", 5), ("validation", 64))
    val_cameras: tuple[int, ...] = ()


def subject_files(manual: str, subject: int) -> dict[str, str]:
    base = os.path.join(manual, "annotations", f"Human36M_subject{subject}")
    out = {k: f"{base}_{k}.json" for k in ("data", "camera", "joint_3d")}
    candidates = [f"{base}_{name}.json" for name in SMPL_NAMES]
    out["smpl"] = next((p for p in candidates if os.path.isfile(p)), candidates[0])
    return out


def read_cameras(path: str) -> dict[int, dict[str, np.ndarray]]:
    """``{cam_idx: {'R', 't' (metres), 'k'}}`` of a ``_camera.json``; all four cameras."""
    data = load_json(path)
    out = {}
    for cam in CAMERAS:
        entry = labels.nested(data, (cam,), path)
        where = f"{path}: camera {cam}"
        r = labels.field(entry, "R", (3, 3), where)
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-5) or np.linalg.det(r) < 0:
            raise ValueError(f"{where}: 'R' is not a rotation matrix")
        f = labels.field(entry, "f", (2,), where)
        c = labels.field(entry, "c", (2,), where)
        k = np.array([[f[0], 0.0, c[0]], [0.0, f[1], c[1]], [0.0, 0.0, 1.0]])
        out[cam] = {"R": r, "t": labels.field(entry, "t", (3,), where) / 1000.0, "k": k}
    return out


class H36m(OfficialFormatBuilder):
    """Human3.6M frames (module doc); splits train (S1, S5-S8) and validation (S9, S11)."""

    name = "h36m"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Moon json quartet, NeuralAnnot fits, schema 2."}  # noqa: RUF012
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    HOMEPAGE = "http://vision.imar.ro/human3.6m/"
    BUILDER_CONFIGS = [  # noqa: RUF012
        H36mConfig(name="neuralannot", description="every 5th train / 64th validation frame, "
                   "all cameras, NeuralAnnot SMPL"),
        H36mConfig(name="neuralannot_protocol2", val_cameras=(4,),
                   description="as neuralannot, validation on the frontal camera 4 only (I2L)"),
        H36mConfig(name="neuralannot_all_frames", strides=(("train", 1), ("validation", 1)),
                   description="every frame, NeuralAnnot SMPL"),
        H36mConfig(name="joints", smpl=False, description="3D/2D joints only, no SMPL"),
    ]  # fmt: skip

    def missing_files(self, manual: str) -> list[str]:
        missing = []
        for subject in SUBJECTS["train"]:
            files = subject_files(manual, subject)
            if not self.builder_config.smpl:
                files.pop("smpl")
            missing += labels.require_files({f"S{subject} {k}": p for k, p in files.items()})
        if not os.path.isdir(os.path.join(manual, "images")):
            missing.append(f"images folder: {os.path.join(manual, 'images')}")
        if self.builder_config.smpl:
            missing += labels.missing_body_models(self._body_model_folder(manual))
        return missing

    def _split_generators(self, dl_manager):
        # NeuralAnnot fits the neutral SMPL (I2L: smpl.layer['neutral']).
        genders = ("neutral",) if self.builder_config.smpl else ()
        manual, models = labels.require_manual(self, dl_manager, "Human3.6M", genders)
        model = models.get("neutral")
        if model is not None:
            self.info.metadata["fit_error_checked"] = model.h36m_regressor is not None
        self.info.metadata["video"] = True
        out = {}
        for split, subjects in SUBJECTS.items():
            present = [s for s in subjects if os.path.isfile(subject_files(manual, s)["data"])]
            self.info.metadata[f"subjects_{split}"] = [f"S{s}" for s in present]
            if present:
                out[split] = self._generate_examples(manual, split, present, model)
            else:
                log.warning("Human3.6M: no subject of %s under %s; split left out", split, manual)
        return out

    def _generate_examples(self, manual: str, split: str, subjects: list[int], model):
        counts: collections.Counter = collections.Counter()
        stats: dict[str, list[float]] = {}
        stride = dict(self.builder_config.strides)[split]
        cameras = self.builder_config.val_cameras if split == "validation" else ()
        for subject in subjects:
            yield from self._subject(manual, split, subject, model, stride, cameras, counts, stats)
        self.info.metadata[f"stride_{split}"] = stride
        labels.record(self.info.metadata, split, counts, stats)

    def _subject(self, manual, split, subject, model, stride, cameras, counts, stats):
        files = subject_files(manual, subject)
        coco = ann_lib.read_coco(files["data"], ("bbox", "keypoints_vis"), IMAGE_KEYS)
        cams = read_cameras(files["camera"])
        joints = (files["joint_3d"], load_json(files["joint_3d"]))
        fits = (files["smpl"], load_json(files["smpl"])) if model is not None else None
        rest_root = RestRoot.from_body_model(model) if model is not None else None
        sequences: dict[str, list[dict]] = collections.defaultdict(list)
        for image in coco.images.values():
            if int(image["subject"]) != subject:
                raise ValueError(f"{coco.path}: image {image['id']} has 'subject' "
                                 f"{image['subject']}, expected {subject}")  # fmt: skip
            sequences[os.path.dirname(str(image["file_name"]))].append(image)
        for seq in sorted(sequences):
            frames = sorted(sequences[seq], key=lambda im: int(im["frame_idx"]))
            counts["sequences"] += 1
            for image in frames:
                if int(image["frame_idx"]) % stride or (
                    cameras and image["cam_idx"] not in cameras
                ):
                    counts["frames_subsampled_out"] += 1
                    continue
                example = self._example(manual, coco, image, cams, joints, fits, model, rest_root,
                                        counts, stats)  # fmt: skip
                if example is not None:
                    yield f"{split}/{image['file_name']}", example

    def _example(self, manual, coco, image, cams, joints, fits, model, rest_root, counts, stats):
        file_name = str(image["file_name"])
        where = f"{coco.path}: image {image['id']} ({file_name})"
        anns = coco.by_image.get(image["id"], [])
        if len(anns) != 1:
            raise ValueError(f"{where}: {len(anns)} annotations, Human3.6M has one person a frame")
        path = os.path.join(manual, "images", file_name)
        size = labels.image_size(path, counts, where)
        if size is None:
            return None
        cam = cams.get(int(image["cam_idx"]))
        if cam is None:
            raise ValueError(f"{where}: 'cam_idx' {image['cam_idx']} is not one of {CAMERAS}")
        keys = (image["action_idx"], image["subaction_idx"], image["frame_idx"])
        joints_path, joints_data = joints
        world = labels.as_array(labels.nested(joints_data, keys, joints_path), (NUM_JOINTS, 3),
                                f"{joints_path} {list(map(str, keys))}") / 1000.0  # fmt: skip
        person = self._person(anns[0], world, cam, size, f"{coco.path}: annotation "
                              f"{anns[0]['id']}")  # fmt: skip
        if fits is not None:
            fits_path, fits_data = fits
            entry = labels.nested(fits_data, keys, fits_path, required=False)
            if entry is None:  # NeuralAnnot does not fit every frame (I2L: smpl_param None)
                counts["fits_missing"] += 1
            else:
                fit = labels.read_world_fit(entry, f"{fits_path} {list(map(str, keys))}")
                if labels.attach_world_fit(person, fit, cam, size, model, rest_root,
                                           self._fit_error_mm(model), FIT_ERROR_MM, counts,
                                           stats):  # fmt: skip
                    person["gender"] = np.int32(schema.GENDERS.index("neutral"))
        schema.check_person(person, where)
        counts["images"] += 1
        return {
            "image": path,
            "intrinsics": cam["k"].astype(np.float32),
            "sequence_id": os.path.dirname(file_name),
            "frame_index": int(image["frame_idx"]),
            "image_name": file_name,
            "persons": schema.stack_persons([person]),
            **schema.frame_annotation(True),  # one subject in the studio, annotated
        }

    def _person(self, ann: dict, world: np.ndarray, cam: dict, size, where: str) -> dict:
        width, height = size
        joints = world @ cam["R"].T + cam["t"]
        if np.any(joints[:, 2] <= 0):
            raise ValueError(f"{where}: 3D joints behind the camera")
        uv = cv.project_points(joints, cam["k"])
        vis = np.asarray(ann["keypoints_vis"], bool).reshape(-1)
        if vis.size != NUM_JOINTS:
            raise ValueError(f"{where}: 'keypoints_vis' has {vis.size} values, expected 17")
        person = schema.empty_person()
        inside = cv.in_image(uv, joints[:, 2], width, height) > 0
        keypoint_fill.fill_keypoints(person, "h36m_17", uv, vis & inside, joints, np.ones(17))
        person["joints_h36m_3d"] = joints.astype(np.float32)
        person["h36m_visibility"] = np.ones(NUM_JOINTS, np.float32)
        person["has_h36m"] = np.bool_(True)
        box = ann_lib.xywh_box(ann, width, height, where)
        person["bbox"] = box if box is not None else cv.bbox_from_points(uv, width, height)
        person["valid"] = np.bool_(True)
        return person

    @staticmethod
    def _fit_error_mm(model):
        """I2L get_fitting_error: the fit's H36M joints (the body model's regressor), mean
        aligned to the root-relative dataset joints; None without a regressor."""

        def error(person, vertices):
            if model.h36m_regressor is None:
                return None
            fitted = np.asarray(model.regress_h36m(vertices[None].astype(np.float32))[0])
            gt = np.asarray(person["joints_h36m_3d"], np.float64)
            gt = gt - gt[0]
            fitted = fitted - fitted.mean(0) + gt.mean(0)
            return 1000.0 * float(np.mean(np.linalg.norm(fitted - gt, axis=-1)))

        return error
