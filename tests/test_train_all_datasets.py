"""The poster config (configs/w32_frame.py, configs/recipe.py) trained on the official-format
fixtures of every dataset at once, with the tiny model sizes (configs/tiny.py ``shrink``).

Every dataset is prepared with ``python -m siam_jax.data.prepare``'s ``prepare`` under one data
root laid out as data/README.md says; the recipe's paths follow ``config.data_root``. The trainer
runs a few steps on the mixture of the recipe plus the datasets it does not use (PoseTrack,
BEDLAM, CMU-Panoptic), and every batch it consumes is recorded: per dataset, each loss term must
receive supervision exactly where the table "Supervision per dataset" of docs/training_data.md
says the dataset annotates it (the table is parsed here, so the doc and the code cannot drift).
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import shutil

import numpy as np
import pytest

from siam_jax.data import prepare
from tests import fixtures_bedlam as fb
from tests import fixtures_coco as fc
from tests import fixtures_h36m as fh
from tests import fixtures_mpi_inf as fm
from tests import fixtures_official as fx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "training_data.md")
TABLE_TITLE = "### Supervision per dataset"
# Doc column -> what the batches must show (losses.supervision_counts keys).
COLUMNS = {
    "reference SMPL": "has_smpl", "pose": "pose", "orient": "global_orient", "betas": "betas",
    "transl": "transl",
    "mesh": "vertices", "3D joints": "keypoints_3d", "2D joints": "keypoints_2d",
    "all annotated": "center_negatives", "centre targets": "center_positives",
}  # fmt: skip
# Datasets the recipe does not train on, added to its mixture here (train split unless named).
EXTRA = (("posetrack:labeled/train", 0.1), ("bedlam/train", 0.1), ("cmu_panoptic/test", 0.1))


def _write_pw3d(manual, bm, models):
    fx.write_pw3d(manual, models)
    # The fixture has test and validation sequences; its validation one also serves as train.
    src = os.path.join(manual, "sequenceFiles", "validation", "downtown_walking_00.pkl")
    shutil.copy(src, os.path.join(manual, "sequenceFiles", "train", "downtown_walking_00.pkl"))


# prepare NAME -> (fixture writer(manual, body model dir, models), builder config, body dir?)
FIXTURES = {
    "agora": (lambda m, bm, models: fx.write_agora(m, models["neutral"]), "1280x720", True),
    "pw3d": (_write_pw3d, "full", True),
    "cmu_panoptic": (lambda m, bm, models: fx.write_panoptic(m), None, False),
    "coco": (lambda m, bm, models: fc.write_coco(m), "neuralannot", False),
    "crowdpose": (lambda m, bm, models: fc.write_crowdpose(m, neuralannot=True), "neuralannot",
                  False),
    "mpii": (lambda m, bm, models: fc.write_mpii(m, neuralannot=True), "neuralannot", False),
    "muco": (lambda m, bm, models: fc.write_muco(m), "augmented", False),
    "posetrack": (lambda m, bm, models: fc.write_posetrack(m), "labeled", False),
    "h36m": (lambda m, bm, models: fh.write_h36m(m), "neuralannot", False),
    "mpi_inf_3dhp": (lambda m, bm, models: fm.write_mpi_inf(m), "spin", False),
    "bedlam": (lambda m, bm, models: fb.write_bedlam(m), None, False),
}  # fmt: skip


def write_data_root(root: str) -> dict:
    """Every fixture prepared under ``root`` (data/README.md layout); returns the summaries."""
    from siam_jax.models.mean_params import rest_mean_params

    bm = os.path.join(root, "body_models", "smpl")
    models = fx.write_body_models(bm)
    np.save(os.path.join(root, "body_models", "J_regressor_h36m.npy"),
            np.asarray(models["neutral"].h36m_regressor))  # fmt: skip
    np.savez(os.path.join(root, "body_models", "smpl_mean_params.npz"), **rest_mean_params())
    data_dir = os.path.join(root, "tensorflow_datasets")
    summaries = {}
    for name, (writer, config, needs_bm) in FIXTURES.items():
        manual = os.path.join(root, "manual", name)
        writer(manual, bm, models)
        summaries[name] = prepare.prepare(
            name, manual, data_dir, config=config, body_model_dir=bm if needs_bm else None
        )
    return summaries


def poster_config(root: str):
    """configs/w32_frame.py with the tiny model sizes, its data root at ``root``."""
    from configs import tiny, w32_frame

    c = tiny.shrink(w32_frame.get_config())
    c.data_root = root  # every recipe path follows (a FieldReference)
    # The fixture body model is the light .npz form; HigherHRNet weights do not fit HRNet-W4.
    c.model.body_model.path = os.path.join(root, "body_models", "smpl", "SMPL_NEUTRAL.npz")
    c.model.backbone.pretrained = ""
    c.data.train = list(c.data.train) + list(EXTRA)
    c.batch_size = 16
    c.total_steps = 3
    c.log_every_steps = 1
    c.checkpoint_every_steps = 3
    c.eval_every_steps = 3
    c.eval.batch_size = 2
    c.data.num_eval_examples = 2
    c.data.read_threads = 2
    c.optimizer.warmup_steps = 1
    return c


def doc_table() -> dict[str, dict[str, object]]:
    """The rows of "Supervision per dataset" (docs/training_data.md): spec -> column -> yes/no,
    and the joint set (None for SMPL-24)."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    assert TABLE_TITLE in text, f"{DOC} lost its table {TABLE_TITLE!r}"
    lines = text.split(TABLE_TITLE, 1)[1].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    rows = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    header, body = rows[0], rows[2:]
    out = {}
    for cells in body:
        row: dict[str, object] = {c: cells[header.index(c)].startswith("yes") for c in COLUMNS}
        joint_set = re.match(r"`(\w+)`", cells[header.index("joint set")])
        row["joint set"] = joint_set.group(1) if joint_set else None
        out[cells[0].strip("`")] = row
    return out


class _Recorder:
    """The trainer's iterator, recording each batch's per-dataset supervision counts."""

    def __init__(self, it, names):
        self.it, self.names = it, names
        self.counts = collections.defaultdict(collections.Counter)
        self.frames = collections.Counter()
        self.points = collections.defaultdict(set)  # superset points with a dataset joint

    def __iter__(self):
        return self

    def __next__(self):
        from siam_jax.training import losses

        batch = next(self.it)
        for i, name in enumerate(self.names):
            sel = batch["dataset_index"] == i
            if not sel.any():
                continue
            self.frames[name] += int(sel.sum())
            sub = {k: v[sel] for k, v in batch.items() if k in losses.BATCH_KEYS}
            for term, value in losses.supervision_counts(sub).items():
                self.counts[name][term] += float(value)
            valid = losses.valid_persons(sub)
            self.counts[name]["has_smpl"] += float(np.sum(valid & batch["has_smpl"][sel]))
            for dim in ("2d", "3d"):
                vis = batch[f"keypoints_{dim}_visibility"][sel][valid] > 0
                self.points[name] |= set(np.flatnonzero(vis.any(0)).tolist())
        return batch

    def get_state(self):
        return self.it.get_state()

    def set_state(self, state):
        self.it.set_state(state)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from siam_jax.training import loop, preflight
    from siam_jax.training.metrics_writer import read_metrics

    root = str(tmp_path_factory.mktemp("data_root"))
    summaries = write_data_root(root)
    config = poster_config(root)
    preflight.check(config)  # every recipe file and dataset is where the recipe looks
    names = [spec for spec, *_ in config.data.train]
    recorder = {}

    def make_train_iterator(cfg, pi, pc):
        recorder["r"] = _Recorder(loop.default_train_iterator(cfg, pi, pc), names)
        return recorder["r"]

    workdir = os.path.join(root, "work")
    result = loop.train_and_evaluate(config, workdir, make_train_iterator=make_train_iterator)
    return {
        "summaries": summaries,
        "recorder": recorder["r"],
        "result": result,
        "metrics": read_metrics(os.path.join(workdir, "metrics.jsonl")),
        "names": names,
    }


def test_every_dataset_trains_through_the_poster_config(run):
    rows = run["metrics"]
    assert sorted(rows) == [1, 2, 3]
    for step, row in rows.items():
        assert math.isfinite(row["loss"]) and row["l2_grads"] > 0, step
    assert math.isfinite(run["result"]["val_mpjpe_mm"]) and run["result"]["val_persons"] > 0
    frames = run["recorder"].frames
    missing = [n for n in run["names"] if frames[n] == 0]
    assert not missing, f"datasets never sampled in {sum(frames.values())} frames: {missing}"


def test_each_term_is_supervised_by_the_datasets_the_doc_table_names(run):
    table = doc_table()
    names = run["names"]
    assert sorted(table) == sorted(names), "the doc table rows are the smoke test's datasets"
    counts = run["recorder"].counts
    wrong = []
    for name in names:
        for col, term in COLUMNS.items():
            got = counts[name][term] > 0
            if got != table[name][col]:
                wrong.append(f"{name} {col}: doc {table[name][col]}, batches {counts[name][term]}")
    assert not wrong, "\n".join(wrong)


def test_each_dataset_holds_the_joints_of_its_doc_joint_set(run):
    from siam_jax.body import keypoints as kp

    for name, row in doc_table().items():
        points = run["recorder"].points[name]
        if row["joint set"] is None or name.startswith("cmu_panoptic"):
            assert not points, (name, sorted(points))  # SMPL-24 / H36M-17 fields, no own set
            continue
        mapped = kp.dataset_to_superset(row["joint set"])
        allowed = {int(i) for i in mapped if i >= 0}
        assert points and points <= allowed, (name, row["joint set"], sorted(points - allowed))


def test_prepare_summaries_name_what_was_read(run):
    for name, summary in run["summaries"].items():
        assert summary["dataset"] == prepare.lookup(name).name
        assert sum(summary["splits"].values()) > 0, name
        path = os.path.join(summary["data_dir"], "prepare_summary.json")
        with open(path) as f:
            assert json.load(f)["splits"] == summary["splits"]
