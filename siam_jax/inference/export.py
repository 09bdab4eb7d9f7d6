"""A serialised inference artefact: the jitted SIAM forward as StableHLO (``jax.export``) with its
weights, in one ``.npz`` that ``load`` runs without the model code (docs/model.md "Export").

    python -m siam_jax.inference.export --config configs/w32_frame.py --checkpoint runs/w32 \
        --out w32_frame.siam.npz

    from siam_jax.inference.export import load
    forward = load("w32_frame.siam.npz")
    out = forward(images)  # images [b t H W 3] RGB in [0, 1]; intrinsics [b t 3 3] optional

The file (read with ``allow_pickle=False``) holds ``stablehlo`` (the bytes of
``jax.export.Exported.serialize()``: input shapes, output tree, the platforms it was lowered
for), ``meta`` (UTF-8 JSON: format version, input shapes, default intrinsics, output keys) and
``weight_00000`` ... (the model's arrays, passed to the exported function as its first argument,
in the order of its flattened state). Only the PRNG-key leaves of the state (dropout streams,
unused in eval mode) are baked into the StableHLO as constants: key arrays have no npz form.
The forward is ``SIAM.__call__`` in eval mode: the outputs of ``siam_jax.models.OUTPUT_KEYS``.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FORMAT = "siam_jax.export"
FORMAT_VERSION = 1
_HLO, _META, _WEIGHT = "stablehlo", "meta", "weight_{:05d}"


def _is_key(x) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def export_model(
    model, *, batch: int, image_size: int, platforms: tuple[str, ...] | None = None
) -> tuple[jax.export.Exported, list[np.ndarray], dict]:
    """``(exported forward, its weight arrays, meta)`` of an nnx SIAM ``model``, for inputs
    images [batch clip_len size size 3] float32 and intrinsics [batch clip_len 3 3] float32.

    ``platforms``: lowering targets (``("cpu", "cuda")``...), default the current backend."""
    from flax import nnx

    from siam_jax.models import camera as camera_lib

    model.eval()
    graphdef, state = nnx.split(model)
    leaves, treedef = jax.tree.flatten(state)
    arg_index = [i for i, x in enumerate(leaves) if not _is_key(x)]
    baked = {i: x for i, x in enumerate(leaves) if _is_key(x)}

    def forward(weights, images, intrinsics):
        full = list(baked.get(i) for i in range(len(leaves)))
        for i, w in zip(arg_index, weights, strict=True):
            full[i] = w
        m = nnx.merge(graphdef, jax.tree.unflatten(treedef, full))
        return m(images, intrinsics=intrinsics)

    weights = [np.asarray(leaves[i]) for i in arg_index]
    t = int(model.clip_len)
    specs = (
        [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights],
        jax.ShapeDtypeStruct((batch, t, image_size, image_size, 3), jnp.float32),
        jax.ShapeDtypeStruct((batch, t, 3, 3), jnp.float32),
    )
    exported = jax.export.export(jax.jit(forward), platforms=platforms)(*specs)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "images_shape": list(specs[1].shape),
        "intrinsics_shape": list(specs[2].shape),
        "default_intrinsics": np.asarray(
            camera_lib.default_intrinsics(image_size, model.fov_degrees)
        ).tolist(),
        "platforms": list(exported.platforms),
        "num_weights": len(weights),
    }
    return exported, weights, meta


def save(path: str | os.PathLike, exported: jax.export.Exported, weights, meta: dict) -> None:
    """Write the artefact (one npz, atomically)."""
    from siam_jax.common import files

    arrays = {
        _HLO: np.frombuffer(bytes(exported.serialize()), np.uint8),
        _META: np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8),
    }
    arrays.update({_WEIGHT.format(i): np.asarray(w) for i, w in enumerate(weights)})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files.write_bytes(path, buffer.getvalue())


class Exported:
    """A loaded artefact: ``forward(images, intrinsics=None) -> outputs`` (the model's dict)."""

    def __init__(self, exported: jax.export.Exported, weights: list, meta: dict):
        self.exported, self.weights, self.meta = exported, weights, meta
        self.images_shape = tuple(meta["images_shape"])
        self.intrinsics_shape = tuple(meta["intrinsics_shape"])

    def __call__(self, images, intrinsics=None) -> dict[str, Any]:
        images = jnp.asarray(images, jnp.float32)
        if images.shape != self.images_shape:
            raise ValueError(f"images must be {list(self.images_shape)}, got {images.shape}")
        if intrinsics is None:
            intrinsics = np.broadcast_to(
                np.asarray(self.meta["default_intrinsics"], np.float32), self.intrinsics_shape
            )
        intrinsics = jnp.asarray(intrinsics, jnp.float32)
        if intrinsics.shape != self.intrinsics_shape:
            raise ValueError(
                f"intrinsics must be {list(self.intrinsics_shape)}, got {intrinsics.shape}"
            )
        return self.exported.call(self.weights, images, intrinsics)


def load(path: str | os.PathLike) -> Exported:
    """The artefact at ``path`` as a callable; needs jax and numpy only, not ``siam_jax.models``."""
    with np.load(path, allow_pickle=False) as z:
        names = set(z.files)
        if not {_HLO, _META} <= names:
            raise ValueError(f"{path}: not a {FORMAT} artefact (no {_HLO!r} / {_META!r} arrays)")
        meta = json.loads(z[_META].tobytes().decode("utf-8"))
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}, "
                f"this loader reads {FORMAT!r} version {FORMAT_VERSION}"
            )
        missing = [
            _WEIGHT.format(i) for i in range(meta["num_weights"]) if _WEIGHT.format(i) not in names
        ]
        if missing:
            raise ValueError(f"{path}: weight arrays missing: {missing[:5]}")
        weights = [jnp.asarray(z[_WEIGHT.format(i)]) for i in range(meta["num_weights"])]
        exported = jax.export.deserialize(bytearray(z[_HLO].tobytes()))
    return Exported(exported, weights, meta)


def export_checkpoint(
    config, checkpoint: str, out: str, *, batch: int = 1, step=None, platforms=None
) -> dict:
    """Restore ``checkpoint`` (a training workdir or its checkpoints/ folder) for ``config``,
    export its forward at ``config.model.input_size`` and write the artefact to ``out``."""
    from siam_jax.checkpoints import restore_model

    model, restored_step = restore_model(config, checkpoint, step)
    exported, weights, meta = export_model(
        model, batch=batch, image_size=int(config.model.input_size), platforms=platforms
    )
    meta["checkpoint"] = {"path": os.path.abspath(checkpoint), "step": int(restored_step)}
    save(out, exported, weights, meta)
    return meta


def main(argv=None) -> None:
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "model config file", lock_config=True)
    flags.DEFINE_string("checkpoint", None, "training workdir or its checkpoints/ folder")
    flags.DEFINE_string("out", None, "artefact file to write (.npz)")
    flags.DEFINE_integer("batch", 1, "batch size the artefact takes (static)")
    flags.DEFINE_integer("step", None, "checkpoint step (default: the latest)")
    flags.DEFINE_list("platforms", None, "lowering platforms, e.g. cpu,cuda (default: current)")
    flags.mark_flags_as_required(["config", "checkpoint", "out"])

    def run(_argv):
        f = flags.FLAGS
        platforms = tuple(f.platforms) if f.platforms else None
        meta = export_checkpoint(
            f.config, f.checkpoint, f.out, batch=f.batch, step=f.step, platforms=platforms
        )
        print(
            f"wrote {f.out}: images {meta['images_shape']}, platforms {meta['platforms']}, "
            f"{meta['num_weights']} weight arrays, step {meta['checkpoint']['step']}"
        )

    app.run(run, argv=argv)


if __name__ == "__main__":
    main()
