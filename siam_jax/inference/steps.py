"""The model call of the demo, one frame at a time: ``step(image) -> FramePrediction``.

The demo only ever calls ``make_video_step(predictor)`` (videos) or ``image_step(predictor)``
(unrelated images), so the video path's model is this one function to swap:

- ``StreamingStep`` (videos): each new frame goes through the per-frame stages once and joins a
  cache of the ``clip_len`` most recent encodings (``siam_jax.inference.streaming``); the window
  stages run over the cache and the newest frame is the output, so the video model sees its
  past but never waits for the future, at about one backbone per frame.
- ``SlidingWindow``: the same causal window, recomputed in full for every output frame (the
  first frame repeated until the window fills). Kept as the reference the benchmark compares
  streaming against; the demo does not use it.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import jax
import numpy as np
from flax import nnx

from siam_jax.body.rotations import matrix_to_axis_angle
from siam_jax.inference.predictor import FramePrediction, Predictor, frame_prediction
from siam_jax.inference.streaming import Streaming

Step = Callable[[np.ndarray], FramePrediction]


class SlidingWindow:
    """The video model over the ``clip_len`` most recent frames; output: the last frame."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.window: collections.deque = collections.deque(maxlen=predictor.clip_len)

    def reset(self) -> None:
        self.window.clear()

    def __call__(self, image: np.ndarray) -> FramePrediction:
        self.window.append(image)
        pad = [self.window[0]] * (self.predictor.clip_len - len(self.window))
        return self.predictor(pad + list(self.window))[-1]


class StreamingStep:
    """The video model as a stream: one ``Streaming.step`` per frame over the cached window.

    The frame is letterboxed as ``Predictor`` does (same camera, same ``fit``), and the model
    time is added to the predictor's ``model_seconds`` / ``model_calls`` (one call per frame).
    """

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.stream = Streaming(nnx.merge(predictor._graphdef, predictor._state), predictor.config)
        self.cache = self.stream.init(batch=1)

    def reset(self) -> None:
        self.cache = self.stream.init(batch=1)

    def __call__(self, image: np.ndarray) -> FramePrediction:
        p = self.predictor
        x, tf = p.fit(image)
        start = time.perf_counter()
        self.cache, out = self.stream.step(
            self.cache,
            (x.astype(np.float32) / 255.0)[None],
            tf.intrinsics.astype(np.float32)[None],
        )
        out = jax.device_get(_with_axis_angle(out))
        p.model_seconds += time.perf_counter() - start
        p.model_calls += 1
        out = jax.tree.map(lambda a: np.asarray(a)[:, None], out)  # the frame axis back
        return frame_prediction(out, 0, tf, image.shape[:2], p.max_people)


@jax.jit
def _with_axis_angle(out: dict) -> dict:
    params = out["pred_smpl_params"]
    return {
        **out,
        "global_orient_aa": matrix_to_axis_angle(params["global_orient"][..., 0, :, :]),
        "body_pose_aa": matrix_to_axis_angle(params["body_pose"]),
    }


def make_video_step(predictor: Predictor) -> Step:
    """The per-frame model of the video path: streaming over cached encodings (frame-mode
    models, ``clip_len`` 1, take the plain forward: they have no window to cache)."""
    if predictor.clip_len == 1:
        return image_step(predictor)
    return StreamingStep(predictor)


def image_step(predictor: Predictor) -> Step:
    """Unrelated images: no temporal context (the image repeated over the clip)."""

    def step(image: np.ndarray) -> FramePrediction:
        return predictor([image] * predictor.clip_len)[-1]

    return step
