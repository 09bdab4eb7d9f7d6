"""AGORA evaluation against fixtures in the official formats (PROTOCOLS.md section 1).

GT: a pandas DataFrame pickle, one row per image, per-person lists (``imgPath``, ``isValid``,
``occlusion``, ``kid``, ``gt_joints_2d`` 45x2 at 3840x2160, ``gt_joints_3d`` 45x3,
``gt_verts`` 6890x3). Predictions: ``<img>_personId_<k>.pkl`` dicts (joints+verts or params).
Expected numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from siam_jax.evaluation import agora, agora_export
from siam_jax.evaluation.agora_matching import bbox_iou, match_image, spectral_cost

# AGORA intrinsics at 3840x2160 with f = 28 mm (projection.py: focalLength_mm2px).
FX = 28 / 36 * 3840
FY = 28 / 20.25 * 2160
CX, CY = 1920.0, 1080.0
NV = 6890
# Any 4010 distinct vertex indices stand in for utils/body_verts_smpl.npy (the official subset's
# size; the file itself is AGORA's download).
BODY_VERTS = np.random.default_rng(7).permutation(NV)[:4010]


def _project(p3: np.ndarray) -> np.ndarray:
    return np.stack([FX * p3[:, 0] / p3[:, 2] + CX, FY * p3[:, 1] / p3[:, 2] + CY], -1)


def make_person(seed: int, centre=(0.0, 0.0, 8.0)):
    """A body-sized cloud of 45 joints and 6890 vertices in the OpenCV camera frame (metres)."""
    rng = np.random.default_rng(seed)
    c = np.asarray(centre)
    joints = c + rng.uniform([-0.3, -0.85, -0.15], [0.3, 0.85, 0.15], size=(45, 3))
    verts = c + rng.uniform([-0.35, -0.9, -0.2], [0.35, 0.9, 0.2], size=(NV, 3))
    return {"j3": joints, "v": verts, "j2": _project(joints)}


def gt_frame(image: str, people, occlusion, is_valid, kid=None) -> pd.DataFrame:
    n = len(people)
    return pd.DataFrame(
        {
            "imgPath": [image],
            "isValid": [list(is_valid)],
            "occlusion": [list(occlusion)],
            "kid": [list(kid or [False] * n)],
            "Yaw": [[0.0] * n],
            "camYaw": [0.0],
            "gt_joints_2d": [[p["j2"] for p in people]],
            "gt_joints_3d": [[p["j3"] for p in people]],
            "gt_verts": [[p["v"] for p in people]],
        }
    )


def verts_pred(person, j3=None, v=None, j2=None):
    """A joints+verts submission dict (sample smpl_verts_personId_0.pkl layout)."""
    return {
        "joints": (person["j2"] if j2 is None else j2)[None],  # (1, 45, 2) as the sample
        "allSmplJoints3d": person["j3"] if j3 is None else j3,
        "verts": person["v"] if v is None else v,
    }


def test_perfect_prediction_f1_one_zero_error():
    a, b = make_person(0, (-1.0, 0, 8)), make_person(1, (1.0, 0, 9))
    df = gt_frame("img_00000.png", [a, b], [0, 30], [True, True])
    preds = {"img_00000.png": [verts_pred(b), verts_pred(a)]}
    res = agora.evaluate_agora([df], preds, body_verts_index=BODY_VERTS)
    assert (res["precision"], res["recall"], res["f1"]) == (1.0, 1.0, 1.0)
    assert res["body-MPJPE"] == 0.0 and res["body-MVE"] == 0.0
    assert res["body-NMJE"] == 0.0 and res["body-NMVE"] == 0.0
    assert res["num_false_positives"] == 0 and res["num_misses"] == 0
    # Without the official body-vertex subset no number is labelled MVE / NMVE.
    res = agora.evaluate_agora([df], preds)
    assert "body-MVE" not in res and "body-NMVE" not in res
    assert res["body-MVE_all6890"] == 0.0 and res["body_verts"] == "all"
    with pytest.raises(ValueError, match="4010"):
        agora.evaluate_agora([df], preds, body_verts_index=np.arange(100))


def test_far_extra_prediction_is_false_positive():
    a = make_person(0)
    far = make_person(5, (3.0, 0, 8))  # its box does not touch a's: IoU 0
    df = gt_frame("x.png", [a], [0], [True])
    res = agora.evaluate_agora([df], {"x.png": [verts_pred(a), verts_pred(far)]})
    # TP 1, FP 1, FN 0: precision 0.5, recall 1, F1 = 1 / (1 + 0.5) = 0.67
    assert (res["precision"], res["recall"], res["f1"]) == (0.5, 1.0, 0.67)
    assert res["num_false_positives"] == 1 and res["body-MPJPE"] == 0.0


def test_low_iou_prediction_is_not_matched():
    a = make_person(0)
    # Shift the predicted 2D joints right by 90 % of the box width: IoU far below 0.1.
    width = a["j2"][:, 0].max() - a["j2"][:, 0].min()
    shifted = a["j2"] + np.array([0.9 * width, 0.0])
    assert bbox_iou(shifted, a["j2"]) < 0.1
    df = gt_frame("x.png", [a], [0], [True])
    res = agora.evaluate_agora([df], {"x.png": [verts_pred(a, j2=shifted)]})
    # The pair fails the IoU gate: the GT is missed and the prediction is a false positive.
    assert (res["precision"], res["recall"], res["f1"]) == (0.0, 0.0, 0.0)
    assert res["num_misses"] == 1 and res["num_false_positives"] == 1
    assert res["body-MPJPE"] is None or np.isnan(res["body-MPJPE"])


def test_occluded_person_is_neither_hit_nor_miss():
    a, occ = make_person(0, (-1.0, 0, 8)), make_person(1, (1.0, 0, 8))
    df = gt_frame("x.png", [a, occ], [10, 95], [True, False])
    res = agora.evaluate_agora([df], {"x.png": [verts_pred(a)]})
    assert (res["f1"], res["num_gt"], res["num_misses"]) == (1.0, 1, 0)
    # Official quirk: a prediction whose best pair is the invalid GT is not consumed by it and
    # is left a false positive (matching.py: match_2d_greedy).
    res2 = agora.evaluate_agora([df], {"x.png": [verts_pred(a), verts_pred(occ)]})
    assert res2["num_false_positives"] == 1 and res2["f1"] == 0.67
    m = match_image([a["j2"], occ["j2"]], [a["j2"], occ["j2"]], [True, False])
    assert m.pairs == ((0, 0),) and m.false_positives == (1,) and 1 in m.invalid
    assert m.gt_status(2) == [0, "invalid"]


def test_image_without_predictions_misses_its_valid_people():
    a = make_person(0)
    res = agora.evaluate_agora([gt_frame("x.png", [a], [0], [True])], {})
    assert (res["recall"], res["num_misses"]) == (0.0, 1)


def test_nmje_rounding_as_official():
    a = make_person(0)
    far = make_person(5, (3.0, 0, 8))
    j3 = a["j3"].copy()
    # Move joint 10 (not a hip) by 2.40096 m: MPJPE = 2.40096 / 24 m = 100.04 mm -> 100.0.
    j3[10, 0] += 2.40096
    v = a["v"] + np.array([0.05, 0.0, 0.0])  # every vertex 50 mm off after alignment: MVE 50.0
    df = gt_frame("x.png", [a], [0], [True])
    res = agora.evaluate_agora(
        [df], {"x.png": [verts_pred(a, j3=j3, v=v), verts_pred(far)]}, body_verts_index=BODY_VERTS
    )
    assert res["f1"] == 0.67  # TP 1, FP 1
    assert res["body-MPJPE"] == 100.0 and res["body-MVE"] == 50.0
    # round(100.0 / 0.67, 1) = round(149.2537, 1); unrounded 100.04 / (2/3) would give 150.1
    assert res["body-NMJE"] == 149.3
    assert res["body-NMVE"] == round(50.0 / 0.67, 1) == 74.6


def test_mid_hip_alignment_and_body_vertex_subset():
    a = make_person(0)
    # A rigid shift of the whole predicted body is removed by the mid-hip alignment.
    shift = np.array([0.3, -0.2, 0.5])
    pred = verts_pred(a, j3=a["j3"] + shift, v=a["v"] + shift)
    df = gt_frame("x.png", [a], [0], [True])
    assert agora.evaluate_agora([df], {"x.png": [pred]})["body-MPJPE"] == 0.0
    # Moving only SMPL joint 0 (pelvis) is an error: the root is the hip midpoint, not joint 0.
    j3 = a["j3"].copy()
    j3[0, 1] += 0.24
    res = agora.evaluate_agora([df], {"x.png": [verts_pred(a, j3=j3)]})
    assert res["body-MPJPE"] == 10.0  # 240 mm / 24 joints
    # Vertex errors outside the body subset do not count.
    v = a["v"].copy()
    outside = np.setdiff1d(np.arange(NV), BODY_VERTS)
    v[outside, 0] += 1.0  # 1 m on the 2880 vertices outside: 2880 / 6890 m = 418.0 mm over all
    pred = verts_pred(a, v=v)
    res = agora.evaluate_agora([df], {"x.png": [pred]}, body_verts_index=BODY_VERTS)
    assert res["body-MVE"] == 0.0
    assert agora.evaluate_agora([df], {"x.png": [pred]})["body-MVE_all6890"] == 418.0


def test_spectral_norm_not_frobenius_decides_the_match():
    a = make_person(0)
    gt2d = a["j2"]
    # A: 12 joints off by (10, 0) px and 12 by (0, 10): spectral 10 sqrt(12) = 34.6, Frobenius 49.0.
    da = np.zeros_like(gt2d)
    da[:12, 0] = 10.0
    da[12:24, 1] = 10.0
    # B: all 24 joints off by (8, 0): rank one, spectral = Frobenius = 8 sqrt(24) = 39.2.
    db = np.zeros_like(gt2d)
    db[:24, 0] = 8.0
    pa, pb = gt2d + da, gt2d + db
    assert spectral_cost(pa, gt2d) == pytest.approx(10 * np.sqrt(12))
    assert spectral_cost(pb, gt2d) == pytest.approx(8 * np.sqrt(24))
    assert np.linalg.norm(da[:24]) > np.linalg.norm(db[:24])  # Frobenius would pick B
    m = match_image([pb, pa], [gt2d], [True])
    assert m.pairs == ((1, 0),) and m.false_positives == (0,)
    # Through the evaluator: A carries the exact 3D body, B a wrong one; A must be scored.
    wrong = a["j3"].copy()
    wrong[5] += 1.0
    preds = [verts_pred(a, j2=pb, j3=wrong), verts_pred(a, j2=pa)]
    res = agora.evaluate_agora([gt_frame("x.png", [a], [0], [True])], {"x.png": preds})
    assert res["body-MPJPE"] == 0.0


def test_iou_plus_one_convention():
    # Boxes [0, 9] x [0, 9] and [5, 14] x [0, 9]: widths 10 with +1, intersection 5 x 10.
    p = np.array([[0.0, 0.0], [9.0, 9.0]])
    g = np.array([[5.0, 0.0], [14.0, 9.0]])
    assert bbox_iou(p, g) == pytest.approx(50 / (100 + 100 - 50))


def test_export_roundtrip_and_cli(tmp_path):
    a, b = make_person(0, (-1.0, 0, 8)), make_person(1, (1.0, 0, 9))
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    gt_frame("ag_validationset_00000.png", [a, b], [0, 20], [True, True]).to_pickle(
        gt_dir / "validation_0_withjv.pkl"
    )
    # Person a predicted on a 1280x720 image: 2D joints are a third of the 4K ones.
    persons = [
        {
            "joints_2d": a["j2"][:24] / 3.0,
            "image_size": (1280, 720),
            "joints_3d": a["j3"],
            "vertices": a["v"],
        },
        {"joints_2d": b["j2"], "joints_3d": b["j3"], "vertices": b["v"]},
    ]
    paths = agora_export.write_agora_predictions(
        str(pred_dir), "ag_validationset_00000.png", persons
    )
    assert [os.path.basename(p) for p in paths] == [
        "ag_validationset_00000_personId_0.pkl",
        "ag_validationset_00000_personId_1.pkl",
    ]
    assert sorted(os.listdir(pred_dir)) == sorted(os.path.basename(p) for p in paths)
    with open(paths[0], "rb") as f:
        rec = pickle.load(f, encoding="latin1")
    np.testing.assert_allclose(rec["joints"], a["j2"][:24], rtol=1e-12)
    assert all(isinstance(v, np.ndarray) for v in rec.values())
    out = tmp_path / "res.json"
    cmd = [
        sys.executable,
        "-m",
        "siam_jax.evaluation.agora",
        "--gt_dir",
        str(gt_dir),
        "--pred_dir",
        str(pred_dir),
        "--out",
        str(out),
    ]
    np.save(tmp_path / "body_verts_smpl.npy", BODY_VERTS.astype(np.uint32))
    cmd += ["--body_verts_index", str(tmp_path / "body_verts_smpl.npy")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    for k in (
        "precision",
        "recall",
        "f1",
        "body-MPJPE",
        "body-MVE",
        "body-NMJE",
        "body-NMVE",
        "kid_f1",
        "kid-body-MPJPE",
    ):
        assert k in res
    assert res["f1"] == 1.0 and res["body-MPJPE"] < 1e-3 and res["body-MVE"] < 1e-3
    assert res["kid_f1"] is None and res["body_verts"] == 4010  # no kids: the official 'nan'


def test_export_params_layouts(tmp_path):
    rng = np.random.default_rng(0)
    j2 = rng.uniform(0, 100, (24, 2))
    rot = np.tile(np.eye(3, dtype=np.float32), (24, 1, 1))
    p_rm = {
        "global_orient": rot[:1],
        "body_pose": rot[1:],
        "betas": np.zeros(10),
        "transl": np.zeros(3),
    }
    p_aa = {
        "global_orient": np.zeros(3),
        "body_pose": np.zeros((23, 3)),
        "betas": np.zeros(10),
        "transl": np.zeros(3),
    }
    paths = agora_export.write_agora_predictions(
        str(tmp_path), "im", [{"joints_2d": j2, "params": p_rm}, {"joints_2d": j2, "params": p_aa}]
    )
    recs = []
    for p in paths:
        with open(p, "rb") as f:
            recs.append(pickle.load(f))
    assert recs[0]["pose2rot"] is False and recs[0]["params"]["body_pose"].shape == (1, 23, 3, 3)
    assert recs[0]["params"]["global_orient"].shape == (1, 1, 3, 3)
    assert recs[1]["pose2rot"] is True and recs[1]["params"]["body_pose"].shape == (1, 23, 3)
    assert recs[1]["params"]["betas"].shape == (1, 10) and recs[1]["gender"] == "neutral"
    with pytest.raises(KeyError, match="params"):
        agora_export.write_agora_predictions(str(tmp_path), "im", [{"joints_2d": j2}])
    with pytest.raises(ValueError, match="aspect"):
        agora_export.person_record({"joints_2d": j2, "params": p_aa, "image_size": (1000, 1000)})


def test_params_prediction_needs_smpl_and_kids_the_smil_template():
    a = make_person(0)
    df = gt_frame("x.png", [a], [0], [True])
    pred = {
        "joints": a["j2"],
        "params": {
            "betas": np.zeros((1, 10)),
            "global_orient": np.zeros((1, 1, 3)),
            "body_pose": np.zeros((1, 23, 3)),
            "transl": np.zeros((1, 3)),
        },
    }
    with pytest.raises(ValueError, match="smpl_path"):
        agora.evaluate_agora([df], {"x.png": [pred]})
    kid = dict(pred, kid_flag=True, num_betas=11)
    with pytest.raises(ValueError, match="kid_template_path"):
        agora.evaluate_agora([df], {"x.png": [kid]}, body_model=lambda **kw: None)


def test_bad_inputs_name_the_fault(tmp_path):
    df = gt_frame("x.png", [make_person(0)], [0], [True]).drop(columns=["gt_verts"])
    with pytest.raises(ValueError, match="gt_verts"):
        agora.evaluate_agora([df], {})
    (tmp_path / "badname.pkl").write_bytes(pickle.dumps({}))
    with pytest.raises(ValueError, match="personId"):
        agora.load_prediction_dir(str(tmp_path))


def test_false_positive_counter_counts_rejected_pairs():
    # Two people side by side. P0 sits exactly on G0; P1 covers G1's box (IoU 1) but with its
    # joints flipped upside down in that box, so the pair (P1, G1) costs more than the cheapest
    # low-IoU pair.
    # The official loop spends its budget on that rejected pair (fpCounter counts pairs) and stops
    # with G1 missed and P1 a false positive, though P1-G1 passes the IoU gate.
    g0 = make_person(0, (-0.31, 0, 8))["j2"][:24]
    g1 = make_person(1, (0.31, 0, 8))["j2"][:24]
    p0, p1 = g0.copy(), g1.copy()
    p1[:, 1] = g1[:, 1].min() + g1[:, 1].max() - g1[:, 1]
    assert bbox_iou(p1, g1) == pytest.approx(1.0)
    low_iou = [(p, g) for p, g in ((p0, g1), (p1, g0)) if bbox_iou(p, g) < 0.1]
    assert low_iou and min(spectral_cost(p, g) for p, g in low_iou) < spectral_cost(p1, g1)
    m = match_image([p0, p1], [g0, g1], [True, True])
    assert m.pairs == ((0, 0),) and m.false_positives == (1,) and m.misses == (1,)
    assert m.official_tuples() == [(0, 0), (1, "falsePositive"), ("miss", 1)]


class _RecordingBody:
    """Stand-in with the siam_jax.body call signature: a fixed body moved by ``transl``.

    It checks the plumbing of params submissions (reshapes, pose2rot, transl); the real SMPL
    forward is tested in test_agora_body.py when siam_jax.body is available.
    """

    def __init__(self, person):
        self.person, self.calls = person, []

    def __call__(self, betas, body_pose, global_orient, transl):
        import types

        self.calls.append((betas.shape, body_pose.shape, global_orient.shape))
        return types.SimpleNamespace(
            joints45=self.person["j3"] + transl, vertices=self.person["v"] + transl
        )


@pytest.mark.parametrize("rotmat", [False, True])
def test_params_submission_plumbing(rotmat):
    a = make_person(0)
    body = _RecordingBody(a)
    pose = (np.tile(np.eye(3), (24, 1, 1)) if rotmat else np.zeros((24, 3)))[:, None]
    params = {
        "global_orient": pose[0][None],
        "body_pose": pose[1:].reshape(1, 23, *pose.shape[2:]),
        "betas": np.zeros((1, 10)),
        "transl": np.array([[0.1, 0.2, 0.3]]),
    }
    pred = {"joints": a["j2"][None], "params": params, "pose2rot": not rotmat, "num_betas": 10}
    res = agora.evaluate_agora(
        [gt_frame("x.png", [a], [0], [True])], {"x.png": [pred]}, body_model=body
    )
    assert res["f1"] == 1.0 and res["body-MPJPE"] == 0.0 and res["body-MVE_all6890"] == 0.0
    want = ((10,), (23, 3, 3), (1, 3, 3)) if rotmat else ((10,), (23, 3), (3,))
    assert body.calls == [want]
