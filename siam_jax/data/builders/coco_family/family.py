"""The COCO-format multi-person builder family: one generator, pluggable joint conventions.

A dataset of the family is a ``FamilySpec`` (its joint set, file layout, camera and whether every
person of an image is annotated) plus, where it differs, a few hooks of ``CocoFamilyBuilder``
(``parse_annotation``, ``frame_ignore_boxes``, ``sequence_of``, ``skip_image``, ``intrinsics``).
Per image (docs/training_data.md):

* annotations with ``iscrowd`` and persons without any labelled keypoint become ``ignore_boxes``
  (COCO's evaluation ignores both; ROMP coco14.py get_exclude_mask masks both out), the others
  persons with their joints in the keypoint superset and the SMPL limb joints in ``joints_2d``;
* a side-car config (``neuralannot`` / ``eft``) attaches pseudo-SMPL fits, moved into the frame
  camera (``fit_camera``), with ``has_pose`` and ``has_global_orient`` only;
* everything read, skipped and why is counted into ``info.metadata`` as ``<count>_<split>``.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import logging
import os
from collections.abc import Mapping

import numpy as np
import tensorflow_datasets as tfds

from siam_jax.body import keypoints as kp
from siam_jax.data import conversions as cv
from siam_jax.data import keypoint_fill, schema
from siam_jax.data.builders import labels
from siam_jax.data.builders.coco_family import annotations as ann_lib
from siam_jax.data.builders.coco_family import fit_camera, sidecars

log = logging.getLogger(__name__)

# A converted fit whose joints land further than this (RMS, relative to the fit's height in
# pixels) from where its own camera put them is not attached (counted: fits_rejected_residual).
MAX_FIT_RESIDUAL = 0.05
SIDECARS = ("none", "neuralannot", "eft")


@dataclasses.dataclass(frozen=True)
class SplitLayout:
    """Where a split's files are, relative to ``manual_dir`` (first existing candidate wins).
    ``annotations`` ending in ``/`` is a folder of per-video json files (PoseTrack)."""

    annotations: tuple[str, ...]
    images: tuple[str, ...]
    sidecars: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    required: bool = True


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    dataset: str
    joint_set: str  # siam_jax.body.keypoints.DATASET_JOINTS key
    json_keypoint_names: tuple[str, ...] | None  # what categories[*]['keypoints'] must say
    ann_keys: tuple[str, ...]
    image_keys: tuple[str, ...]
    all_persons_annotated: bool
    video: bool
    splits: Mapping[str, SplitLayout]
    homepage: str


class FamilyConfig(tfds.core.BuilderConfig):
    """``sidecar``: 'none', 'neuralannot' or 'eft'; ``options``: dataset-specific switches."""

    def __init__(self, *, sidecar: str = "none", options: Mapping | None = None, **kwargs):
        if sidecar not in SIDECARS:
            raise ValueError(f"sidecar must be one of {SIDECARS}, got {sidecar!r}")
        super().__init__(**kwargs)
        self.sidecar = sidecar
        self.options = dict(options or {})


def first_existing(manual: str, candidates: tuple[str, ...]) -> str | None:
    for rel in candidates:
        path = os.path.join(manual, rel.rstrip("/")) if rel.rstrip("/") else manual
        if os.path.isdir(path) if rel.endswith("/") else os.path.isfile(path):
            return path
    return None


class _Fits:
    """The side-car fits of one annotation file, consumed as they are attached."""

    def __init__(self):
        self.by_ann: dict[int, fit_camera.Fit] = {}
        self.by_image: dict[str, list[tuple[np.ndarray, fit_camera.Fit]]] = {}

    def __len__(self):
        return len(self.by_ann) + sum(len(v) for v in self.by_image.values())


class CocoFamilyBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared generator of the COCO-format datasets (module doc); subclasses set ``SPEC``."""

    SPEC: FamilySpec
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Schema 2: supervision flags, keypoint superset."}  # noqa: RUF012
    code_path = None  # no checksums file (TFDS code-path lookup needs importlib_resources)

    def __init__(self, *, body_model_dir: str | None = None, **kwargs):
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)
        self._body_model_dir = body_model_dir

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=schema.features(image_format="jpeg"),
            homepage=self.SPEC.homepage,
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,  # frames in order (video sets); deterministic for images
        )

    # ------------------------------------------------------------------ files
    def missing_files(self, manual: str) -> list[str]:
        """Required files/folders absent from ``manual`` (for ``prepare``'s message)."""
        missing = []
        sidecar = self.builder_config.sidecar
        for split, layout in self.SPEC.splits.items():
            if not layout.required:
                continue
            for what, candidates in (("annotations", layout.annotations),
                                     ("images", tuple(f"{c}/" for c in layout.images))):  # fmt: skip
                if first_existing(manual, candidates) is None:
                    missing.append(f"{split} {what}: one of {list(candidates)}")
            if sidecar != "none" and sidecar in layout.sidecars:
                if first_existing(manual, layout.sidecars[sidecar]) is None:
                    missing.append(f"{split} {sidecar} side-car: {list(layout.sidecars[sidecar])}")
        if sidecar != "none":
            missing += labels.missing_body_models(self._body_model_folder(manual))
        return missing

    def _split_generators(self, dl_manager):
        # NeuralAnnot and EFT fit the neutral SMPL (demo_smpl.py: smplx.create(..., 'smpl');
        # EFT basicModel_neutral_lbs_10_207_0_v1.0.0.pkl).
        genders = ("neutral",) if self.builder_config.sidecar != "none" else ()
        manual, models = labels.require_manual(self, dl_manager, self.SPEC.dataset, genders)
        model = models.get("neutral")
        # Whether frames come from real videos: only then may clips be cut from a sequence.
        self.info.metadata["video"] = bool(self.SPEC.video)
        out = {}
        for split, layout in self.SPEC.splits.items():
            if first_existing(manual, layout.annotations) is None:
                log.warning("%s: no %s annotations; split left out", self.SPEC.dataset, split)
                continue
            out[split] = self._generate_examples(manual, split, layout, model)
        return out

    def _body_model_folder(self, manual: str) -> str:
        return self._body_model_dir or os.path.join(manual, "body_models")

    def _annotation_files(self, manual: str, layout: SplitLayout) -> list[str]:
        path = first_existing(manual, layout.annotations)
        if path is None:
            return []
        if os.path.isdir(path):
            files = sorted(glob.glob(os.path.join(path, "*.json")))
            if not files:
                raise FileNotFoundError(f"{self.SPEC.dataset}: no *.json files in {path}")
            return files
        return [path]

    def _image_path(self, manual: str, layout: SplitLayout, file_name: str) -> str:
        for root in layout.images:
            path = os.path.join(manual, root, file_name)
            if os.path.isfile(path):
                return path
        return os.path.join(manual, layout.images[0], file_name)

    # ------------------------------------------------------------------ hooks
    def skip_image(self, image: dict) -> str | None:
        """A reason to leave an image out (counted), or None."""
        return None

    def intrinsics(self, image: dict, width: int, height: int) -> np.ndarray:
        return fit_camera.frame_intrinsics(width, height)

    def sequence_of(self, image: dict) -> tuple[str, int]:
        """Image datasets: every image is its own one-frame sequence (no clip strings unrelated
        images together)."""
        return os.path.splitext(str(image["file_name"]))[0], 0

    def frame_ignore_boxes(self, image: dict, where: str) -> np.ndarray:
        return np.zeros((0, 4), np.float32)

    def parse_annotation(self, ann: dict, size: tuple[int, int], k: np.ndarray, where: str, counts):
        """``('person', dict)`` or ``('ignore', box or None)`` for one COCO keypoint annotation."""
        width, height = size
        names = kp.dataset_joint_names(self.SPEC.joint_set)
        triples = ann_lib.keypoint_triples(ann, len(names), where)
        box = ann_lib.xywh_box(ann, width, height, where)
        labelled = triples[:, 2] > 0
        if int(ann.get("iscrowd", 0)):
            counts["crowd_regions"] += 1
            return "ignore", box
        if not labelled.any():
            counts["persons_without_keypoints"] += 1
            return "ignore", box
        inside = cv.in_image(triples[:, :2], np.ones(len(names)), width, height) > 0
        counts["keypoints_outside_image"] += int(np.sum(labelled & ~inside))
        person = schema.empty_person()
        keypoint_fill.fill_keypoints(
            person, self.SPEC.joint_set, triples[:, :2], visible_2d=labelled & inside
        )
        if not person["has_keypoints_2d"]:  # only joints without a superset point, or outside
            counts["persons_without_usable_keypoints"] += 1
            return "ignore", box
        if box is None:
            box = cv.bbox_from_points(triples[labelled & inside, :2], width, height)
        person["bbox"] = box
        person["valid"] = np.bool_(True)
        return "person", person

    # ------------------------------------------------------------------ generation
    def _generate_examples(self, manual: str, split: str, layout: SplitLayout, model):
        counts: collections.Counter = collections.Counter()
        residuals: list[tuple[float, float]] = []
        sequences: set[str] = set()
        for ann_path in self._annotation_files(manual, layout):
            coco = ann_lib.read_coco(ann_path, self.SPEC.ann_keys, self.SPEC.image_keys)
            if self.SPEC.json_keypoint_names is not None:
                ann_lib.check_keypoint_names(coco, self.SPEC.json_keypoint_names)
            fits = self._read_sidecar(manual, layout, coco, counts)
            order = sorted(coco.images.values(), key=lambda im: (*self.sequence_of(im), im["id"]))
            counts["images_listed"] += len(order)
            for image in order:
                example = self._example(manual, layout, split, coco, image, fits, model, counts,
                                        residuals)  # fmt: skip
                if example is not None:
                    sequences.add(example[1]["sequence_id"])
                    yield example
            if self.builder_config.sidecar != "none":
                counts["fits_unused"] += len(fits)  # their image or annotation was left out
        counts["sequences"] = len(sequences)
        self._record(split, counts, residuals)

    def _read_sidecar(self, manual: str, layout: SplitLayout, coco, counts) -> _Fits:
        fits = _Fits()
        kind = self.builder_config.sidecar
        if kind == "none" or kind not in layout.sidecars:
            return fits
        path = first_existing(manual, layout.sidecars[kind])
        if kind == "neuralannot":
            fits.by_ann, nulls = sidecars.read_neuralannot(path, coco.ann_ids)
            counts["fits_null"] += nulls
            return fits
        names = {os.path.basename(str(im["file_name"])) for im in coco.images.values()}
        for meta, fit in sidecars.read_eft(path):
            if meta["ann_id"] is not None:
                if meta["ann_id"] not in coco.ann_ids:
                    raise ValueError(f"{fit.key}: annotId {meta['ann_id']} matches no annotation")
                if meta["ann_id"] in fits.by_ann:
                    raise ValueError(f"{fit.key}: annotId {meta['ann_id']} has a second fit")
                fits.by_ann[meta["ann_id"]] = fit
            elif meta["image"] not in names:
                raise ValueError(f"{fit.key}: imageName {meta['image']!r} matches no image")
            else:
                fits.by_image.setdefault(meta["image"], []).append((meta["centre"], fit))
        return fits

    def _example(self, manual, layout, split, coco, image, fits, model, counts, residuals):
        file_name = str(image["file_name"])
        where = f"{coco.path}: image {image['id']} ({file_name})"
        reason = self.skip_image(image)
        if reason is not None:
            counts[reason] += 1
            return None
        path = self._image_path(manual, layout, file_name)
        try:
            width, height = cv.check_image(path)
        except FileNotFoundError:
            counts["images_missing"] += 1
            log.warning("%s: image not found at %s", where, path)
            return None
        except ValueError as err:
            counts["images_unreadable"] += 1
            log.warning("%s: %s", where, err)
            return None
        if (image.get("width"), image.get("height")) not in ((None, None), (width, height)):
            counts["images_size_mismatch"] += 1
            log.warning("%s: json size %sx%s, file %dx%d", where, image.get("width"),
                        image.get("height"), width, height)  # fmt: skip
            return None
        k = self.intrinsics(image, width, height)
        persons, person_anns = [], []
        ignore = [self.frame_ignore_boxes(image, where)]
        for ann in coco.by_image.get(image["id"], []):
            kind, value = self.parse_annotation(
                ann, (width, height), k, f"{coco.path}: annotation {ann['id']}", counts
            )
            if kind == "person":
                persons.append(value)
                person_anns.append(ann)
            else:
                if fits.by_ann.pop(int(ann["id"]), None) is not None:
                    counts["fits_on_ignored_annotations"] += 1
                if value is not None:
                    ignore.append(np.asarray(value, np.float32).reshape(1, 4))
        self._attach_fits(persons, person_anns, file_name, fits, k, model, counts, residuals)
        counts["images"] += 1
        counts["persons"] += len(persons)
        for i, person in enumerate(persons):
            schema.check_person(person, f"{where} person {i}")
        sequence_id, frame_index = self.sequence_of(image)
        return f"{split}/{file_name}", {
            "image": path,
            "intrinsics": k.astype(np.float32),
            "sequence_id": sequence_id,
            "frame_index": frame_index,
            "image_name": file_name,
            "persons": schema.stack_persons(persons),
            **schema.frame_annotation(self._exhaustive(image), np.concatenate(ignore)),
        }

    def _exhaustive(self, image: dict) -> bool:
        return self.SPEC.all_persons_annotated

    def _attach_fits(self, persons, anns, file_name, fits, k, model, counts, residuals):
        if not len(fits) and self.builder_config.sidecar == "none":
            return
        pairs = []
        for i, ann in enumerate(anns):
            fit = fits.by_ann.pop(int(ann["id"]), None)
            if fit is not None:
                pairs.append((i, fit))
        entries = fits.by_image.pop(os.path.basename(file_name), [])
        if entries:
            free = [i for i in range(len(persons)) if i not in {p for p, _ in pairs}]
            boxes = np.array([persons[i]["bbox"] for i in free]).reshape(-1, 4)
            matches = sidecars.match_by_centre(np.array([c for c, _ in entries]), boxes)
            pairs += [(free[p], entries[f][1]) for p, f in matches]
            counts["eft_unmatched"] += len(entries) - len(matches)
        for i, fit in pairs:
            try:
                converted = fit_camera.convert_fit(model, fit, k)
            except ValueError as err:  # a fit behind its own camera: unusable, not fatal
                counts["fits_invalid"] += 1
                log.warning("%s", err)
                continue
            residuals.append((converted.rms_px, converted.rms_px / max(converted.height_px, 1.0)))
            if residuals[-1][1] > MAX_FIT_RESIDUAL:
                counts["fits_rejected_residual"] += 1
                continue
            _apply_fit(persons[i], fit, converted)
            counts["fits_attached"] += 1
        counts["persons_without_fit"] += len(persons) - len(pairs)

    def _record(self, split: str, counts, residuals) -> None:
        for key in sorted(counts):
            self.info.metadata[f"{key}_{split}"] = int(counts[key])
        if residuals:
            px, rel = np.asarray(residuals).T
            self.info.metadata[f"fit_residual_px_{split}"] = {
                "median": float(np.median(px)), "p95": float(np.percentile(px, 95)),
                "max": float(px.max()),
            }  # fmt: skip
            self.info.metadata[f"fit_residual_rel_{split}"] = {
                "median": float(np.median(rel)), "max": float(rel.max()),
            }  # fmt: skip
        log.info("%s %s: %s", self.SPEC.dataset, split, dict(counts))


def _apply_fit(person: dict, fit: fit_camera.Fit, converted: fit_camera.ConvertedFit) -> None:
    """Pseudo fits supervise the pose (body and orientation), not shape or translation (ROMP
    coco14.py: valid_mask_3d = [kp3d, True, True, False]; docs/training_data.md)."""
    person["betas"] = np.asarray(fit.betas, np.float32)
    person["body_pose"] = np.asarray(fit.body_pose, np.float32)
    person["global_orient"] = converted.global_orient.astype(np.float32)
    person["transl"] = converted.transl.astype(np.float32)
    person["smpl_source"] = np.int32(schema.SMPL_SOURCES.index(fit.source))
    person["has_pose"] = person["has_global_orient"] = np.bool_(True)


def family_configs(sidecars_available: tuple[str, ...], **options) -> list[FamilyConfig]:
    """``keypoints`` (the dataset alone) plus one config per available side-car."""
    out = [FamilyConfig(name="keypoints", description="keypoints only", options=options)]
    for kind in sidecars_available:
        out.append(
            FamilyConfig(
                name=kind,
                sidecar=kind,
                description=f"with {kind} pseudo-SMPL fits (has_pose, has_global_orient)",
                options=options,
            )
        )
    return out
