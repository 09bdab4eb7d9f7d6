"""AGORA ``params`` submissions through the real siam_jax.body SMPL forward (procedural model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from siam_jax import body
from siam_jax.evaluation import agora, agora_export
from tests.test_agora import _project, gt_frame


def _smpl_person(model, seed):
    from siam_jax.body import rotations

    rng = np.random.default_rng(seed)
    aa = (rng.normal(size=(24, 3)) * 0.2).astype(np.float32)
    aa[0] = [np.pi, 0.0, 0.0]  # upright in the OpenCV camera frame (y down)
    params = {
        "betas": rng.normal(size=10).astype(np.float32) * 0.5,
        "global_orient": aa[0],
        "body_pose": aa[1:],
        "transl": np.array([rng.uniform(-1, 1), 0.2, 7.0 + seed], np.float32),
    }
    out = model(**params)
    j45 = np.asarray(out.joints45, np.float64)
    gt = {"j3": j45, "v": np.asarray(out.vertices, np.float64), "j2": _project(j45)}
    rotmats = np.asarray(rotations.axis_angle_to_matrix(aa))
    return gt, params, rotmats


def test_params_submissions_score_zero_error(tmp_path):
    model = body.make_procedural_body_model(seed=0)
    a, pa, rot_a = _smpl_person(model, 0)
    b, pb, _ = _smpl_person(model, 1)
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    gt_frame("img_1.png", [a, b], [0, 0], [True, True]).to_pickle(gt_dir / "gt.pkl")
    persons = [
        # rotation matrices (pose2rot False), as the model outputs them
        {
            "joints_2d": a["j2"],
            "params": {**pa, "global_orient": rot_a[:1], "body_pose": rot_a[1:]},
        },
        {"joints_2d": b["j2"], "params": pb},  # axis-angle
    ]
    agora_export.write_agora_predictions(str(pred_dir), "img_1.png", persons)
    res = agora.evaluate_agora(
        agora.load_gt_dir(str(gt_dir)),
        agora.load_prediction_dir(str(pred_dir)),
        body_model=model,
    )
    assert res["f1"] == 1.0
    assert res["body-MPJPE"] <= 0.1 and res["body-MVE_all6890"] <= 0.1  # float32 forward, mm
    # The CLI loads the body model from --smpl_path.
    if not hasattr(body, "save_body_model"):
        return
    smpl = tmp_path / "smpl_neutral.npz"
    body.save_body_model(model, str(smpl))
    out = tmp_path / "r.json"
    cmd = [
        sys.executable,
        "-m",
        "siam_jax.evaluation.agora",
        "--gt_dir",
        str(gt_dir),
        "--pred_dir",
        str(pred_dir),
        "--smpl_path",
        str(smpl),
        "--out",
        str(out),
    ]
    r = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["f1"] == 1.0 and res["body-MPJPE"] <= 0.1


def _smplx_kid(model, template_path):
    """smplx's own kid model (``SMPL(age='kid', kid_template_path=...)``) on the procedural
    model's arrays: the reference the SMIL 11th beta is checked against."""
    import pytest

    pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")

    class _Struct:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    v = model.num_vertices
    kintree = np.stack([np.asarray(model.parents), np.arange(24)])
    data = {
        "v_template": np.asarray(model.v_template, np.float64),
        "shapedirs": np.asarray(model.shapedirs, np.float64),
        "posedirs": np.asarray(model.posedirs, np.float64).T.reshape(v, 3, 207),
        "J_regressor": np.asarray(model.J_regressor, np.float64),
        "weights": np.asarray(model.weights, np.float64),
        "kintree_table": kintree,
        "f": np.asarray(model.faces).astype(np.int64),
    }
    return smplx.SMPL(
        model_path="unused", data_struct=_Struct(**data), num_betas=10, age="kid",
        kid_template_path=str(template_path),
    )  # fmt: skip


def test_kid_params_with_the_smil_template_match_smplx(tmp_path):
    """A kid (11 betas) GT made by smplx's kid model and submitted as params with
    ``kid_flag``: our SMIL kid model poses it to zero error; an adult beside it too."""
    import torch

    model = body.make_procedural_body_model(seed=0)
    rng = np.random.default_rng(4)
    template = np.asarray(model.v_template) * 0.6 + rng.normal(0, 0.005, (6890, 3)) + 3.0
    np.save(tmp_path / "smpl_kid_template.npy", template)
    ref = _smplx_kid(model, tmp_path / "smpl_kid_template.npy")
    betas = np.concatenate([rng.normal(size=10) * 0.5, [0.8]]).astype(np.float32)
    aa = (rng.normal(size=(24, 3)) * 0.2).astype(np.float32)
    aa[0] = [np.pi, 0.0, 0.0]
    transl = np.array([0.5, 0.3, 6.0], np.float32)
    with torch.no_grad():
        out = ref(
            betas=torch.from_numpy(betas[None]),
            body_pose=torch.from_numpy(aa[None, 1:].reshape(1, 69)),
            global_orient=torch.from_numpy(aa[None, 0]),
            transl=torch.from_numpy(transl[None]),
        )
    j45, verts = out.joints[0].numpy().astype(np.float64), out.vertices[0].numpy()
    kid_gt = {"j3": j45, "v": verts.astype(np.float64), "j2": _project(j45)}
    adult, pa, _ = _smpl_person(model, 1)
    df = gt_frame("k.png", [kid_gt, adult], [0, 0], [True, True], kid=[True, False])
    kid_params = {"betas": betas, "global_orient": aa[0], "body_pose": aa[1:], "transl": transl}
    persons = [
        {"joints_2d": kid_gt["j2"], "params": kid_params},
        {"joints_2d": adult["j2"], "params": pa},
    ]
    pred_dir = tmp_path / "pred"
    agora_export.write_agora_predictions(str(pred_dir), "k.png", persons)
    preds = agora.load_prediction_dir(str(pred_dir))
    kid_rec = preds["k.png"][0]
    assert kid_rec["params"]["betas"].shape == (1, 11) and kid_rec["kid_flag"] is True
    assert kid_rec["num_betas"] == 11 and kid_rec["age"] == "kid"
    kid_model = agora.kid_body_model(
        model, agora.load_kid_template(str(tmp_path / "smpl_kid_template.npy"))
    )
    res = agora.evaluate_agora([df], preds, body_model=model, kid_body=kid_model)
    assert res["f1"] == 1.0 and res["kid_f1"] == 1.0 and res["num_kids"] == 1
    assert res["body-MPJPE"] <= 0.1 and res["kid-body-MPJPE"] <= 0.1
    assert res["kid-body-MVE_all6890"] <= 0.1
    # The adult model alone (the kid's 11th beta dropped) is far off: the template matters.
    no_kid = np.concatenate([np.asarray(model.shapedirs)[:, :, :10], np.zeros((6890, 3, 1))], 2)
    res_adult = agora.evaluate_agora(
        [df], preds, body_model=model, kid_body=model.replace(shapedirs=no_kid)
    )
    assert res_adult["kid-body-MVE_all6890"] > 10.0
