"""The demo's video model call is the streaming step: past warm-up its output for a frame is the
full-window forward's (``SlidingWindow``: the whole window of real frames run again), mapped back
to the frame's camera the same way; during warm-up it sees only the frames seen so far."""

import importlib

import numpy as np
from flax import nnx

from siam_jax import models
from siam_jax.inference import steps
from siam_jax.inference.predictor import Predictor


def test_streaming_step_equals_the_full_window_past_warm_up():
    config = importlib.import_module("configs.tiny").get_config("video")
    config.model.center.threshold = -1.0  # every slot is a person: compare them all
    t = int(config.model.clip_len)
    assert t > 1
    model = models.build_model(config.model, rngs=nnx.Rngs(3))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, size=(48, 80, 3), dtype=np.uint8) for _ in range(t + 2)]
    streaming = steps.make_video_step(Predictor(model, config))
    window = steps.SlidingWindow(Predictor(model, config))
    assert isinstance(streaming, steps.StreamingStep)
    for n, frame in enumerate(frames):
        got, want = streaming(frame), window(frame)
        assert got.image_size == want.image_size == (48, 80)
        np.testing.assert_allclose(got.intrinsics, want.intrinsics, rtol=1e-6)
        if n < t - 1:
            continue  # warm-up: a shorter window (streaming) vs the first frame repeated
        assert len(got.scores) == len(want.scores) == int(config.model.max_instances)
        for key in ("scores", "transl", "joints_3d", "joints_2d", "body_pose", "betas"):
            np.testing.assert_allclose(
                getattr(got, key), getattr(want, key), rtol=1e-4, atol=1e-4, err_msg=key
            )
    assert streaming.predictor.model_calls == len(frames)  # one model call per frame
