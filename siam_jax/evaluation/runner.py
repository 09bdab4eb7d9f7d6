"""The evaluation runner behind ``eval.py``: restore a checkpoint, run the jitted model over a
split, match predictions to ground-truth people as each benchmark does, score with the protocol
modules, print the poster comparison and write ``WORKDIR/eval/<dataset>_<split>.json``.

The network runs in inference mode (top-k centre peaks above the threshold, no GT cells). Each
frame's predictions are taken back to the stored image's pixels by inverting the pipeline's
resize/pad (``augment.frame_transform`` with identity augmentation: no rotation, so the camera
frame of the 3D outputs is the stored image's). Per dataset (docs/evaluation.md, "Running eval.py"):

* ``pw3d`` / ``pw3d_occ``: ``pw3d.match_persons`` (AGORA's greedy 2D matcher, all GT valid) on the
  24 SMPL joints in the stored pixels, then ``Pw3dAccumulator`` (romp_vibe or spin protocol) on the
  evaluable (``campose_valid``) people; GT meshes from the body model of the protocol's gender.
* ``agora``: the official evaluator (``agora.evaluate_agora``) on a GT DataFrame built from the
  TFDS records (``gt_joints_2d`` scaled to 3840x2160, GT meshes from the neutral body model) and
  per-person predictions in the official format (``agora_export.person_record``).
* ``cmu_panoptic``: CRMH's argmin pairing and per-activity MPJPE (``PanopticAccumulator``).
* ``siam_synthetic``: one-to-one greedy nearest-centre matching, pelvis-aligned MPJPE,
  PA-MPJPE and PVE over the 24 SMPL joints / all vertices.

Evaluation is single-host (``process_index 0 of 1``): the metadata of each frame is read from the
same ordered clip list the pipeline's evaluation pass uses.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from siam_jax.evaluation import agora as agora_lib
from siam_jax.evaluation import agora_export, panoptic, paper_numbers, pw3d
from siam_jax.evaluation import metrics as metrics_lib
from siam_jax.training import checkpointing

DATASETS = ("pw3d", "pw3d_occ", "agora", "cmu_panoptic", "siam_synthetic")
MM = 1000.0
AGORA_WIDTH = agora_export.AGORA_WIDTH
# Model outputs the evaluation reads (docs/architecture.md, model output vocabulary).
_OUTPUT_KEYS = (
    "valid",
    "scores",
    "centers",
    "pred_smpl_params",
    "pred_cam_t",
    "pred_vertices",
    "pred_keypoints_3d",
    "pred_keypoints_2d",
)


# ============================================================================ datasets
def dataset_spec(config, dataset: str, split: str | None) -> tuple[str, str]:
    """``(pipeline dataset spec 'name[:config]', split)`` of a benchmark name.

    Defaults: 3DPW 'test'; 3DPW-OCC 'train+validation+test' (the whole occlusion subset, as
    ROMP/BEV evaluate it; the builder keeps the official split folders); AGORA 'validation' (the
    test split has no public GT: use it with ``export_agora`` only); CMU-Panoptic 'test';
    siam_synthetic ``config.data.eval_dataset`` when it names siam_synthetic, its eval split.
    """
    if dataset == "pw3d":
        return "pw3d:full", split or "test"
    if dataset == "pw3d_occ":
        return "pw3d:pw3d_occ", split or "train+validation+test"
    if dataset == "agora":
        return f"agora:{config.data.real.agora_config}", split or "validation"
    if dataset == "cmu_panoptic":
        return "cmu_panoptic", split or "test"
    if dataset == "siam_synthetic":
        spec = str(config.data.eval_dataset)
        if not spec.split("/")[0].split(":")[0] == "siam_synthetic":
            spec = "siam_synthetic"
        name, _, spec_split = spec.partition("/")
        return name, split or spec_split or str(config.data.eval_split)
    raise ValueError(f"--dataset must be one of {DATASETS}, got {dataset!r}")


@dataclasses.dataclass
class Frame:
    """One evaluated frame: its record, the stored image size and the inverse pixel map."""

    record: Mapping[str, Any]
    persons: dict[str, np.ndarray]
    image_name: str
    sequence_id: str
    width: int
    height: int
    to_stored: np.ndarray  # [3 3] input pixels -> stored image pixels


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _image_size(encoded) -> tuple[int, int]:
    """(width, height) from the encoded image's header (no full decode)."""
    from PIL import Image

    data = encoded if isinstance(encoded, bytes) else np.asarray(encoded).tobytes()
    with Image.open(io.BytesIO(data)) as im:
        return int(im.size[0]), int(im.size[1])


def read_frame(source, record: int, input_size: int, where: str) -> Frame:
    """Metadata of record ``record`` of ``source`` (a TFDS data source with undecoded images)."""
    from siam_jax.data import augment as augment_lib

    ex = source[int(record)]
    width, height = _image_size(ex["image"])
    persons = augment_lib.persons_from_record(ex["persons"], f"{where} record {record}")
    tr = augment_lib.frame_transform(
        (height, width),
        np.asarray(ex["intrinsics"], np.float32),
        augment_lib.AugmentParams(),
        input_size,
    )
    return Frame(
        record=ex,
        persons=persons,
        image_name=_text(ex["image_name"]),
        sequence_id=_text(ex["sequence_id"]),
        width=width,
        height=height,
        to_stored=np.linalg.inv(tr.pixel),
    )


def to_stored_pixels(points: Float[np.ndarray, "*n 2"], to_stored: np.ndarray) -> np.ndarray:
    """Input-image pixels -> stored-image pixels (the inverse of the pipeline's fit)."""
    from siam_jax.data import augment as augment_lib

    return augment_lib.apply_affine(points, to_stored).reshape(np.shape(points))


# ============================================================================ GT meshes
@jax.jit
def _body_forward(model, betas, pose, orient, transl):
    return model(betas=betas, body_pose=pose, global_orient=orient, transl=transl)


class GtMeshes:
    """GT vertices/joints from SMPL parameters (camera frame) with a body model per gender."""

    def __init__(self, models: Mapping[str, Any]):
        self.models = dict(models)

    def __call__(self, persons: Mapping[str, np.ndarray], idx, gender: str = "neutral"):
        """(vertices [n v 3], joints [n 24 3]) of persons ``idx`` with the ``gender`` model."""
        if gender not in self.models:
            raise ValueError(f"no {gender} body model loaded (have {sorted(self.models)})")
        idx = np.asarray(idx, np.int64)
        n = len(idx)
        pad = max(8, -(-n // 8) * 8)  # a few static shapes: one compile per bucket of 8

        def take(name, shape):
            out = np.zeros((pad, *shape), np.float32)
            out[:n] = np.asarray(persons[name], np.float32)[idx]
            return out

        model = self.models[gender]
        betas = take("betas", (10,))[:, : model.num_betas]
        out = _body_forward(
            model,
            betas,
            take("body_pose", (23, 3)),
            take("global_orient", (3,)),
            take("transl", (3,)),
        )
        return np.asarray(out.vertices)[:n], np.asarray(out.joints)[:n, :24]


def body_models_for(config, protocol: str, dataset: str, body_model) -> dict[str, Any]:
    """The GT body models: the model's own (neutral) and, for the SPIN protocol on 3DPW, the
    gendered SMPL files of ``config.data.real.body_model_dir`` (default
    ``<manual_dir>/body_models``) when present (else the error names the folder)."""
    models = {"neutral": body_model}
    if dataset.startswith("pw3d") and protocol == "spin":
        from siam_jax.body import get_body_model

        folder = config.data.real.body_model_dir or os.path.join(
            config.data.manual_dir, "body_models"
        )
        for g in ("male", "female"):
            try:
                m = get_body_model(folder, gender=g)
            except (FileNotFoundError, ValueError) as e:
                raise FileNotFoundError(
                    f"the spin protocol needs gendered SMPL models in {folder!r} "
                    f"(config.data.real.body_model_dir): {e}"
                ) from e
            if body_model.h36m_regressor is not None and m.h36m_regressor is None:
                m = m.replace(h36m_regressor=body_model.h36m_regressor)
            models[g] = m
    return models


# ============================================================================ matching
def nearest_centre_pairs(pred_centres: np.ndarray, gt_centres: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one greedy matching by increasing centre distance (pixels): (pred, gt) pairs."""
    p, g = np.asarray(pred_centres, np.float64), np.asarray(gt_centres, np.float64)
    if len(p) == 0 or len(g) == 0:
        return []
    d = np.linalg.norm(p[:, None] - g[None], axis=-1)
    pairs, used_p, used_g = [], set(), set()
    for flat in np.argsort(d, axis=None, kind="stable"):
        i, j = divmod(int(flat), d.shape[1])
        if i in used_p or j in used_g:
            continue
        pairs.append((i, j))
        used_p.add(i)
        used_g.add(j)
    return pairs


# ============================================================================ protocols
@dataclasses.dataclass
class Prediction:
    """The valid predictions of one frame (stored-image pixels, camera frame metres)."""

    joints_2d: np.ndarray  # [q 24 2]
    centres: np.ndarray  # [q 2]
    joints_3d: np.ndarray  # [q 24 3]
    vertices: np.ndarray  # [q v 3]
    global_orient: np.ndarray  # [q 1 3 3]
    body_pose: np.ndarray  # [q 23 3 3]
    betas: np.ndarray  # [q 10]
    transl: np.ndarray  # [q 3]


class Pw3dEval:
    name = "pw3d"

    def __init__(self, body_model, gt: GtMeshes, protocol: str):
        self.gt = gt
        self.protocol = protocol
        self.acc = pw3d.Pw3dAccumulator(body_model.h36m_regressor, protocol)

    def add(self, frame: Frame, pred: Prediction) -> None:
        p = frame.persons
        idx = np.flatnonzero(p["valid"] & p["has_smpl"])
        if len(idx) == 0:
            return
        pairs = pw3d.match_persons(list(pred.joints_2d), list(p["joints_2d"][idx]))
        self.acc.add_unmatched(len(idx) - len(pairs))
        if not pairs:
            return
        pi = np.array([a for a, _ in pairs])
        gi = idx[np.array([b for _, b in pairs])]
        from siam_jax.data import schema

        gender_codes = p["gender"][gi]
        gt_v = np.zeros_like(pred.vertices[pi])
        for code in np.unique(gender_codes):
            sel = gender_codes == code
            gender = "neutral"
            if self.protocol == "spin":  # the actor's own model (SPIN eval.py)
                gname = schema.GENDERS[int(code)]
                if gname == "neutral":
                    raise ValueError(f"{frame.image_name}: the spin protocol needs each gender")
                gender = pw3d.gt_body_gender("spin", gname)
            gt_v[sel], _ = self.gt(p, gi[sel], gender)
        self.acc.add(pred.vertices[pi], gt_v)

    def result(self) -> dict[str, Any]:
        return self.acc.result()


class AgoraEval:
    name = "agora"

    def __init__(self, gt: GtMeshes, export_dir: str | None, body_verts_index=None):
        self.gt = gt
        self.export_dir = export_dir
        self.body_verts_index = body_verts_index
        self.rows: list[dict] = []
        self.predictions: dict[str, list[dict]] = {}
        self.num_exported = 0

    def add(self, frame: Frame, pred: Prediction) -> None:
        p = frame.persons
        scale = AGORA_WIDTH / frame.width  # official GT 2D joints are in 3840x2160 pixels
        n = len(p["valid"])
        verts = self.gt(p, np.arange(n))[0] if n else np.zeros((0, 6890, 3))
        self.rows.append(
            {
                "imgPath": frame.image_name,
                "isValid": [bool(v) for v in p["valid"]],
                "occlusion": [float(o) for o in p["occlusion"]],
                "kid": [bool(k) for k in p["kid"]],
                "gt_joints_2d": [np.asarray(j, np.float64) * scale for j in p["joints_2d"]],
                "gt_joints_3d": [np.asarray(j, np.float64) for j in p["joints_3d"]],
                "gt_verts": [np.asarray(v, np.float64) for v in verts],
            }
        )
        persons = [
            {
                "joints_2d": pred.joints_2d[q],
                "image_size": (frame.width, frame.height),
                "vertices": pred.vertices[q],
                "joints_3d": pred.joints_3d[q],
                "params": {
                    "global_orient": pred.global_orient[q],
                    "body_pose": pred.body_pose[q],
                    "betas": pred.betas[q],
                    "transl": pred.transl[q],
                },
            }
            for q in range(len(pred.joints_2d))
        ]
        key = agora_lib.image_key(frame.image_name)
        if persons:
            self.predictions[key] = [agora_export.person_record(x) for x in persons]
            if self.export_dir:
                agora_export.write_agora_predictions(self.export_dir, frame.image_name, persons)
                self.num_exported += len(persons)

    def result(self) -> dict[str, Any]:
        import pandas as pd

        df = pd.DataFrame(self.rows, columns=[*agora_lib.GT_COLUMNS, "kid"])
        out = agora_lib.evaluate_agora([df], self.predictions, self.body_verts_index)
        out["body_verts"] = "all" if self.body_verts_index is None else len(self.body_verts_index)
        out["num_persons"] = out["num_gt"]
        if self.export_dir:
            out["exported_predictions"] = self.num_exported
        return out


class PanopticEval:
    name = "cmu_panoptic"

    def __init__(self, body_model):
        self.body = body_model
        self.acc = panoptic.PanopticAccumulator()

    def add(self, frame: Frame, pred: Prediction) -> None:
        p = frame.persons
        idx = np.flatnonzero(p["has_h36m"])
        if len(idx) == 0:
            return
        j = p["joints_h36m_3d"][idx]
        # Stored joints are kpts3d[:, J24_TO_H36M]; H36M joint 0 is J24 14, CRMH's root.
        gt17 = j - j[:, :1]
        pred17 = np.asarray(self.body.regress_h36m(jnp.asarray(pred.vertices)))
        self.acc.add_image(frame.sequence_id, pred17, gt17=gt17, vis=p["h36m_visibility"][idx])

    def result(self) -> dict[str, Any]:
        return self.acc.result()


class SyntheticEval:
    name = "siam_synthetic"

    def __init__(self, gt: GtMeshes):
        self.gt = gt
        self.errors: dict[str, list[float]] = {"MPJPE": [], "PA-MPJPE": [], "PVE": []}
        self.num_unmatched = 0

    def add(self, frame: Frame, pred: Prediction) -> None:
        p = frame.persons
        idx = np.flatnonzero(p["has_3d"] & p["has_smpl"])
        if len(idx) == 0:
            return
        # GT centre = the projected pelvis, as the pipeline's centre targets (docs/data.md).
        pairs = nearest_centre_pairs(pred.centres, p["joints_2d"][idx, 0])
        self.num_unmatched += len(idx) - len(pairs)
        if not pairs:
            return
        pi = np.array([a for a, _ in pairs])
        gi = idx[np.array([b for _, b in pairs])]
        errs = synthetic_errors(
            pred.joints_3d[pi], pred.vertices[pi], p["joints_3d"][gi], self.gt(p, gi)
        )
        for k, v in errs.items():
            self.errors[k] += list(np.asarray(v, np.float64) * MM)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: float(np.mean(v)) if v else float("nan") for k, v in self.errors.items()
        }
        out["num_persons"] = len(self.errors["MPJPE"])
        out["num_unmatched"] = self.num_unmatched
        return out


def synthetic_errors(
    pred_joints: Float[np.ndarray, "n 24 3"],
    pred_vertices: Float[np.ndarray, "n v 3"],
    gt_joints: Float[np.ndarray, "n 24 3"],
    gt_mesh: tuple[np.ndarray, np.ndarray],
) -> dict[str, Array]:
    """Pelvis-aligned MPJPE, PA-MPJPE (24 SMPL joints) and PVE (all vertices), metres."""
    gt_v, gt_body_joints = gt_mesh
    pj, gj = jnp.asarray(pred_joints), jnp.asarray(gt_joints)
    pja, gja = metrics_lib.align_by_pelvis(pj), metrics_lib.align_by_pelvis(gj)
    pva = metrics_lib.align_by_pelvis(jnp.asarray(pred_vertices), reference=pj)
    gva = metrics_lib.align_by_pelvis(jnp.asarray(gt_v), reference=jnp.asarray(gt_body_joints))
    return {
        "MPJPE": metrics_lib.mpjpe(pja, gja),
        "PA-MPJPE": metrics_lib.pa_mpjpe(pja, gja),
        "PVE": metrics_lib.pve(pva, gva),
    }


PROTOCOL_NAMES = {
    "agora": "agora_official",
    "cmu_panoptic": "crmh",
    "siam_synthetic": "pelvis_aligned_nearest_centre",
}


def make_evaluator(dataset: str, config, body_model, protocol: str, export_dir, verts_index):
    if dataset.startswith("pw3d"):
        gt = GtMeshes(body_models_for(config, protocol, dataset, body_model))
        return Pw3dEval(body_model, gt, protocol)
    if dataset == "agora":
        return AgoraEval(GtMeshes({"neutral": body_model}), export_dir, verts_index)
    if dataset == "cmu_panoptic":
        return PanopticEval(body_model)
    if dataset == "siam_synthetic":
        return SyntheticEval(GtMeshes({"neutral": body_model}))
    raise ValueError(f"--dataset must be one of {DATASETS}, got {dataset!r}")


# ============================================================================ model
@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef, state, images, intrinsics):
    from flax import nnx

    out = nnx.merge(graphdef, state)(images, intrinsics=intrinsics)
    out = {k: out[k] for k in _OUTPUT_KEYS}
    return jax.tree.map(
        lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, out
    )


def make_forward(model):
    """Jitted inference ``(images, intrinsics) -> outputs`` (top-k peaks, no GT cells); one
    compilation per model structure and input shape (module-level jit)."""
    from flax import nnx

    graphdef, state = nnx.split(model)
    return lambda images, intrinsics: _forward(graphdef, state, images, intrinsics)


def frame_prediction(out: Mapping[str, Any], b: int, t: int, frame: Frame) -> Prediction:
    """Valid slots of row ``b`` frame ``t``, 2D taken to the stored image's pixels."""
    q = np.flatnonzero(np.asarray(out["valid"][b, t], bool))
    sp = out["pred_smpl_params"]
    return Prediction(
        joints_2d=to_stored_pixels(np.asarray(out["pred_keypoints_2d"][b, t, q]), frame.to_stored),
        centres=to_stored_pixels(np.asarray(out["centers"][b, t, q]), frame.to_stored),
        joints_3d=np.asarray(out["pred_keypoints_3d"][b, t, q]),
        vertices=np.asarray(out["pred_vertices"][b, t, q]),
        global_orient=np.asarray(sp["global_orient"][b, t, q]),
        body_pose=np.asarray(sp["body_pose"][b, t, q]),
        betas=np.asarray(sp["betas"][b, t, q]),
        transl=np.asarray(out["pred_cam_t"][b, t, q]),
    )


# ============================================================================ run
def poster_table(dataset: str, result: Mapping[str, Any], config) -> str:
    """Ours beside the poster's row for the same setting, or a line saying there is none."""
    if dataset == "siam_synthetic":
        return "siam_synthetic: the poster reports no numbers for this dataset"
    m = config.model
    try:
        return paper_numbers.comparison_table(
            dataset,
            result,
            width=int(m.backbone.width),
            video=int(m.clip_len) > 1,
            sia=bool(m.sia.enabled),
            fd=bool(m.fd.enabled),
        )
    except KeyError as e:
        return f"{dataset}: no poster row for this setting ({e})"


def evaluate(
    config,
    workdir: str,
    dataset: str,
    *,
    split: str | None = None,
    checkpoint: int | None = None,
    protocol: str = "romp_vibe",
    export_agora: str | None = None,
    max_examples: int | None = None,
    body_verts_index: str = "",
    model=None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluates the checkpoint of ``workdir`` on ``dataset``; returns and writes the result
    (``WORKDIR/eval/<dataset>_<split>.json``). ``model`` (already restored) skips the restore."""
    from tqdm import tqdm

    from siam_jax import models
    from siam_jax.data import mixture, pipeline

    if dataset not in DATASETS:
        raise ValueError(f"--dataset must be one of {DATASETS}, got {dataset!r}")
    if dataset.startswith("pw3d") and protocol not in pw3d.PROTOCOLS:
        raise ValueError(f"--protocol must be one of {pw3d.PROTOCOLS}, got {protocol!r}")
    if export_agora and dataset != "agora":
        raise ValueError("--export_agora is only for --dataset agora")
    spec, split = dataset_spec(config, dataset, split)
    step = None
    if model is None:
        body_model = models.load_body_model(config.model)
        model, step = checkpointing.restore_model(config, workdir, checkpoint, body_model)
    body_model = model.body.get_value()
    verts_index = np.load(body_verts_index).astype(np.int64) if body_verts_index else None

    data_dir = config.data.data_dir
    clip_len = int(config.model.clip_len)
    input_size = int(config.model.input_size)
    (opened,) = mixture.open_datasets(
        [f"{spec}/{split}"], split, data_dir, clip_len, eval_stride=True
    )
    clips = opened.clips if max_examples is None else opened.clips[: int(max_examples)]
    meta = mixture.open_source(opened.spec, data_dir, skip_images=True)
    where = f"{opened.spec.name}/{opened.spec.split}"
    it = pipeline.make_iterator(
        config,
        train=False,
        dataset=f"{spec}/{split}",
        split=split,
        num_examples=len(clips),
        process_index=0,
        process_count=1,
    )
    evaluator = make_evaluator(dataset, config, body_model, protocol, export_agora, verts_index)
    forward = make_forward(model)
    num_images = 0
    bar = tqdm(total=len(clips), desc=f"eval {dataset}/{split}", disable=not progress)
    clip_i = 0
    for batch in it:
        out = jax.device_get(forward(jnp.asarray(batch["image"]), jnp.asarray(batch["intrinsics"])))
        for b in range(batch["image"].shape[0]):
            if not bool(batch["batch_valid"][b]):
                continue
            for t, record in enumerate(clips[clip_i]):
                frame = read_frame(meta, int(record), input_size, where)
                if int(frame.record["frame_index"]) != int(batch["frame_index"][b, t]):
                    raise RuntimeError(
                        f"{where}: batch row {b} frame {t} is not record {record} "
                        "(the pipeline's evaluation order changed)"
                    )
                evaluator.add(frame, frame_prediction(out, b, t, frame))
                num_images += 1
            clip_i += 1
            bar.update(1)
    bar.close()
    result = dict(evaluator.result())
    result.setdefault("protocol", PROTOCOL_NAMES.get(dataset, protocol))
    report = {
        "dataset": dataset,
        "tfds_name": opened.spec.name,
        "split": split,
        "protocol": result.pop("protocol"),
        "checkpoint_step": step,
        "num_images": num_images,
        "num_persons": result.pop("num_persons", None),
        "units": "mm",
        "metrics": result,
    }
    table = poster_table(dataset, result, config)
    report["poster_comparison"] = table
    out_path = os.path.join(workdir, "eval", f"{dataset}_{split.replace('/', '_')}.json")
    agora_lib.write_json(out_path, report)
    report["path"] = out_path
    print(f"protocol: {report['protocol']}; images {num_images}, persons {report['num_persons']}")
    print(table)
    print(f"wrote {out_path}")
    return report
