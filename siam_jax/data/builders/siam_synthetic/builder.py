"""TFDS builder for the embedded procedural dataset `siam_synthetic` (docs/data.md).

Sequences of `clip_len` frames written in order (`sequence_id`, `frame_index`); frame-setting
training uses the same examples as single frames. Split seeds: train 0, validation 1, test 2;
test has `num_test` examples (None: `num_validation`; 0 leaves the split out). A share
`empty_fraction` of the sequences shows nobody (background only; no persons,
`all_persons_annotated` true): the negatives a centre head needs.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from siam_jax.data import schema
from siam_jax.data.synthetic import parallel
from siam_jax.data.synthetic.scene import SceneConfig

SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 2}


@dataclasses.dataclass
class SiamSyntheticConfig(tfds.core.BuilderConfig):
    num_train: int = 2000
    num_validation: int = 200
    image_size: int = 160
    max_people: int = 5
    clip_len: int = 8
    seed: int = 0
    depth_range: tuple[float, float] = (2.0, 10.0)  # pelvis depth, metres (SceneConfig)
    empty_fraction: float = 0.0  # share of person-free sequences (SceneConfig)
    num_test: int | None = None  # None: num_validation


class SiamSynthetic(tfds.core.GeneratorBasedBuilder):
    """Procedural multi-person SMPL scenes rendered with siam_jax.render."""

    VERSION = tfds.core.Version("1.5.0")
    code_path = None  # no checksums file (TFDS code-path lookup needs importlib_resources)
    RELEASE_NOTES = {  # noqa: RUF012
        "1.0.0": "Initial release.",
        "1.1.0": "Clothing: skin, hair, shirt, trousers and shoe colours per person; depth_range.",
        "1.2.0": "Facing cues: face = front half of the head, hair contrasting with the skin, "
        "an open jacket's front panel.",
        "1.3.0": "Schema 2: per-term flags, smpl_source, all_persons_annotated, ignore_boxes, "
        "keypoint superset fields (empty).",
        "1.4.0": "Person-free frames: a share empty_fraction of the sequences (default config "
        "0.1) shows only the background, with no persons and all_persons_annotated true.",
        "1.5.0": "Pixel-noise backgrounds (a fourth background kind): a frame of pure noise "
        "holds nobody.",
    }
    BUILDER_CONFIGS = [  # noqa: RUF012
        SiamSyntheticConfig(name="default", description="2000/200/200 at 160 px, 10% person-free",
                            empty_fraction=0.1),
        SiamSyntheticConfig(name="tiny", description="for tests", num_train=16,
                            num_validation=8, image_size=48, max_people=3, clip_len=4),
    ]  # fmt: skip

    def __init__(self, *, num_processes: int = 1, **kwargs):
        """``num_processes``: worker processes that render the examples (``synthetic.parallel``;
        the records do not depend on it)."""
        self.num_processes = int(num_processes)
        self._pool = None
        super().__init__(**kwargs)

    def download_and_prepare(self, *args, **kwargs):
        # One worker pool for all splits (parallel.worker_pool); TFDS writes them in turn.
        with parallel.worker_pool(self.num_processes) as pool:
            self._pool = pool
            try:
                return super().download_and_prepare(*args, **kwargs)
            finally:
                self._pool = None

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(features=schema.features("png"))

    def _scene(self) -> SceneConfig:
        c = self.builder_config
        return SceneConfig(image_size=c.image_size, max_people=c.max_people,
                           clip_len=c.clip_len, seed=c.seed,
                           depth_range=tuple(c.depth_range),
                           empty_fraction=float(c.empty_fraction))  # fmt: skip

    def _split_generators(self, dl_manager):
        c = self.builder_config
        num_test = c.num_validation if c.num_test is None else c.num_test
        sizes = {"train": c.num_train, "validation": c.num_validation, "test": num_test}
        # TFDS refuses empty splits, so a size of 0 leaves that split out.
        return {k: self._generate_examples(k, n) for k, n in sizes.items() if n > 0}

    def _generate_examples(self, split: str, num: int):
        scene, seed = self._scene(), SPLIT_SEEDS[split]
        yield from enumerate(parallel.examples(num, seed, scene, self._pool))
