"""Small readers shared by the Human3.6M, MPI-INF-3DHP and BEDLAM builders: checked fields of
json / mat / npz labels (errors name the file, the entry and the key), the per-split counts every
builder writes into ``info.metadata``, and the SMPL fields of a person posed in its camera; and
the manual-download preamble of every official builder (``require_manual``)."""

from __future__ import annotations

import collections
import glob
import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np

from siam_jax.body import rotations
from siam_jax.data import conversions as cv
from siam_jax.data import schema

log = logging.getLogger(__name__)

SMPL_SOURCE_NEURALANNOT = schema.SMPL_SOURCES.index("neuralannot")


def field(entry: Mapping, key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``entry[key]`` as float64 of ``shape`` (a size-matching reshape is accepted: NeuralAnnot
    writes ``trans`` as ``[[x, y, z]]``); ValueError naming ``where`` and ``key`` otherwise."""
    if not isinstance(entry, Mapping) or key not in entry:
        raise ValueError(f"{where}: missing key {key!r}")
    return as_array(entry[key], shape, f"{where}: {key!r}")


def as_array(value, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``value`` as float64 of ``shape`` (size-matching reshape), finite; else ValueError."""
    try:
        out = np.asarray(value, np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where} is not numeric: {err}") from err
    if out.size != int(np.prod(shape)) or not np.all(np.isfinite(out)):
        raise ValueError(f"{where} has shape {out.shape}, expected {shape} (finite)")
    return out.reshape(shape)


def nested(data: Mapping, keys: tuple, where: str, *, required: bool = True):
    """``data[k0][k1]...`` with string keys (json object keys); None when absent and not
    ``required``, else ValueError naming the path of keys."""
    node = data
    for depth, key in enumerate(keys):
        if not isinstance(node, Mapping) or str(key) not in node:
            if not required:
                return None
            path = "".join(f"[{str(k)!r}]" for k in keys[: depth + 1])
            raise ValueError(f"{where}: missing key {path}")
        node = node[str(key)]
    return node


def image_size(path: str, counts: collections.Counter, where: str) -> tuple[int, int] | None:
    """``(width, height)`` of an image, or None (counted as missing / unreadable, logged)."""
    try:
        return cv.check_image(path)
    except FileNotFoundError:
        counts["images_missing"] += 1
        log.warning("%s: image not found at %s", where, path)
    except ValueError as err:
        counts["images_unreadable"] += 1
        log.warning("%s: %s", where, err)
    return None


def record(metadata, split: str, counts: Mapping[str, int], stats: Mapping | None = None) -> None:
    """``<count>_<split>`` for every count, ``<name>_<split>`` for each summary in ``stats``."""
    for key in sorted(counts):
        metadata[f"{key}_{split}"] = int(counts[key])
    for key, values in (stats or {}).items():
        if len(values):
            v = np.asarray(values, np.float64)
            metadata[f"{key}_{split}"] = {
                "median": float(np.median(v)), "max": float(v.max()), "count": int(v.size),
            }  # fmt: skip


def require_files(paths: Mapping[str, str]) -> list[str]:
    """The entries of ``{what: path}`` whose file does not exist, as 'what: path'."""
    return [f"{what}: {path}" for what, path in paths.items() if not os.path.isfile(path)]


def smpl_person(
    person: dict,
    model,
    betas: np.ndarray,
    body_pose: np.ndarray,
    global_orient: np.ndarray,
    transl: np.ndarray,
    k: np.ndarray,
    size: tuple[int, int],
) -> np.ndarray:
    """Fills the SMPL parameters (camera frame), ``joints_3d`` from ``model`` and ``joints_2d``
    (projected through ``k``, visible where in front of the camera and inside the image) of
    ``person``; returns the posed vertices [V 3]. Flags are the caller's."""
    out = model(
        betas=np.asarray(betas, np.float32)[None],
        body_pose=np.asarray(body_pose, np.float32).reshape(1, 23, 3),
        global_orient=rotations.axis_angle_to_matrix(np.asarray(global_orient, np.float64))[
            None, None
        ].astype(np.float32),
        transl=np.asarray(transl, np.float32)[None],
    )
    joints = np.asarray(out.joints[0], np.float64)
    j2d = cv.project_points(joints, k)
    person["betas"] = np.asarray(betas, np.float32)
    person["body_pose"] = np.asarray(body_pose, np.float32).reshape(23, 3)
    person["global_orient"] = np.asarray(global_orient, np.float32)
    person["transl"] = np.asarray(transl, np.float32)
    person["joints_3d"] = joints.astype(np.float32)
    person["joints_2d"] = j2d.astype(np.float32)
    person["visibility"] = cv.in_image(j2d, joints[:, 2], *size)
    person["has_3d"] = np.bool_(True)
    person["has_2d"] = np.bool_(True)
    return np.asarray(out.vertices[0], np.float64)


def read_world_fit(entry, where: str) -> dict[str, np.ndarray]:
    """A NeuralAnnot SMPL entry ``{pose 72, shape 10, trans 3}`` (Human3.6M / MPI-INF-3DHP:
    world coordinates, metres; I2L-MeshNet Human36M.py / MPI_INF_3DHP.py)."""
    pose = field(entry, "pose", (72,), where)
    return {
        "global_orient": pose[:3],
        "body_pose": pose[3:].reshape(23, 3),
        "betas": field(entry, "shape", (10,), where),
        "transl": field(entry, "trans", (3,), where),
    }


def attach_world_fit(person, fit, camera, size, model, rest_root, error_mm, max_error_mm,
                     counts, stats) -> bool:  # fmt: skip
    """Moves a world fit into ``camera`` (``R``, ``t`` metres, world -> camera ``X_c = R X_w +
    t``; ``k``) with ``conversions.transform_smpl_root`` (``global_orient' = R global_orient``,
    ``transl' = R (J0 + transl) + t - J0``, J0 from ``rest_root``), and attaches it to ``person``
    unless ``error_mm(trial_person, vertices)`` (None: not checked) exceeds ``max_error_mm``.

    Fits made to the dataset's multi-view 3D joints in calibrated cameras supervise every SMPL
    term; ``smpl_source`` 'neuralannot', ``has_smpl`` False (not the dataset's own reference).
    """
    j0 = rest_root(fit["betas"])
    orient, transl = cv.transform_smpl_root(
        camera["R"], camera["t"], fit["global_orient"], fit["transl"], j0
    )
    trial = dict(person)
    verts = smpl_person(trial, model, fit["betas"], fit["body_pose"], orient, transl,
                        camera["k"], size)  # fmt: skip
    error = error_mm(trial, verts)
    if error is not None:
        stats.setdefault("fit_error_mm", []).append(error)
        if error > max_error_mm:
            counts["fits_rejected_error"] += 1
            return False
    person.update(trial)
    person["smpl_source"] = np.int32(SMPL_SOURCE_NEURALANNOT)
    for flag in ("has_pose", "has_global_orient", "has_betas", "has_transl"):
        person[flag] = np.bool_(True)
    counts["fits_attached"] += 1
    return True


def missing_body_models(folder: str, genders=("neutral",)) -> list[str]:
    """One line per SMPL file of ``genders`` that ``folder`` lacks (``cv.body_model_file``'s
    message, which names the file names it looked for): a builder's ``missing_files`` part."""
    missing = []
    for gender in genders:
        try:
            cv.body_model_file(folder, gender)
        except FileNotFoundError as err:
            missing.append(str(err))
    return missing


def missing_globs(manual: str, patterns: Sequence[str]) -> list[str]:
    """The glob patterns (relative to ``manual``) that match nothing, as 'pattern (none found)'."""
    return [f"{p} (none found)" for p in patterns if not glob.glob(os.path.join(manual, p))]


def require_manual(builder, dl_manager, dataset: str, genders: Sequence[str] = ()):
    """The start of every official builder's ``_split_generators``: ``(manual_dir, models)``.

    Keeps TensorFlow off the accelerators (the builders run the JAX body model beside TFDS),
    raises ``FileNotFoundError`` naming ``dataset``, every file ``builder.missing_files(manual)``
    lists and the builder's ``MANUAL_DOWNLOAD_INSTRUCTIONS`` when any is missing, then loads the
    SMPL models of ``genders`` from ``builder._body_model_folder(manual)`` (``{}`` when none).
    """
    cv.keep_tf_off_accelerators()
    manual = os.fspath(dl_manager.manual_dir)
    missing = builder.missing_files(manual)
    if missing:
        raise FileNotFoundError(
            f"{dataset}: missing under manual_dir {manual}:\n  " + "\n  ".join(missing)
            + f"\n\n{builder.MANUAL_DOWNLOAD_INSTRUCTIONS or ''}"
        )  # fmt: skip
    if not genders:
        return manual, {}
    return manual, cv.load_body_models(builder._body_model_folder(manual), tuple(genders))
