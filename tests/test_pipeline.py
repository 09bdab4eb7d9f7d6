"""Input pipeline over tiny array_record fixture datasets: batch contract, resume, mixture, clips,
sharding, evaluation padding."""

import json

import numpy as np
import pytest

from siam_jax.data import augment, clips, mixture, pipeline

# The batch contract of docs/architecture.md: key -> (trailing shape after [b t], dtype kind).
CONTRACT = {
    "image": ((32, 32, 3), "f"),
    "intrinsics": ((3, 3), "f"),
    "center_heatmap": ((4, 4), "f"),
    "center_cells": ((3, 2), "i"),
    "person_valid": ((3,), "b"),
    "betas": ((3, 10), "f"),
    "global_orient": ((3, 3), "f"),
    "body_pose": ((3, 23, 3), "f"),
    "transl": ((3, 3), "f"),
    "joints_3d": ((3, 24, 3), "f"),
    "joints_2d": ((3, 24, 2), "f"),
    "visibility": ((3, 24), "f"),
    "has_smpl": ((3,), "b"),
    "has_3d": ((3,), "b"),
    "has_2d": ((3,), "b"),
    # schema 2: per-term flags, the keypoint superset (61 named points), centre don't-care
    "has_pose": ((3,), "b"),
    "has_global_orient": ((3,), "b"),
    "has_betas": ((3,), "b"),
    "has_transl": ((3,), "b"),
    "has_keypoints_2d": ((3,), "b"),
    "has_keypoints_3d": ((3,), "b"),
    "keypoints_2d": ((3, 61, 2), "f"),
    "keypoints_2d_visibility": ((3, 61), "f"),
    "keypoints_3d": ((3, 61, 3), "f"),
    "keypoints_3d_visibility": ((3, 61), "f"),
    "center_ignore": ((4, 4), "b"),
    "all_persons_annotated": ((), "b"),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from tests import pipeline_fixture as fixture

    d = str(tmp_path_factory.mktemp("tfds"))
    fixture.build_fixture(d, "a")  # 4 sequences x 5 frames, SMPL people, 64x48 images
    fixture.build_fixture(d, "b")  # 3 sequences x 4 frames, 2D-only people, 40x40 images
    return d


@pytest.fixture(scope="module")
def rest_root():
    from siam_jax import body

    return body.RestRoot.from_body_model(body.make_procedural_body_model(seed=0))


def _config(data_dir, **over):
    from configs import default

    c = default.get_config()
    c.data.data_dir = data_dir
    c.data.train = [("pipeline_fixture:a", 1.0)]
    c.data.read_threads = 2
    c.model.input_size = 32
    c.model.max_instances = 3
    c.model.clip_len = 1
    c.batch_size = 4
    for k, v in over.items():
        obj = c
        *path, last = k.split(".")
        for p in path:
            obj = obj[p]
        obj[last] = v
    return c


def _it(config, rest_root, **kw):
    kw.setdefault("train", True)
    return pipeline.make_iterator(
        config,
        process_index=kw.pop("pi", 0),
        process_count=kw.pop("pc", 1),
        rest_root=rest_root,
        **kw,
    )


def _assert_equal_batches(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_batch_contract(data_dir, rest_root):
    b = next(_it(_config(data_dir), rest_root))
    for key, (shape, kind) in CONTRACT.items():
        assert b[key].shape == (4, 1, *shape), key
        assert b[key].dtype.kind == kind, (key, b[key].dtype)
    assert b["image"].dtype == np.float32 and 0 <= b["image"].min() and b["image"].max() <= 1
    assert b["center_cells"].dtype == np.int32
    assert b["batch_valid"].all() and b["person_valid"].any()
    # Empty slots are zero-filled; valid slots' cells are in bounds and peak the heatmap at 1.
    pv = b["person_valid"]
    assert not b["betas"][~pv].any()
    cells = b["center_cells"][pv]
    assert (cells >= 0).all() and (cells < 4).all()
    bi, ti, _ = np.nonzero(pv)
    np.testing.assert_allclose(b["center_heatmap"][bi, ti, cells[:, 1], cells[:, 0]], 1.0)


def test_deterministic_for_seed(data_dir, rest_root):
    c = _config(data_dir)
    _assert_equal_batches(next(_it(c, rest_root)), next(_it(c, rest_root)))
    c2 = _config(data_dir, seed=1)
    assert not np.array_equal(next(_it(c, rest_root))["image"], next(_it(c2, rest_root))["image"])


def test_resume_is_exact(data_dir, rest_root):
    c = _config(data_dir)
    it = _it(c, rest_root)
    for _ in range(3):
        next(it)
    state = it.get_state()
    json.dumps(state)  # JSON-able, so it can go into the checkpoint
    expected = [next(it) for _ in range(3)]
    fresh = _it(c, rest_root)
    fresh.set_state(state)
    for e in expected:
        _assert_equal_batches(next(fresh), e)


def test_orbax_checkpoint_roundtrip(data_dir, rest_root, tmp_path):
    """How the trainer saves the iterator: grain's Orbax handler inside a CheckpointManager."""
    import grain
    import orbax.checkpoint as ocp

    c = _config(data_dir)
    it = _it(c, rest_root)
    next(it)
    with ocp.CheckpointManager(tmp_path / "ckpt") as mgr:
        mgr.save(1, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
        mgr.wait_until_finished()
    expected = next(it)
    fresh = _it(c, rest_root)
    with ocp.CheckpointManager(tmp_path / "ckpt") as mgr:
        mgr.restore(1, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
    _assert_equal_batches(next(fresh), expected)


def test_mixture_fractions_follow_weights(data_dir, rest_root):
    specs = ["pipeline_fixture:a", "pipeline_fixture:b"]
    opened = mixture.open_datasets(specs, "train", data_dir, 1, eval_stride=False)
    index = mixture.train_index(opened, [3.0, 1.0], seed=0, process_index=0, process_count=1)
    items = [index[i] for i in range(1000)]
    ids = np.array([d for d, _ in items])
    assert abs(np.mean(ids == 1) - 0.25) < 0.02
    # Every dataset's records all come round (shuffled, repeated).
    seen_b = {int(clip[0]) for d, clip in items if d == 1}
    assert seen_b == set(range(len(opened[1].source)))
    # And the batches themselves: well-formed, both sources, 2D-only people from b.
    c = _config(data_dir)
    c.data.train = [(specs[0], 0.75), (specs[1], 0.25)]
    it = _it(c, rest_root)
    batches = [next(it) for _ in range(10)]
    ds = np.concatenate([b["dataset_index"] for b in batches])
    assert abs(np.mean(ds == 1) - 0.25) <= 0.05
    for b in batches:
        for key, (shape, _) in CONTRACT.items():
            assert b[key].shape == (4, 1, *shape), key
        from_b = b["dataset_index"] == 1
        assert not b["has_smpl"][from_b].any()
        assert b["has_2d"][b["person_valid"]].all()


def test_sharding_splits_the_stream(data_dir, rest_root):
    opened = mixture.open_datasets(["pipeline_fixture:a"], "train", data_dir, 1, eval_stride=False)
    n = len(opened[0].clips)
    shards = [
        mixture.train_index(opened, [1.0], seed=0, process_index=p, process_count=2)
        for p in range(2)
    ]
    # One epoch of the global stream is a permutation of the records split across the hosts.
    epoch = [int(s[i][1][0]) for i in range(n // 2) for s in shards]
    assert sorted(epoch) == list(range(n))
    c = _config(data_dir)
    b = next(_it(c, rest_root, pi=1, pc=2))
    assert b["image"].shape[0] == 2  # per-host batch = global 4 / 2 hosts
    with pytest.raises(ValueError, match="divisible"):
        _it(_config(data_dir, batch_size=3), rest_root, pc=2)


def test_clips_are_consecutive_frames_of_one_sequence(data_dir, rest_root):
    c = _config(data_dir, **{"model.clip_len": 3})
    b = next(_it(c, rest_root))
    assert b["image"].shape[:2] == (4, 3)
    np.testing.assert_array_equal(np.diff(b["frame_index"], axis=1), 1)
    # The fixture keeps each person's betas over a sequence: map them back to their sequence.
    (opened,) = mixture.open_datasets(
        ["pipeline_fixture:a"], "train", data_dir, 1, eval_stride=False
    )
    seq_of = {}
    for r in range(len(opened.source)):
        ex = opened.source[r]
        for beta in np.asarray(ex["persons"]["betas"]).reshape(-1, 10)[:, 0]:
            seq_of[round(float(beta), 4)] = ex["sequence_id"]
    for i in range(4):
        seqs = {seq_of[round(float(x), 4)] for x in b["betas"][i, :, :, 0][b["person_valid"][i]]}
        assert len(seqs) == 1, seqs


def test_clip_windows_from_shuffled_records():
    seq = ["s1", "s0", "s1", "s0", "s0", "s1", "s2"]
    frame = [1, 2, 0, 0, 1, 2, 0]
    w = clips.clip_windows(seq, frame, 2)
    # s0: records 3 (f0), 4 (f1), 1 (f2); s1: 2, 0, 5; s2 is too short.
    np.testing.assert_array_equal(w, [[3, 4], [4, 1], [2, 0], [0, 5]])
    np.testing.assert_array_equal(
        clips.clip_windows(seq, frame, 3, stride=3), [[3, 4, 1], [2, 0, 5]]
    )
    with pytest.raises(ValueError, match="twice"):
        clips.clip_windows(["a", "a"], [0, 0], 2)


def test_eval_is_one_padded_pass(data_dir, rest_root):
    c = _config(data_dir, batch_size=6)
    seen = []
    for pi in range(2):
        batches = list(
            _it(c, rest_root, train=False, dataset="pipeline_fixture:a", split="train", pi=pi, pc=2)
        )
        assert len(batches) == 4  # 20 frames / 2 hosts = 10 each, batches of 3 -> 4, last padded
        last = batches[-1]
        np.testing.assert_array_equal(last["batch_valid"], [True, False, False])
        assert not last["person_valid"][1:].any()
        for b in batches:
            seen.extend(b["frame_index"][b["batch_valid"], 0].tolist())
    assert len(seen) == 20


def test_eval_is_unaugmented_fit(data_dir, rest_root):
    """Evaluation batches are the source examples fitted to the input size, nothing else."""
    c = _config(data_dir)
    b = next(_it(c, rest_root, train=False, dataset="pipeline_fixture:a", split="train"))
    opened = mixture.open_datasets(["pipeline_fixture:a"], "train", data_dir, 1, eval_stride=True)
    ex = opened[0].source[0]
    img, k, persons = augment.augment_frame(
        np.asarray(ex["image"]),
        np.asarray(ex["intrinsics"]),
        augment.persons_from_record(ex["persons"], "test"),
        augment.AugmentParams(),
        32,
        rest_root,
    )
    np.testing.assert_allclose(b["image"][0, 0], img)
    np.testing.assert_allclose(b["intrinsics"][0, 0], k)
    n = int(b["person_valid"][0, 0].sum())
    assert n >= 1
    np.testing.assert_allclose(
        np.sort(b["joints_3d"][0, 0, :n, 0, 2]), np.sort(persons["joints_3d"][:, 0, 2])[:n]
    )


def test_missing_dataset_is_named(data_dir, rest_root):
    c = _config(data_dir)
    c.data.train = [("no_such_dataset", 1.0)]
    with pytest.raises(ValueError, match="no_such_dataset"):
        _it(c, rest_root)


@pytest.fixture
def parsed_flags():
    """absl flags parsed for the test (as absl.app.run does in the entry scripts), then unparsed
    again."""
    from absl import flags

    was_parsed = flags.FLAGS.is_parsed()
    if not was_parsed:
        flags.FLAGS(["pytest"])
    yield
    if not was_parsed:
        flags.FLAGS.unparse_flags()


def test_worker_processes_give_the_in_process_batches(data_dir, rest_root, parsed_flags):
    in_process = _it(_config(data_dir), rest_root)
    expected = [next(in_process) for _ in range(3)]
    it = _it(_config(data_dir, **{"data.num_workers": 2}), rest_root)
    for e in expected:
        _assert_equal_batches(next(it), e)


def test_worker_processes_outside_an_absl_app_name_the_fix(data_dir, rest_root):
    from absl import flags

    if flags.FLAGS.is_parsed():
        pytest.skip("flags were parsed by the caller of this test session")
    with pytest.raises(RuntimeError, match=r"absl\.flags\.FLAGS\(sys\.argv\[:1\]\)"):
        _it(_config(data_dir, **{"data.num_workers": 2}), rest_root)


def test_image_dataset_feeds_video_configs_as_static_clips(data_dir, rest_root):
    # video=False: each clip is one record repeated clip_len times (one augmentation draw).
    c = _config(data_dir, **{"model.clip_len": 3})
    c.data.train = [("pipeline_fixture:a", 1.0, {"video": False})]
    b = next(_it(c, rest_root))
    assert b["image"].shape[:2] == (4, 3)
    np.testing.assert_array_equal(np.diff(b["frame_index"], axis=1), 0)
    for key in ("image", "betas", "joints_2d", "center_heatmap"):
        np.testing.assert_array_equal(
            b[key][:, 1:], np.broadcast_to(b[key][:, :1], b[key][:, 1:].shape)
        )


def test_clip_index_is_built_once_and_reused_by_every_evaluation(data_dir, rest_root):
    clips.clear_cache()
    c = _config(data_dir, **{"model.clip_len": 2, "data.eval_dataset": "pipeline_fixture:a"})
    before = clips.build_count()
    first = [next(_it(c, rest_root, train=False, split="train")) for _ in range(2)]
    assert clips.build_count() == before + 1
    again = next(_it(c, rest_root, train=False, split="train"))  # a later evaluation
    assert clips.build_count() == before + 1
    _assert_equal_batches(first[0], again)


def test_per_dataset_augmentation_overrides(data_dir, rest_root):
    c = _config(data_dir)
    c.data.train = [("pipeline_fixture:a", 1.0, {"scale": (1.5, 1.5), "flip_prob": 0.0})]
    over = [{"scale": (1.5, 1.5), "flip_prob": 0.0}]
    loader = pipeline.ClipLoader([None], c, train=True, rest_root=rest_root, augment_overrides=over)
    assert loader.augment[0].scale == (1.5, 1.5) and loader.augment[0].flip_prob == 0.0
    assert loader.augment[0].rotation_degrees == c.data.augment.rotation_degrees
    c.data.train = [("pipeline_fixture:a", 1.0, {"zoom": 2.0})]
    with pytest.raises(ValueError, match="zoom"):
        _it(c, rest_root)


def test_decoded_cache_gives_the_same_batches_and_reads_each_record_once(data_dir, rest_root):
    """config.data.cache_decoded: batch for batch the uncached stream (augmentation included),
    and after the first epoch nothing is read from the data source again."""
    from siam_jax.data import decoded_cache

    plain = _it(_config(data_dir), rest_root)
    cached = _it(_config(data_dir, **{"data.cache_decoded": True}), rest_root)
    for _ in range(12):  # 48 clips: more than two epochs of the 20-record fixture
        _assert_equal_batches(next(cached), next(plain))

    opened = mixture.open_datasets(["pipeline_fixture:a"], "train", data_dir, 1, eval_stride=False)
    reads = []

    class Counting:
        def __init__(self, source):
            self.source = source

        def __len__(self):
            return len(self.source)

        def __getitem__(self, i):
            reads.append(int(i))
            return self.source[i]

    cache = decoded_cache.DecodedCache(Counting(opened[0].source))
    first = [cache[i] for i in range(len(cache))]
    again = [cache[i] for i in reversed(range(len(cache)))]
    assert sorted(reads) == list(range(len(cache)))  # each record read once
    assert all(a is b for a, b in zip(first, reversed(again), strict=True))
    # Cached arrays are read-only: a stage that wrote into a record would corrupt later epochs.
    with pytest.raises(ValueError, match="read-only"):
        first[0]["image"][0, 0, 0] = 1
