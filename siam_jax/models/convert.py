"""Load PyTorch (timm) HRNet weights into the Flax ``HRNet``.

The Flax module tree mirrors timm's (see ``hrnet.py``), so a torch key maps to a Flax path by
splitting on '.', turning digit components into list indices, and renaming the leaf:
conv ``weight`` (OIHW) -> ``kernel`` (HWIO, transposed), BatchNorm ``weight`` -> ``scale``,
``bias`` -> ``bias``, ``running_mean`` -> ``mean``, ``running_var`` -> ``var``
(``num_batches_tracked`` has no Flax counterpart: momentum is fixed, it is ignored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from siam_jax.models.hrnet import HRNet

# Keys of timm's classification head / "incre" feature head: not part of the backbone we build.
IGNORED_PREFIXES = ("classifier.", "incre_modules.", "downsamp_modules.", "final_layer.", "fc.")
IGNORED_SUFFIXES = (".num_batches_tracked",)

_FLAX_TO_TORCH_LEAF = {
    "kernel": "weight",
    "scale": "weight",
    "bias": "bias",
    "mean": "running_mean",
    "var": "running_var",
}


@dataclass
class LoadReport:
    """What ``load_torch_hrnet`` did: counts and the keys it could not use."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # torch-style names the model has, file lacks
    unexpected: list[str] = field(default_factory=list)  # file keys the model has no place for
    ignored: list[str] = field(default_factory=list)  # classifier/incre/... keys, skipped by name

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def _to_numpy(v: Any, key: str) -> np.ndarray:
    if hasattr(v, "detach"):  # torch.Tensor, without importing torch
        v = v.detach().cpu().float().numpy() if v.is_floating_point() else v.cpu().numpy()
    arr = np.asarray(v)
    if arr.dtype == object:
        raise TypeError(f"state_dict key {key!r}: cannot convert value of type {type(v)} to array")
    return arr


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``.pth``/``.pt``/``.bin`` (torch.save) or ``.safetensors`` file into name -> numpy."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"HRNet weights file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        return dict(load_file(path))
    if not path.endswith((".pth", ".pt", ".bin", ".ckpt")):
        raise ValueError(f"{path}: expected a .pth/.pt/.bin/.ckpt or .safetensors file")
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state_dict mapping, got {type(obj).__name__}")
    return {k: _to_numpy(v, k) for k, v in obj.items()}


def _torch_name(path: tuple) -> str:
    *mods, leaf = path
    if leaf not in _FLAX_TO_TORCH_LEAF:
        raise KeyError(f"no torch name for Flax parameter {'.'.join(map(str, path))}")
    return ".".join(str(p) for p in mods) + "." + _FLAX_TO_TORCH_LEAF[leaf]


def load_torch_hrnet(
    model: HRNet,
    state_dict_or_path: Mapping[str, Any] | str | os.PathLike,
    *,
    strict: bool = False,
) -> LoadReport:
    """Copy timm HRNet weights into ``model`` in place; return a ``LoadReport``.

    Raises ValueError naming the key on any shape mismatch; with ``strict=True`` also when any key
    is missing or unexpected (otherwise they are only reported).
    """
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        sd = read_state_dict(state_dict_or_path)
    else:
        sd = {k: _to_numpy(v, k) for k, v in state_dict_or_path.items()}
    if sd and all(k.startswith("module.") for k in sd):  # DataParallel/DDP-saved checkpoints
        sd = {k[len("module.") :]: v for k, v in sd.items()}

    state = nnx.state(model)
    flat = dict(nnx.to_flat_state(state))
    if any(p[-1] == "bias" and p[-2:-1] and _is_conv_path(model, p) for p in flat):
        raise ValueError("load_torch_hrnet: model has folded BatchNorms; load before folding")
    by_torch = {_torch_name(p): p for p in flat}

    report = LoadReport()
    for key, value in sd.items():
        if key.startswith(IGNORED_PREFIXES) or key.endswith(IGNORED_SUFFIXES):
            report.ignored.append(key)
            continue
        path = by_torch.get(key)
        if path is None:
            report.unexpected.append(key)
            continue
        target = flat[path]
        if path[-1] == "kernel":
            if value.ndim != 4:
                raise ValueError(
                    f"state_dict key {key!r}: conv weight must be 4-D, got {value.shape}"
                )
            value = value.transpose(2, 3, 1, 0)  # torch OIHW -> flax HWIO
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(
                f"state_dict key {key!r}: shape {tuple(value.shape)} (after OIHW->HWIO) does not "
                f"match model parameter {'.'.join(map(str, path))} {tuple(target.shape)}"
            )
        # Copy: torch's .numpy() shares memory and JAX CPU arrays may alias numpy buffers, so an
        # in-place torch update (e.g. running stats) would otherwise leak into the Flax model.
        target.set_value(jnp.array(np.array(value, dtype=np.float32, copy=True)))
        report.loaded.append(key)
    loaded = set(report.loaded)
    report.missing = sorted(k for k in by_torch if k not in loaded)
    nnx.update(model, nnx.from_flat_state(flat))
    if strict and not report.ok:
        raise ValueError(
            f"load_torch_hrnet(strict): missing {report.missing[:10]} "
            f"({len(report.missing)}), unexpected {report.unexpected[:10]} "
            f"({len(report.unexpected)})"
        )
    return report


def _is_conv_path(model: nnx.Module, path: tuple) -> bool:
    from siam_jax.models.layers import Conv

    node: Any = model
    for p in path[:-1]:
        node = node[p] if isinstance(p, int) else getattr(node, p)
    return isinstance(node, Conv)
