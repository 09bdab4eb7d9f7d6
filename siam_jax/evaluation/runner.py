"""The evaluation runner behind ``eval.py``: restore a checkpoint, run the jitted model over a
split, hand each frame's predictions to the benchmark's evaluator, write the report.

The pieces, one module each (docs/evaluation.md, "Running eval.py"): ``datasets`` (benchmark
name -> dataset spec and split), ``frames`` (a frame's record and the map back to the stored
image's pixels), ``forward`` (the jitted network), ``predictions`` (model outputs -> the valid
people of a frame), ``evaluators`` (one per benchmark: matching and scoring), ``report`` (the
poster table and the JSON). Checkpoints are read by ``siam_jax.checkpoints.restore_model``.

Evaluation is single-host (``process_index 0 of 1``): the metadata of each frame is read from the
same ordered clip list the pipeline's evaluation pass uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from siam_jax import checkpoints, models
from siam_jax.data import mixture, pipeline
from siam_jax.evaluation import pw3d
from siam_jax.evaluation import report as report_lib
from siam_jax.evaluation.datasets import check_dataset, dataset_spec
from siam_jax.evaluation.evaluators import make_evaluator
from siam_jax.evaluation.forward import make_forward
from siam_jax.evaluation.frames import Frame, read_frame
from siam_jax.evaluation.predictions import Prediction, frame_prediction


@dataclasses.dataclass
class EvalSplit:
    """One ordered pass over a benchmark split: the clips (record indices) and their records."""

    spec: str  # the pipeline's dataset spec, 'name[:config]/split'
    split: str
    tfds_name: str
    clips: Sequence[Sequence[int]]
    records: Any  # TFDS data source of the same split, images left encoded

    @property
    def where(self) -> str:
        return f"{self.tfds_name}/{self.split}"


def open_split(config, dataset: str, split: str | None, max_examples: int | None) -> EvalSplit:
    """The split of benchmark ``dataset`` (its default split when ``split`` is None), the first
    ``max_examples`` clips of it when given."""
    spec, split = dataset_spec(config, dataset, split)
    data_dir, clip_len = config.data.data_dir, int(config.model.clip_len)
    (opened,) = mixture.open_datasets(
        [f"{spec}/{split}"], split, data_dir, clip_len, eval_stride=True
    )
    clips = opened.clips if max_examples is None else opened.clips[: int(max_examples)]
    records = mixture.open_source(opened.spec, data_dir, skip_images=True)
    return EvalSplit(f"{spec}/{split}", split, opened.spec.name, clips, records)


def predicted_frames(
    config, data: EvalSplit, forward, progress=None
) -> Iterator[tuple[Frame, Prediction]]:
    """``(frame, prediction)`` of every frame of ``data``, in order: the pipeline's evaluation
    batches through ``forward``, each row's frames read beside them from the same clip list.
    ``progress`` (a tqdm bar or None) advances one clip at a time."""
    input_size = int(config.model.input_size)
    batches = pipeline.make_iterator(
        config,
        train=False,
        dataset=data.spec,
        split=data.split,
        num_examples=len(data.clips),
        process_index=0,
        process_count=1,
    )
    clip_i = 0
    for batch in batches:
        out = jax.device_get(forward(jnp.asarray(batch["image"]), jnp.asarray(batch["intrinsics"])))
        for b in np.flatnonzero(np.asarray(batch["batch_valid"], bool)):
            for t, record in enumerate(data.clips[clip_i]):
                frame = read_frame(data.records, int(record), input_size, data.where)
                if int(frame.record["frame_index"]) != int(batch["frame_index"][b, t]):
                    raise RuntimeError(
                        f"{data.where}: batch row {b} frame {t} is not record {record} "
                        "(the pipeline's evaluation order changed)"
                    )
                yield frame, frame_prediction(out, b, t, frame)
            clip_i += 1
            if progress is not None:
                progress.update(1)


def _check_args(dataset: str, protocol: str, export_agora: str | None) -> None:
    check_dataset(dataset)
    if dataset.startswith("pw3d") and protocol not in pw3d.PROTOCOLS:
        raise ValueError(f"--protocol must be one of {pw3d.PROTOCOLS}, got {protocol!r}")
    if export_agora and dataset != "agora":
        raise ValueError("--export_agora is only for --dataset agora")


def evaluate(
    config,
    workdir: str,
    dataset: str,
    *,
    split: str | None = None,
    checkpoint: int | None = None,
    protocol: str = "romp_vibe",
    export_agora: str | None = None,
    max_examples: int | None = None,
    body_verts_index: str = "",
    model=None,
    progress: bool = True,
    make_forward_fn=make_forward,
) -> dict[str, Any]:
    """Evaluates the checkpoint of ``workdir`` on ``dataset``; returns and writes the result
    (``WORKDIR/eval/<dataset>_<split>.json``). ``model`` (already restored) skips the restore;
    ``make_forward_fn(model)`` gives the jitted inference (eval.py: the data-parallel one of
    ``sharding``)."""
    from tqdm import tqdm

    _check_args(dataset, protocol, export_agora)
    step = None
    if model is None:
        body_model = models.load_body_model(config.model)
        model, step = checkpoints.restore_model(config, workdir, checkpoint, body_model)
    body_model = model.body.get_value()  # the checkpoint's body (a constant of the model)
    verts_index = np.load(body_verts_index).astype(np.int64) if body_verts_index else None

    data = open_split(config, dataset, split, max_examples)
    evaluator = make_evaluator(dataset, config, body_model, protocol, export_agora, verts_index)
    num_images = 0
    with tqdm(
        total=len(data.clips), desc=f"eval {dataset}/{data.split}", disable=not progress
    ) as bar:
        for frame, pred in predicted_frames(config, data, make_forward_fn(model), bar):
            evaluator.add(frame, pred)
            num_images += 1
    report = report_lib.make_report(
        dataset=dataset,
        tfds_name=data.tfds_name,
        split=data.split,
        protocol=evaluator.protocol,
        checkpoint_step=step,
        num_images=num_images,
        result=evaluator.result(),
        config=config,
    )
    report_lib.write_report(workdir, report)
    return report
