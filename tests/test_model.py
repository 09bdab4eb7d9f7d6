"""The assembled SIAM model (tiny variant): vocabulary, compile-once, invariances, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import tiny
from siam_jax.models import OUTPUT_KEYS, build_model
from siam_jax.models import tokens as tokens_lib

B, K, S = 2, 4, 64  # batch, instance slots (tiny config), input size


def _cfg(setting="video", **overrides):
    cfg = tiny.get_config(setting).model
    for key, value in overrides.items():
        node = cfg
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        node[last] = value
    return cfg


def _images(t, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=(B, t, S, S, 3)), jnp.float32)


def _gt(t, seed=0):
    """Distinct cells per frame, the last slot of each frame padded."""
    rng = np.random.default_rng(seed)
    cells = np.stack([rng.permutation(64)[:K] for _ in range(B * t)]).reshape(B, t, K)
    cells = np.stack([cells % 8, cells // 8], -1).astype(np.int32)
    valid = np.ones((B, t, K), bool)
    valid[:, :, -1] = False
    valid[0, 0, 2] = False
    return jnp.asarray(cells), jnp.asarray(valid)


class _Jitted:
    """model(...) through nnx.split -> jax.jit -> nnx.merge, counting traces."""

    def __init__(self, model):
        self.graphdef, self.state = nnx.split(model)
        self.traces = 0

        def fwd(state, images, cells, valid):
            self.traces += 1
            m = nnx.merge(self.graphdef, state)
            return m(images, gt_center_cells=cells, gt_valid=valid, return_aux=True)

        def fwd_infer(state, images):
            self.traces += 1
            return nnx.merge(self.graphdef, state)(images, return_aux=True)

        self._fwd, self._infer = jax.jit(fwd), jax.jit(fwd_infer)

    def __call__(self, images, cells=None, valid=None):
        if cells is None:
            return self._infer(self.state, images)
        return self._fwd(self.state, images, cells, valid)


def _eval_model(cfg, seed=0):
    model = build_model(cfg, rngs=nnx.Rngs(seed))
    model.eval()
    return model


@pytest.fixture(scope="module")
def video():
    return _Jitted(_eval_model(_cfg("video")))


def _select(tree, mask):
    """Leaves [b t k ...] restricted to the True slots of mask [b t k]."""
    return jax.tree.map(lambda x: np.asarray(x)[np.asarray(mask)], tree)


def _per_slot(out):
    return {k: v for k, v in out.items() if k not in ("center_heatmap",)}


def test_vocabulary_shapes_and_compiled_once(video):
    t = 2
    cells, valid = _gt(t)
    out, aux = video(_images(t), cells, valid)
    _out2, _ = video(_images(t, seed=1), cells, valid)
    assert video.traces == 1  # second call with new values hits the compiled function
    assert set(out) == set(OUTPUT_KEYS)
    assert set(out["pred_smpl_params"]) == {"global_orient", "body_pose", "betas"}
    shapes = jax.tree.map(lambda x: x.shape, out)
    assert shapes["center_heatmap"] == (B, t, 8, 8)
    assert shapes["scores"] == shapes["valid"] == (B, t, K)
    assert shapes["centers"] == (B, t, K, 2)
    assert shapes["pred_smpl_params"] == {
        "global_orient": (B, t, K, 1, 3, 3),
        "body_pose": (B, t, K, 23, 3, 3),
        "betas": (B, t, K, 10),
    }
    assert shapes["pred_cam"] == shapes["pred_cam_t"] == (B, t, K, 3)
    assert shapes["pred_vertices"] == (B, t, K, 6890, 3)
    assert shapes["pred_keypoints_3d"] == (B, t, K, 24, 3)
    assert shapes["pred_keypoints_2d"] == (B, t, K, 24, 2)
    assert out["valid"].dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(out["valid"]), np.asarray(valid))
    for leaf in jax.tree.leaves(out):
        assert np.isfinite(np.asarray(leaf, np.float32)).all()
    assert float(aux["fd_decorrelation"]) > 0
    # rotations are proper, translations are in front of the camera
    r = np.asarray(out["pred_smpl_params"]["body_pose"])
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-4)
    assert (np.asarray(out["pred_cam_t"])[..., 2] > 0).all()
    # centres are the cell centres, scores the heatmap there
    np.testing.assert_allclose(
        np.asarray(out["centers"]), np.asarray(cells) * 8 + tokens_lib.CELL_CENTRE_OFFSET
    )
    hm = np.asarray(out["center_heatmap"])
    c = np.asarray(cells)
    bi, ti, _ki = np.indices((B, t, K))
    np.testing.assert_allclose(np.asarray(out["scores"]), hm[bi, ti, c[..., 1], c[..., 0]])
    # 2D keypoints are the 3D ones through the default camera
    kp3, kp2 = np.asarray(out["pred_keypoints_3d"]), np.asarray(out["pred_keypoints_2d"])
    f = 32 / np.tan(np.radians(30))
    np.testing.assert_allclose(kp2, f * kp3[..., :2] / kp3[..., 2:] + 31.5, rtol=1e-4, atol=1e-3)


def test_inference_takes_top_k_peaks(video):
    out, _ = video(_images(2))
    scores, valid = np.asarray(out["scores"]), np.asarray(out["valid"])
    hm = np.asarray(out["center_heatmap"])
    cells = np.round((np.asarray(out["centers"]) - tokens_lib.CELL_CENTRE_OFFSET) / 8).astype(int)
    bi, ti, _ = np.indices(scores.shape)
    np.testing.assert_allclose(scores, hm[bi, ti, cells[..., 1], cells[..., 0]])
    # valid slots: 3x3 local maxima above the threshold, best first, and no peak above the
    # threshold is left out (brute force over the map)
    padded = np.pad(hm, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-1)
    win = np.stack([padded[:, :, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)])
    peaks = (hm >= win.max(0)) & (hm > 0.25)
    for b in range(B):
        for t in range(2):
            v = valid[b, t]
            assert v.sum() == min(peaks[b, t].sum(), K)
            assert (np.diff(scores[b, t][v]) <= 0).all()
            assert all(peaks[b, t, y, x] for x, y in cells[b, t][v])


def test_padding_invariance(video):
    t = 2
    cells, valid = _gt(t)
    out, aux = video(_images(t), cells, valid)
    other = jnp.where(valid[..., None], cells, jnp.asarray([7, 7], jnp.int32))
    out2, aux2 = video(_images(t), other, valid)
    a, b = _select(_per_slot(out), valid), _select(_per_slot(out2), valid)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4), a, b)
    np.testing.assert_allclose(
        float(aux["fd_decorrelation"]), float(aux2["fd_decorrelation"]), rtol=1e-4
    )


def test_slot_permutation_equivariance(video):
    t = 2
    cells, valid = _gt(t)
    perm = np.array([3, 1, 0, 2])
    out, _ = video(_images(t), cells, valid)
    out_p, _ = video(_images(t), cells[:, :, perm], valid[:, :, perm])
    a = jax.tree.map(lambda x: np.asarray(x)[:, :, perm], _per_slot(out))
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4), a, _per_slot(out_p)
    )


def test_frame_mode_equals_video_mode_with_one_frame():
    video_model = _eval_model(_cfg("video"), seed=3)
    frame_model = _eval_model(_cfg("frame"), seed=3)
    # Same seed: the same parameters everywhere except the frame-embedding table's length.
    frame_model.frame_embed.table[...] = video_model.frame_embed.table[...][:1]
    cells, valid = _gt(1)
    images = _images(1)
    a, _ = _Jitted(video_model)(images, cells, valid)
    b, _ = _Jitted(frame_model)(images, cells, valid)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5), a, b)


def test_sia_off_passes_tokens_and_fd_off_feeds_the_token_to_all_regressors(video):
    model = _eval_model(_cfg("video", **{"sia.enabled": False, "fd.enabled": False}))
    assert model.sia is None and model.fd is None
    cells, valid = _gt(2)
    _, aux = _Jitted(model)(_images(2), cells, valid)
    np.testing.assert_array_equal(np.asarray(aux["tokens"]), np.asarray(aux["tokens_in"]))
    for key in ("pose_features", "shape_features", "cam_features"):
        np.testing.assert_array_equal(np.asarray(aux[key]), np.asarray(aux["tokens_in"]))
    assert float(aux["fd_decorrelation"]) == 0.0
    # and with both on, neither holds
    _, aux = video(_images(2), cells, valid)
    assert not np.allclose(np.asarray(aux["tokens"]), np.asarray(aux["tokens_in"]))
    assert not np.allclose(np.asarray(aux["pose_features"]), np.asarray(aux["tokens"]))


def test_temporal_path_carries_time_without_sia_and_ignores_padding():
    """SIA off, temporal path on: a frame's outputs depend on the other frame of the clip
    (and not at all with the temporal path off), but never on padded slots."""
    cells, valid = _gt(2)
    images = _images(2)
    changed = images.at[:, 0].set(_images(2, seed=5)[:, 0])  # frame 0 only
    frame1 = np.zeros((B, 2, K), bool)
    frame1[:, 1] = np.asarray(valid)[:, 1]
    outs = {}
    for on in (True, False):
        cfg = _cfg("video", **{"sia.enabled": False, "temporal.enabled": on})
        model = _eval_model(cfg)
        assert (model.temporal is not None) == on
        run = _Jitted(model)
        a, _ = run(images, cells, valid)
        b, _ = run(changed, cells, valid)
        outs[on] = _select(_per_slot(a), frame1), _select(_per_slot(b), frame1)
    assert not np.allclose(outs[True][0]["pred_vertices"], outs[True][1]["pred_vertices"])
    jax.tree.map(np.testing.assert_array_equal, *outs[False])
    # Padded slots of frame 0 moved elsewhere: the valid slots of both frames do not change.
    model = _eval_model(_cfg("video", **{"sia.enabled": False, "temporal.enabled": True}))
    other = jnp.where(valid[..., None], cells, jnp.asarray([7, 7], jnp.int32))
    run = _Jitted(model)
    a, _ = run(images, cells, valid)
    b, _ = run(images, other, valid)
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4),
        _select(_per_slot(a), valid),
        _select(_per_slot(b), valid),
    )


def test_gradients_reach_every_parameter():
    # factorized mode holds every parameter kind of the other modes plus the temporal layer;
    # scene cross-attention is on in the tiny config; the temporal path (not SIA) is on too.
    cfg = _cfg("video", **{"sia.mode": "factorized", "temporal.enabled": True})
    model = build_model(cfg, rngs=nnx.Rngs(0))
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    cells, valid = _gt(2)
    images = _images(2)

    def loss_fn(params, rest):
        out, aux = nnx.merge(graphdef, params, rest, copy=True)(
            images, gt_center_cells=cells, gt_valid=valid, return_aux=True
        )
        floats = [x for x in jax.tree.leaves(out) if jnp.issubdtype(x.dtype, jnp.floating)]
        return sum(jnp.mean(x**2) for x in floats) + aux["fd_decorrelation"]

    grads = jax.jit(jax.grad(loss_fn))(params, rest)
    flat = nnx.to_flat_state(grads)
    dead = [
        ".".join(map(str, path))
        for path, v in flat
        if not float(jnp.linalg.norm(jnp.ravel(v.get_value()))) > 0
    ]
    assert len(flat) > 50
    assert not dead, f"parameters without gradient: {dead}"


def test_bad_inputs_are_named():
    model = _eval_model(_cfg("frame"))
    with pytest.raises(ValueError, match="images"):
        model(jnp.zeros((1, S, S, 3)))
    with pytest.raises(ValueError, match="clip_len"):
        model(jnp.zeros((1, 2, S, S, 3)))
    with pytest.raises(ValueError, match="gt_center_cells"):
        model(
            jnp.zeros((1, 1, S, S, 3)),
            gt_center_cells=jnp.zeros((1, 1, 3, 2), jnp.int32),
            gt_valid=jnp.ones((1, 1, 3), bool),
        )


def test_neck_context_block_sees_exactly_its_dilated_window():
    """A context block (two 3x3 convs, dilation 2) makes a cell of F depend on the cells up to
    4 away in x and y and on none further (its receptive field, in closed form)."""
    from siam_jax.models.neck import ContextBlock

    block = ContextBlock(4, 2, rngs=nnx.Rngs(0))
    block.eval()  # running statistics: no BatchNorm state written under the jacobian trace
    x = jax.random.normal(jax.random.key(1), (1, 13, 13, 4))
    jac = jax.jacobian(lambda x: block(x)[0, 6, 6].sum())(x)
    reach = np.abs(np.asarray(jac)).sum(axis=(0, 3)) > 0  # [13 13]
    yy, xx = np.nonzero(reach)
    assert (np.abs(yy - 6).max(), np.abs(xx - 6).max()) == (4, 4)
    assert reach[6 - 4, 6] and reach[6, 6 + 4] and reach[6 + 4, 6 + 4]
    config = tiny.get_config()
    config.model.neck.context_blocks = 2
    model = build_model(config.model, rngs=nnx.Rngs(0))
    out = model(jnp.zeros((1, 1, 64, 64, 3)))
    assert out["center_heatmap"].shape == (1, 1, 8, 8) and len(model.neck.context) == 2
