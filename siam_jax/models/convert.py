"""Load PyTorch HRNet weights (timm, HigherHRNet, mmpose, ROMP) into the Flax ``HRNet``; --check.

The Flax module tree mirrors timm's (see ``hrnet.py``), so a torch key maps to a Flax path by
splitting on '.', turning digit components into list indices, and renaming the leaf:
conv ``weight`` (OIHW) -> ``kernel`` (HWIO, transposed), BatchNorm ``weight`` -> ``scale``,
``bias`` -> ``bias``, ``running_mean`` -> ``mean``, ``running_var`` -> ``var``
(``num_batches_tracked`` has no Flax counterpart: momentum is fixed, it is ignored).

Key layouts recognised (``backbone_view``):

* timm ``HighResolutionNet`` (``hrnet_w32.ms_in1k``): the backbone keys as they are; the
  classification head (``incre_modules``, ``downsamp_modules``, ``final_layer``, ``classifier``)
  is ignored.
* HigherHRNet (``pose_higher_hrnet.py`` of HRNet/HigherHRNet-Human-Pose-Estimation) and the
  top-down pose HRNet: the same backbone names as timm (both descend from the same HRNet code),
  head ``final_layers`` / ``deconv_layers`` / ``final_layer`` ignored. Their last stage is built
  with ``multi_scale_output=False``: the last module fuses into the highest resolution only, so
  the file has no ``stage4.<last>.fuse_layers.{1,2,3}`` (65 tensors of HRNet-W32's 1525).
  Those load only with ``allow_single_scale=True`` and then keep their initialisation (reported).
* mmpose (``backbone.`` prefix; ``bn1``/``bn2`` are the norm names ``build_norm_layer`` gives, the
  blocks, transitions and fuse layers index as timm's) and ROMP/any model holding the HRNet under
  ``backbone.``: the ``backbone.`` keys, everything else ignored.
* ``module.`` (DataParallel / DDP) and ``model.`` wrappers on every key are stripped first.

File formats (``read_state_dict``): ``.pth``/``.pt``/``.bin``/``.ckpt`` and ``.pkl`` torch.save
archives (zip or legacy) through ``torch.load(weights_only=True)``; ``.pkl`` plain pickles of numpy
arrays (``pickle.dump`` of a dict / OrderedDict) through ``siam_jax.common.safe_pickle``, which
refuses any global outside its allow-list before it runs; ``.safetensors``.

``python -m siam_jax.models.convert --check FILE --width 32|48`` prints how many backbone tensors
the file fills, of how many, and exits non-zero unless it fills all.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import zipfile
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from siam_jax.common import safe_pickle
from siam_jax.models.hrnet import HRNet

# Heads of timm's classifier, HigherHRNet / pose HRNet, HRNet-seg: not part of the backbone.
IGNORED_PREFIXES = (
    "classifier.",
    "incre_modules.",
    "downsamp_modules.",
    "final_layer.",
    "fc.",
    "final_layers.",
    "deconv_layers.",
    "last_layer.",
)
IGNORED_SUFFIXES = (".num_batches_tracked",)
WRAPPER_PREFIXES = ("module.", "model.")  # on every key: DataParallel/DDP, Lightning-style
BACKBONE_PREFIX = "backbone."  # mmpose, ROMP: the HRNet inside a bigger model
_STATE_DICT_WRAPPERS = ("state_dict", "model", "model_state_dict")  # checkpoint dict entries

_FLAX_TO_TORCH_LEAF = {
    "kernel": "weight",
    "scale": "weight",
    "bias": "bias",
    "mean": "running_mean",
    "var": "running_var",
}


class WeightsError(ValueError):
    """A weights file does not fill the backbone; the message names each key at fault."""


@dataclasses.dataclass
class LoadReport:
    """What a load did (or would do): the keys it used and those it could not."""

    total: int = 0  # backbone tensors of the model
    loaded: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)  # model has, file lacks
    unexpected: list[str] = dataclasses.field(default_factory=list)  # file has, model lacks
    misshaped: list[str] = dataclasses.field(default_factory=list)  # "key: file (..) model (..)"
    ignored: list[str] = dataclasses.field(default_factory=list)  # heads, wrappers, counters
    single_scale: list[str] = dataclasses.field(default_factory=list)  # allowed to stay at init
    layout: str = "timm"  # prefixes stripped, e.g. "module. + backbone."
    single_scale_file: bool = False  # the file's last module fuses into one resolution only

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.misshaped)

    def summary(self) -> str:
        return (
            f"fills {len(self.loaded)} of {self.total} backbone tensors (layout {self.layout}); "
            f"missing {len(self.missing)}, unexpected {len(self.unexpected)}, mis-shaped "
            f"{len(self.misshaped)}, ignored {len(self.ignored)}"
            + (
                f", left at init (single-scale file) {len(self.single_scale)}"
                if self.single_scale
                else ""
            )
        )

    def problems(self, limit: int = 20) -> str:
        """The keys at fault, ``limit`` of each kind."""
        lines = []
        for name, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("mis-shaped", self.misshaped),
        ):
            if keys:
                more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
                lines.append(f"{name} ({len(keys)}): {', '.join(keys[:limit])}{more}")
        if self.single_scale_file and self.missing:
            lines.append(
                "the file's last HRNet module fuses into the highest resolution only "
                "(HigherHRNet / pose HRNet, multi_scale_output=False): its lower-resolution fuse "
                "rows are not in it; load it with allow_single_scale "
                "(config.model.backbone.pretrained_allow_single_scale=True) to start those from "
                "their initialisation"
            )
        return "\n".join(lines)


# ====================================================================================== reading
def _to_numpy(v: Any, key: str) -> np.ndarray:
    if hasattr(v, "detach"):  # torch.Tensor, without importing torch
        v = v.detach().cpu().float().numpy() if v.is_floating_point() else v.cpu().numpy()
    arr = np.asarray(v)
    if arr.dtype == object:
        raise TypeError(f"state_dict key {key!r}: cannot convert value of type {type(v)} to array")
    return arr


def _torch_load(path: str):
    import torch

    # weights_only: torch's own allow-list unpickler (tensors, containers, primitives only).
    return torch.load(path, map_location="cpu", weights_only=True)


# The first object of a legacy (pre-1.6, non-zip) torch.save file: torch/serialization.py
# MAGIC_NUMBER, written by _legacy_save before the protocol version and the pickled object.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_pickle(path: str):
    """A ``.pkl``: a torch.save archive (zip or legacy) through ``torch.load(weights_only=True)``,
    a plain pickle (numpy arrays in a dict / OrderedDict) through the project's allow-list
    loader, which refuses any other global before it could run."""
    if zipfile.is_zipfile(path):
        return _torch_load(path)  # ROMP's pretrain_hrnet.pkl and the like: torch.save archives
    try:
        obj = safe_pickle.load(path, "HRNet weights")
    except safe_pickle.UnsafePickleError as err:
        if "'torch." not in str(err):
            raise
        raise WeightsError(
            f"{err}\n{path}: torch tensors written with plain pickle; re-save the state dict "
            "with torch.save (read with weights_only=True) or as .safetensors"
        ) from None
    if isinstance(obj, int) and obj == _TORCH_LEGACY_MAGIC:  # legacy torch.save: torch's format
        return _torch_load(path)
    return obj


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``.pth``/``.pt``/``.bin``/``.ckpt`` (torch.save), ``.pkl`` (a torch.save archive or a plain
    pickle of numpy arrays) or ``.safetensors`` -> name -> numpy, unwrapping
    ``state_dict``/``model`` checkpoint dicts."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"HRNet weights file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        return dict(load_file(path))
    if path.endswith(".pkl"):
        obj = _read_pickle(path)
    elif path.endswith((".pth", ".pt", ".bin", ".ckpt")):
        obj = _torch_load(path)
    else:
        raise WeightsError(f"{path}: expected a .pth/.pt/.bin/.ckpt/.pkl or .safetensors file")
    for wrapper in _STATE_DICT_WRAPPERS:
        if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a state_dict mapping, got {type(obj).__name__}")
    return {k: _to_numpy(v, k) for k, v in obj.items()}


def backbone_view(sd: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], str]:
    """``(backbone keys without prefixes, keys outside the backbone, layout)`` of a state dict."""
    sd, stripped = dict(sd), []
    changed = True
    while changed and sd:
        changed = False
        for p in (*WRAPPER_PREFIXES, BACKBONE_PREFIX):
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p) :]: v for k, v in sd.items()}
                stripped.append(p)
                changed = True
    outside: list[str] = []
    if any(k.startswith(BACKBONE_PREFIX) for k in sd):
        outside = sorted(k for k in sd if not k.startswith(BACKBONE_PREFIX))
        sd = {k[len(BACKBONE_PREFIX) :]: v for k, v in sd.items() if k.startswith(BACKBONE_PREFIX)}
        stripped.append(BACKBONE_PREFIX)
    return sd, outside, " + ".join(stripped) if stripped else "timm"


# ====================================================================================== matching
def _torch_name(path: tuple) -> str:
    *mods, leaf = path
    if leaf not in _FLAX_TO_TORCH_LEAF:
        raise KeyError(f"no torch name for Flax parameter {'.'.join(map(str, path))}")
    return ".".join(str(p) for p in mods) + "." + _FLAX_TO_TORCH_LEAF[leaf]


def _single_scale_keys(names, last_module: int) -> set[str]:
    """Model keys of the last module's lower-resolution fuse rows (absent from a single-scale
    file): ``stage4.<last>.fuse_layers.<i>.*`` with i >= 1."""
    prefix = f"stage4.{last_module}.fuse_layers."
    return {k for k in names if k.startswith(prefix) and k[len(prefix) :].split(".")[0] != "0"}


def match(
    shapes: Mapping[str, tuple[int, ...]],
    sd: Mapping[str, np.ndarray],
    *,
    last_module: int,
    allow_single_scale: bool = False,
) -> LoadReport:
    """The report of loading ``sd`` into a model whose torch-named tensors have ``shapes``
    (conv weights as torch OIHW). Reads shapes only; nothing is copied."""
    view, outside, layout = backbone_view(sd)
    report = LoadReport(total=len(shapes), layout=layout, ignored=outside)
    for key, value in view.items():
        if key.startswith(IGNORED_PREFIXES) or key.endswith(IGNORED_SUFFIXES):
            report.ignored.append(key)
        elif key not in shapes:
            report.unexpected.append(key)
        elif tuple(np.shape(value)) != tuple(shapes[key]):
            report.misshaped.append(
                f"{key}: file {tuple(np.shape(value))}, model {tuple(shapes[key])}"
            )
        else:
            report.loaded.append(key)
    present = set(view)
    report.missing = sorted(k for k in shapes if k not in present)
    rows = _single_scale_keys(shapes, last_module)
    has_row0 = any(k.startswith(f"stage4.{last_module}.fuse_layers.0.") for k in present)
    report.single_scale_file = bool(rows) and has_row0 and rows <= set(report.missing)
    if report.single_scale_file and allow_single_scale:
        report.single_scale = sorted(rows)
        report.missing = [k for k in report.missing if k not in rows]
    return report


def _torch_shapes(flat: Mapping[tuple, Any]) -> dict[str, tuple[int, ...]]:
    out = {}
    for path, v in flat.items():
        shape = tuple(v.shape)
        out[_torch_name(path)] = (shape[3], shape[2], *shape[:2]) if path[-1] == "kernel" else shape
    return out


def load_torch_hrnet(
    model: HRNet,
    state_dict_or_path: Mapping[str, Any] | str | os.PathLike,
    *,
    strict: bool = True,
    allow_single_scale: bool = False,
) -> LoadReport:
    """Copy PyTorch HRNet weights into ``model`` in place; return the ``LoadReport``.

    ``strict`` (the default): raises ``WeightsError`` naming every missing, unexpected and
    mis-shaped key unless the file fills every backbone tensor, and then nothing is copied.
    ``allow_single_scale``: a single-scale file (HigherHRNet, see the module docstring) may lack
    the last module's lower-resolution fuse rows, which keep their values (reported).
    ``strict=False`` copies what matches and only reports the rest (diagnostics).
    """
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        sd = read_state_dict(state_dict_or_path)
        where = os.fspath(state_dict_or_path)
    else:
        sd = {k: _to_numpy(v, k) for k, v in state_dict_or_path.items()}
        where = "state_dict"
    flat = dict(nnx.to_flat_state(nnx.state(model)))
    if any(p[-1] == "bias" and p[-2:-1] and _is_conv_path(model, p) for p in flat):
        raise ValueError("load_torch_hrnet: model has folded BatchNorms; load before folding")
    by_torch = {_torch_name(p): p for p in flat}
    report = match(
        _torch_shapes(flat),
        sd,
        last_module=len(model.stage4) - 1,
        allow_single_scale=allow_single_scale,
    )
    if strict and not report.ok:
        raise WeightsError(
            f"{where}: HRNet-W{model.width} weights do not fill the backbone: "
            f"{report.summary()}\n{report.problems()}"
        )
    view, _, _ = backbone_view(sd)
    for key in report.loaded:
        path = by_torch[key]
        value = view[key]
        if path[-1] == "kernel":
            value = value.transpose(2, 3, 1, 0)  # torch OIHW -> flax HWIO
        # Copy: torch's .numpy() shares memory and JAX CPU arrays may alias numpy buffers, so an
        # in-place torch update (e.g. running stats) would otherwise leak into the Flax model.
        flat[path].set_value(jnp.array(np.array(value, dtype=np.float32, copy=True)))
    nnx.update(model, nnx.from_flat_state(flat))
    return report


def _is_conv_path(model: nnx.Module, path: tuple) -> bool:
    from siam_jax.models.layers import Conv

    node: Any = model
    for p in path[:-1]:
        node = node[p] if isinstance(p, int) else getattr(node, p)
    return isinstance(node, Conv)


# ====================================================================================== --check
def check_file(path: str, width: int, *, allow_single_scale: bool = False) -> LoadReport:
    """The report of loading ``path`` into a standard HRNet-W``width`` (shapes only)."""
    abstract = nnx.eval_shape(lambda: HRNet(width, rngs=nnx.Rngs(0)))
    flat = dict(nnx.to_flat_state(nnx.state(abstract)))
    return match(
        _torch_shapes(flat),
        read_state_dict(path),
        last_module=len(abstract.stage4) - 1,
        allow_single_scale=allow_single_scale,
    )


def main(argv: list[str] | None = None) -> int:
    """``--check FILE --width W [--allow_single_scale]``; 0 only when the file fills them all."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m siam_jax.models.convert")
    parser.add_argument("--check", required=True, metavar="FILE", help="weights file to check")
    parser.add_argument("--width", type=int, required=True, choices=(18, 32, 48))
    parser.add_argument(
        "--allow_single_scale",
        action="store_true",
        help="a HigherHRNet-style file may lack the last module's lower-resolution fuse rows",
    )
    args = parser.parse_args(argv)
    try:
        report = check_file(args.check, args.width, allow_single_scale=args.allow_single_scale)
    except (OSError, ValueError, TypeError, safe_pickle.UnsafePickleError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    filled = len(report.loaded)
    print(f"{args.check}: HRNet-W{args.width}: {report.summary()}")
    if report.single_scale:
        print(f"left at their initialisation (single-scale file): {len(report.single_scale)}")
    if not report.ok:
        print(report.problems(), file=sys.stderr)
        return 1
    print(f"OK: {filled} of {report.total} backbone tensors filled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
