"""Streaming video inference: each frame is encoded once, the window's encodings are cached.

A video model (``clip_len`` T > 1) sees a window of T frames. Recomputing the backbone of the
whole window for every output frame costs T backbones per frame; here each new frame goes
through ``SIAM.encode`` (backbone, neck, centre head, token gathering) once, its tokens, slot
validity and (when SIA reads it) coarse scene map are written into a ring buffer of T frames,
and ``SIAM.interact`` (temporal path, SIA) runs over the cached window; ``SIAM.decode`` (FD,
regressor, camera, body model) then runs on the newest frame only.

The window of frame n (0-based) is frames max(0, n - T + 1) .. n in time order, the newest last.
During warm-up (n < T - 1) the window holds n + 1 frames; the empty cache slots are padding (all
their slots invalid, placed after the real frames), which the window stage never attends to, so
the output for frame n equals the full-window forward ``model(images[:, max(0, n-T+1):n+1])`` at
its last frame, warm-up frames included (tests/test_streaming.py). docs/model.md "Streaming".

    stream = Streaming(model, config)
    cache = stream.init(batch=1)
    cache, out = stream.step(cache, image, intrinsics)  # image [b H W 3], intrinsics [b 3 3]

``out`` holds the keys of ``siam_jax.models.OUTPUT_KEYS`` with the frame axis dropped
(``out["pred_vertices"]`` is [b k V 3]).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from siam_jax.models import camera as camera_lib


class StreamCache(NamedTuple):
    """The explicit state of a stream: the last T frames' encodings in a ring buffer.

    Frame n (0-based) is written at slot n % T; ``count`` is the number of frames seen.
    """

    tokens: Float[Array, "b T k d"]  # SIAM.encode tokens (position embedding, no frame one)
    valid: Bool[Array, "b T k"]
    scene: Float[Array, "b T hs ws c"] | None  # coarse scene maps, None unless SIA reads them
    count: Int[Array, ""]


def window_order(count: Int[Array, ""], clip_len: int) -> tuple[Int[Array, " T"], Int[Array, ""]]:
    """(ring-buffer slots of the window, oldest first; number of real frames in it) after
    ``count`` frames were written, frame n at slot n % T. Before the buffer wraps (count <= T)
    the real frames are slots 0..count-1 and the rest is padding after them."""
    start = jnp.where(count >= clip_len, count % clip_len, 0)
    return (start + jnp.arange(clip_len)) % clip_len, jnp.minimum(count, clip_len)


def _write(buffer, slot, value):
    """buffer [b T ...] with frame slot ``slot`` set to value [b ...]."""
    return jax.lax.dynamic_update_index_in_dim(buffer, value.astype(buffer.dtype), slot, axis=1)


def stream_step(model, cache: StreamCache, image, intrinsics):
    """One streaming step of ``model`` (an nnx SIAM in eval mode): (new cache, outputs of the
    newest frame). Pure apart from the model; ``Streaming`` jits it."""
    size = image.shape[1]
    clip_len = model.clip_len
    enc = model.encode(image[:, None])
    slot = cache.count % clip_len
    scene = None if cache.scene is None else _write(cache.scene, slot, enc.scene[:, 0])
    cache = StreamCache(
        tokens=_write(cache.tokens, slot, enc.tokens[:, 0]),
        valid=_write(cache.valid, slot, enc.valid[:, 0]),
        scene=scene,
        count=cache.count + 1,
    )
    order, seen = window_order(cache.count, clip_len)
    # [1 T 1]: slots past the real frames are padding. An init cache holds them invalid already;
    # explicit, so the window never depends on what a buffer slot held before.
    real = (jnp.arange(clip_len) < seen)[None, :, None]
    window_valid = cache.valid[:, order] & real
    window_scene = None if scene is None else scene[:, order]
    tokens = model.interact(model.embed_frames(cache.tokens[:, order]), window_valid, window_scene)
    newest = jax.lax.dynamic_slice_in_dim(tokens, seen - 1, 1, axis=1)  # [b 1 k d]
    k_mat = None if intrinsics is None else intrinsics[:, None]
    k_mat = model.intrinsics_or_default(k_mat, image.shape[0], 1, size)
    per_slot, _aux = model.decode(newest, enc.valid, enc.cells, k_mat, size)
    outputs = {
        "center_heatmap": enc.heatmap,
        "scores": enc.scores,
        "valid": enc.valid,
        **per_slot,
    }
    return cache, jax.tree.map(lambda x: x[:, 0], outputs)


class Streaming:
    """Jitted streaming inference of a SIAM ``model`` for ``config`` (its ``model.input_size``).

    ``init(batch)`` gives an empty cache; ``step(cache, image, intrinsics=None)`` encodes one
    frame per batch element and returns (cache, outputs of that frame), one compiled function
    for every frame (static shapes). The cache is plain state: keep one per stream, pass it back.
    """

    def __init__(self, model: nnx.Module, config):
        self.input_size = int(config.model.input_size)
        self.clip_len = int(config.model.clip_len)
        if model.clip_len != self.clip_len:
            raise ValueError(
                f"model has clip_len {model.clip_len}, config.model.clip_len={self.clip_len}"
            )
        self.fov_degrees = float(model.fov_degrees)
        model.eval()
        self._graphdef, self._state = nnx.split(model)

        def step(state, cache, image, intrinsics):
            return stream_step(nnx.merge(self._graphdef, state), cache, image, intrinsics)

        self._step = jax.jit(step)

    def _image_spec(self, batch: int) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((batch, self.input_size, self.input_size, 3), jnp.float32)

    def init(self, batch: int = 1) -> StreamCache:
        """The empty cache of ``batch`` streams (no frame seen; zeros, all slots invalid)."""
        t = self.clip_len

        def encode(state, image):
            return nnx.merge(self._graphdef, state).encode(image[:, None])

        enc = jax.eval_shape(encode, self._state, self._image_spec(batch))

        def buffer(x):
            return jnp.zeros((batch, t, *x.shape[2:]), x.dtype)

        return StreamCache(
            tokens=buffer(enc.tokens),
            valid=buffer(enc.valid),
            scene=None if enc.scene is None else buffer(enc.scene),
            count=jnp.zeros((), jnp.int32),
        )

    def _check(self, cache: StreamCache, image, intrinsics) -> None:
        b = cache.tokens.shape[0]
        if image.shape != (b, self.input_size, self.input_size, 3):
            raise ValueError(
                f"image must be [{b} {self.input_size} {self.input_size} 3] (the cache's batch, "
                f"config.model.input_size), got {image.shape}"
            )
        if intrinsics is not None and intrinsics.shape != (b, 3, 3):
            raise ValueError(f"intrinsics must be [{b} 3 3], got {intrinsics.shape}")

    def step(
        self,
        cache: StreamCache,
        image: Float[Array, "b H W 3"],
        intrinsics: Float[Array, "b 3 3"] | None = None,
    ) -> tuple[StreamCache, dict]:
        """Feed one frame (RGB in [0, 1], network input size) of each of the b streams; returns
        the new cache and the outputs of that frame (``OUTPUT_KEYS``, no frame axis).
        ``intrinsics`` None: the config's default camera (``fov_degrees``)."""
        self._check(cache, image, intrinsics)
        image = jnp.asarray(image, jnp.float32)
        if intrinsics is not None:
            intrinsics = jnp.asarray(intrinsics, jnp.float32)
        return self._step(self._state, cache, image, intrinsics)

    # ------------------------------------------------------------------ for benchmarks
    def lower(self, batch: int = 1, with_intrinsics: bool = True):
        """``jax.jit(step).lower(...)`` at ``batch``: ``.compile()`` it to time compilation."""
        k = jax.ShapeDtypeStruct((batch, 3, 3), jnp.float32) if with_intrinsics else None
        cache = jax.eval_shape(functools.partial(self.init, batch))
        return self._step.lower(self._state, cache, self._image_spec(batch), k)

    def steady_cache(self, batch: int = 1, seed: int = 0) -> StreamCache:
        """A cache past warm-up (``clip_len`` random frames stepped in), so that timing ``step``
        from it measures the steady-state cost per frame. Compiles ``step`` (intrinsics given)."""
        rng = np.random.default_rng(seed)
        cache = self.init(batch)
        k = jnp.broadcast_to(self.default_intrinsics(), (batch, 3, 3))
        for _ in range(self.clip_len):
            image = rng.uniform(size=(batch, self.input_size, self.input_size, 3))
            cache, _ = self.step(cache, image.astype(np.float32), k)
        return jax.block_until_ready(cache)

    def default_intrinsics(self) -> Float[Array, "3 3"]:
        """The camera ``step`` assumes without intrinsics (config.model.fov_degrees)."""
        return camera_lib.default_intrinsics(self.input_size, self.fov_degrees)
