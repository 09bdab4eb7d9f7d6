"""Loading and saving SMPL body models: official .pkl (without chumpy), smplx-layout .npz.

The official SMPL pickles (PROTOCOLS.md 5.1) are Python-2 pickles holding chumpy `Ch` objects and
a scipy.sparse csc `J_regressor`. A pickle can call any importable function, so they are read
with a restricted unpickler: only the numpy/copyreg globals these files need are resolved, chumpy
and scipy.sparse classes become inert stand-ins converted to numpy afterwards, and any other
global (e.g. `os.system`) is refused in `find_class`, before the opcode that would call it runs.
"""

from __future__ import annotations

import io as _io
import os
import pickle
from pathlib import Path

import numpy as np

from siam_jax.body import joint_sets
from siam_jax.body.model import BodyModel, body_model_from_arrays
from siam_jax.common.files import atomic_path

SMPL_SOURCE = "https://smpl.is.tue.mpg.de"
# SMPL's three models; a gender's index here is its code in the dataset schema (schema.GENDERS).
GENDERS = ("neutral", "male", "female")
# smplx.SMPL keys (PROTOCOLS.md 5.2); `f` holds the faces.
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                 "kintree_table", "f")  # fmt: skip


class _StandIn:
    """Inert replacement for a pickled class: records the pickled state, runs nothing."""

    def __init__(self, *args, **kwargs):
        self.state = None

    def __setstate__(self, state):
        self.state = state


class _ChumpyStandIn(_StandIn):
    """For chumpy classes; its array is the ``x`` (or ``a``) of the state."""

    def to_array(self, key: str) -> np.ndarray:
        state = self.state
        if isinstance(state, dict):
            for name in ("x", "a"):
                if isinstance(state.get(name), np.ndarray):
                    return state[name]
        raise ValueError(
            f"'{key}' is a chumpy expression that is not a plain array; convert the file with "
            "smplx's tools/clean_ch.py first"
        )


class _SparseStandIn(_StandIn):
    """For scipy.sparse matrices; densified from its pickled fields."""

    def to_array(self, key: str) -> np.ndarray:
        st = self.state if isinstance(self.state, dict) else {}
        fmt = st.get("format", "csc")
        if isinstance(fmt, bytes):
            fmt = fmt.decode("latin1")
        shape = st.get("_shape", st.get("shape"))
        data, indices, indptr = st.get("data"), st.get("indices"), st.get("indptr")
        if shape is None or data is None or indices is None or indptr is None:
            raise ValueError(f"'{key}': unsupported sparse matrix pickle (fields {sorted(st)})")
        shape = tuple(int(s) for s in shape)
        if fmt not in ("csc", "csr"):
            raise ValueError(f"'{key}': unsupported sparse format {fmt!r}")
        out = np.zeros(shape, dtype=np.asarray(data).dtype)
        n_major = shape[1] if fmt == "csc" else shape[0]
        counts = np.diff(np.asarray(indptr))
        major = np.repeat(np.arange(n_major), counts)
        if fmt == "csc":
            np.add.at(out, (np.asarray(indices), major), data)
        else:
            np.add.at(out, (major, np.asarray(indices)), data)
        return out


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_scalar():
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    return scalar


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals an SMPL pickle needs; refuses everything else."""

    def find_class(self, module: str, name: str):
        import copyreg

        if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            if name == "_reconstruct":
                return _numpy_reconstruct()
            if name == "scalar":
                return _numpy_scalar()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return copyreg._reconstructor
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix"):
            return _SparseStandIn
        raise pickle.UnpicklingError(
            f"refused to load global '{module}.{name}': SMPL model pickles only need numpy, "
            "chumpy and scipy.sparse objects (this file may be malicious)"
        )


def _plain(value, key: str):
    if isinstance(value, _StandIn):
        return value.to_array(key)
    return value


def read_smpl_pickle(path: str | os.PathLike) -> dict:
    """The dict of an official SMPL .pkl, chumpy/sparse values as numpy arrays."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = RestrictedUnpickler(_io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(f"{path}: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of SMPL arrays, got {type(data).__name__}")
    return {str(k): _plain(v, f"{path}:{k}") for k, v in data.items()}


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
    "RestrictedUnpickler",
    "load_body_model",
    "load_h36m_regressor",
    "read_smpl_pickle",
    "save_body_model",
]  # fmt: skip
