"""The four poster configs (W32/W48 x frame/video): the recipe they train (configs/recipe.py),
abstract init and forward shapes at 512x512."""

import os

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from configs import quickstart, recipe, tiny, w32_frame, w32_video, w48_frame, w48_video
from siam_jax.models import OUTPUT_KEYS, build_model

CONFIGS = {
    "w32_frame": w32_frame,
    "w32_video": w32_video,
    "w48_frame": w48_frame,
    "w48_video": w48_video,
}


def _abstract_forward(cfg, batch=1):
    """Shapes of build_model(cfg)(images) without allocating or computing anything."""
    model = nnx.eval_shape(lambda: build_model(cfg, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    size, t = cfg.input_size, cfg.clip_len
    images = jax.ShapeDtypeStruct((batch, t, size, size, 3), jnp.float32)

    def forward(state, images):
        m = nnx.merge(graphdef, state)
        m.eval()
        return m(images, return_aux=True)

    return jax.eval_shape(forward, state, images)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_poster_config_shapes_at_512(name):
    cfg = CONFIGS[name].get_config().model
    # Shapes only: the embedded body and rest-pose mean (the real files are not in CI).
    cfg.body_model.path = cfg.body_model.h36m_regressor_path = ""
    cfg.regressor.mean_params_path = ""
    assert cfg.input_size == 512
    assert cfg.clip_len == (8 if name.endswith("video") else 1)
    assert cfg.backbone.width == int(name[1:3])
    out, aux = _abstract_forward(cfg)
    t, k = cfg.clip_len, cfg.max_instances
    assert set(out) == set(OUTPUT_KEYS)
    assert out["center_heatmap"].shape == (1, t, 64, 64)  # stride 8
    assert out["pred_vertices"].shape == (1, t, k, 6890, 3)
    assert out["pred_keypoints_2d"].shape == (1, t, k, 24, 2)
    assert out["pred_smpl_params"]["body_pose"].shape == (1, t, k, 23, 3, 3)
    assert aux["fd_decorrelation"].shape == ()


def test_ablation_rows_switch_sia_and_fd():
    rows = {a: w32_frame.get_config(a).model for a in ("base", "sia", "fd", "full")}
    assert [(r.sia.enabled, r.fd.enabled) for r in rows.values()] == [
        (False, False),
        (True, False),
        (False, True),
        (True, True),
    ]
    with pytest.raises(ValueError, match="ablation"):
        w32_frame.get_config("nope")


def test_bfloat16_compute_keeps_float32_params_and_outputs():
    from configs import tiny

    cfg = tiny.get_config("video").model
    cfg.compute_dtype = "bfloat16"
    model = nnx.eval_shape(lambda: build_model(cfg, rngs=nnx.Rngs(0)))
    params = nnx.state(model, nnx.Param)
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    cfg.input_size = 64
    out, _ = _abstract_forward(cfg)
    assert out["pred_vertices"].dtype == jnp.float32
    assert out["center_heatmap"].dtype == jnp.float32


# Parameter counts (nnx.Param elements). The frame rows are those of the model before the
# temporal path existed (unchanged); the video Base / Base+FD rows add the temporal path, one
# block at d = 256: 2 LayerNorms (2 * 2d) + q, k, v, out (4 (d^2 + d)) + MLP d -> 4d -> d
# (4d^2 + 4d + 4d^2 + d) = 789,760 parameters (closed form, checked below).
TEMPORAL_PARAMS = 2 * 2 * 256 + 4 * (256 * 256 + 256) + (256 * 1024 + 1024) + (1024 * 256 + 256)
PARAM_COUNTS = {
    ("w32_frame", "base"): 34_904_670,
    ("w32_frame", "full"): 37_549_407,
    ("w48_frame", "base"): 70_985_694,
    ("w48_frame", "full"): 73_663_199,
    ("w32_video", "base"): 34_906_462 + TEMPORAL_PARAMS,
    ("w32_video", "fd"): 35_369_055 + TEMPORAL_PARAMS,
    ("w32_video", "full"): 37_551_199,
    ("w48_video", "base"): 70_987_486 + TEMPORAL_PARAMS,
}


@pytest.mark.parametrize("name,row", sorted(PARAM_COUNTS))
def test_parameter_counts_and_the_temporal_path_of_the_video_base_rows(name, row):
    cfg = CONFIGS[name].get_config(row).model
    cfg.body_model.path = cfg.body_model.h36m_regressor_path = ""  # shapes: the embedded body
    cfg.regressor.mean_params_path = ""
    assert cfg.temporal.enabled == (name.endswith("video") and row in ("base", "fd"))
    model = nnx.eval_shape(lambda: build_model(cfg, rngs=nnx.Rngs(0)))
    count = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert count == PARAM_COUNTS[name, row]
    if cfg.temporal.enabled:
        temporal = sum(x.size for x in jax.tree.leaves(nnx.state(model.temporal, nnx.Param)))
        assert temporal == TEMPORAL_PARAMS == 789_760
    else:
        assert model.temporal is None


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("ablation", ["base", "sia", "fd", "full"])
def test_poster_configs_carry_the_recipe_under_the_data_root(name, ablation, monkeypatch):
    monkeypatch.setenv("SIAM_DATA_ROOT", "/datasets/siam")
    c = CONFIGS[name].get_config(ablation)
    width = int(name[1:3])
    want = {
        c.model.body_model.path: "body_models/smpl/SMPL_NEUTRAL.pkl",
        c.model.body_model.h36m_regressor_path: "body_models/J_regressor_h36m.npy",
        c.model.regressor.mean_params_path: "body_models/smpl_mean_params.npz",
        c.model.backbone.pretrained: f"pretrained/pose_higher_hrnet_w{width}_"
        + ("512.pth" if width == 32 else "640.pth"),
        c.data.data_dir: "tensorflow_datasets",
    }
    for got, rel in want.items():
        assert got == os.path.join("/datasets/siam", rel)
    c.lock()
    c.data_root = "/elsewhere"  # what --config.data_root=... does: every path follows
    assert c.model.body_model.path == "/elsewhere/body_models/smpl/SMPL_NEUTRAL.pkl"
    assert c.data.data_dir == "/elsewhere/tensorflow_datasets"
    # TRAINING_DATA.md's ROMP/BEV datasets, as a probability-weighted list summing to 1.
    names = [spec.partition(":")[0].partition("/")[0] for spec, _ in c.data.train]
    assert names == [
        "agora", "pw3d", "h36m", "muco", "coco_keypoints", "mpi_inf_3dhp", "crowdpose", "mpii"
    ]  # fmt: skip
    assert all(spec.endswith("/train") for spec, _ in c.data.train)
    assert abs(sum(w for _, w in c.data.train) - 1.0) < 1e-9
    assert all(0 < w <= 0.2 for _, w in c.data.train)  # ROMP README: each <= 0.2
    assert "mixture" not in c.data  # one representation: data.train (docs/choices.md)
    assert (c.data.eval_dataset, c.data.eval_split) == ("pw3d:full", "validation")
    assert c.model.input_size == 512
    images = c.batch_size * c.model.clip_len
    assert images == 64 and c.total_steps == recipe.SCHEDULE["total_steps"]
    assert c.eval.batch_size > 0 and c.batch_size % recipe.RECIPE_DEVICES == 0


def test_quickstart_and_tiny_keep_the_embedded_default():
    for c in (quickstart.get_config(), tiny.get_config(), tiny.get_config("video")):
        assert c.model.body_model.path == "" and c.model.regressor.mean_params_path == ""
        assert c.model.backbone.pretrained == "" and c.data_root == ""
        assert [s.partition(":")[0] for s, _ in c.data.train] == ["siam_synthetic"]
