"""MPI-INF-3DHP (Mehta et al., 3DV 2017) training sequences from the official download.

Per sequence ``S{s}/Seq{q}/`` (SPIN datasets/preprocess/mpi_inf_3dhp.py, ROMP mpi_inf_3dhp.py):

* ``annot.mat`` (scipy.io): ``annot2`` and ``annot3``, one cell per camera (14), each ``[T 56]``
  pixels / ``[T 84]`` mm in that camera's frame, the 28 joints of ``keypoints.MPI_INF_28``;
  also ``univ_annot3`` (height-normalised, not used), ``cameras`` (the camera ids) and ``frames``.
* ``camera.calibration`` (text, "Skeletool Camera Calibration File"): a header line, then per
  camera a block ``name``, ``sensor``, ``size``, ``animated``, ``intrinsic`` (16 numbers, a 4x4
  row-major K), ``extrinsic`` (16 numbers, 4x4 world -> camera, translation in mm), ``radial``.
  Parsed by label (SPIN reads line ``7 c + 5`` / ``7 c + 6`` from character 11: the same lines).
* the frames, extracted from ``imageSequence/video_{c}.avi`` as SPIN does (``ffmpeg -i
  video_{c}.avi imageFrames/video_{c}/frame_%06d.jpg``, numbered from 1): row ``t`` of the
  annotation is ``imageFrames/video_{c}/frame_{t+1:06d}.jpg``. A camera whose folder is absent was
  not extracted: counted (``videos_missing``) and left out.

Persons: one per frame, its joints in ``keypoints_3d`` (camera frame, metres) and
``keypoints_2d`` (``annot2``; visible where inside the image), either the 17 joints of the test
set (``keypoints.MPI_INF_17``, the map ``MPI_INF_28_TO_17``; SPIN trains on these) or all 28
(hands, toes too; ROMP). There is no SMPL in the release; the NeuralAnnot side-car
``MPI-INF-3DHP_SMPL_NeuralAnnot.json`` (``{subject: {seq: {frame: {pose, shape, trans}}}}``, world
metres, I2L-MeshNet MPI_INF_3DHP.py) is moved into each camera with its extrinsic, and attached
when its SMPL limb joints lie within ``FIT_ERROR_MM`` (mean) of the dataset's joints at the same
points. Subjects S1-S7 train, S8 validation (ROMP); one ``sequence_id`` per ``S/Seq/video``,
``frame_index`` = the annotation row, rows kept where ``t % stride == 0``.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import logging
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from siam_jax.body import RestRoot
from siam_jax.body import keypoints as kp
from siam_jax.data import conversions as cv
from siam_jax.data import keypoint_fill, schema
from siam_jax.data.builders import labels
from siam_jax.data.builders.coco_family.sidecars import load_json
from siam_jax.data.builders.official import OfficialFormatBuilder

log = logging.getLogger(__name__)

SUBJECTS = {"train": (1, 2, 3, 4, 5, 6, 7), "validation": (8,)}
NUM_CAMERAS = 14
NUM_JOINTS = 28
# A NeuralAnnot fit vs the dataset's own joints at the SMPL points (limbs, neck, hands): the
# markerless joints and SMPL's joints differ by a few cm; a wrong world frame by metres.
FIT_ERROR_MM = 50.0
SIDECAR = "MPI-INF-3DHP_SMPL_NeuralAnnot.json"
_SMPL_POINTS = tuple(i for i, p in enumerate(kp.KEYPOINTS) if p.source == "smpl")

_INSTRUCTIONS = """\
MPI-INF-3DHP (https://vcai.mpi-inf.mpg.de/3dhp-dataset/, the download script of its release).
Place the training data as `manual_dir`:
  S{1..8}/Seq{1,2}/annot.mat, camera.calibration, imageSequence/video_{0..13}.avi
and extract the frames as SPIN does:
  ffmpeg -i S1/Seq1/imageSequence/video_0.avi S1/Seq1/imageFrames/video_0/frame_%06d.jpg
(only the cameras of the chosen config are needed). Optional NeuralAnnot fits
(github.com/mks0601/NeuralAnnot_RELEASE): MPI-INF-3DHP_SMPL_NeuralAnnot.json in `manual_dir`
(configs *_neuralannot), with SMPL_NEUTRAL in the body-model folder.
Licence: research use under the dataset's licence agreement (not verified with our search tools).
"""


@dataclasses.dataclass(kw_only=True)
class MpiInfConfig(tfds.core.BuilderConfig):
    cameras: tuple[int, ...] = (0, 1, 2, 4, 5, 6, 7, 8)  # SPIN / mmhuman3d
    stride: int = 10  # SPIN, ROMP: every 10th frame
    joint_set: str = "mpi_inf_17"
    neuralannot: bool = False


def read_annot(path: str) -> dict[str, list[np.ndarray]]:
    """``{'annot2': [cam] [T 28 2] px, 'annot3': [cam] [T 28 3] mm}`` of an ``annot.mat``."""
    from scipy import io as sio

    if not os.path.isfile(path):
        raise FileNotFoundError(f"missing file {path}")
    try:
        mat = sio.loadmat(path)
    except Exception as err:  # scipy raises several types for truncated / foreign files
        raise ValueError(f"{path}: unreadable annot.mat ({type(err).__name__}: {err})") from err
    out = {}
    for key, dim in (("annot2", 2), ("annot3", 3)):
        if key not in mat:
            raise ValueError(f"{path}: missing key {key!r}")
        cells = np.asarray(mat[key], dtype=object).reshape(-1)
        out[key] = []
        for c, cell in enumerate(cells):
            arr = np.asarray(cell, np.float64)
            if arr.ndim != 2 or arr.shape[1] != NUM_JOINTS * dim or not np.isfinite(arr).all():
                raise ValueError(f"{path}: {key}[{c}] has shape {arr.shape}, expected (T, "
                                 f"{NUM_JOINTS * dim})")  # fmt: skip
            out[key].append(arr.reshape(-1, NUM_JOINTS, dim))
    if "cameras" not in mat:
        raise ValueError(f"{path}: missing key 'cameras'")
    n2, n3 = len(out["annot2"]), len(out["annot3"])
    ncam = np.asarray(mat["cameras"]).size
    lengths = {a.shape[0] for a in out["annot2"] + out["annot3"]}
    if not n2 == n3 == ncam or len(lengths) != 1:
        raise ValueError(f"{path}: annot2 has {n2} cameras, annot3 {n3}, 'cameras' {ncam}, "
                         f"frame counts {sorted(lengths)} (want one count)")  # fmt: skip
    return out


def read_calibration(path: str) -> list[dict[str, np.ndarray]]:
    """Per camera ``{'k' 3x3, 'R' 3x3, 't' [3] metres}`` of a ``camera.calibration`` file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"missing file {path}")
    cams: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            tokens = line.split()
            if not tokens:
                continue
            if tokens[0] == "name":
                cams.append({"name": " ".join(tokens[1:]), "line": n})
            elif tokens[0] in ("intrinsic", "extrinsic"):
                if not cams:
                    raise ValueError(f"{path}: line {n}: {tokens[0]!r} before any 'name'")
                try:
                    values = np.array([float(v) for v in tokens[1:]])
                except ValueError as err:
                    raise ValueError(f"{path}: line {n}: {tokens[0]!r}: {err}") from None
                if values.size != 16:
                    raise ValueError(f"{path}: line {n}: {tokens[0]!r} has {values.size} values, "
                                     "expected 16 (a 4x4 matrix)")  # fmt: skip
                cams[-1][tokens[0]] = values.reshape(4, 4)
    out = []
    for c, cam in enumerate(cams):
        for key in ("intrinsic", "extrinsic"):
            if key not in cam:
                raise ValueError(f"{path}: camera {c} (line {cam['line']}) has no {key!r} line")
        e = cam["extrinsic"]
        out.append({"k": cam["intrinsic"][:3, :3], "R": e[:3, :3], "t": e[:3, 3] / 1000.0})
    return out


def sequences(manual: str) -> dict[str, list[tuple[int, int]]]:
    """``{split: [(subject, seq)]}`` of the ``S*/Seq*/annot.mat`` under ``manual``."""
    out: dict[str, list[tuple[int, int]]] = {split: [] for split in SUBJECTS}
    for path in sorted(glob.glob(os.path.join(manual, "S*", "Seq*", "annot.mat"))):
        m = re.search(r"S(\d+)[/\\]Seq(\d+)[/\\]annot\.mat$", path)
        if m is None:
            continue
        s, q = int(m.group(1)), int(m.group(2))
        for split, subjects in SUBJECTS.items():
            if s in subjects:
                out[split].append((s, q))
    return out


class MpiInf3dhp(OfficialFormatBuilder):
    """MPI-INF-3DHP training frames (module doc); splits train (S1-S7), validation (S8)."""

    name = "mpi_inf_3dhp"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "annot.mat + camera.calibration + frames, schema 2."}  # noqa: RUF012
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    HOMEPAGE = "https://vcai.mpi-inf.mpg.de/3dhp-dataset/"
    BUILDER_CONFIGS = [  # noqa: RUF012
        MpiInfConfig(name="spin", description="cameras 0-2, 4-8, every 10th frame, 17 joints"),
        MpiInfConfig(name="spin_neuralannot", neuralannot=True,
                     description="as spin, with NeuralAnnot SMPL fits"),
        MpiInfConfig(name="all_28", cameras=tuple(range(NUM_CAMERAS)), stride=1,
                     joint_set="mpi_inf_28", description="every camera and frame, 28 joints"),
    ]  # fmt: skip

    def missing_files(self, manual: str) -> list[str]:
        missing = []
        found = sequences(manual)
        if not found["train"]:
            missing.append(f"train sequences: {manual}/S{{1..7}}/Seq{{1,2}}/annot.mat")
        for s, q in found["train"] + found["validation"]:
            calib = os.path.join(manual, f"S{s}", f"Seq{q}", "camera.calibration")
            missing += labels.require_files({f"S{s}/Seq{q} calibration": calib})
        if self.builder_config.neuralannot:
            missing += labels.require_files({"NeuralAnnot": os.path.join(manual, SIDECAR)})
            missing += labels.missing_body_models(self._body_model_folder(manual))
        return missing

    def _split_generators(self, dl_manager):
        genders = ("neutral",) if self.builder_config.neuralannot else ()
        manual, models = labels.require_manual(self, dl_manager, "MPI-INF-3DHP", genders)
        fits = None
        if self.builder_config.neuralannot:
            model = models["neutral"]
            path = os.path.join(manual, SIDECAR)
            fits = {"path": path, "data": load_json(path), "model": model,
                    "rest_root": RestRoot.from_body_model(model)}  # fmt: skip
        self.info.metadata["video"] = True
        out = {}
        for split, seqs in sequences(manual).items():
            self.info.metadata[f"sequences_read_{split}"] = [f"S{s}/Seq{q}" for s, q in seqs]
            if seqs:
                out[split] = self._generate_examples(manual, split, seqs, fits)
        return out

    def _generate_examples(self, manual, split, seqs, fits):
        counts: collections.Counter = collections.Counter()
        stats: dict[str, list[float]] = {}
        for s, q in seqs:
            yield from self._sequence(manual, split, s, q, fits, counts, stats)
        labels.record(self.info.metadata, split, counts, stats)

    def _sequence(self, manual, split, s, q, fits, counts, stats):
        folder = os.path.join(manual, f"S{s}", f"Seq{q}")
        annot = read_annot(os.path.join(folder, "annot.mat"))
        calib_path = os.path.join(folder, "camera.calibration")
        cams = read_calibration(calib_path)
        if len(cams) != len(annot["annot2"]):
            mat = os.path.join(folder, "annot.mat")
            raise ValueError(
                f"{calib_path}: {len(cams)} cameras, but {mat} has {len(annot['annot2'])}"
            )
        for c in self.builder_config.cameras:
            if c >= len(cams):
                raise ValueError(f"{calib_path}: no camera {c} (the file has {len(cams)})")
            video = os.path.join(folder, "imageFrames", f"video_{c}")
            if not os.path.isdir(video):
                counts["videos_missing"] += 1
                log.warning("MPI-INF-3DHP: %s not extracted; camera left out", video)
                continue
            counts["sequences"] += 1
            for t in range(0, annot["annot2"][c].shape[0], self.builder_config.stride):
                where = f"{folder}/annot.mat camera {c} frame {t}"
                example = self._example(manual, s, q, c, t, annot, cams[c], fits, where, counts,
                                        stats)  # fmt: skip
                if example is not None:
                    yield f"{split}/S{s}/Seq{q}/{c}/{t:06d}", example

    def _example(self, manual, s, q, c, t, annot, cam, fits, where, counts, stats):
        rel = os.path.join(
            f"S{s}", f"Seq{q}", "imageFrames", f"video_{c}", f"frame_{t + 1:06d}.jpg"
        )
        path = os.path.join(manual, rel)
        size = labels.image_size(path, counts, where)
        if size is None:
            return None
        person = self._person(annot["annot2"][c][t], annot["annot3"][c][t] / 1000.0, cam, size,
                              counts, where)  # fmt: skip
        if person is None:
            counts["frames_person_outside_image"] += 1
            return None
        if fits is not None:
            entry = labels.nested(fits["data"], (s, q, t), fits["path"], required=False)
            if entry is None:
                counts["fits_missing"] += 1
            else:
                fit = labels.read_world_fit(entry, f"{fits['path']} ['{s}']['{q}']['{t}']")
                labels.attach_world_fit(person, fit, cam, size, fits["model"], fits["rest_root"],
                                        _limb_error_mm, FIT_ERROR_MM, counts, stats)  # fmt: skip
        schema.check_person(person, where)
        counts["images"] += 1
        return {
            "image": path,
            "intrinsics": cam["k"].astype(np.float32),
            "sequence_id": f"S{s}/Seq{q}/video_{c}",
            "frame_index": t,
            "image_name": rel,
            "persons": schema.stack_persons([person]),
            **schema.frame_annotation(True),  # one subject in the studio (ROMP: detect all)
        }

    def _person(self, uv28, xyz28, cam, size, counts, where) -> dict | None:
        width, height = size
        if np.any(xyz28[:, 2] <= 0):
            raise ValueError(f"{where}: annot3 has joints behind the camera")
        err = np.abs(cv.project_points(xyz28, cam["k"]) - uv28).max()
        counts["keypoints_reprojection_over_1px"] += int(err > 1.0)
        if self.builder_config.joint_set == "mpi_inf_17":
            idx = list(kp.MPI_INF_28_TO_17)
            uv, xyz = uv28[idx], xyz28[idx]
        else:
            uv, xyz = uv28, xyz28
        inside = cv.in_image(uv, xyz[:, 2], width, height) > 0
        if not inside.any():
            return None
        person = schema.empty_person()
        keypoint_fill.fill_keypoints(person, self.builder_config.joint_set, uv, inside, xyz,
                                     np.ones(len(xyz)))  # fmt: skip
        person["bbox"] = cv.bbox_from_points(uv[inside], width, height)
        person["valid"] = np.bool_(True)
        return person


def _limb_error_mm(person: dict, vertices: np.ndarray) -> float:
    """Mean distance (mm) of the fit's SMPL joints to the dataset's joints stored at the SMPL
    points of the superset (shoulders, elbows, wrists, knees, ankles; neck and hands with 28)."""
    known = [i for i in _SMPL_POINTS if person["keypoints_3d_visibility"][i] > 0]
    smpl = [kp.KEYPOINTS[i].index for i in known]
    diff = person["joints_3d"][smpl] - person["keypoints_3d"][known]
    return 1000.0 * float(np.mean(np.linalg.norm(diff, axis=-1)))
