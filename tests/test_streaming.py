"""Streaming video inference: per-frame outputs equal the full-window forward, warm-up included."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import tiny
from siam_jax.inference.streaming import Streaming, window_order
from siam_jax.models import OUTPUT_KEYS, build_model

T, N, B, S = 3, 5, 2, 64  # window, frames of the video, streams, input size


def test_window_order_is_the_last_frames_oldest_first():
    # Frame n sits at slot n % T; after `count` frames the window is frames
    # max(0, count - T) .. count - 1 (hand-listed), padding after the real frames.
    expected = {1: ([0, 1, 2], 1), 2: ([0, 1, 2], 2), 3: ([0, 1, 2], 3), 4: ([1, 2, 0], 3)}
    expected[5] = ([2, 0, 1], 3)
    expected[6] = ([0, 1, 2], 3)
    for count, (slots, seen) in expected.items():
        order, n = window_order(jnp.asarray(count), T)
        assert (np.asarray(order).tolist(), int(n)) == (slots, seen), count


def _video_config():
    """Tiny video model with every window-stage path on: temporal path, SIA (synchronous, scene
    cross-attention) and FD; a threshold that leaves some slots valid and some not."""
    config = tiny.get_config("video")
    config.model.clip_len = T
    config.model.temporal.enabled = True
    config.model.temporal.num_heads = 4
    config.model.center.threshold = 0.5
    return config


def test_streaming_equals_the_full_window_forward_on_every_frame():
    config = _video_config()
    model = build_model(config.model, rngs=nnx.Rngs(4))
    model.eval()
    rng = np.random.default_rng(0)
    video = jnp.asarray(rng.uniform(size=(B, N, S, S, 3)), jnp.float32)
    # A different camera per stream, fixed over time (the full forward takes [b t 3 3]).
    k_mat = np.stack([np.diag([70.0, 70.0, 1.0]), np.diag([90.0, 85.0, 1.0])]).astype(np.float32)
    k_mat[:, :2, 2] = [[31.5, 31.5], [30.0, 33.0]]
    graphdef, state = nnx.split(model)
    full = jax.jit(lambda s, x, k: nnx.merge(graphdef, s)(x, intrinsics=k))

    stream = Streaming(model, config)
    cache = stream.init(batch=B)
    valid_counts = []
    for n in range(N):
        cache, out = stream.step(cache, video[:, n], k_mat)
        start = max(0, n - T + 1)
        t = n + 1 - start
        ref = full(state, video[:, start : n + 1], jnp.broadcast_to(k_mat[:, None], (B, t, 3, 3)))
        ref = jax.tree.map(lambda x: np.asarray(x)[:, -1], ref)
        assert set(out) == set(OUTPUT_KEYS)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(np.asarray(a), b, rtol=2e-4, atol=2e-4),
            out,
            ref,
        )
        valid_counts.append(int(np.asarray(out["valid"]).sum()))
    assert int(cache.count) == N
    # The comparison covered both valid and padded slots (not a vacuous all-invalid video).
    assert 0 < sum(valid_counts) < N * B * config.model.max_instances, valid_counts
    # The window really mixes frames: the newest frame's output depends on the older frames.
    other = stream.init(batch=B)
    for n in (0, 0, 1, 2, N - 1):  # same newest frame, different history
        other, out_other = stream.step(other, video[:, n], k_mat)
    assert not np.allclose(np.asarray(out_other["pred_vertices"]), np.asarray(out["pred_vertices"]))


def test_bad_inputs_are_named():
    config = tiny.get_config("video")
    stream = Streaming(build_model(config.model, rngs=nnx.Rngs(0)), config)
    cache = stream.init(batch=1)
    with pytest.raises(ValueError, match="image must be"):
        stream.step(cache, jnp.zeros((2, S, S, 3)))
    with pytest.raises(ValueError, match="intrinsics"):
        stream.step(cache, jnp.zeros((1, S, S, 3)), jnp.zeros((1, 3)))
    config.model.clip_len = 3
    with pytest.raises(ValueError, match="clip_len"):
        Streaming(build_model(tiny.get_config("video").model, rngs=nnx.Rngs(0)), config)
