"""Fail fast, and all at once: every file a config needs, checked before anything compiles.

``check(config)`` (``train.py`` calls it first) raises ``PreflightError`` with ONE message that
lists each missing piece: the body model, the mean parameters, the H36M regressor, the pretrained
backbone, the init checkpoint and each training / validation dataset not prepared under
``config.data.data_dir``, with where it goes and the command (or download) that provides it. It
also refuses the procedural body model when a real dataset is in use, unless
``config.allow_procedural_body`` says so (a smoke test of the real pipeline without SMPL).

Only the file system is read (nothing compiles, TensorFlow is not imported). A TFDS
dataset counts as prepared when ``DATA_DIR/NAME/CONFIG/VERSION/dataset_info.json`` exists, is
written as ``array_record`` (what the pipeline reads) and lists the split.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from collections.abc import Iterable, Sequence

from siam_jax.data import mixture  # DatasetSpec only (imports grain, not TensorFlow)
from siam_jax.data import prepare as prepare_lib

SYNTHETIC = "siam_synthetic"  # the one dataset the procedural body model belongs with
DOCS = "data/README.md"


class PreflightError(RuntimeError):
    """A config needs files that are not there (or a combination that is refused)."""


@dataclasses.dataclass(frozen=True)
class Missing:
    what: str  # the piece and the config key naming it
    where: str  # the path it is expected at
    how: str  # the command or download that provides it


# ====================================================================================== datasets
def training_specs(config) -> list[tuple[str, str]]:
    """``(name[:config], split)`` of every training dataset of ``config.data.train`` (the one
    mixture representation: ``(spec, weight[, overrides])`` entries, ``mixture.parse_mixture``)."""
    d = config.data
    out = []
    for entry in mixture.parse_mixture(d.train, list(d.augment.keys())):
        parsed = mixture.DatasetSpec.parse(entry.spec, d.train_split)
        out.append((parsed.name.replace("/", ":"), parsed.split))
    return out


def _tfds_dir(data_dir: str, spec: str) -> tuple[str, str, str | None]:
    """``(folder holding the version dirs, builder name, builder config)`` of ``name[:config]``;
    the builder's default config (``siam_jax.data.prepare``) when the spec names none."""
    name, _, cfg = spec.partition(":")
    name = prepare_lib.ALIASES.get(name, name)
    entry = prepare_lib.REGISTRY.get(name)
    cfg = cfg or (entry.default_config if entry else None)
    return os.path.join(data_dir, name, cfg) if cfg else os.path.join(data_dir, name), name, cfg


def _prepared_splits(folder: str) -> set[str]:
    """Split names of the array_record datasets prepared in ``folder`` (any version)."""
    splits: set[str] = set()
    for info_path in glob.glob(os.path.join(folder, "*", "dataset_info.json")):
        if ".incomplete" in info_path or "incomplete." in info_path:
            continue  # an interrupted build TFDS has not renamed yet
        try:
            with open(info_path) as f:
                info = json.load(f)
        except (OSError, ValueError):
            continue
        if info.get("fileFormat") == "array_record":
            splits.update(s.get("name", "") for s in info.get("splits", []))
    return splits


def _prepare_command(config, name: str, cfg: str | None) -> str:
    d = config.data
    entry = prepare_lib.REGISTRY.get(name)
    cmd = f"python -m siam_jax.data.prepare {name}"
    if entry is None or entry.manual:
        cmd += f" --manual_dir {os.path.join(d.manual_dir, name)}"
    cmd += f" --data_dir {d.data_dir}"
    if cfg and not (entry and cfg == entry.default_config):
        cmd += f" --config {cfg}"
    if entry is not None and entry.body_model:
        body_dir = d.real.body_model_dir or os.path.join(d.manual_dir, "body_models")
        cmd += f" --body_model_dir {body_dir}"
    return cmd


def missing_datasets(config, specs: Iterable[tuple[str, str]], role: str) -> list[Missing]:
    """Each ``(name[:config], split)`` of ``specs`` that is not prepared under data_dir."""
    out, seen = [], set()
    for spec, split in specs:
        if (spec, split) in seen:
            continue
        seen.add((spec, split))
        if spec.partition(":")[0] == SYNTHETIC and config.get("quickstart", False):
            continue  # the quickstart builds it on first use
        folder, name, cfg = _tfds_dir(config.data.data_dir, spec)
        wanted = {part.partition("[")[0].strip() for part in split.split("+")}  # TFDS split expr
        if not wanted <= _prepared_splits(folder):
            out.append(
                Missing(
                    f"{role} dataset {spec} split {split!r} (not prepared)",
                    folder,
                    _prepare_command(config, name, cfg),
                )
            )
    return out


# ====================================================================================== files
def _file(path: str, what: str, how: str) -> list[Missing]:
    return [] if not path or os.path.exists(path) else [Missing(what, path, how)]


def missing_body_files(config) -> list[Missing]:
    """The body model and the H36M regressor (training and evaluation need them)."""
    m = config.model
    return [
        *_file(
            m.body_model.path,
            "SMPL body model (config.model.body_model.path)",
            "register at https://smpl.is.tue.mpg.de and download SMPL; SPIN's data release names "
            f"the neutral model SMPL_NEUTRAL.pkl ({DOCS})",
        ),
        *_file(
            m.body_model.h36m_regressor_path,
            "H36M joint regressor of the 3DPW protocol "
            "(config.model.body_model.h36m_regressor_path)",
            "J_regressor_h36m.npy of SPIN's data release "
            f"(github.com/nkolot/SPIN fetch_data.sh; {DOCS})",
        ),
    ]


def missing_init_files(config) -> list[Missing]:
    """What only training starts from: mean parameters, pretrained backbone, init checkpoint."""
    m = config.model
    width = int(m.backbone.width)
    return [
        *_file(
            m.regressor.mean_params_path,
            "SMPL mean parameters (config.model.regressor.mean_params_path)",
            "smpl_mean_params.npz of SPIN's data release (github.com/nkolot/SPIN fetch_data.sh)",
        ),
        *_file(
            m.backbone.pretrained,
            "pretrained HRNet backbone (config.model.backbone.pretrained)",
            f"HigherHRNet-W{width} COCO weights (github.com/HRNet/HigherHRNet-Human-Pose-Estimation"
            f" model zoo) or timm's hrnet_w{width}; check the file with "
            f"`python -m siam_jax.models.convert --check FILE --width {width}`",
        ),
        *_file(
            config.get("init_checkpoint", ""),
            "checkpoint to start from (config.init_checkpoint)",
            "a siam-jax training workdir's checkpoints/ folder",
        ),
    ]


def procedural_body_refusal(config, specs: Sequence[tuple[str, str]]) -> list[Missing]:
    """The procedural body with a real dataset, unless ``config.allow_procedural_body``."""
    if config.model.body_model.path or config.get("allow_procedural_body", False):
        return []
    real = sorted({s for s, _ in specs if s.partition(":")[0] != SYNTHETIC})
    if not real:
        return []
    return [
        Missing(
            f"SMPL body model (config.model.body_model.path is empty: the procedural body is "
            f"refused with the real datasets {', '.join(real)}; set "
            "config.allow_procedural_body=True only for a smoke test)",
            "config.model.body_model.path",
            f"download SMPL (https://smpl.is.tue.mpg.de) and point the key at it ({DOCS})",
        )
    ]


# ====================================================================================== entry
def format_missing(items: Sequence[Missing], header: str) -> str:
    lines = [f"{header}: {len(items)} missing piece(s)"]
    for i, it in enumerate(items, 1):
        lines += [f"  {i}. {it.what}", f"     expected at: {it.where}", f"     get it: {it.how}"]
    return "\n".join(lines)


def check(config) -> None:
    """Raises ``PreflightError`` listing every file the training run of ``config`` lacks."""
    train = training_specs(config)
    val = [(str(config.data.eval_dataset), str(config.data.eval_split))]
    items = [
        *procedural_body_refusal(config, train + val),
        *missing_body_files(config),
        *missing_init_files(config),
        *missing_datasets(config, train, "training"),
        *missing_datasets(config, val, "validation"),
    ]
    if items:
        root = config.get("data_root", "")
        where = f" (data root {root!r}; --config.data_root=DIR or $SIAM_DATA_ROOT)" if root else ""
        raise PreflightError(format_missing(items, f"cannot train{where}"))


def check_evaluation(config, spec: str, split: str, *, need_dataset: bool = True) -> None:
    """The same check for ``eval.py``: body model, regressor, and the evaluated split
    (``need_dataset`` False: AGORA prediction files, scored on the official GT dataframes)."""
    items = [
        *procedural_body_refusal(config, [(spec, split)]),
        *missing_body_files(config),
        *(missing_datasets(config, [(spec, split)], "evaluation") if need_dataset else []),
    ]
    if items:
        raise PreflightError(format_missing(items, "cannot evaluate"))
