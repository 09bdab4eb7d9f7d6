"""The serialised inference artefact (jax.export): a checkpoint exported, then run in a process
that never imports the model code, gives the outputs of the model in-process."""

import dataclasses
import os
import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import tiny
from siam_jax import checkpoints
from siam_jax.inference import export
from siam_jax.models import OUTPUT_KEYS, build_model
from siam_jax.models.siam import BodyConstant

B, T, S = 2, 2, 64

_RUN_ARTEFACT = """
import sys
import numpy as np
from siam_jax.inference.export import load
forward = load(sys.argv[1])
inputs = np.load(sys.argv[2])
out = forward(inputs["images"], inputs["intrinsics"])
default = forward(inputs["images"])
assert not [m for m in sys.modules if m.startswith("siam_jax.models")], "model code imported"
flat = {k: v for k, v in out.items() if k != "pred_smpl_params"}
flat.update({"smpl_" + k: v for k, v in out["pred_smpl_params"].items()})
flat["default_cam_t"] = default["pred_cam_t"]
np.savez(sys.argv[3], **{k: np.asarray(v) for k, v in flat.items()})
"""


@dataclasses.dataclass
class _State:
    params: Any
    rest: Any
    step: Any


def test_exported_checkpoint_runs_without_model_code_and_matches(tmp_path):
    config = tiny.get_config("video")
    model = build_model(config.model, rngs=nnx.Rngs(7))  # not config.seed: weights must travel
    model.eval()
    # As training saves it: the body model is configuration, not part of the checkpoint.
    _, params, _, rest = nnx.split(model, nnx.Param, BodyConstant, ...)
    with checkpoints.Checkpointer(str(tmp_path / "checkpoints"), async_save=False) as ck:
        ck.save(3, _State(params, rest, jnp.asarray(3)), None)
    artefact = str(tmp_path / "tiny.siam.npz")
    meta = export.export_checkpoint(config, str(tmp_path), artefact, batch=B)
    assert meta["checkpoint"]["step"] == 3 and meta["images_shape"] == [B, T, S, S, 3]

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(B, T, S, S, 3)).astype(np.float32)
    k_mat = np.broadcast_to(np.diag([80.0, 75.0, 1.0]), (B, T, 3, 3)).copy().astype(np.float32)
    k_mat[..., :2, 2] = [30.0, 33.0]
    np.savez(tmp_path / "inputs.npz", images=images, intrinsics=k_mat)
    env = dict(os.environ, PYTHONPATH=os.getcwd(), JAX_PLATFORMS="cpu")
    subprocess.run(
        [
            sys.executable,
            "-c",
            _RUN_ARTEFACT,
            artefact,
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        env=env,
        timeout=300,
    )
    got = dict(np.load(tmp_path / "out.npz", allow_pickle=False))

    graphdef, state = nnx.split(model)
    want = jax.jit(lambda s, x, k: nnx.merge(graphdef, s)(x, intrinsics=k))(state, images, k_mat)
    default = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, images)
    flat = {k: v for k, v in want.items() if k != "pred_smpl_params"}
    flat.update({"smpl_" + k: v for k, v in want["pred_smpl_params"].items()})
    flat["default_cam_t"] = default["pred_cam_t"]
    assert set(got) == set(flat) and set(want) == set(OUTPUT_KEYS)
    for key, value in flat.items():
        np.testing.assert_allclose(got[key], np.asarray(value), rtol=1e-5, atol=1e-5, err_msg=key)
    # The camera really is an input: another camera moves the translations.
    assert not np.allclose(got["pred_cam_t"], got["default_cam_t"])


def test_bad_artefacts_and_inputs_are_named(tmp_path):
    bad = tmp_path / "not_an_artefact.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(ValueError, match=r"not_an_artefact\.npz"):
        export.load(bad)
    config = tiny.get_config("frame")
    model = build_model(config.model, rngs=nnx.Rngs(0))
    exported, weights, meta = export.export_model(model, batch=1, image_size=S)
    export.save(tmp_path / "frame.npz", exported, weights, meta)
    forward = export.load(tmp_path / "frame.npz")
    with pytest.raises(ValueError, match="images must be"):
        forward(np.zeros((1, 2, S, S, 3), np.float32))
