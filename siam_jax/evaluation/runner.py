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
from siam_jax.body.identity import describe_body_model
from siam_jax.data import mixture, pipeline
from siam_jax.evaluation import agora as agora_lib
from siam_jax.evaluation import guards, prediction_files, pw3d
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


@dataclasses.dataclass
class EvalOptions:
    """The options of one ``eval.py`` run besides config, workdir and dataset (eval.py flags)."""

    split: str | None = None
    checkpoint: int | None = None
    protocol: str = "romp_vibe"
    export_agora: str | None = None
    max_examples: int | None = None
    body_verts_index: str = ""  # AGORA utils/body_verts_smpl.npy
    agora_gt_dir: str = ""  # AGORA SMPL/<split>_*_withjv.pkl folder
    kid_template_path: str = ""  # SMIL kid template (AGORA kid params predictions)
    predictions: str | None = None  # score files of any method instead of a checkpoint
    allow_procedural_body: bool = False
    allow_occ_train_overlap: bool = False


def _check_args(dataset: str, opts: EvalOptions) -> None:
    check_dataset(dataset)
    if dataset.startswith("pw3d") and opts.protocol not in pw3d.PROTOCOLS:
        raise ValueError(f"--protocol must be one of {pw3d.PROTOCOLS}, got {opts.protocol!r}")
    if opts.export_agora and dataset != "agora":
        raise ValueError("--export_agora is only for --dataset agora")
    if opts.predictions and opts.export_agora:
        raise ValueError("--export_agora exports a checkpoint's predictions, not --predictions")
    if opts.predictions and dataset == "siam_synthetic":
        raise ValueError("--predictions scores agora, pw3d, pw3d_occ or cmu_panoptic")


def _agora_gt(config, opts: EvalOptions, split: str) -> list:
    if not opts.agora_gt_dir:
        raise FileNotFoundError(
            "--dataset agora is scored on the official GT dataframes (their gt_verts, 45-joint "
            "gt_joints_2d, kids): pass --agora_gt_dir, the folder of SMPL/"
            f"{split}_*_withjv.pkl of the AGORA download"
        )
    return agora_lib.load_gt_dir(opts.agora_gt_dir, split)


def _verts_index(opts: EvalOptions):
    if not opts.body_verts_index:
        return None
    return agora_lib.load_body_verts_index(opts.body_verts_index)


def _checkpoint_meta(workdir: str, step: int | None) -> dict:
    if step is None:
        return {}
    with checkpoints.Checkpointer(
        checkpoints.checkpoint_dir(workdir), async_save=False, create=False
    ) as ckpt:
        return ckpt.read_meta(step)


def _frames_and_predictions(
    config, dataset, data: EvalSplit, opts, model, body_model, bar, make_forward_fn=make_forward
):
    """``(frame, prediction)`` pairs of the network or of the ``--predictions`` files."""
    if opts.predictions is None:
        yield from predicted_frames(config, data, make_forward_fn(model), bar)
        return
    files = prediction_files.PredictionFiles(opts.predictions)
    input_size = int(config.model.input_size)
    for clip in data.clips:
        for record in clip:
            frame = read_frame(data.records, int(record), input_size, data.where)
            yield frame, files.prediction(frame, body_model)
        bar.update(1)
    if files.num_used == 0:
        raise FileNotFoundError(
            f"{opts.predictions}: no prediction file matches a frame of {data.where} "
            "(docs/prediction_format.md: image_name or file name)"
        )


def _score_agora_files(config, opts: EvalOptions, split: str, body_model) -> tuple[dict, int]:
    """AGORA ``--predictions``: official per-person pickles against the GT dataframes."""
    gt = _agora_gt(config, opts, split)
    preds = agora_lib.load_prediction_dir(opts.predictions)
    kid = None
    if opts.kid_template_path:
        kid = agora_lib.kid_body_model(
            body_model, agora_lib.load_kid_template(opts.kid_template_path)
        )
    result = agora_lib.evaluate_agora(
        gt, preds, _verts_index(opts), body_model=body_model, kid_body=kid
    )
    result["num_persons"] = result["num_gt"]
    return result, int(sum(len(df) for df in gt))


# What ``restore_model``'s ``weights_source`` names (config.eval.use_ema picks).
_WEIGHTS = {"ema": "EMA weights", "params": "raw parameters (no EMA kept, or eval.use_ema=False)"}


def _prepare(config, workdir, dataset: str, opts: EvalOptions, model):
    """The checks before scoring (``guards``) and the model: ``(model or None, body model,
    checkpoint step or None, split, printed warnings)``."""
    _check_args(dataset, opts)
    warnings = [guards.check_body_model(
        config.model.body_model, dataset, opts.allow_procedural_body)]  # fmt: skip
    step = None
    if model is None and opts.predictions is None:
        body_model = models.load_body_model(config.model)
        model, step = checkpoints.restore_model(config, workdir, opts.checkpoint, body_model)
        print(f"checkpoint step {step}: evaluating its {_WEIGHTS[model.weights_source]}")
    if model is not None:
        body_model = model.body.get_value()  # the checkpoint's body (a constant of the model)
    else:
        body_model = models.load_body_model(config.model)
    guards.check_h36m_regressor(body_model, config.model.body_model, dataset)
    split = dataset_spec(config, dataset, opts.split)[1]
    train_sets = _checkpoint_meta(workdir, step).get(checkpoints.META_TRAIN_DATASETS)
    warnings.append(
        guards.check_occ_train(dataset, split, train_sets, opts.allow_occ_train_overlap)
    )
    warnings = [w for w in warnings if w]
    for w in warnings:
        print(w)
    return model, body_model, step, split, warnings


def evaluate(
    config,
    workdir: str | None,
    dataset: str,
    opts: EvalOptions | None = None,
    *,
    model=None,
    progress: bool = True,
    make_forward_fn=make_forward,
    **kwargs,
) -> dict[str, Any]:
    """Evaluates the checkpoint of ``workdir`` (or the ``opts.predictions`` files) on ``dataset``;
    returns and writes the result (``<workdir or predictions>/eval/<dataset>_<split>.json``).
    ``model`` (already restored) skips the restore; ``make_forward_fn(model)`` gives the jitted
    inference (eval.py: the data-parallel one of ``sharding``); ``kwargs`` are ``EvalOptions``
    fields."""
    from tqdm import tqdm

    opts = dataclasses.replace(opts or EvalOptions(), **kwargs)
    model, body_model, step, split, warnings = _prepare(config, workdir, dataset, opts, model)
    note = guards.split_note(dataset, split)

    if dataset == "agora" and opts.predictions:
        result, num_images = _score_agora_files(config, opts, split, body_model)
        tfds_name, protocol = "-", "agora_official"
    else:
        data = open_split(config, dataset, opts.split, opts.max_examples)
        gt = _agora_gt(config, opts, split) if dataset == "agora" else None
        evaluator = make_evaluator(
            dataset, config, body_model, opts.protocol, opts.export_agora, _verts_index(opts), gt
        )
        num_images = 0
        with tqdm(total=len(data.clips), desc=f"eval {dataset}/{data.split}",
                  disable=not progress) as bar:  # fmt: skip
            pairs = _frames_and_predictions(
                config, dataset, data, opts, model, body_model, bar, make_forward_fn
            )
            for frame, pred in pairs:
                evaluator.add(frame, pred)
                num_images += 1
        result, tfds_name, protocol = evaluator.result(), data.tfds_name, evaluator.protocol
    report = report_lib.make_report(
        dataset=dataset,
        tfds_name=tfds_name,
        split=split,
        protocol=protocol,
        checkpoint_step=step,
        num_images=num_images,
        result=result,
        config=config,
        body_model=describe_body_model(config.model.body_model, body_model),
        intrinsics=_intrinsics_statement(dataset, opts),
        predictions=opts.predictions,
        warnings=warnings,
        split_note=note,
    )
    report_lib.write_report(workdir or opts.predictions, report)
    return report


def _intrinsics_statement(dataset: str, opts: EvalOptions) -> str:
    if opts.predictions:
        return (
            f"predictions from {opts.predictions}: made with the predicting method's own camera "
            f"(each file records its K); the GT frames' K: {guards.INTRINSICS[dataset]}"
        )
    return f"the network is fed each frame's true K: {guards.INTRINSICS[dataset]}"
