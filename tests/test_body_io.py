"""Loading official-style SMPL pickles without chumpy, .npz round trips, and clear errors."""

import pickle
import struct
import sys
import types

import numpy as np
import pytest

from siam_jax import body
from siam_jax.body import io as body_io

V = 6890


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python-2 `str` opcodes (SHORT_BINSTRING/BINSTRING), as the official
    SMPL files (written by Python 2) do, instead of Python 3's `_codecs.encode` reduction."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def _fake_module(name, **classes):
    mod = types.ModuleType(name)
    for cls_name, cls in classes.items():
        cls.__module__ = name
        cls.__qualname__ = cls_name
        cls.__name__ = cls_name
        setattr(mod, cls_name, cls)
    return mod


class _Ch:
    """Stands for chumpy.ch.Ch: pickled as copy_reg._reconstructor + a state dict with 'x'."""

    def __init__(self, x):
        self.x = x

    def __reduce_ex__(self, protocol):
        import copyreg

        return copyreg._reconstructor, (type(self), object, None), {"x": self.x}


class _Csc:
    """Stands for scipy.sparse.csc.csc_matrix with its Python-2 era state dict."""

    def __init__(self, dense):
        self.dense = dense

    def __reduce_ex__(self, protocol):
        import copyreg

        d = self.dense
        data, indices, indptr = [], [], [0]
        for c in range(d.shape[1]):  # compressed sparse columns
            (rows,) = np.nonzero(d[:, c])
            data += list(d[rows, c])
            indices += list(rows)
            indptr.append(len(data))
        state = {
            "_shape": d.shape, "maxprint": 50, "format": "csc",
            "data": np.asarray(data, np.float64), "indices": np.asarray(indices, np.int32),
            "indptr": np.asarray(indptr, np.int32),
        }  # fmt: skip
        return copyreg._reconstructor, (type(self), object, None), state


def _official_dict(rng):
    jr = np.zeros((24, V))
    for j in range(24):
        idx = rng.choice(V, 8, replace=False)
        jr[j, idx] = rng.dirichlet(np.ones(8))
    w = rng.random((V, 24))
    w /= w.sum(1, keepdims=True)
    kintree = np.stack([np.array(body.joint_sets.SMPL_PARENTS), np.arange(24)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    arrays = {
        "v_template": rng.normal(size=(V, 3)) * 0.3,
        "shapedirs": rng.normal(size=(V, 3, 10)) * 0.01,
        "posedirs": rng.normal(size=(V, 3, 207)) * 0.001,
        "J_regressor": jr,
        "weights": w,
        "kintree_table": kintree,
        "f": rng.integers(0, V, size=(13776, 3)).astype(np.uint32),
        "J": rng.normal(size=(24, 3)),
        "weights_prior": w,
        "J_regressor_prior": jr,
        "vert_sym_idxs": np.arange(V)[::-1].copy(),
        "pose_training_info": {b"lambda": 0.5},
        "bs_style": b"lbs",
        "bs_type": b"lrotmin",
    }
    return arrays


def _write_official_pickle(path, arrays, protocol=2):
    ch_mod = _fake_module("chumpy.ch", Ch=_Ch)
    sp_mod = _fake_module("scipy.sparse.csc", csc_matrix=_Csc)
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch", "scipy.sparse.csc")}
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"], sys.modules["scipy.sparse.csc"] = ch_mod, sp_mod
    try:
        obj = {}
        for k, v in arrays.items():
            if k in ("shapedirs", "posedirs", "v_template", "J", "weights"):
                v = _Ch(v)  # chumpy objects, as in the official files
            elif k in ("J_regressor", "J_regressor_prior"):
                v = _Csc(v)
            obj[k.encode("latin1")] = v  # Python-2 str keys (latin1)
        with open(path, "wb") as f:
            _Py2Pickler(f, protocol=protocol, fix_imports=True).dump(obj)
    finally:
        for k, mod in saved.items():
            if mod is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = mod


def test_official_pickle_loads_without_chumpy(tmp_path):
    assert "chumpy" not in sys.modules
    arrays = _official_dict(np.random.default_rng(0))
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    _write_official_pickle(path, arrays)
    raw = path.read_bytes()
    assert b"chumpy.ch" in raw and b"copy_reg" in raw and b"scipy.sparse.csc" in raw
    data = body_io.read_smpl_pickle(path)
    assert data["bs_style"] == "lbs"  # latin1 str
    np.testing.assert_array_equal(data["J_regressor"], arrays["J_regressor"])
    np.testing.assert_array_equal(data["shapedirs"], arrays["shapedirs"])
    for target in (path, tmp_path):  # the file, and the folder with SMPL_NEUTRAL.pkl
        model = body.load_body_model(target, num_betas=10)
        np.testing.assert_allclose(model.v_template, arrays["v_template"], atol=1e-6)
        np.testing.assert_allclose(model.J_regressor, arrays["J_regressor"], atol=1e-7)
        np.testing.assert_allclose(
            model.posedirs, arrays["posedirs"].reshape(-1, 207).T, atol=1e-7
        )  # smplx: reshape(-1, 207).T
        np.testing.assert_array_equal(model.faces, arrays["f"].astype(np.int32))
        np.testing.assert_array_equal(model.sym_idx, arrays["vert_sym_idxs"])
    assert "chumpy" not in sys.modules
    assert body.load_body_model(path, num_betas=5).num_betas == 5


def test_protocol0_pickle(tmp_path):
    arrays = _official_dict(np.random.default_rng(1))
    path = tmp_path / "m.pkl"
    _write_official_pickle(path, arrays, protocol=0)
    assert path.read_bytes()[:1] == b"("  # protocol 0 opens with MARK, like "(dp0"
    model = body.load_body_model(path)
    np.testing.assert_allclose(model.weights, arrays["weights"], atol=1e-7)


class _Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        import os

        return os.system, (self.cmd,)


def test_malicious_pickle_is_refused_before_running(tmp_path):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    with open(path, "wb") as f:
        pickle.dump({"v_template": _Evil(f"touch {sentinel}")}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refused.*(posix|os)\.system"):
        body.load_body_model(path)
    assert not sentinel.exists()
    # builtins.eval / exec are refused too
    with open(path, "wb") as f:
        f.write(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        body_io.read_smpl_pickle(path)


def test_npz_round_trip_and_errors(tmp_path):
    model = body.make_procedural_body_model(0)
    path = tmp_path / "SMPL_MALE.npz"
    body.save_body_model(model, path)
    assert [p.name for p in tmp_path.iterdir()] == ["SMPL_MALE.npz"]  # no temp file left
    with np.load(path) as z:
        assert set(body_io.REQUIRED_KEYS) <= set(z.files)
        assert z["posedirs"].shape == (V, 3, 207)
    back = body.load_body_model(tmp_path, gender="male")
    for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "faces",
              "h36m_regressor", "sym_idx"):  # fmt: skip
        np.testing.assert_array_equal(getattr(back, k), getattr(model, k), err_msg=k)

    with pytest.raises(FileNotFoundError, match=r"SMPL_FEMALE\.npz.*smpl\.is\.tue\.mpg\.de"):
        body.load_body_model(tmp_path, gender="female")
    with pytest.raises(FileNotFoundError, match=r"smpl\.is\.tue\.mpg\.de"):
        body.load_body_model(tmp_path / "nothing.pkl")

    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    bad = dict(data)
    del bad["weights"]
    np.savez(tmp_path / "missing.npz", **bad)
    with pytest.raises(KeyError, match="weights"):
        body.load_body_model(tmp_path / "missing.npz")
    bad = dict(data, J_regressor=data["J_regressor"][:20])
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match=r"shape\.npz.*J_regressor.*\(20, 6890\)"):
        body.load_body_model(tmp_path / "shape.npz")


def test_h36m_regressor_file(tmp_path):
    reg = np.random.default_rng(2).random((17, V)).astype(np.float32)
    np.save(tmp_path / "J_regressor_h36m.npy", reg)
    model = body.get_body_model(h36m_regressor_path=str(tmp_path / "J_regressor_h36m.npy"))
    np.testing.assert_array_equal(model.h36m_regressor, reg)
    verts = np.random.default_rng(3).normal(size=(2, V, 3)).astype(np.float32)
    np.testing.assert_allclose(model.regress_h36m(verts), np.einsum("jv,bvk->bjk", reg, verts),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    lsp = model.regress_lsp(verts)
    np.testing.assert_allclose(lsp[:, 13], model.regress_h36m(verts)[:, 10])  # head top
    np.save(tmp_path / "bad.npy", reg[:10])
    with pytest.raises(ValueError, match=r"bad\.npy.*\(10, 6890\)"):
        body.load_h36m_regressor(tmp_path / "bad.npy")
