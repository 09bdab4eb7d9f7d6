"""eval.py / siam_jax.evaluation.runner end to end on tiny datasets, and the matching + metric path
fed with ground-truth-derived predictions (zero error, F1 1) instead of the network."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from siam_jax import checkpoints
from siam_jax.evaluation import evaluators, runner
from siam_jax.evaluation import frames as frames_lib
from siam_jax.evaluation import report as report_lib
from siam_jax.evaluation.gt_meshes import GtMeshes
from siam_jax.evaluation.predictions import Prediction
from tests import fixtures_official as fx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(data_dir: str, body_dir: str = ""):
    """The tiny config; with ``body_dir`` its body model is the fixtures' SMPL_NEUTRAL.npz file
    (the procedural seed-0 model saved as an SMPL file, H36M regressor included), as a real SMPL
    file is given on real benchmarks."""
    from configs import tiny

    c = tiny.get_config()
    c.data.data_dir = data_dir
    c.data.read_threads = 1
    c.data.real.body_model_dir = body_dir
    if body_dir:
        c.model.body_model.path = os.path.join(body_dir, "SMPL_NEUTRAL.npz")
    c.data.eval_dataset = "siam_synthetic:tiny"
    # An untrained network: every top-k peak counts as a detection, so all paths get predictions.
    c.model.center.threshold = 0.0
    return c


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A checkpoint of an initialised tiny SIAM (a TrainState, as training writes it)."""
    import jax
    from flax import nnx

    from siam_jax import models
    from siam_jax.training import state as state_lib

    config = _config("")
    body = models.load_body_model(config.model)  # outside the trace: get_body_model caches it
    graph = {}

    def init():
        model = models.build_model(config.model, rngs=nnx.Rngs(0), body_model=body)
        graph["defs"], st = state_lib.create_train_state(model, state_lib.make_optimizer(config))
        return st

    state = jax.jit(init)()
    work = tmp_path_factory.mktemp("work")
    ck = checkpoints.Checkpointer(str(work / "checkpoints"), keep=2, async_save=False)
    ck.save(3, state, None)
    ck.close()
    return str(work)


@pytest.fixture(scope="module")
def real_data(tmp_path_factory):
    """pw3d/full, agora/1280x720 and cmu_panoptic built from the official-format fixtures."""
    from siam_jax.data.builders import agora, cmu_panoptic, pw3d

    root = tmp_path_factory.mktemp("real")
    data_dir, bm = str(root / "tfds"), str(root / "body")
    models = fx.write_body_models(bm)
    truth = {}
    for name, write, build in (
        ("pw3d", lambda m: fx.write_pw3d(m, models), lambda: pw3d.Pw3d(
            data_dir=data_dir, body_model_dir=bm, config="full")),
        ("agora", lambda m: fx.write_agora(m, models["neutral"]), lambda: agora.Agora(
            data_dir=data_dir, body_model_dir=bm, config="1280x720")),
        ("panoptic", lambda m: fx.write_panoptic(m), lambda: cmu_panoptic.CmuPanoptic(
            data_dir=data_dir)),
    ):  # fmt: skip
        manual = str(root / f"manual_{name}")
        truth[name] = (manual, write(manual))
        build().download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual)
        )
    return data_dir, bm, truth


def _check_report(path: str, dataset: str, protocol: str, metric_keys) -> dict:
    with open(path) as f:
        rep = json.load(f)
    for key in ("dataset", "split", "protocol", "checkpoint_step", "num_images", "num_persons"):
        assert key in rep, key
    assert rep["dataset"] == dataset and rep["protocol"] == protocol
    assert rep["checkpoint_step"] == 3 and rep["num_images"] > 0 and rep["units"] == "mm"
    for key in metric_keys:
        assert key in rep["metrics"], key
    return rep


def test_missing_checkpoint_names_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: holds no checkpoint"):
        checkpoints.restore_model(_config(""), str(tmp_path))


def test_eval_py_on_tiny_synthetic_split(workdir, tmp_path):
    """The absl entry point in a subprocess: restore, jitted model, JSON with finite numbers."""
    from siam_jax.data.builders.siam_synthetic import SiamSynthetic

    data_dir = str(tmp_path / "data")
    SiamSynthetic(
        config="tiny", data_dir=data_dir, file_format="array_record"
    ).download_and_prepare()
    cmd = [sys.executable, "eval.py", "--config", "configs/tiny.py", "--workdir", workdir,
           "--dataset", "siam_synthetic", "--max_examples", "4",
           f"--config.data.data_dir={data_dir}", "--config.data.eval_dataset=siam_synthetic:tiny",
           "--config.model.center.threshold=0.0", "--config.data.read_threads=1"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = _check_report(
        os.path.join(workdir, "eval", "siam_synthetic_validation.json"),
        "siam_synthetic",
        "pelvis_aligned_nearest_centre",
        ("MPJPE", "PA-MPJPE", "PVE", "num_unmatched"),
    )
    assert rep["num_images"] == 4 and rep["num_persons"] > 0
    for key in ("MPJPE", "PA-MPJPE", "PVE"):
        assert math.isfinite(rep["metrics"][key]) and rep["metrics"][key] > 0
    assert "pelvis_aligned_nearest_centre" in proc.stdout


def _check_header(rep: dict, body_path: str) -> None:
    """Body model, protocol, split, checkpoint step and intrinsics are stated in the JSON."""
    assert rep["body_model"]["kind"] == "smpl" and rep["body_model"]["path"] == body_path
    assert len(rep["body_model"]["digest"]) == 64
    assert "K" in rep["intrinsics"] and rep["split"] and rep["protocol"]


@pytest.mark.parametrize("protocol", ["romp_vibe", "spin"])
def test_pw3d_fixture_end_to_end(workdir, real_data, protocol, capsys):
    data_dir, bm, _ = real_data
    rep = runner.evaluate(_config(data_dir, bm), workdir, "pw3d", protocol=protocol, progress=False)
    rep = _check_report(rep["path"], "pw3d", protocol, ("MPJPE", "PA-MPJPE", "PVE", "ACCEL"))
    _check_header(rep, os.path.join(bm, "SMPL_NEUTRAL.npz"))
    assert rep["split"] == "test" and rep["num_images"] == 3
    # 2 actors over 3 frames, one with campose_valid 0 at frame 1: 5 evaluable people.
    m = rep["metrics"]
    assert rep["num_persons"] + m["num_unmatched"] == 5 == m["num_gt"]
    assert "no poster row" in rep["poster_comparison"]  # width 4: not in Table 1
    out = capsys.readouterr().out
    assert "body model: smpl" in out and "intrinsics:" in out and "checkpoint step 3" in out
    assert "matched of 5 GT people" in out


def test_procedural_body_and_missing_h36m_regressor_are_refused(workdir, real_data, tmp_path):
    data_dir, bm, _ = real_data
    with pytest.raises(FileNotFoundError, match=r"SMPL_NEUTRAL\.pkl.*allow_procedural_body"):
        runner.evaluate(_config(data_dir), workdir, "pw3d", progress=False)
    # A real SMPL file without J_regressor_h36m: the error names it before any frame is read.
    from siam_jax import body

    model = body.load_body_model(os.path.join(bm, "SMPL_NEUTRAL.npz"))
    body.save_body_model(model.replace(h36m_regressor=None), str(tmp_path / "SMPL_NEUTRAL.npz"))
    config = _config(data_dir, bm)
    config.model.body_model.path = str(tmp_path / "SMPL_NEUTRAL.npz")
    with pytest.raises(FileNotFoundError, match=r"J_regressor_h36m\.npy"):
        runner.evaluate(config, None, "cmu_panoptic", predictions=str(tmp_path), progress=False)


def test_occ_on_train_refused_for_a_model_trained_on_3dpw():
    from siam_jax.evaluation import guards

    with pytest.raises(ValueError, match="allow_occ_train_overlap"):
        guards.check_occ_train("pw3d_occ", "train+validation+test", ["coco", "pw3d/train"], False)
    assert guards.check_occ_train("pw3d_occ", "test", ["pw3d/train"], False) is None
    assert guards.check_occ_train("pw3d_occ", "train", ["coco", "agora"], False) is None
    assert "WARNING" in guards.check_occ_train("pw3d_occ", "train", ["pw3d"], True)


def _agora_verts_file(tmp_path) -> str:
    """4010 distinct indices standing in for AGORA's utils/body_verts_smpl.npy."""
    path = str(tmp_path / "body_verts_smpl.npy")
    np.save(path, np.random.default_rng(7).permutation(6890)[:4010].astype(np.uint32))
    return path


def test_agora_fixture_end_to_end_with_export(workdir, real_data, tmp_path):
    data_dir, bm, truth = real_data
    export = str(tmp_path / "pred")
    rep = runner.evaluate(
        _config(data_dir, bm), workdir, "agora", split="train", export_agora=export,
        agora_gt_dir=os.path.join(truth["agora"][0], "SMPL"),
        body_verts_index=_agora_verts_file(tmp_path), progress=False,
    )  # fmt: skip
    keys = ("precision", "recall", "f1", "body-MPJPE", "body-MVE", "body-NMJE", "body-NMVE")
    rep = _check_report(rep["path"], "agora", "agora_official", keys)
    # GT people counted by the official evaluator: isValid ones (the adult and the kid of
    # image 0; the 95 % occluded adult of image 1 is not isValid).
    assert rep["num_images"] == 2 and rep["num_persons"] == 2 and rep["metrics"]["num_kids"] == 1
    assert "no poster row" in rep["poster_comparison"]  # width 4
    config = _config(data_dir, bm)
    config.model.backbone.width = 32
    table = report_lib.poster_table("agora", rep["metrics"], config, "validation")
    assert "ours: agora split validation | poster: AGORA test set, test-server numbers" in table
    files = sorted(os.listdir(export))
    assert len(files) == rep["metrics"]["exported_predictions"] > 0
    with open(os.path.join(export, files[0]), "rb") as f:
        pred = pickle.load(f)
    assert pred["joints"].shape == (24, 2) and pred["verts"].shape == (6890, 3)
    assert pred["params"]["body_pose"].shape == (1, 23, 3, 3) and pred["pose2rot"] is False
    with pytest.raises(FileNotFoundError, match="agora_gt_dir"):
        runner.evaluate(_config(data_dir, bm), workdir, "agora", split="train", progress=False)


def test_panoptic_fixture_end_to_end(workdir, real_data):
    data_dir, bm, _ = real_data
    rep = runner.evaluate(_config(data_dir, bm), workdir, "cmu_panoptic", progress=False)
    rep = _check_report(rep["path"], "cmu_panoptic", "crmh", ("haggling", "pizza", "mean"))
    assert rep["num_images"] == 3 and rep["num_persons"] == 5
    assert math.isfinite(rep["metrics"]["mean"]) and rep["metrics"]["mafia"] is None


# ------------------------------------------------------------------ --predictions


def _write_agora_perfect(pred_dir: str, agora_truth: dict) -> int:
    """Official joints+verts pickles of every GT person, kids included, from the fixture's own
    GT (the dataframe's gt_joints_2d / gt_joints_3d / gt_verts): independent of our code."""
    n = 0
    for img, t in agora_truth.items():
        keys = {"joints_2d": "gt_joints_2d", "joints_3d": "gt_joints_3d", "vertices": "gt_verts"}
        persons = [{k: p[c] for k, c in keys.items()} for p in t["persons"]]
        from siam_jax.evaluation import agora_export

        agora_export.write_agora_predictions(pred_dir, img, persons)
        n += len(persons)
    return n


def test_eval_py_scores_official_agora_prediction_files(real_data, tmp_path):
    """``eval.py --predictions`` on AGORA: a perfect prediction of every person (the kid too) in
    the official format gives F1 1 and MPJPE = MVE = 0."""
    _, bm, truth = real_data
    manual, agora_truth = truth["agora"]
    pred = str(tmp_path / "pred")
    assert _write_agora_perfect(pred, agora_truth) == 4  # train 3 (kid, occluded), validation 1
    cmd = [sys.executable, "eval.py", "--config", "configs/tiny.py", "--dataset", "agora",
           "--split", "train", "--predictions", pred, "--agora_gt_dir", f"{manual}/SMPL",
           "--body_verts_index", _agora_verts_file(tmp_path),
           f"--config.model.body_model.path={bm}/SMPL_NEUTRAL.npz"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(pred, "eval", "agora_train.json")) as f:
        rep = json.load(f)
    m = rep["metrics"]
    # The occluded adult predicted too: a false positive (official quirk), so F1 = 2 / 2.5 = 0.8
    # with every valid person matched at zero error.
    assert (m["recall"], m["num_misses"], m["num_kids"], m["kid_recall"]) == (1.0, 0, 1, 1.0)
    assert m["body-MPJPE"] == 0.0 and m["body-MVE"] == 0.0 and m["kid-body-MVE"] == 0.0
    assert m["num_false_positives"] == 1 and m["f1"] == 0.8
    assert rep["predictions"] == pred and rep["checkpoint_step"] is None
    assert "predictions " + pred in proc.stdout


def test_agora_predictions_perfect_without_the_occluded_person(real_data, tmp_path):
    data_dir, bm, truth = real_data
    manual, agora_truth = truth["agora"]
    valid = {
        k: {"persons": [p for p in t["persons"] if p["isValid"]]} for k, t in agora_truth.items()
    }
    pred = str(tmp_path / "pred")
    _write_agora_perfect(pred, valid)
    rep = runner.evaluate(
        _config(data_dir, bm), None, "agora", split="train", predictions=pred,
        agora_gt_dir=f"{manual}/SMPL", body_verts_index=_agora_verts_file(tmp_path),
        progress=False,
    )  # fmt: skip
    m = rep["metrics"]
    assert (m["f1"], m["kid_f1"], m["body-MPJPE"], m["body-MVE"]) == (1.0, 1.0, 0.0, 0.0)
    assert m["kid-body-MPJPE"] == 0.0 and m["num_gt"] == 2


def test_official_evaluator_fixture_numbers_through_predictions(tmp_path, real_data):
    """test_agora.py's hand-worked NMJE case (MPJPE 100.0, MVE 50.0, F1 0.67, NMJE 149.3,
    NMVE 74.6) written as files and scored through runner.evaluate(predictions=...)."""
    from tests import test_agora as ta

    data_dir, bm, _ = real_data
    a, far = ta.make_person(0), ta.make_person(5, (3.0, 0, 8))
    j3 = a["j3"].copy()
    j3[10, 0] += 2.40096
    v = a["v"] + np.array([0.05, 0.0, 0.0])
    (tmp_path / "gt").mkdir()
    ta.gt_frame("x.png", [a], [0], [True]).to_pickle(tmp_path / "gt" / "validation_0_withjv.pkl")
    (tmp_path / "pred").mkdir()
    for k, rec in enumerate([ta.verts_pred(a, j3=j3, v=v), ta.verts_pred(far)]):
        with open(tmp_path / "pred" / f"x_personId_{k}.pkl", "wb") as f:
            pickle.dump(rec, f)
    np.save(tmp_path / "bv.npy", ta.BODY_VERTS)
    rep = runner.evaluate(
        _config(data_dir, bm), None, "agora", predictions=str(tmp_path / "pred"),
        agora_gt_dir=str(tmp_path / "gt"), body_verts_index=str(tmp_path / "bv.npy"),
        progress=False,
    )  # fmt: skip
    m = rep["metrics"]
    assert rep["split"] == "validation"
    assert (m["f1"], m["body-MPJPE"], m["body-MVE"]) == (0.67, 100.0, 50.0)
    assert (m["body-NMJE"], m["body-NMVE"]) == (149.3, 74.6)


def _pw3d_files(folder, truth, drop=()):
    """Per-frame npz of the fixture's 3DPW test actors from the sequence file itself: camera-frame
    root = cam_poses R @ Rodrigues(pose[:3]) (3DPW / SPIN preprocessing), 2D = K @ joints_cam;
    ``drop`` lists (frame, actor) left out (a missed person)."""
    from scipy.spatial.transform import Rotation

    from siam_jax.common import prediction_file

    name = "courtyard_backpack_00"
    t = truth[name]
    data, k = t["data"], t["intrinsics"]
    for f in range(3):
        actors = [a for a in range(2) if (f, a) not in drop and data["campose_valid"][a][f]]
        go = [Rotation.from_matrix(data["cam_poses"][f, :3, :3] @ Rotation.from_rotvec(
            data["poses"][a][f, :3]).as_matrix()).as_rotvec() for a in actors]  # fmt: skip
        j3 = np.array([t["joints_cam"][a][f] for a in actors]).reshape(-1, 24, 3)
        uv = fx.pinhole(j3, k) if len(actors) else np.zeros((0, 24, 2))
        prediction_file.write(
            os.path.join(folder, f"imageFiles__{name}__image_{f:05d}.npz"),
            global_orient=np.array(go, np.float32).reshape(-1, 3),
            body_pose=np.array([data["poses"][a][f, 3:] for a in actors], np.float32).reshape(
                -1, 69),
            betas=np.array([data["betas"][a][:10] for a in actors], np.float32).reshape(-1, 10),
            transl=np.zeros((len(actors), 3), np.float32), track_id=np.arange(len(actors)),
            score=np.ones(len(actors), np.float32), joints_3d=j3.astype(np.float32),
            joints_2d=uv.astype(np.float32), joint_set=np.asarray("smpl24"),
            intrinsics=k.astype(np.float32), image_size=np.array([128, 96]),
        )  # fmt: skip


def test_pw3d_predictions_files_perfect_and_a_missed_person(real_data, tmp_path):
    data_dir, bm, truth = real_data
    _, pw3d_truth = truth["pw3d"]
    config = _config(data_dir, bm)
    _pw3d_files(str(tmp_path / "perfect"), pw3d_truth)
    rep = runner.evaluate(config, None, "pw3d", predictions=str(tmp_path / "perfect"),
                          progress=False)  # fmt: skip
    m = rep["metrics"]
    assert rep["num_persons"] == 5 and m["num_unmatched"] == 0
    for key in ("MPJPE", "PA-MPJPE", "PVE", "ACCEL"):
        assert m[key] < 1e-2, (key, m[key])
    # Actor 0 left out of frame 2: one GT person missed, counted beside the metrics.
    _pw3d_files(str(tmp_path / "missed"), pw3d_truth, drop=[(2, 0)])
    rep = runner.evaluate(config, None, "pw3d", predictions=str(tmp_path / "missed"),
                          progress=False)  # fmt: skip
    m = rep["metrics"]
    assert (rep["num_persons"], m["num_unmatched"], m["num_gt"]) == (4, 1, 5)
    assert m["miss_rate"] == pytest.approx(0.2) and "missed 1" in rep["misses"]


def test_panoptic_predictions_without_people_cost_150mm(real_data, tmp_path):
    """Every image's file holds no person: each of the 5 GT people is charged 150 mm."""
    from siam_jax.common import prediction_file

    data_dir, bm, truth = real_data
    _, pan = truth["panoptic"]
    for anns in pan["annotations"].values():
        for ann in anns:
            prediction_file.write(
                tmp_path / ann["filename"].replace(".jpg", ".npz"),
                global_orient=np.zeros((0, 3)), body_pose=np.zeros((0, 69)),
                betas=np.zeros((0, 10)), transl=np.zeros((0, 3)),
                track_id=np.zeros(0, np.int32), score=np.zeros(0), joints_3d=np.zeros((0, 24, 3)),
                joints_2d=np.zeros((0, 24, 2)), joint_set=np.asarray("smpl24"),
                intrinsics=np.eye(3), image_size=np.array([512, 832]),
                image_name=np.asarray(ann["filename"]),
            )  # fmt: skip
    rep = runner.evaluate(
        _config(data_dir, bm), None, "cmu_panoptic", predictions=str(tmp_path), progress=False
    )
    m = rep["metrics"]
    assert m["haggling"] == 150.0 and m["pizza"] == 150.0 and m["mean"] == 150.0
    assert m["num_missed_persons"] == 5 and m["num_images_without_prediction"] == 3


# ------------------------------------------------------------------ matching + metric path


def _frames(data_dir: str, spec: str, split: str, input_size: int = 64):
    from siam_jax.data import mixture

    s = mixture.DatasetSpec.parse(spec, split)
    src = mixture.open_source(s, data_dir, skip_images=True)
    return [frames_lib.read_frame(src, i, input_size, spec) for i in range(len(src))]


def _gt_prediction(frame, gt: GtMeshes, order) -> Prediction:
    """Predictions equal to the GT people ``order`` (a permutation, possibly with extras)."""
    p = frame.persons
    verts, _ = gt(p, order)
    eye = np.broadcast_to(np.eye(3, dtype=np.float32), (len(order), 24, 3, 3))
    return Prediction(
        joints_2d=p["joints_2d"][order], centres=p["joints_2d"][order, 0],
        joints_3d=p["joints_3d"][order], vertices=verts, global_orient=eye[:, :1],
        body_pose=eye[:, 1:], betas=p["betas"][order], transl=p["transl"][order],
    )  # fmt: skip


def _agora_truth_prediction(frame, persons, order) -> Prediction:
    """The fixture's own AGORA GT (dataframe columns, not the records) as a prediction."""
    pick = [persons[i] for i in order]
    eye = np.broadcast_to(np.eye(3, dtype=np.float32), (len(order), 24, 3, 3))
    z = np.zeros((len(order), 10), np.float32)
    return Prediction(
        joints_2d=np.array([p["gt_joints_2d"][:24] * frame.height / 2160 for p in pick]),
        centres=np.zeros((len(order), 2)),
        joints_3d=np.array([p["gt_joints_3d"] for p in pick]),
        vertices=np.array([p["gt_verts"] for p in pick]), global_orient=eye[:, :1],
        body_pose=eye[:, 1:], betas=z, transl=z[:, :3],
    )  # fmt: skip


def test_gt_predictions_score_zero_and_f1_one(real_data):
    from siam_jax.body import get_body_model
    from siam_jax.evaluation import agora as agora_lib

    data_dir, _, truth = real_data
    body = get_body_model("")  # procedural seed 0 = the fixtures' SMPL_NEUTRAL
    gt = GtMeshes({"neutral": body})

    ev = evaluators.Pw3dEval(body, gt, "romp_vibe")
    for fr in _frames(data_dir, "pw3d:full", "test"):
        ev.add(fr, _gt_prediction(fr, gt, np.arange(len(fr.persons["valid"]))[::-1]))
    res = ev.result()
    assert res["num_persons"] == 5 and res["num_unmatched"] == 0
    for k in ("MPJPE", "PA-MPJPE", "PVE"):
        assert res[k] < 1e-3, (k, res[k])

    # AGORA: the GT is the official dataframes; the predictions are the fixture writer's own GT
    # (independent of the records and of our SMPL forward), the kid included.
    manual, agora_truth = truth["agora"]
    dfs = agora_lib.load_gt_dir(os.path.join(manual, "SMPL"), "train")
    frames = _frames(data_dir, "agora:1280x720", "train")

    def truth_of(fr):
        return agora_truth[agora_lib.official_image_name(fr.image_name)]["persons"]

    ev = evaluators.AgoraEval(dfs)
    for fr in frames:
        ps = truth_of(fr)  # matchable: isValid and occlusion <= 90 (official get_matching)
        order = [i for i, p in enumerate(ps) if p["isValid"]][::-1]
        ev.add(fr, _agora_truth_prediction(fr, ps, order))
    res = ev.result()
    assert res["f1"] == 1.0 and res["num_misses"] == 0 and res["num_false_positives"] == 0
    assert res["body-MPJPE"] == 0.0 and res["body-MVE_all6890"] == 0.0
    assert res["kid_f1"] == 1.0 and res["kid-body-MVE_all6890"] == 0.0 and res["num_kids"] == 1

    # The occluded (95 %) person of image 1 predicted: the official evaluator calls it a false
    # positive (docs/evaluation.md); precision 2/3, F1 = 2 / (2 + 0.5) = 0.8.
    ev = evaluators.AgoraEval(dfs)
    for fr in frames:
        ev.add(fr, _agora_truth_prediction(fr, truth_of(fr), range(len(truth_of(fr)))))
    res = ev.result()
    assert res["num_false_positives"] == 1 and res["f1"] == 0.8 and res["precision"] == 0.67

    ev = evaluators.SyntheticEval(gt)  # AGORA frames: GT joints made with the neutral model
    for fr in frames:
        ev.add(fr, _gt_prediction(fr, gt, np.flatnonzero(fr.persons["has_smpl"])))
    res = ev.result()
    assert res["num_unmatched"] == 0 and max(res["MPJPE"], res["PA-MPJPE"], res["PVE"]) < 1e-3

    class H36mIsFirst17:  # "regresses" H36M joints as the first 17 rows of the "vertices"
        @staticmethod
        def regress_h36m(v):
            return v[..., :17, :]

    ev = evaluators.PanopticEval(H36mIsFirst17())
    for fr in _frames(data_dir, "cmu_panoptic", "test"):
        j = fr.persons["joints_h36m_3d"][::-1] + np.float32(5.0)  # any offset: root-aligned
        z = np.zeros((len(j), 1))
        ev.add(fr, Prediction(z, z, z, j, z, z, z, z))  # only `vertices` is read
    res = ev.result()
    assert res["mean"] < 1e-2 and res["num_persons"] == 5 and res["num_mismatch"] == 0


def test_pipeline_pixels_map_back_to_the_stored_image(real_data):
    """The pipeline's joints_2d (input pixels) taken back by ``to_stored_pixels`` equal the
    record's (stored pixels): the inverse of the resize/pad the runner applies to predictions."""
    from siam_jax.data import pipeline

    data_dir, bm, _ = real_data
    config = _config(data_dir, bm)
    config.batch_size = 3
    it = pipeline.make_iterator(
        config, train=False, dataset="pw3d:full/test", process_index=0, process_count=1
    )
    batch = next(it)
    frames = _frames(data_dir, "pw3d:full", "test")
    for b, fr in enumerate(frames):
        n = int(batch["person_valid"][b, 0].sum())
        assert n > 0
        got = frames_lib.to_stored_pixels(batch["joints_2d"][b, 0, :n], fr.to_stored)
        # Slots are ordered nearest first: compare as sets of people.
        ref = fr.persons["joints_2d"]
        for person in got:
            assert np.min(np.abs(ref - person).max(axis=(1, 2))) < 1e-2
