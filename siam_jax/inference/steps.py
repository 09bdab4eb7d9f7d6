"""The model call of the demo, one frame at a time: ``step(image) -> FramePrediction``.

The demo only ever calls ``make_video_step(predictor)`` (videos) or ``image_step(predictor)``
(unrelated images), so the video path's model is this one function to swap:

- ``SlidingWindow`` (today): each new frame is predicted as the last frame of the window of the
  ``clip_len`` most recent frames (the first frame repeated until the window fills), so the
  video model sees its past but never waits for the future. It runs the whole window through
  the backbone for every output frame.
- a streaming step over a cache of per-frame encodings (``siam_jax.inference.streaming``, being
  written beside this module) replaces it in ``make_video_step`` once it lands.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import numpy as np

from siam_jax.inference.predictor import FramePrediction, Predictor

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


def make_video_step(predictor: Predictor) -> Step:
    """The per-frame model of the video path (swap to the streaming step here)."""
    return SlidingWindow(predictor)


def image_step(predictor: Predictor) -> Step:
    """Unrelated images: no temporal context (the image repeated over the clip)."""

    def step(image: np.ndarray) -> FramePrediction:
        return predictor([image] * predictor.clip_len)[-1]

    return step
