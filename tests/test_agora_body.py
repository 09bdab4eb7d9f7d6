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
    assert res["body-MPJPE"] <= 0.1 and res["body-MVE"] <= 0.1  # float32 forward, mm
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
