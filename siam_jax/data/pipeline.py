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
import time
from collections.abc import Sequence

import grain
import numpy as np

from siam_jax.data import augment as augment_lib
from siam_jax.data import mixture
from siam_jax.data import targets as targets_lib

# Person fields renamed on their way into batches (the model's own output already uses `valid`).
_RENAME = {"valid": "evaluable"}


# ------------------------------------------------------------------------------ body model
def rest_root_from_config(config) -> augment_lib.RestRoot:
    """J0 regressor of the configured body model: ``config.model.body_model.path`` ("" =
    procedural). A folder with gendered SMPL files gives per-gender roots (gender codes of
    ``schema.GENDERS``); genders without a file use the configured gender's model."""
    import os

    from siam_jax import body

    bm = config.model.body_model
    if not bm.path:
        return augment_lib.RestRoot.from_body_model(
            body.get_body_model("", seed=bm.procedural_seed)
        )
    models = {}
    if os.path.isdir(bm.path):
        from siam_jax.data import schema

        for code, gender in enumerate(schema.GENDERS):
            try:
                models[code] = body.get_body_model(bm.path, gender=gender)
            except (FileNotFoundError, ValueError):
                continue
    if not models:
        models[0] = body.get_body_model(bm.path, gender=bm.gender)
    return augment_lib.RestRoot(models)


# ------------------------------------------------------------------------------ one example
class ClipLoader:
    """Reads, fits/augments and builds the targets of one clip ``(dataset_index, records)``.

    A Grain ``RandomMap`` when ``train`` (the generator draws one set of augmentation parameters
    per clip, shared by its frames), a plain ``Map`` otherwise.
    """

    def __init__(self, sources, config, *, train: bool, rest_root, names=None):
        self.sources = list(sources)
        self.names = list(names or range(len(self.sources)))
        self.input_size = int(config.model.input_size)
        self.max_instances = int(config.model.max_instances)
        self.sigma_min = float(config.data.heatmap_sigma_min)
        self.augment = config.data.augment if train else None
        self.rest_root = rest_root

    def __call__(self, item, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        ds_index, records = int(item[0]), np.asarray(item[1])
        params = augment_lib.AugmentParams()
        if self.augment is not None and self.augment.enabled:
            if rng is None:
                raise ValueError("training ClipLoader needs a random generator")
            params = augment_lib.sample_params(rng, self.augment, self.input_size)
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
        t = targets_lib.build_targets(
            persons, k, self.input_size, self.max_instances, self.sigma_min
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

    if not flags.FLAGS.is_parsed():
        # Grain's workers read absl flags; outside an absl app (scripts, tests) the defaults.
        flags.FLAGS.mark_as_parsed()
    return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))


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
    """The batched Grain ``IterDataset`` behind ``make_iterator`` (same arguments)."""
    pi, pc = _process(process_index, process_count)
    batch_size = _per_host_batch(config, pc)
    clip_len = int(config.model.clip_len)
    data_dir = config.data.data_dir
    if rest_root is None:
        rest_root = rest_root_from_config(config)
    read = grain.ReadOptions(
        num_threads=int(config.data.read_threads),
        prefetch_buffer_size=int(config.data.prefetch_batches) * batch_size,
    )
    if train:
        entries = list(config.data.train) if dataset is None else [(dataset, 1.0)]
        for e in entries:
            if len(e) != 2:
                raise ValueError(f"config.data.train entries are (spec, weight), got {e!r}")
        specs = [e[0] for e in entries]
        opened = mixture.open_datasets(
            specs, split or config.data.train_split, data_dir, clip_len, eval_stride=False
        )
        index = mixture.train_index(
            opened,
            [float(e[1]) for e in entries],
            seed=int(config.seed),
            process_index=pi,
            process_count=pc,
        )
        loader = _TrainLoader(
            [d.source for d in opened],
            config,
            train=True,
            rest_root=rest_root,
            names=[f"{d.spec.name}/{d.spec.split}" for d in opened],
        )
        ds = index.random_map(loader, seed=int(config.seed))
        ds = _parallel(ds.to_iter_dataset(read), config)
        ds = ds.batch(
            batch_size,
            drop_remainder=True,
            batch_fn=functools.partial(_collate, batch_size=batch_size),
        )
    else:
        spec = dataset or config.data.eval_dataset
        (opened,) = mixture.open_datasets(
            [spec], split or config.data.eval_split, data_dir, clip_len, eval_stride=True
        )
        clips = opened.clips
        if num_examples is not None:
            clips = clips[: int(num_examples)]
        n = len(clips)
        # Every host runs the same number of batches: ceil(n / pc) slots each, the missing
        # ones filled with the last clip and flagged invalid.
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

        ds = grain.MapDataset.range(per_host).map(item).map(load).to_iter_dataset(read)
        ds = _parallel(ds, config)
        ds = ds.batch(
            batch_size,
            drop_remainder=False,
            batch_fn=functools.partial(_collate, batch_size=batch_size),
        )
    return ds


def make_iterator(
    config,
    *,
    split: str | None = None,
    train: bool,
    process_index: int | None = None,
    process_count: int | None = None,
    dataset: str | None = None,
    num_examples: int | None = None,
    rest_root=None,
) -> grain.DatasetIterator:
    """Iterator of numpy batch dicts ``[b t ...]`` (docs/architecture.md "Batches").

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
      rest_root: a precomputed ``augment.RestRoot`` (default: from ``config.model.body_model``).

    Resumable: ``it.get_state()`` / ``it.set_state(state)``.
    """
    return iter(
        make_dataset(
            config,
            split=split,
            train=train,
            process_index=process_index,
            process_count=process_count,
            dataset=dataset,
            num_examples=num_examples,
            rest_root=rest_root,
        )
    )


# ------------------------------------------------------------------------------ benchmark
def benchmark(config, *, num_batches: int = 20, warmup: int = 2) -> dict[str, float]:
    """Images/s of the training iterator (frames per second: b * t per batch)."""
    it = make_iterator(config, train=True, process_index=0, process_count=1)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    frames = 0
    for _ in range(num_batches):
        b = next(it)
        frames += b["image"].shape[0] * b["image"].shape[1]
    dt = time.perf_counter() - t0
    return {"images_per_s": frames / dt, "seconds": dt, "images": frames}


def main(argv: Sequence[str] | None = None) -> None:
    import argparse
    import json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", action="store_true", help="measure training images/s")
    p.add_argument("--dataset", default="", help="dataset spec; default: build a fixture")
    p.add_argument("--data_dir", default="")
    p.add_argument("--input_size", type=int, default=512)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--clip_len", type=int, default=1)
    p.add_argument("--num_batches", type=int, default=10)
    p.add_argument("--read_threads", type=int, default=2)
    p.add_argument("--num_workers", type=int, default=0)
    args = p.parse_args(argv)
    if not args.benchmark:
        p.error("nothing to do: pass --benchmark")
    from configs import default

    config = default.get_config()
    config.model.input_size = args.input_size
    config.model.clip_len = args.clip_len
    config.batch_size = args.batch_size
    config.data.read_threads = args.read_threads
    config.data.num_workers = args.num_workers
    if args.dataset:
        config.data.train = [(args.dataset, 1.0)]
        if args.data_dir:
            config.data.data_dir = args.data_dir
    else:
        import tempfile

        from siam_jax.benchmarking import pipeline as bench_data

        data_dir = args.data_dir or tempfile.mkdtemp(prefix="siam_pipeline_bench_")
        bench_data.build_fixture(data_dir, "bench")
        config.data.data_dir = data_dir
        config.data.train = [("pipeline_fixture:bench", 1.0)]
    result = benchmark(config, num_batches=args.num_batches)
    result.update(
        input_size=args.input_size,
        batch_size=args.batch_size,
        clip_len=args.clip_len,
        read_threads=args.read_threads,
        num_workers=args.num_workers,
        dataset=config.data.train[0][0],
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
