"""The training mixture: configured rates, presets, video-only clips, one clip index per dataset,
deterministic and resumable streams (siam_jax/data/mixture.py, clips.py)."""

import numpy as np
import pytest

from siam_jax.data import clips, mixture

AUGMENT_KEYS = ("enabled", "scale", "rotation_degrees", "flip_prob", "color_jitter", "translate")


def _opened(sizes):
    """Index-only datasets: ``train_index`` needs the clips, not the records."""
    return [
        mixture.OpenedDataset(
            spec=mixture.DatasetSpec(name=f"d{i}", split="train"),
            source=None,
            clips=np.arange(n, dtype=np.int64)[:, None],
        )
        for i, n in enumerate(sizes)
    ]


@pytest.mark.parametrize("weights", [(0.5, 0.3, 0.2), (0.2, 0.16, 0.2, 0.06, 0.1, 0.14, 0.14)])
def test_datasets_are_sampled_at_the_configured_rates(weights):
    # Datasets of very different sizes: the rate is the weight, not the size.
    sizes = [7, 50, 3, 11, 100, 5, 13][: len(weights)]
    index = mixture.train_index(
        _opened(sizes), list(weights), seed=3, process_index=0, process_count=1
    )
    n = 2000  # Grain MapDataset reads ~400 elements/s here: keep the test short
    items = [index[i] for i in range(n)]
    ids = np.array([d for d, _ in items])
    p = np.asarray(weights) / np.sum(weights)
    counts = np.bincount(ids, minlength=len(p))
    # Each count within 4 binomial standard deviations of n p (a random sampler passes this with
    # probability > 0.999 per dataset; Grain's weighted interleave is closer still).
    sd = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) < 4 * sd), (counts, n * p)
    # and every dataset's records come round: dataset 0 (7 records) is seen whole
    seen = {int(c[0]) for d, c in items if d == 0}
    assert seen == set(range(sizes[0]))


def test_stream_is_deterministic_and_resumable():
    index = mixture.train_index(
        _opened([5, 9]), [1.0, 2.0], seed=0, process_index=0, process_count=1
    )
    first = [(d, int(c[0])) for d, c in (index[i] for i in range(40))]
    again = mixture.train_index(
        _opened([5, 9]), [1.0, 2.0], seed=0, process_index=0, process_count=1
    )
    assert [(d, int(c[0])) for d, c in (again[i] for i in range(40))] == first
    it = index.to_iter_dataset().__iter__()
    for _ in range(17):
        next(it)
    state = it.get_state()
    fresh = index.to_iter_dataset().__iter__()
    fresh.set_state(state)
    assert [(d, int(c[0])) for d, c in (next(fresh) for _ in range(10))] == first[17:27]


def test_parse_mixture_entries_and_errors():
    entries = mixture.parse_mixture(
        [("coco_keypoints:eft", 0.2), ("h36m", 0.3, {"scale": (1.4, 2.0), "video": True})],
        AUGMENT_KEYS,
    )
    assert entries[0].augment == {} and entries[0].video is None
    assert entries[1].augment == {"scale": (1.4, 2.0)} and entries[1].video is True
    with pytest.raises(ValueError, match="unknown augmentation overrides"):
        mixture.parse_mixture([("coco", 1.0, {"zoom": 2})], AUGMENT_KEYS)
    with pytest.raises(ValueError, match="weight must be > 0"):
        mixture.parse_mixture([("coco", 0.0)], AUGMENT_KEYS)
    with pytest.raises(ValueError, match="entries are"):
        mixture.parse_mixture([("coco",)], AUGMENT_KEYS)


def test_romp_preset_is_romps_table():
    # reference/TRAINING_DATA.md: ROMP v1 h36m .20, mpiinf .16, coco .20, lsp .06, mpii .10,
    # muco .14, crowdpose .14; scale ranges h36m 1.4-2.0, mpiinf 1.3-1.9, muco 1.4-2.2. LSP has no
    # builder: left out, the rest rescaled by 1 / .94 (docs/choices.md).
    import importlib

    from siam_jax.data import prepare

    entries = mixture.parse_mixture(mixture.PRESETS["romp_v1"], AUGMENT_KEYS)
    by_name = {e.spec.partition(":")[0]: e for e in entries}
    weights = {k: e.weight for k, e in by_name.items()}
    romp = {"h36m": 0.20, "mpi_inf_3dhp": 0.16, "coco_keypoints": 0.20, "mpii": 0.10,
            "muco": 0.14, "crowdpose": 0.14}  # fmt: skip
    assert weights.keys() == romp.keys()
    for name, w in romp.items():
        np.testing.assert_allclose(weights[name], w / 0.94)
    np.testing.assert_allclose(sum(weights.values()), 1.0)
    assert by_name["h36m"].augment["scale"] == (1.4, 2.0)
    assert by_name["mpi_inf_3dhp"].augment["scale"] == (1.3, 1.9)
    assert by_name["muco"].augment["scale"] == (1.4, 2.2)
    for e in entries:  # every dataset of the preset has a builder and the config it names
        name, _, config = e.spec.partition(":")
        entry = prepare.lookup(name)
        builder = getattr(importlib.import_module(entry.module), entry.cls)
        assert not config or config in [c.name for c in builder.BUILDER_CONFIGS], e.spec


def test_only_real_videos_are_cut_into_clips():
    spec = mixture.DatasetSpec.parse
    assert mixture.is_video(spec("pw3d", "train"))
    assert mixture.is_video(spec("posetrack:labeled", "train"))
    assert not mixture.is_video(spec("agora", "train"))  # AGORA rows are not videos
    assert not mixture.is_video(spec("coco_keypoints:eft", "train"))
    assert not mixture.is_video(spec("pw3d", "train"), override=False)
    assert mixture.is_video(spec("pipeline_fixture:a", "train"))  # unknown: its sequences


class _KeySource:
    """A metadata source: records in shuffled order, as TFDS writes them."""

    def __init__(self, seqs, frames):
        self.rows = [
            {"sequence_id": s, "frame_index": f} for s, f in zip(seqs, frames, strict=True)
        ]
        self.reads = 0

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        self.reads += 1
        return self.rows[i]


def test_clips_share_one_sequence_and_consecutive_frames_and_are_built_once():
    r = np.random.default_rng(0)
    seqs = [s for s, n in (("a", 6), ("b", 2), ("c", 4)) for _ in range(n)]
    frames = [f for n in (6, 2, 4) for f in range(10, 10 + n)]
    order = r.permutation(len(seqs))
    src = _KeySource([seqs[i] for i in order], [frames[i] for i in order])
    clips.clear_cache()
    key = ("/data", "video_ds", "train")
    got = clips.cached_clips(key, lambda: src, len(src), 3, stride=1, video=True)
    assert got.shape == (4 + 0 + 2, 3)  # windows of 3 in sequences of 6, 2 and 4 frames
    for clip in got:
        rows = [src.rows[i] for i in clip]
        assert len({row["sequence_id"] for row in rows}) == 1
        np.testing.assert_array_equal(np.diff([row["frame_index"] for row in rows]), 1)
    reads, builds = src.reads, clips.build_count()
    again = clips.cached_clips(key, lambda: src, len(src), 3, stride=1, video=True)
    assert again is got and src.reads == reads and clips.build_count() == builds
    # An image dataset never strings records together: each clip repeats one record.
    still = clips.cached_clips(("/data", "image_ds", "train"), None, 5, 3, stride=1, video=False)
    np.testing.assert_array_equal(still, np.repeat(np.arange(5)[:, None], 3, axis=1))
