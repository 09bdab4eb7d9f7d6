"""The evaluation report: the poster's row beside ours, the JSON written to
``WORKDIR/eval/<dataset>_<split>.json`` (atomically; NaN as null) and the lines printed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from siam_jax.common import files
from siam_jax.evaluation import paper_numbers


def poster_table(dataset: str, result: Mapping[str, Any], config) -> str:
    """Ours beside the poster's row for the same setting, or a line saying there is none."""
    if dataset == "siam_synthetic":
        return "siam_synthetic: the poster reports no numbers for this dataset"
    m = config.model
    try:
        return paper_numbers.comparison_table(
            dataset,
            result,
            width=int(m.backbone.width),
            video=int(m.clip_len) > 1,
            sia=bool(m.sia.enabled),
            fd=bool(m.fd.enabled),
        )
    except KeyError as e:
        return f"{dataset}: no poster row for this setting ({e})"


def make_report(
    *,
    dataset: str,
    tfds_name: str,
    split: str,
    protocol: str,
    checkpoint_step: int | None,
    num_images: int,
    result: Mapping[str, Any],
    config,
) -> dict[str, Any]:
    """The report dict (docs/evaluation.md, "Running eval.py"); ``result`` is the evaluator's
    (its ``protocol`` and ``num_persons`` move to the top level)."""
    metrics = dict(result)
    protocol = metrics.pop("protocol", protocol)
    num_persons = metrics.pop("num_persons", None)
    return {
        "dataset": dataset,
        "tfds_name": tfds_name,
        "split": split,
        "protocol": protocol,
        "checkpoint_step": checkpoint_step,
        "num_images": num_images,
        "num_persons": num_persons,
        "units": "mm",
        "metrics": metrics,
        "poster_comparison": poster_table(dataset, metrics, config),
    }


def write_report(workdir: str, report: dict[str, Any]) -> str:
    """Writes ``report`` to ``WORKDIR/eval/<dataset>_<split>.json``, prints it; returns the path
    (also set as ``report['path']``)."""
    name = f"{report['dataset']}_{report['split'].replace('/', '_')}.json"
    path = os.path.join(workdir, "eval", name)
    files.write_json(path, report)
    report["path"] = path
    print(
        f"protocol: {report['protocol']}; images {report['num_images']}, "
        f"persons {report['num_persons']}"
    )
    print(report["poster_comparison"])
    print(f"wrote {path}")
    return path
