"""TFDS builder for the CMU-Panoptic multi-person benchmark (Zanfir et al.; CRMH's release).

Reads CRMH's per-image annotation pickles (CRMH misc/preprocess_datasets/full/panoptic.py;
PROTOCOLS.md 3.1): each a list of dicts ``filename, width, height, bboxes (P,4|5),
kpts2d (P,24,3), kpts3d (P,24,4)`` in CRMH's 24-joint superset (the SPIN 24 order), camera frame,
metres, the 4th/3rd column a 0/1 visibility.

Per person: ``joints_h36m_3d = kpts3d[:, J24_TO_H36M, :3]`` (CRMH smpl_utils.py) and
``h36m_visibility`` from its 4th column; ``has_h36m=True``, ``has_smpl=has_3d=has_2d=False``
(the 24 superset is not the SMPL-24 set); ``bbox`` from ``bboxes``.

``sequence_id`` = the file name without the frame number, ``/`` turned into ``-``, e.g.
``160422_haggling1-00_16`` for ``160422_haggling1-00_16_00002000.jpg`` or
``160422_haggling1/00_16_00002000.jpg``; ``frame_index`` = that frame number. The activity is
``panoptic_activity(sequence_id)`` (haggling, mafia, ultimatum, pizza).

Intrinsics: CRMH's annotations carry no K. Each sequence_id is one camera at one image scale, so we
fit ``fx, fy, cx, cy`` by least squares to all its visible (kpts3d, kpts2d) pairs
(conversions.fit_intrinsics); the RMS reprojection error in pixels is kept in
``info.metadata['intrinsics_rms_px']`` per sequence (the released 2D points include lens
distortion, so it is not 0 on real data).
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from siam_jax.body import joint_sets
from siam_jax.common import safe_pickle
from siam_jax.data import conversions as cv
from siam_jax.data import schema
from siam_jax.data.builders import labels
from siam_jax.data.builders.official import OfficialFormatBuilder

log = logging.getLogger(__name__)

ACTIVITIES = ("haggling", "mafia", "ultimatum", "pizza")
REQUIRED_KEYS = ("filename", "width", "height", "bboxes", "kpts2d", "kpts3d")
MIN_FIT_POINTS = 6

_INSTRUCTIONS = """\
Get CRMH's CMU-Panoptic test annotations and images (github.com/JiangWenPL/multiperson,
DATASETS.md: sequences 160422_haggling1, 160422_mafia2, 160422_ultimatum1, 160906_pizza1,
HD cameras 00_16 and 00_30) and place under `manual_dir`:
  annotations/*.pkl          (CRMH annotation pickles: a list of per-image dicts)
  images/<filename>          (each annotation's `filename`, a path relative to images/)
No body model is needed.
"""


def panoptic_activity(sequence_id: str) -> str:
    """The activity of a sequence id ('160422_haggling1-00_16' -> 'haggling')."""
    for name in ACTIVITIES:
        if name in sequence_id:
            return name
    raise ValueError(f"sequence id {sequence_id!r} names none of the activities {ACTIVITIES}")


def split_filename(filename: str) -> tuple[str, int | None]:
    """``(sequence_id, frame_index)`` parsed from an annotation file name (module doc)."""
    stem = os.path.splitext(filename)[0].replace("\\", "/").strip("/").replace("/", "-")
    m = re.fullmatch(r"(.+?)[_-](\d+)", stem)
    if m is None:
        return stem, None
    return m.group(1), int(m.group(2))


def read_annotations(path: str) -> list[dict]:
    """A CRMH annotation pickle, each entry checked (file, index and key named on errors)."""
    try:
        data = safe_pickle.load(path, "Panoptic annotation file")
    except safe_pickle.UnsafePickleError:
        raise
    except Exception as err:
        raise ValueError(f"Panoptic annotation file {path} is unreadable: {err}") from err
    if not isinstance(data, (list, tuple)):
        raise ValueError(f"Panoptic annotation file {path} holds {type(data).__name__}, want list")
    for i, ann in enumerate(data):
        missing = [k for k in REQUIRED_KEYS if k not in ann]
        if missing:
            raise ValueError(f"{path}[{i}] lacks keys {missing}")
        k2, k3 = np.asarray(ann["kpts2d"]), np.asarray(ann["kpts3d"])
        p = k3.shape[0] if k3.ndim == 3 else -1
        if k3.shape != (p, 24, 4) or k2.shape != (p, 24, 3):
            raise ValueError(
                f"{path}[{i}]: 'kpts2d'/'kpts3d' have shapes {k2.shape}/{k3.shape}, "
                "expected (P,24,3)/(P,24,4)"
            )
        if np.asarray(ann["bboxes"]).reshape(-1).size not in (4 * p, 5 * p):
            raise ValueError(
                f"{path}[{i}]: 'bboxes' has shape {np.shape(ann['bboxes'])} for {p} persons"
            )
    return list(data)


def check_image_size(image: str, size: tuple[int, int], ann: dict) -> None:
    """The stored image must be the annotation's ``width`` x ``height``: CRMH's 2D points are in
    its resized (832 px) frame, so another image size would put every 2D joint elsewhere."""
    want = (int(ann["width"]), int(ann["height"]))
    if tuple(int(x) for x in size) != want:
        raise ValueError(
            f"CMU-Panoptic {image}: the image is {size[0]}x{size[1]} px but its annotation "
            f"({ann['filename']}) says width x height = {want[0]}x{want[1]}; CRMH's kpts2d are "
            "in the resized (832 px) frame: use the images CRMH's preprocessing wrote"
        )


def fit_sequence_intrinsics(anns: list[dict]) -> tuple[np.ndarray, float]:
    """K fitted to every visible joint of a sequence's annotations, and its RMS error (px)."""
    p3, p2 = [], []
    for ann in anns:
        k3 = np.asarray(ann["kpts3d"], np.float64).reshape(-1, 4)
        k2 = np.asarray(ann["kpts2d"], np.float64).reshape(-1, 3)
        ok = (k3[:, 3] > 0) & (k2[:, 2] > 0) & (k3[:, 2] > 1e-3)
        p3.append(k3[ok, :3])
        p2.append(k2[ok, :2])
    p3, p2 = np.concatenate(p3), np.concatenate(p2)
    if len(p3) < MIN_FIT_POINTS:
        raise ValueError(f"only {len(p3)} visible joints, need {MIN_FIT_POINTS} to fit K")
    k = cv.fit_intrinsics(p3, p2)
    rms = float(np.sqrt(np.mean(np.sum((cv.project_points(p3, k) - p2) ** 2, -1))))
    return k, rms


def annotation_persons(ann: dict) -> list[dict]:
    k3 = np.asarray(ann["kpts3d"], np.float64)
    boxes = np.asarray(ann["bboxes"], np.float64).reshape(k3.shape[0], -1)[:, :4]
    idx = np.asarray(joint_sets.J24_TO_H36M)
    persons = []
    for i in range(k3.shape[0]):
        p = schema.empty_person()
        p["joints_h36m_3d"] = k3[i, idx, :3].astype(np.float32)
        p["h36m_visibility"] = (k3[i, idx, 3] > 0).astype(np.float32)
        p["has_h36m"] = np.bool_(True)
        p["valid"] = np.bool_(True)
        p["bbox"] = boxes[i].astype(np.float32)
        persons.append(p)
    return persons


class CmuPanoptic(OfficialFormatBuilder):
    """CMU-Panoptic test frames (CRMH annotations) in the shared schema; one split, 'test'."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {  # noqa: RUF012
        "1.0.0": "CRMH annotation pickles.",
        "1.1.0": "Schema 2 fields (flags off, all_persons_annotated False, no ignore boxes).",
    }

    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    IMAGE_FORMAT = "jpeg"
    HOMEPAGE = "http://domedb.perception.cs.cmu.edu/"

    def missing_files(self, manual: str) -> list[str]:
        """Required files absent from ``manual`` (``prepare`` prints them with the instructions)."""
        return labels.missing_globs(manual, ("annotations/*.pkl", "images"))

    def _split_generators(self, dl_manager):
        manual, _ = labels.require_manual(self, dl_manager, "CMU-Panoptic")
        folder = os.path.join(manual, "annotations")
        return {"test": self._generate_examples(manual, folder)}

    def _generate_examples(self, manual: str, folder: str):
        by_seq: dict[str, list[tuple[int, dict]]] = {}
        for name in sorted(f for f in os.listdir(folder) if f.endswith(".pkl")):
            for i, ann in enumerate(read_annotations(os.path.join(folder, name))):
                seq, frame = split_filename(str(ann["filename"]))
                by_seq.setdefault(seq, []).append((i if frame is None else frame, ann))
        skipped_images, skipped_sequences, rms_px = 0, 0, {}
        for seq in sorted(by_seq):
            items = sorted(by_seq[seq], key=lambda x: x[0])
            try:
                k, rms = fit_sequence_intrinsics([a for _, a in items])
            except ValueError as err:
                log.warning("CMU-Panoptic %s: skipping the sequence: %s", seq, err)
                skipped_sequences += 1
                continue
            rms_px[seq] = rms
            for frame, ann in items:
                image = os.path.join(manual, "images", str(ann["filename"]))
                try:
                    size = cv.check_image(image)
                except (FileNotFoundError, ValueError) as err:
                    log.warning("CMU-Panoptic %s: skipping: %s", seq, err)
                    skipped_images += 1
                    continue
                check_image_size(image, size, ann)
                yield (
                    f"{seq}/{frame:08d}",
                    {
                        "image": image,
                        "intrinsics": k.astype(np.float32),
                        "sequence_id": seq,
                        "frame_index": frame,
                        "image_name": str(ann["filename"]),
                        "persons": schema.stack_persons(annotation_persons(ann)),
                        # Not verified that CRMH keeps every person of a frame (test only).
                        **schema.frame_annotation(False),
                    },
                )
        self.info.metadata["skipped_images_test"] = skipped_images
        self.info.metadata["skipped_sequences_test"] = skipped_sequences
        self.info.metadata["intrinsics_rms_px"] = rms_px
        if skipped_images or skipped_sequences:
            log.warning(
                "CMU-Panoptic: skipped %d images, %d sequences", skipped_images, skipped_sequences
            )
