"""The one allow-list pickle loader: every kind of file the project reads refuses a crafted
pickle before it runs, and the real-world data pickles (Python-3 protocol 2, NumPy 1 and 2
module paths, pandas DataFrames, scipy sparse) load."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from siam_jax import body
from siam_jax.common import safe_pickle


class _Reduce:
    """Pickles as ``func(*args)``: the classic code-execution payload."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: str):
    import subprocess

    return {
        "os.system": _Reduce(os.system, f"touch {marker}"),
        "subprocess": _Reduce(subprocess.call, ["touch", marker]),
        "builtins.eval": _Reduce(eval, f"open({marker!r}, 'w').close()"),
    }


def _smpl_reader(path):
    return body.load_body_model(path)


def _pw3d_reader(path):
    from siam_jax.data.builders import pw3d

    return pw3d.read_sequence(path)


def _agora_df_reader(path):
    from siam_jax.data.builders import agora

    return agora.read_dataframe(path)


def _agora_gt_reader(path):
    from siam_jax.evaluation import agora

    return agora.load_gt_dir(os.path.dirname(path))


def _agora_fit_reader(path):
    from siam_jax.data.builders import agora

    return agora.read_fit(path)


def _agora_pred_reader(path):
    from siam_jax.evaluation import agora

    return agora.load_prediction_dir(os.path.dirname(path))


def _panoptic_reader(path):
    from siam_jax.data.builders import cmu_panoptic

    return cmu_panoptic.read_annotations(path)


def _hrnet_weights_reader(path):
    from siam_jax.models import convert

    return convert.read_state_dict(path)


READERS = {
    "smpl": ("SMPL_NEUTRAL.pkl", _smpl_reader, lambda x: {"v_template": x}),
    "pw3d_sequence": ("courtyard_x_00.pkl", _pw3d_reader, lambda x: {"sequence": x}),
    "agora_dataframe": ("validation_0_withjv.pkl", _agora_df_reader, lambda x: x),
    "agora_gt_dir": ("validation_0_withjv.pkl", _agora_gt_reader, lambda x: x),
    "agora_fit": ("fit.pkl", _agora_fit_reader, lambda x: {"betas": x}),
    "agora_prediction": ("img_personId_0.pkl", _agora_pred_reader, lambda x: {"joints": x}),
    "panoptic_annotation": ("160422_haggling1.pkl", _panoptic_reader, lambda x: [x]),
    "hrnet_weights": ("hrnet_w32.pkl", _hrnet_weights_reader, lambda x: {"conv1.weight": x}),
}


@pytest.mark.parametrize("kind", sorted(READERS))
@pytest.mark.parametrize("payload", ["os.system", "subprocess", "builtins.eval"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, kind, payload):
    name, reader, wrap = READERS[kind]
    marker = str(tmp_path / "pwned")
    path = tmp_path / "files" / name
    path.parent.mkdir()
    with open(path, "wb") as f:
        pickle.dump(wrap(_payloads(marker)[payload]), f, protocol=2)
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"refused to load global") as err:
        reader(str(path))
    assert str(path) in str(err.value)  # names the file
    module = {"os.system": r"(posix|os)\.system", "subprocess": r"(subprocess|commands)\.call"}
    assert __import__("re").search(
        module.get(payload, r"(builtins|__builtin__)\.eval"), str(err.value)
    )
    assert not os.path.exists(marker)


def test_ordered_dict_of_arrays_loads_and_other_collections_are_refused():
    import collections

    sd = collections.OrderedDict([("b.weight", np.arange(6.0).reshape(2, 3)), ("a", np.int64(7))])
    for protocol in (2, 4, 5):
        back = safe_pickle.loads(pickle.dumps(sd, protocol=protocol), "w.pkl")
        assert type(back) is collections.OrderedDict and list(back) == ["b.weight", "a"]
        np.testing.assert_array_equal(back["b.weight"], sd["b.weight"])
    raw = pickle.dumps(collections.defaultdict(list, {"a": [1]}), protocol=2)
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"collections\.defaultdict"):
        safe_pickle.loads(raw, "w.pkl")


def test_codecs_encode_only_turns_text_into_bytes():
    evil = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xX\x06\x00\x00\x00base64\x86R."
    with pytest.raises(safe_pickle.UnsafePickleError, match="refused"):
        safe_pickle.loads(evil, "x.pkl")


def _procedural_smpl_dict() -> dict[str, np.ndarray]:
    model = body.make_procedural_body_model(0)
    arrays = {
        "v_template": np.asarray(model.v_template, np.float64),
        "shapedirs": np.asarray(model.shapedirs, np.float64),
        "posedirs": np.asarray(model.posedirs, np.float64).T.reshape(-1, 3, 207),
        "J_regressor": scipy.sparse.csc_matrix(np.asarray(model.J_regressor, np.float64)),
        "weights": np.asarray(model.weights, np.float64),
        "f": np.asarray(model.faces).astype(np.uint32),
    }
    kintree = np.stack([np.asarray(model.parents), np.arange(24)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    arrays["kintree_table"] = kintree
    return arrays


def _smplx_vertices(arrays, betas, pose, transl):
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")

    class _Struct:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    data = dict(arrays, J_regressor=arrays["J_regressor"].toarray())
    ref = smplx.SMPL(model_path="unused", data_struct=_Struct(**data), num_betas=10)
    with torch.no_grad():
        out = ref(
            betas=torch.from_numpy(betas),
            body_pose=torch.from_numpy(pose[:, 3:]),
            global_orient=torch.from_numpy(pose[:, :3]),
            transl=torch.from_numpy(transl),
        )
    return out.vertices.numpy(), out.joints.numpy()


@pytest.mark.parametrize("numpy_paths", ["numpy._core", "numpy.core"])
def test_python3_protocol2_smpl_pickle_loads_and_matches_smplx(tmp_path, numpy_paths):
    arrays = _procedural_smpl_dict()
    raw = pickle.dumps(arrays, protocol=2)
    assert b"_codecs" in raw and b"encode" in raw  # numpy bytes as Python 3 writes them
    if numpy_paths == "numpy.core":  # as NumPy 1 writes it (protocol 0: text module names)
        raw = pickle.dumps(arrays, protocol=0).replace(b"numpy._core", b"numpy.core")
        assert b"numpy._core" not in raw and b"numpy.core.multiarray" in raw
    else:
        assert b"numpy._core" in raw  # as NumPy 2 writes it
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(raw)
    ours = body.load_body_model(path)
    rng = np.random.default_rng(0)
    betas = rng.normal(size=(3, 10)).astype(np.float32)
    pose = (0.3 * rng.normal(size=(3, 72))).astype(np.float32)
    transl = rng.normal(size=(3, 3)).astype(np.float32)
    ref_v, ref_j = _smplx_vertices(arrays, betas, pose, transl)
    out = ours(betas, pose[:, 3:].reshape(3, 23, 3), pose[:, :3], transl)
    np.testing.assert_allclose(out.vertices, ref_v, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out.joints45, ref_j, atol=1e-5, rtol=0)


def test_dataframe_and_sparse_pickles_written_by_the_installed_libraries(tmp_path):
    df = pd.DataFrame.from_records(
        [
            {
                "imgPath": "a.png",
                "isValid": [True, False],
                "occlusion": [1.5, 95.0],
                "kid": [False, True],
                "gt_joints_2d": [np.zeros((45, 2)), np.ones((45, 2))],
                "camX": 3.0,
            },
            {"imgPath": "b.png", "isValid": [], "occlusion": [], "kid": [], "gt_joints_2d": [],
             "camX": 1.0},
        ]
    )  # fmt: skip
    for protocol in (2, 4, 5):
        path = tmp_path / f"df{protocol}.pkl"
        with open(path, "wb") as f:
            pickle.dump(df, f, protocol=protocol)
        back = safe_pickle.load(path, "AGORA dataframe")
        pd.testing.assert_frame_equal(back, df)
    df.to_pickle(tmp_path / "to_pickle.pkl")  # pandas' own writer
    pd.testing.assert_frame_equal(safe_pickle.load(tmp_path / "to_pickle.pkl"), df)

    dense = np.arange(12.0).reshape(3, 4) * (np.arange(12).reshape(3, 4) % 3 == 0)
    mats = {k: getattr(scipy.sparse, k)(dense) for k in ("csc_matrix", "csr_matrix", "coo_matrix")}
    back = safe_pickle.loads(pickle.dumps(mats, protocol=2), "sparse.pkl")
    for k, m in back.items():
        np.testing.assert_array_equal(safe_pickle.plain_array(m, k), dense)
