"""AGORA evaluation (SMPL track) as the official evaluator computes it.

Follows pixelite1201/agora_evaluation (PROTOCOLS.md section 1): the ground truth is a folder of
pandas DataFrame pickles (one row per image; per-person lists in ``isValid``, ``occlusion``,
``kid``, ``gt_joints_2d`` [45 2] at 3840x2160, ``gt_joints_3d`` [45 3] and ``gt_verts`` [6890 3] in
metres, camera frame); predictions are one pickle per person named
``<image stem>_personId_<k>.pkl`` holding either ``allSmplJoints3d`` + ``verts`` or SMPL
``params`` (neutral model), plus ``joints`` (2D, 3840x2160 pixels) for the matching.

Per image: greedy 2D matching (``agora_matching``); per matched GT person: MPJPE on the first 24
joints and MVE on the body-vertex subset (``utils/body_verts_smpl.npy``, 4010 indices), both after
subtracting each body's own mid-hip (SMPL joints 1 and 2); then precision/recall/F1 rounded to 2
decimals, MPJPE/MVE in mm rounded to 1 decimal and NMJE/NMVE = round(MPJPE / F1, 1)
(compute_average_error.py). Without the index file the vertex error is over all 6890 vertices and
is reported under other names (``body-MVE_all6890``, ``body-NMVE_all6890``): it is not the
official MVE.

Kids: a ``params`` prediction with ``kid_flag`` / ``age == 'kid'`` / 11 betas is posed with the
SMIL kid model of smplx (``age='kid'``): the SMIL template, mean-centred, minus the SMPL template
is appended as an 11th shape direction (``kid_body_model``; smplx body_models.py SMPL.__init__,
agora_evaluation get_smpl_vertices with ``kid_template_path``).

CLI::

    python -m siam_jax.evaluation.agora --gt_dir GT --pred_dir PRED \
        [--body_verts_index body_verts_smpl.npy] [--smpl_path SMPL_NEUTRAL.npz] --out result.json
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from siam_jax.common import files, safe_pickle
from siam_jax.evaluation.agora_matching import match_image

# calculate_v2v_error.py: SMPL_JOINTS = 24; align_by_pelvis uses joints 1 and 2 (L/R hip).
NUM_BODY_JOINTS = 24
LEFT_HIP, RIGHT_HIP = 1, 2
# compute_average_error.py: scalar = 1e3 (metres -> mm).
MM = 1000.0
# load_predictions.py: the image name is everything before "_personId_<k>.pkl", plus ".png".
_PRED_NAME = re.compile(r"^(?P<stem>.+)_personId_(?P<k>\d+)\.pkl$")
# utils/body_verts_smpl.npy: the body-only vertex subset of the official MVE (PROTOCOLS.md 1.5).
NUM_BODY_VERTS = 4010
ALL_VERTS_SUFFIX = "_all6890"  # vertex errors over all vertices: not the official MVE/NMVE
GT_COLUMNS = ("imgPath", "isValid", "occlusion", "gt_joints_2d", "gt_joints_3d", "gt_verts")

BodyFn = Callable[[Mapping[str, Any]], tuple[np.ndarray, np.ndarray]]


# ----------------------------------------------------------------------------- loading


def headline_keys(result: Mapping[str, Any]) -> list[str]:
    """The keys a summary line prints: P/R/F1, MPJPE/NMJE and the vertex errors as named."""
    keys = ["precision", "recall", "f1", "body-MPJPE", "body-NMJE"]
    return keys + [k for k in result if k.startswith(("body-MVE", "body-NMVE"))]


def official_image_name(name: str) -> str:
    """An image name without the 720p release's ``_1280x720`` suffix (projection.py names the
    1280x720 images ``<imgPath stem>_1280x720.png``)."""
    base = os.path.basename(str(name))
    stem, ext = os.path.splitext(base)
    return stem.removesuffix("_1280x720") + ext


def image_key(img_path: str) -> str:
    """The key predictions are attached by: the image file name (load_predictions.py)."""
    return os.path.basename(str(img_path))


def prediction_image_name(pred_file: str) -> str:
    """``Image_00001_personId_3.pkl`` -> ``Image_00001.png`` (load_predictions.py: load)."""
    m = _PRED_NAME.match(os.path.basename(pred_file))
    if m is None:
        raise ValueError(
            f"{pred_file}: prediction files must be named <image>_personId_<k>.pkl (AGORA format)"
        )
    return m.group("stem") + ".png"


def load_prediction_dir(pred_dir: str) -> dict[str, list[dict]]:
    """Image name -> prediction dicts, in sorted path order as the official loader leaves them."""
    paths = sorted(glob.glob(os.path.join(pred_dir, "*.pkl")))
    if not paths:
        raise FileNotFoundError(f"{pred_dir}: no prediction pickles (*.pkl)")
    by_image: dict[str, list[tuple[str, dict]]] = {}
    for path in paths:
        pred = safe_pickle.load(path, "AGORA prediction")  # written by anyone: allow-list only
        if not isinstance(pred, dict):
            raise ValueError(f"{path}: expected a dict, got {type(pred).__name__}")
        by_image.setdefault(prediction_image_name(path), []).append((path, pred))
    # test_img_predMatch sorts each image's path list as strings before the predictions are read.
    return {k: [p for _, p in sorted(v, key=lambda x: x[0])] for k, v in by_image.items()}


def load_gt_dir(gt_dir: str, split: str | None = None) -> list:
    """All GT DataFrame pickles of ``gt_dir`` (those named ``<split>_*.pkl`` when ``split`` is
    given, as AGORA's ``SMPL/validation_0_withjv.pkl``), sorted by file name, columns checked."""
    import pandas as pd

    pattern = "*.pkl" if split is None else f"{split}_*.pkl"
    paths = sorted(glob.glob(os.path.join(gt_dir, pattern)))
    if not paths:
        raise FileNotFoundError(f"{gt_dir}: no ground-truth DataFrame pickles ({pattern})")
    frames = []
    for path in paths:
        df = safe_pickle.load(path, "AGORA GT dataframe")
        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"{path}: holds {type(df).__name__}, not an AGORA GT DataFrame")
        check_gt_frame(df, path)
        frames.append(df)
    return frames


def check_gt_frame(df, source: str = "<DataFrame>") -> None:
    missing = [c for c in GT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: AGORA GT DataFrame lacks columns {missing}")
    for i in range(len(df)):
        row = df.iloc[i]
        n = len(row["isValid"])
        for col in ("occlusion", "gt_joints_2d", "gt_joints_3d", "gt_verts"):
            if len(row[col]) != n:
                raise ValueError(
                    f"{source}: row {i} ({row['imgPath']}): column {col!r} has {len(row[col])} "
                    f"entries for {n} people"
                )


def load_body_verts_index(path: str) -> np.ndarray:
    """AGORA's ``utils/body_verts_smpl.npy``: 4010 distinct SMPL vertex indices (PROTOCOLS.md
    1.5); anything else is refused, since only that subset gives the official MVE."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such body-vertex index file (body_verts_smpl.npy)")
    idx = np.load(path, allow_pickle=False)
    check_body_verts_index(idx, path)
    return idx.astype(np.int64)


def check_body_verts_index(idx: np.ndarray, source: str = "body_verts_index") -> None:
    idx = np.asarray(idx)
    if (
        idx.ndim != 1
        or idx.shape[0] != NUM_BODY_VERTS
        or idx.dtype.kind not in "iu"
        or len(np.unique(idx)) != idx.shape[0]
        or idx.min() < 0
        or idx.max() >= 6890
    ):
        raise ValueError(
            f"{source}: expected AGORA's {NUM_BODY_VERTS} distinct SMPL vertex indices "
            f"(utils/body_verts_smpl.npy), got shape {idx.shape} dtype {idx.dtype}"
        )


def load_kid_template(path: str) -> np.ndarray:
    """The SMIL kid template (``smpl_kid_template.npy`` / ``smil_template_fixed.npy``), [6890 3]."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such SMIL kid template (smpl_kid_template.npy)")
    t = np.load(path, allow_pickle=False)
    if t.shape != (6890, 3):
        raise ValueError(f"{path}: SMIL kid template has shape {t.shape}, expected (6890, 3)")
    return t


def kid_body_model(adult, smil_template: np.ndarray):
    """The 11-beta kid model of smplx ``SMPL(age='kid')``: shapedirs[:, :, :10] plus
    ``(smil - mean(smil)) - v_template`` as the 11th direction (smplx body_models.py)."""
    import jax.numpy as jnp

    smil = np.asarray(smil_template, np.float64)
    smil = smil - smil.mean(0)
    diff = (smil - np.asarray(adult.v_template, np.float64))[:, :, None]
    shapedirs = np.concatenate([np.asarray(adult.shapedirs)[:, :, :10], diff], axis=2)
    return adult.replace(shapedirs=jnp.asarray(shapedirs, jnp.float32))


def is_kid_prediction(pred: Mapping[str, Any]) -> bool:
    """kid_flag, age 'kid' or num_betas 11 (agora_evaluation get_smpl_vertices)."""
    age = pred.get("age", "adult")
    age = age.decode() if isinstance(age, bytes) else str(age)
    return bool(pred.get("kid_flag", False)) or age == "kid" or int(pred.get("num_betas", 10)) == 11


# ----------------------------------------------------------------------------- predictions


def _forward_of(body_model):
    if not hasattr(body_model, "v_template"):  # a plain callable (tests' stand-ins)
        return body_model
    import jax  # a siam_jax.body pytree: one compile per pose layout

    jitted = jax.jit(lambda model, **kw: model(**kw))
    return lambda **kw: jitted(body_model, **kw)


def _params_body_fn(body_model, kid_body=None) -> BodyFn:
    """SMPL forward for ``params`` submissions with the neutral model (get_smpl_vertices); kids
    with ``kid_body`` (``kid_body_model``)."""
    adult_forward = _forward_of(body_model)
    kid_forward = None if kid_body is None else _forward_of(kid_body)

    def run(pred: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        params = dict(pred["params"])
        # The SMPLX->SMPL conversion tool writes root_pose/translation (get_smpl_vertices).
        if "root_pose" in params:
            params["global_orient"] = params.pop("root_pose")
        if "translation" in params:
            params["transl"] = params.pop("translation")
        kid = is_kid_prediction(pred)
        if kid and kid_forward is None:
            raise ValueError(
                "a kid params prediction (11 betas) needs the SMIL kid template: pass "
                "--kid_template_path (smpl_kid_template.npy, as agora_evaluation)"
            )
        forward = kid_forward if kid else adult_forward
        nb = 11 if kid else 10
        missing = [k for k in ("betas", "global_orient", "body_pose", "transl") if k not in params]
        if missing:
            raise KeyError(f"params lacks {missing}")
        pose2rot = bool(pred.get("pose2rot", True))
        betas = np.asarray(params["betas"], np.float32).reshape(-1)
        if betas.shape[0] < nb:
            raise ValueError(
                f"betas has {betas.shape[0]} entries, a {'kid' if kid else 'adult'} needs {nb}"
            )
        betas = betas[:nb]
        if pose2rot:
            go = np.asarray(params["global_orient"], np.float32).reshape(3)
            bp = np.asarray(params["body_pose"], np.float32).reshape(23, 3)
        else:
            go = np.asarray(params["global_orient"], np.float32).reshape(1, 3, 3)
            bp = np.asarray(params["body_pose"], np.float32).reshape(23, 3, 3)
        transl = np.asarray(params["transl"], np.float32).reshape(3)
        out = forward(betas=betas, body_pose=bp, global_orient=go, transl=transl)
        joints = getattr(out, "joints45", None)
        joints = out.joints if joints is None else joints
        return np.asarray(joints, np.float64), np.asarray(out.vertices, np.float64)

    return run


def prediction_joints_verts(
    pred: Mapping[str, Any], body_fn: BodyFn | None
) -> tuple[np.ndarray, np.ndarray]:
    """3D joints and vertices of one prediction (get_joints_verts_from_dataframe: get_pred_joints).

    ``allSmplJoints3d`` wins over ``params`` for the joints, ``verts`` over ``params`` for the
    vertices, as in the official code.
    """
    joints = verts = None
    if "allSmplJoints3d" in pred:
        joints = np.asarray(pred["allSmplJoints3d"], np.float64).squeeze()
    if "verts" in pred:
        verts = np.asarray(pred["verts"], np.float64).squeeze()
    if joints is None or verts is None:
        if "params" not in pred:
            raise KeyError("prediction has neither allSmplJoints3d/verts nor params")
        if body_fn is None:
            raise ValueError(
                "a params prediction needs the SMPL model: pass --smpl_path (neutral SMPL)"
            )
        pj, pv = body_fn(pred)
        joints = pj if joints is None else joints
        verts = pv if verts is None else verts
    if joints.ndim != 2 or joints.shape[0] < NUM_BODY_JOINTS or joints.shape[1] != 3:
        raise ValueError(f"3D joints must be [J>=24, 3], got {joints.shape}")
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise ValueError(f"verts must be [V, 3], got {verts.shape}")
    return joints, verts


# ----------------------------------------------------------------------------- errors


def _mid_hip(joints: np.ndarray) -> np.ndarray:
    return 0.5 * (joints[LEFT_HIP] + joints[RIGHT_HIP])


def person_errors(
    gt_joints3d: np.ndarray,
    gt_verts: np.ndarray,
    pred_joints3d: np.ndarray,
    pred_verts: np.ndarray,
    body_verts_index: np.ndarray | None = None,
) -> tuple[float, float]:
    """(MPJPE, MVE) in metres of one matched person (calculate_v2v_error.py, flag 'body').

    Each body's joints and vertices are shifted by its own mid-hip; float64 as the reference.
    """
    gj = np.asarray(gt_joints3d, np.float64)[:NUM_BODY_JOINTS]
    pj = np.asarray(pred_joints3d, np.float64)[:NUM_BODY_JOINTS]
    gv = np.asarray(gt_verts, np.float64)
    pv = np.asarray(pred_verts, np.float64)
    if body_verts_index is not None:
        gv, pv = gv[body_verts_index], pv[body_verts_index]
    if gv.shape != pv.shape:
        raise ValueError(f"GT vertices {gv.shape} and predicted vertices {pv.shape} differ")
    mpjpe = np.linalg.norm((gj - _mid_hip(gj)) - (pj - _mid_hip(pj)), axis=-1).mean()
    mve = np.linalg.norm((gv - _mid_hip(gj)) - (pv - _mid_hip(pj)), axis=-1).mean()
    return float(mpjpe), float(mve)


@dataclasses.dataclass
class PersonRecord:
    image: str
    gt_index: int
    kid: bool
    miss: bool
    mpjpe_mm: float  # 0 for misses, as the official placeholders
    mve_mm: float


def compute_prf1(count: int, miss: int, num_fp: int) -> tuple[float, float, float]:
    """Precision, recall, F1 rounded to 2 decimals (compute_average_error.py: compute_prf1)."""
    if count == 0:
        return 0, 0, 0
    tp, fn = count - miss, miss
    f1 = round(tp / (tp + 0.5 * (num_fp + fn)), 2)
    recall = round(tp / (tp + fn), 2)
    precision = round(tp / (tp + num_fp), 2) if tp + num_fp > 0 else 0.0
    return precision, recall, f1


def _round_mean(values: Sequence[float]) -> float:
    return round(float(np.mean(values)), 1) if len(values) else float("nan")


def _normalised(err: float, f1: float) -> float:
    """round(err / f1, 1); NaN where the official code would divide by zero."""
    if not f1 or math.isnan(err):
        return float("nan")
    return round(err / f1, 1)


def aggregate(
    records: Sequence[PersonRecord], num_false_positives: int, official_verts: bool = True
) -> dict[str, Any]:
    """The official result dict (compute_average_error.py: compute_avg_error, SMPL keys).

    ``official_verts`` False (no body-vertex subset): the vertex keys get ``ALL_VERTS_SUFFIX``."""
    count = len(records)
    misses = sum(r.miss for r in records)
    kids = [r for r in records if r.kid]
    precision, recall, f1 = compute_prf1(count, misses, num_false_positives)
    hits = [r for r in records if not r.miss]
    kid_hits = [r for r in hits if r.kid]
    out: dict[str, Any] = {"precision": precision, "recall": recall, "f1": f1}
    if kids:
        kp, kr, kf = compute_prf1(len(kids), sum(r.miss for r in kids), num_false_positives)
    else:
        kp = kr = kf = float("nan")
    out.update(kid_precision=kp, kid_recall=kr, kid_f1=kf)
    for name, attr in (("MPJPE", "mpjpe_mm"), ("MVE", "mve_mm")):
        body = _round_mean([getattr(r, attr) for r in hits])
        kid = _round_mean([getattr(r, attr) for r in kid_hits])
        norm = "NMJE" if name == "MPJPE" else "NMVE"
        suffix = "" if name == "MPJPE" or official_verts else ALL_VERTS_SUFFIX
        out[f"body-{name}{suffix}"] = body
        out[f"kid-body-{name}{suffix}"] = kid
        out[f"body-{norm}{suffix}"] = _normalised(body, f1)
        out[f"kid-body-{norm}{suffix}"] = _normalised(kid, kf) if kids else float("nan")
    out["num_gt"] = count
    out["num_kids"] = len(kids)
    out["num_misses"] = misses
    out["num_false_positives"] = num_false_positives
    return out


# ----------------------------------------------------------------------------- evaluation


def _gt_valid_for_matching(row) -> np.ndarray:
    occ = np.asarray(row["occlusion"], np.float64)
    return (occ <= 90) & (occ >= 0) & np.asarray(row["isValid"], bool)


def _score_image(
    row, preds: Sequence[Mapping[str, Any]], body_fn: BodyFn | None, idx: np.ndarray | None
) -> tuple[list[PersonRecord], int]:
    """``(records of the valid GT people, number of false positives)`` of one GT row."""
    img = image_key(row["imgPath"])
    is_valid = [bool(v) for v in row["isValid"]]
    kid = row["kid"] if "kid" in row.index else [False] * len(is_valid)

    def miss(j: int) -> PersonRecord:
        return PersonRecord(img, j, bool(kid[j]), True, 0.0, 0.0)

    if not preds:
        # compute_avg_error: no prediction file for the image -> every valid GT a miss.
        return [miss(j) for j, v in enumerate(is_valid) if v], 0
    try:
        pred2d = [np.asarray(p["joints"], np.float64).squeeze() for p in preds]
    except KeyError as e:
        raise KeyError(f"{img}: a prediction lacks the 2D 'joints' key") from e
    match = match_image(pred2d, list(row["gt_joints_2d"]), _gt_valid_for_matching(row))
    status = match.gt_status(len(is_valid))
    records = []
    for j in (j for j, v in enumerate(is_valid) if v):
        s = status[j]
        if isinstance(s, str):  # 'miss' or 'invalid' both count as misses
            records.append(miss(j))
            continue
        try:
            pj, pv = prediction_joints_verts(preds[s], body_fn)
        except (KeyError, ValueError) as e:
            raise type(e)(f"{img}: prediction {s}: {e}") from e
        mpjpe, mve = person_errors(row["gt_joints_3d"][j], row["gt_verts"][j], pj, pv, idx)
        records.append(PersonRecord(img, j, bool(kid[j]), False, MM * mpjpe, MM * mve))
    return records, len(match.false_positives)


def evaluate_agora(
    gt_df_list: Sequence,
    predictions: Mapping[str, Sequence[Mapping[str, Any]]],
    body_verts_index: np.ndarray | None = None,
    body_model=None,
    return_records: bool = False,
    kid_body=None,
):
    """Score predictions against AGORA GT DataFrames; returns the official result dict.

    Args:
      gt_df_list: DataFrames in the official GT format (one row per image).
      predictions: image file name (``imgPath``'s base name) -> prediction dicts in the official
        per-person format. Images without an entry have all their valid people missed.
      body_verts_index: the 4010 body-vertex indices (utils/body_verts_smpl.npy) or None (all).
      body_model: a ``siam_jax.body`` model (neutral SMPL) for ``params`` predictions.
      kid_body: ``kid_body_model(body_model, smil)`` for kid ``params`` predictions.
      return_records: also return the per-person ``PersonRecord`` list.
    """
    body_fn = _params_body_fn(body_model, kid_body) if body_model is not None else None
    idx = None
    if body_verts_index is not None:
        check_body_verts_index(body_verts_index)
        idx = np.asarray(body_verts_index).astype(np.int64)
    records: list[PersonRecord] = []
    num_fp = 0
    for df in gt_df_list:
        check_gt_frame(df)
        for i in range(len(df)):
            row = df.iloc[i]
            preds = list(predictions.get(image_key(row["imgPath"]), []))
            image_records, image_fp = _score_image(row, preds, body_fn, idx)
            records += image_records
            num_fp += image_fp
    result = aggregate(records, num_fp, official_verts=idx is not None)
    result["body_verts"] = "all" if idx is None else int(idx.shape[0])
    return (result, records) if return_records else result


# ----------------------------------------------------------------------------- output / CLI


def _load_body_model(path: str):
    from siam_jax import body

    # The official evaluator always uses the neutral SMPL model (get_smpl_vertices).
    return body.get_body_model(path, gender="neutral")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m siam_jax.evaluation.agora", description=__doc__)
    ap.add_argument("--gt_dir", required=True, help="folder of AGORA GT DataFrame pickles")
    ap.add_argument("--pred_dir", required=True, help="folder of <img>_personId_<k>.pkl files")
    ap.add_argument("--body_verts_index", default="", help="utils/body_verts_smpl.npy (4010)")
    ap.add_argument("--smpl_path", default="", help="neutral SMPL .pkl/.npz for params files")
    ap.add_argument(
        "--kid_template_path", default="", help="SMIL kid template .npy (kid params files)"
    )
    ap.add_argument("--img_width", type=int, default=3840, help="GT image width (recorded)")
    ap.add_argument("--img_height", type=int, default=2160, help="GT image height (recorded)")
    ap.add_argument("--out", required=True, help="result JSON path")
    args = ap.parse_args(argv)

    gt = load_gt_dir(args.gt_dir)
    preds = load_prediction_dir(args.pred_dir)
    idx = load_body_verts_index(args.body_verts_index) if args.body_verts_index else None
    model = _load_body_model(args.smpl_path) if args.smpl_path else None
    kid = None
    if args.kid_template_path:
        if model is None:
            raise ValueError("--kid_template_path needs --smpl_path (the adult SMPL model)")
        kid = kid_body_model(model, load_kid_template(args.kid_template_path))
    result = evaluate_agora(gt, preds, idx, model, kid_body=kid)
    result["img_width"], result["img_height"] = args.img_width, args.img_height
    files.write_json(args.out, result)
    print(" ".join(f"{k}={result[k]}" for k in headline_keys(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
