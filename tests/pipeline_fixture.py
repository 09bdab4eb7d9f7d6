"""A small TFDS fixture dataset for the input-pipeline tests (``tests/`` only, not the library).

``pipeline_fixture`` writes examples in the shared schema (``siam_jax.data.schema``) as
array_record: people from the procedural body model, posed, shaped and placed in front of the
camera, with joints, 2D projections and boxes computed from the model, so the ground truth is
self-consistent by construction; images are smooth random backgrounds with rectangles (PNG).
Sequences of consecutive frames with smooth motion exercise clips. It is not the training data
(``siam_synthetic`` renders the people); it is cheap to build and has known answers.

Configs: ``a`` (tiny, 3D people, sequences of 5), ``b`` (tiny, 2D-only people). Rotations come
from scipy, independent of ``siam_jax.body.rotations``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from scipy.spatial.transform import Rotation

from siam_jax.data import schema


@dataclasses.dataclass(kw_only=True)
class FixtureConfig(tfds.core.BuilderConfig):
    num_sequences: int = 4
    seq_len: int = 5
    height: int = 48
    width: int = 64
    max_people: int = 3
    has_3d: bool = True
    seed: int = 0


class PipelineFixture(tfds.core.GeneratorBasedBuilder):
    """Fixture frames for the input pipeline (see module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    # No checksums file: skip TFDS's code-path lookup, which needs `importlib_resources` (not
    # installed) for builders that live inside a package.
    code_path = None
    BUILDER_CONFIGS = [  # noqa: RUF012 - TFDS reads this class attribute
        FixtureConfig(name="a", num_sequences=4, seq_len=5, seed=0),
        FixtureConfig(
            name="b", num_sequences=3, seq_len=4, width=40, height=40, has_3d=False, seed=1
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, features=schema.features())

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        cfg = self.builder_config
        yield from fixture_examples(cfg)


def _sequence(rng: np.random.Generator, cfg: FixtureConfig) -> dict:
    """Intrinsics and per-frame SMPL parameters [t n ...] of one sequence of n people."""
    h, w, t = cfg.height, cfg.width, cfg.seq_len
    n = int(rng.integers(1, cfg.max_people + 1))
    f = 1.1 * max(h, w)
    k = np.array(
        [[f, 0, w / 2 + rng.normal(0, 2)], [0, f * 1.02, h / 2 + rng.normal(0, 2)], [0, 0, 1]],
        np.float32,
    )
    betas = np.repeat(rng.normal(0, 0.7, (1, n, 10)), t, axis=0)
    body_pose = rng.normal(0, 0.15, (1, n, 23, 3)) + rng.normal(0, 0.02, (t, n, 23, 3))
    yaw = rng.uniform(-np.pi, np.pi, (1, n)) + np.linspace(0, 0.3, t)[:, None]
    # SMPL is y-up, the camera y-down: a half turn about x stands people upright.
    rots = Rotation.from_euler("x", np.pi) * Rotation.from_euler("y", yaw.reshape(-1, 1))
    depth = rng.uniform(3.0, 8.0, (1, n))
    x = rng.uniform(-0.3, 0.3, (1, n)) * depth + np.linspace(0, 0.2, t)[:, None]
    y = rng.uniform(-0.1, 0.1, (1, n)) * depth
    return {
        "k": k,
        "betas": betas,
        "body_pose": body_pose,
        "global_orient": rots.as_rotvec().reshape(t, n, 3),
        "transl": np.stack(np.broadcast_arrays(x, y, depth), axis=-1),
    }


def _person(seq: dict, verts, joints, fi: int, p: int, has_3d: bool) -> dict:
    k = seq["k"]
    person = schema.empty_person()
    for key in ("betas", "global_orient", "body_pose", "transl"):
        person[key] = seq[key][fi, p]
    person["joints_3d"] = joints[fi, p]
    person["joints_2d"] = _project(joints[fi, p], k)
    person["visibility"] = np.ones(24)
    pv = _project(verts[fi, p], k)
    person["bbox"] = np.concatenate([pv.min(0), pv.max(0)])
    person["has_smpl"] = person["has_3d"] = has_3d
    person["smpl_source"] = np.int32(1 if has_3d else 0)  # schema 2: the dataset's own fit
    person["has_2d"] = person["valid"] = True
    return person


def fixture_examples(cfg: FixtureConfig):
    """Yields (key, example) for every frame of the fixture described by ``cfg``."""
    import jax
    import jax.numpy as jnp

    from siam_jax import body

    model = body.make_procedural_body_model(seed=0)

    @jax.jit
    def pose(betas, body_pose, global_orient, transl):
        out = model(betas=betas, body_pose=body_pose, global_orient=global_orient, transl=transl)
        return out.vertices, out.joints

    rng = np.random.default_rng(cfg.seed)
    t = cfg.seq_len
    # One fixed shape (all frames x people of a sequence, zero-padded) so jit compiles once.
    slots = max(40, t * cfg.max_people)
    for s in range(cfg.num_sequences):
        seq = _sequence(rng, cfg)
        n = seq["betas"].shape[1]
        args = [np.reshape(seq[a], (t * n, -1)) for a in ("betas", "body_pose", "global_orient",
                                                          "transl")]  # fmt: skip
        args = [jnp.asarray(np.pad(a, ((0, slots - t * n), (0, 0))), jnp.float32) for a in args]
        verts, joints = pose(args[0], args[1].reshape(slots, 23, 3), args[2], args[3])
        verts = np.asarray(verts, np.float64)[: t * n].reshape(t, n, -1, 3)
        joints = np.asarray(joints, np.float64)[: t * n].reshape(t, n, -1, 3)
        for fi in range(t):
            persons = [_person(seq, verts, joints, fi, p, cfg.has_3d) for p in range(n)]
            yield (
                f"{s:03d}_{fi:03d}",
                {
                    "image": _background(rng, cfg.height, cfg.width),
                    "intrinsics": seq["k"],
                    "sequence_id": f"seq{s:03d}",
                    "frame_index": fi,
                    "image_name": f"seq{s:03d}/{fi:05d}.png",
                    "persons": schema.stack_persons(persons),
                    **schema.frame_annotation(True),  # schema 2
                },
            )


def _project(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    p = points @ np.asarray(k, np.float64).T
    return p[:, :2] / p[:, 2:3]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    c0, c1, c2 = rng.uniform(0, 255, (3, 3))
    img = c0 + np.multiply.outer(xx, c1 - c0) + np.multiply.outer(yy, c2 - c0)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w - 1)), int(rng.integers(0, h - 1))
        x1, y1 = int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))
        img[y0:y1, x0:x1] = rng.uniform(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def build_fixture(data_dir: str, config: str = "a") -> None:
    """Builds ``pipeline_fixture/<config>`` (train split) as array_record into ``data_dir``."""
    builder = PipelineFixture(config=config, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare()
