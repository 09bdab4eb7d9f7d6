"""The input pipeline: Grain over ``tfds.data_source``, numpy batches per the batch contract.

``make_iterator(config, split=..., train=...)`` returns a Grain ``DatasetIterator`` of batch dicts
``[b t ...]`` (docs/architecture.md "Batches"; b = global ``config.batch_size`` / process count,
t = ``config.model.clip_len``). Training streams are infinite, shuffled, augmented, mixed by weight
and resumable; evaluation streams are one ordered pass whose last batch is padded (``batch_valid``).

Resuming: ``it.get_state()`` is a small JSON-able dict, and ``it.set_state(state)`` on a fresh
iterator built from the same config continues exactly. With Orbax, save it beside the train
state as ``grain.checkpoint.CheckpointSave(it)`` and restore it with
``grain.checkpoint.CheckpointRestore(it)`` (one JSON file per process), see docs/data.md.

Determinism: the order comes from seeded index shuffles, and each example's augmentation from a
generator Grain seeds with (``config.seed``, example index), so the stream is a pure function of
the config, independent of thread or worker counts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import grain
import numpy as np

from siam_jax import body
from siam_jax.data import augment as augment_lib
from siam_jax.data import decoded_cache
from siam_jax.data import mixture
from siam_jax.data import targets as targets_lib

# Person fields renamed on their way into batches (the model's own output already uses `valid`).
_RENAME = {"valid": "evaluable"}


# ------------------------------------------------------------------------------ one example
class ClipLoader:
    """Reads, fits/augments and builds the targets of one clip ``(dataset_index, records)``.

    A Grain ``RandomMap`` when ``train`` (the generator draws one set of augmentation parameters
    per clip, shared by its frames), a plain ``Map`` otherwise.
    """

    def __init__(
        self, sources, config, *, train: bool, rest_root, names=None, augment_overrides=None
    ):
        self.sources = list(sources)
        self.names = list(names or range(len(self.sources)))
        self.input_size = int(config.model.input_size)
        self.max_instances = int(config.model.max_instances)
        self.sigma_min = float(config.data.heatmap_sigma_min)
        # One augmentation config per dataset: config.data.augment with that dataset's
        # mixture overrides (ROMP's per-dataset scale ranges, mixture.PRESETS).
        self.augment = None
        if train:
            overrides = augment_overrides or [{}] * len(self.sources)
            self.augment = [augment_lib.augment_ranges(config.data.augment, o) for o in overrides]
        self.rest_root = rest_root

    def __call__(self, item, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        ds_index, records = int(item[0]), np.asarray(item[1])
        params = augment_lib.AugmentParams()
        if self.augment is not None and self.augment[ds_index].enabled:
            if rng is None:
                raise ValueError("training ClipLoader needs a random generator")
            params = augment_lib.sample_params(rng, self.augment[ds_index], self.input_size)
        frames = [self._frame(ds_index, int(r), params) for r in records]
        out = {k: np.stack([f[k] for f in frames]) for k in frames[0]}
        out["dataset_index"] = np.int32(ds_index)
        return out

    def _frame(self, ds_index: int, record: int, params) -> dict[str, np.ndarray]:
        source = self.sources[ds_index]
        where = f"dataset {self.names[ds_index]!r} record {record}"
        ex = source[record]
        image = np.asarray(ex["image"])
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"{where}: image has shape {image.shape}, expected [h w 3]")
        persons = augment_lib.persons_from_record(ex["persons"], where)
        tr = augment_lib.frame_transform(
            image.shape[:2], np.asarray(ex["intrinsics"], np.float32), params, self.input_size
        )
        # uint8 until the batch is collated: 4x less memory traffic than float32 per copy.
        img = augment_lib.warp_image(
            image.astype(np.uint8, copy=False), tr.pixel, self.input_size, color=params.color
        )
        k = tr.intrinsics.astype(np.float32)
        persons = augment_lib.transform_persons(persons, tr, self.rest_root)
        for key in ("all_persons_annotated", "ignore_boxes"):
            if key not in ex:
                raise ValueError(f"{where}: no {key!r} (schema 2 field; rebuild the dataset)")
        ignore = np.asarray(ex["ignore_boxes"], np.float32).reshape(-1, 4)
        t = targets_lib.build_targets(
            persons,
            k,
            self.input_size,
            self.max_instances,
            self.sigma_min,
            all_persons_annotated=bool(ex["all_persons_annotated"]),
            ignore_boxes=augment_lib.transform_boxes(ignore, tr.pixel),
        )
        out = {_RENAME.get(name, name): v for name, v in t.items()}
        out["image"] = img
        out["intrinsics"] = k
        out["frame_index"] = np.int32(ex["frame_index"])
        return out


class _TrainLoader(ClipLoader, grain.transforms.RandomMap):
    def random_map(self, element, rng: np.random.Generator):
        return self(element, rng)


def _collate(examples: Sequence[dict[str, np.ndarray]], batch_size: int) -> dict:
    """Stacks examples; pads a short final batch with copies of its first example, flagged off in
    ``batch_valid`` (and its persons in ``person_valid``) so they never count."""
    n = len(examples)
    if n == 0:
        raise ValueError("empty batch")
    batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
    valid = np.array([bool(e.get("_valid", True)) for e in examples])
    batch.pop("_valid", None)
    if n < batch_size:
        pad = batch_size - n
        batch = {k: np.concatenate([v, np.repeat(v[:1], pad, axis=0)]) for k, v in batch.items()}
        valid = np.concatenate([valid, np.zeros(pad, bool)])
    image = batch["image"].astype(np.float32)
    image *= np.float32(1.0 / 255.0)  # contract: float32 RGB in [0, 1]
    batch["image"] = image
    batch["person_valid"] = batch["person_valid"] & valid[:, None, None]
    batch["batch_valid"] = valid
    return batch


def _per_host_batch(config, process_count: int) -> int:
    b = int(config.batch_size)
    if b % process_count:
        raise ValueError(f"config.batch_size {b} is not divisible by process_count {process_count}")
    return b // process_count


def _process(process_index, process_count) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    return int(process_index), int(process_count)


def _parallel(ds: grain.IterDataset, config) -> grain.IterDataset:
    """Worker processes (``config.data.num_workers``) for the per-example work. Applied before
    batching: workers take elements round-robin and Grain reads them back in order, so batches
    are the same as in-process ones (and the iterator state has the same meaning)."""
    workers = int(config.data.num_workers)
    if workers <= 0:
        return ds
    from absl import flags

    # Grain 0.2.x reads its absl flag --grain_enable_multiprocess_worker_profiling in this
    # process when it starts the workers (with jaxlib's profiler hooks present), and absl refuses
    # to read any flag before the flags are parsed: google/grain#1355, fixed upstream in #1362.
    # The workers need nothing. Entry scripts parse flags (absl.app.run); the library does not
    # touch global flag state, so other callers parse them first, and are told so here.
    if not flags.FLAGS.is_parsed():
        raise RuntimeError(
            f"config.data.num_workers = {workers} needs absl flags parsed (Grain reads its "
            "--grain_* flags when it starts worker processes): run under absl.app.run, as "
            "train.py and eval.py do, or call absl.flags.FLAGS(sys.argv[:1]) first"
        )
    return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))


def _batched(ds: grain.IterDataset, config, batch_size: int, *, train: bool) -> grain.IterDataset:
    """Worker processes (if any), then batches of ``batch_size`` (the last one padded when
    evaluating, dropped when training: the training stream is infinite)."""
    return _parallel(ds, config).batch(
        batch_size,
        drop_remainder=train,
        batch_fn=functools.partial(_collate, batch_size=batch_size),
    )


def _train_dataset(config, split, dataset, pi: int, pc: int, rest_root, read) -> grain.IterDataset:
    """Infinite, shuffled, augmented mixture of ``config.data.train`` (or of ``dataset`` alone)."""
    raw = list(config.data.train) if dataset is None else [(dataset, 1.0)]
    entries = mixture.parse_mixture(raw, list(config.data.augment.keys()))
    opened = mixture.open_datasets(
        [e.spec for e in entries],
        split or config.data.train_split,
        config.data.data_dir,
        int(config.model.clip_len),
        eval_stride=False,
        video=[e.video for e in entries],
    )
    index = mixture.train_index(
        opened, [e.weight for e in entries], seed=int(config.seed), process_index=pi,
        process_count=pc,
    )  # fmt: skip
    sources = [d.source for d in opened]
    if bool(config.data.get("cache_decoded", False)):
        sources = [decoded_cache.DecodedCache(s) for s in sources]
    loader = _TrainLoader(
        sources,
        config,
        train=True,
        rest_root=rest_root,
        names=[f"{d.spec.name}/{d.spec.split}" for d in opened],
        augment_overrides=[e.augment for e in entries],
    )
    return index.random_map(loader, seed=int(config.seed)).to_iter_dataset(read)


def _eval_dataset(
    config, split, dataset, pi: int, pc: int, rest_root, read, num_examples
) -> grain.IterDataset:
    """One ordered, unaugmented pass over ``dataset`` (default ``config.data.eval_dataset``);
    every host gets the same number of examples, the missing ones flagged invalid."""
    (opened,) = mixture.open_datasets(
        [dataset or config.data.eval_dataset],
        split or config.data.eval_split,
        config.data.data_dir,
        int(config.model.clip_len),
        eval_stride=True,
    )
    clips = opened.clips
    if num_examples is not None:
        clips = clips[: int(num_examples)]
    n = len(clips)
    # Every host runs the same number of batches: ceil(n / pc) slots each, the missing ones
    # filled with the last clip and flagged invalid.
    per_host = math.ceil(n / pc)

    def item(i: int):
        g = pi + pc * i
        return 0, clips[min(g, n - 1)], g < n

    loader = ClipLoader(
        [opened.source],
        config,
        train=False,
        rest_root=rest_root,
        names=[f"{opened.spec.name}/{opened.spec.split}"],
    )

    def load(it):
        ex = loader(it[:2])
        ex["_valid"] = it[2]
        return ex

    return grain.MapDataset.range(per_host).map(item).map(load).to_iter_dataset(read)


# ------------------------------------------------------------------------------ public API
def make_dataset(
    config,
    *,
    split: str | None = None,
    train: bool,
    process_index: int | None = None,
    process_count: int | None = None,
    dataset: str | None = None,
    num_examples: int | None = None,
    rest_root=None,
) -> grain.IterDataset:
    """The batched Grain ``IterDataset`` of numpy batch dicts ``[b t ...]`` (docs/architecture.md
    "Batches"); ``make_iterator`` iterates it.

    Args:
      config: the experiment config (``data``, ``model.input_size/clip_len/max_instances``,
        ``batch_size`` global, ``seed``).
      split: TFDS split; default ``config.data.train_split`` / ``config.data.eval_split``.
      train: infinite shuffled augmented mixture of ``config.data.train``; else one ordered,
        unaugmented pass over ``dataset`` (default ``config.data.eval_dataset``), last batch padded
        and flagged by ``batch_valid``.
      process_index, process_count: this host's shard; default ``jax.process_index/count()``.
      dataset: a single dataset spec overriding the config's (``name[:config][/split]``).
      num_examples: evaluation only: the first n clips.
      rest_root: a precomputed ``siam_jax.body.RestRoot`` (default:
        ``body.rest_root_from_config(config.model.body_model)``).
    """
    pi, pc = _process(process_index, process_count)
    batch_size = _per_host_batch(config, pc)
    if rest_root is None:
        rest_root = body.rest_root_from_config(config.model.body_model)
    read = grain.ReadOptions(
        num_threads=int(config.data.read_threads),
        prefetch_buffer_size=int(config.data.prefetch_batches) * batch_size,
    )
    if train:
        ds = _train_dataset(config, split, dataset, pi, pc, rest_root, read)
    else:
        ds = _eval_dataset(config, split, dataset, pi, pc, rest_root, read, num_examples)
    return _batched(ds, config, batch_size, train=train)


def make_iterator(config, *, train: bool, **kwargs) -> grain.DatasetIterator:
    """``iter(make_dataset(config, train=train, **kwargs))`` (the arguments are make_dataset's).

    Resumable: ``it.get_state()`` / ``it.set_state(state)``.
    """
    return iter(make_dataset(config, train=train, **kwargs))
