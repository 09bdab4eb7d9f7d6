"""Loading and saving SMPL body models: official .pkl (without chumpy), smplx-layout .npz.

The official SMPL pickles (PROTOCOLS.md 5.1) are Python-2 pickles holding chumpy `Ch` objects and
a scipy.sparse csc `J_regressor`; Python-3 rewrites use protocol 2 with `_codecs.encode` for the
numpy bytes, NumPy-2 ones name `numpy._core`. A pickle can call any importable function, so they
are read with the project's one allow-list loader (`siam_jax.common.safe_pickle`): chumpy classes
become inert stand-ins, sparse matrices are densified, and any other global (e.g. `os.system`) is
refused before the opcode that would call it runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from siam_jax.body import joint_sets
from siam_jax.body.model import BodyModel, body_model_from_arrays
from siam_jax.common import safe_pickle
from siam_jax.common.files import atomic_path

SMPL_SOURCE = "https://smpl.is.tue.mpg.de"
# SMPL's three models; a gender's index here is its code in the dataset schema (schema.GENDERS).
GENDERS = ("neutral", "male", "female")
# smplx.SMPL keys (PROTOCOLS.md 5.2); `f` holds the faces.
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                 "kintree_table", "f")  # fmt: skip


def read_smpl_pickle(path: str | os.PathLike) -> dict:
    """The dict of an official SMPL .pkl, chumpy/sparse values as numpy arrays (read through the
    project's allow-list loader, ``siam_jax.common.safe_pickle``)."""
    data = safe_pickle.load(path, "SMPL model")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of SMPL arrays, got {type(data).__name__}")
    return {str(k): safe_pickle.plain_array(v, f"{path}:{k}") for k, v in data.items()}


def _arrays_from_smplx_dict(data: dict, source: str, num_betas: int) -> dict[str, np.ndarray]:
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise KeyError(f"{source}: missing SMPL keys {missing} (has {sorted(data)})")
    v_template = np.asarray(data["v_template"], np.float64)
    if v_template.ndim != 2 or v_template.shape[1] != 3:
        raise ValueError(f"{source}: 'v_template' has shape {v_template.shape}, expected (V, 3)")
    v = v_template.shape[0]
    shapedirs = np.asarray(data["shapedirs"], np.float64)
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (v, 3):
        raise ValueError(
            f"{source}: 'shapedirs' has shape {shapedirs.shape}, expected ({v}, 3, nb)"
        )
    if shapedirs.shape[2] < num_betas:
        raise ValueError(
            f"{source}: num_betas={num_betas} but 'shapedirs' has {shapedirs.shape[2]} directions"
        )
    posedirs = np.asarray(data["posedirs"], np.float64)
    if posedirs.shape != (v, 3, 207):
        raise ValueError(f"{source}: 'posedirs' has shape {posedirs.shape}, expected ({v}, 3, 207)")
    kintree = np.asarray(data["kintree_table"]).astype(np.int64)
    if kintree.shape != (2, 24):
        raise ValueError(f"{source}: 'kintree_table' has shape {kintree.shape}, expected (2, 24)")
    parents = kintree[0].copy()
    parents[0] = -1  # smplx/body_models.py: the root's entry is a sentinel
    if tuple(parents) != joint_sets.SMPL_PARENTS:
        raise ValueError(f"{source}: kintree_table parents {parents.tolist()} are not SMPL's")
    arrays = {
        "v_template": v_template,
        "shapedirs": shapedirs[:, :, :num_betas],
        # smplx: posedirs = reshape(posedirs, [-1, 207]).T -> [207, V*3]
        "posedirs": posedirs.reshape(-1, 207).T,
        "J_regressor": np.asarray(data["J_regressor"], np.float64),
        "weights": np.asarray(data["weights"], np.float64),
        "faces": np.asarray(data["f"]).astype(np.int64),
        "parents": parents,
    }
    if "h36m_regressor" in data:
        arrays["h36m_regressor"] = np.asarray(data["h36m_regressor"], np.float64)
    for key in ("sym_idx", "vert_sym_idxs"):
        if key in data and np.asarray(data[key]).shape == (v,):
            arrays["sym_idx"] = np.asarray(data[key]).astype(np.int64)
            break
    return arrays


def _resolve_path(path: Path, gender: str) -> Path:
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    names = [f"SMPL_{gender.upper()}.{ext}" for ext in ("npz", "pkl")]
    if path.is_dir():
        for n in names:
            if (path / n).is_file():
                return path / n
        raise FileNotFoundError(
            f"no SMPL model in folder {path}: expected one of {names}. SMPL model files are "
            f"licensed and come from {SMPL_SOURCE} (see data/README.md)"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"SMPL model file {path} does not exist: pass a .pkl/.npz file or a folder holding "
            f"one of {names}. SMPL model files come from {SMPL_SOURCE}"
        )
    return path


def load_h36m_regressor(path: str | os.PathLike, num_vertices: int = 6890) -> np.ndarray:
    """SPIN's data/J_regressor_h36m.npy: a dense [17, V] array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"H36M regressor {path} does not exist (SPIN's J_regressor_h36m.npy)"
        )
    reg = np.load(path, allow_pickle=False)
    if reg.shape != (17, num_vertices):
        raise ValueError(
            f"{path}: H36M regressor has shape {reg.shape}, expected (17, {num_vertices})"
        )
    return reg


def load_body_model(
    path: str | os.PathLike,
    num_betas: int = 10,
    gender: str = "neutral",
    h36m_regressor_path: str | os.PathLike = "",
) -> BodyModel:
    """Load an SMPL model: official .pkl, smplx-layout .npz, or a folder of SMPL_<GENDER>.*."""
    file = _resolve_path(Path(path), gender)
    source = str(file)
    if file.suffix == ".pkl":
        data = read_smpl_pickle(file)
    elif file.suffix == ".npz":
        try:
            with np.load(file, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"{source}: unreadable .npz body model: {err}") from err
    else:
        raise ValueError(f"{source}: unknown SMPL model format (expected .pkl or .npz)")
    arrays = _arrays_from_smplx_dict(data, source, num_betas)
    if h36m_regressor_path:
        arrays["h36m_regressor"] = load_h36m_regressor(
            h36m_regressor_path, arrays["v_template"].shape[0]
        )
    return body_model_from_arrays(arrays, source)


def save_body_model(model: BodyModel, path: str | os.PathLike) -> None:
    """Write the light .npz form in smplx's key layout (readable by load_body_model and smplx)."""
    path = Path(path)
    v = model.num_vertices
    kintree = np.stack([np.asarray(model.parents), np.arange(len(model.parents))]).astype(np.int64)
    kintree[0, 0] = 4294967295  # the official files' root sentinel (smplx overwrites it)
    arrays = {
        "v_template": np.asarray(model.v_template),
        "shapedirs": np.asarray(model.shapedirs),
        "posedirs": np.asarray(model.posedirs).T.reshape(v, 3, 207),
        "J_regressor": np.asarray(model.J_regressor),
        "weights": np.asarray(model.weights),
        "kintree_table": kintree,
        "f": np.asarray(model.faces).astype(np.uint32),
    }
    if model.h36m_regressor is not None:
        arrays["h36m_regressor"] = np.asarray(model.h36m_regressor)
    if model.sym_idx is not None:
        arrays["sym_idx"] = np.asarray(model.sym_idx)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # a file object: numpy adds no ".npz" to the name


__all__ = [
    "GENDERS",
    "SMPL_SOURCE",
    "load_body_model",
    "load_h36m_regressor",
    "read_smpl_pickle",
    "save_body_model",
]  # fmt: skip
