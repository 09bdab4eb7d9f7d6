"""HRNet backbone (Wang et al. 2019, "Deep High-Resolution Representation Learning"), NNX, NHWC.

Mirrors timm's ``HighResolutionNet`` (timm/models/hrnet.py) stem + stages, i.e. what
``timm.create_model('hrnet_wXX', features_only=True, feature_location='')`` holds, so that a timm
``state_dict`` loads by a mechanical key remap (``siam_jax.models.convert.load_torch_hrnet``):
torch ``nn.Sequential``/``nn.ModuleList`` become ``nnx.List`` at the same index, torch
``nn.Identity`` entries become ``None``. Attribute names (conv1, bn1, layer1, transition1, stage2,
branches, fuse_layers, downsample, ...) are timm's.

``HRNet(x)`` returns the four branch maps of the last stage (timm's feature indices 1-4): strides
4, 8, 16, 32 with channels [w, 2w, 4w, 8w]. timm's stride-2 stem tap (index 0) is not returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from siam_jax.models.layers import BatchNorm, Conv, fold_conv_bn

STEM_WIDTH = 64  # timm cfg_cls['hrnet_w*']['stem_width']
STAGE1_PLANES = 64  # timm cfg stage1 num_channels (64 * Bottleneck expansion 4 = 256 out)
BOTTLENECK_EXPANSION = 4  # timm/models/resnet.py Bottleneck.expansion


def _conv_bn(in_ch: int, out_ch: int, k: int, stride: int, rngs: nnx.Rngs, dtype) -> nnx.List:
    """torch ``nn.Sequential(Conv2d, BatchNorm2d[, ReLU])``: 0 conv, 1 bn (ReLU has no params)."""
    return nnx.List([Conv(in_ch, out_ch, k, stride, rngs=rngs, dtype=dtype), BatchNorm(out_ch)])


def _apply_conv_bn(seq: nnx.List, x: Array, relu: bool) -> Array:
    y = seq[1](seq[0](x))
    return jax.nn.relu(y) if relu else y


class BasicBlock(nnx.Module):
    """timm/models/resnet.py BasicBlock: 3x3 conv-bn-relu, 3x3 conv-bn, + shortcut, relu."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, *, rngs: nnx.Rngs, dtype=None):
        self.conv1 = Conv(in_ch, planes, 3, 1, rngs=rngs, dtype=dtype)
        self.bn1 = BatchNorm(planes)
        self.conv2 = Conv(planes, planes, 3, 1, rngs=rngs, dtype=dtype)
        self.bn2 = BatchNorm(planes)
        self.downsample = _conv_bn(in_ch, planes, 1, 1, rngs, dtype) if in_ch != planes else None

    def __call__(self, x: Float[Array, "b h w c"]) -> Float[Array, "b h w p"]:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        sc = x if self.downsample is None else _apply_conv_bn(self.downsample, x, relu=False)
        return jax.nn.relu(y + sc)


class Bottleneck(nnx.Module):
    """timm/models/resnet.py Bottleneck (stride 1 here): 1x1, 3x3, 1x1 (x4 channels), + shortcut."""

    expansion = BOTTLENECK_EXPANSION

    def __init__(self, in_ch: int, planes: int, *, rngs: nnx.Rngs, dtype=None):
        out_ch = planes * self.expansion
        self.conv1 = Conv(in_ch, planes, 1, 1, rngs=rngs, dtype=dtype)
        self.bn1 = BatchNorm(planes)
        self.conv2 = Conv(planes, planes, 3, 1, rngs=rngs, dtype=dtype)
        self.bn2 = BatchNorm(planes)
        self.conv3 = Conv(planes, out_ch, 1, 1, rngs=rngs, dtype=dtype)
        self.bn3 = BatchNorm(out_ch)
        self.downsample = _conv_bn(in_ch, out_ch, 1, 1, rngs, dtype) if in_ch != out_ch else None

    def __call__(self, x: Float[Array, "b h w c"]) -> Float[Array, "b h w p"]:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        sc = x if self.downsample is None else _apply_conv_bn(self.downsample, x, relu=False)
        return jax.nn.relu(y + sc)


def _upsample_nearest(x: Float[Array, "b h w c"], factor: int) -> Float[Array, "b hf wf c"]:
    # torch nn.Upsample(scale_factor=f, mode='nearest') with integer f == repeat each pixel f times.
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class HighResolutionModule(nnx.Module):
    """One multi-branch module: per-branch BasicBlocks, then exchange (fuse) across resolutions."""

    def __init__(self, channels: Sequence[int], num_blocks: int, *, rngs: nnx.Rngs, dtype=None):
        n = len(channels)
        self.num_branches = n
        self.branches = nnx.List(
            [
                nnx.List([BasicBlock(c, c, rngs=rngs, dtype=dtype) for _ in range(num_blocks)])
                for c in channels
            ]
        )
        if n == 1:
            self.fuse_layers = None
            return
        fuse = []
        for i in range(n):
            row = []
            for j in range(n):
                if j > i:  # lower resolution: 1x1 conv-bn then nearest upsample by 2^(j-i)
                    row.append(_conv_bn(channels[j], channels[i], 1, 1, rngs, dtype))
                elif j == i:
                    row.append(None)
                else:  # higher res: i-j stride-2 conv-bn, ReLU between (not after last)
                    steps = []
                    for k in range(i - j):
                        out_c = channels[i] if k == i - j - 1 else channels[j]
                        steps.append(_conv_bn(channels[j], out_c, 3, 2, rngs, dtype))
                    row.append(nnx.List(steps))
            fuse.append(nnx.List(row))
        self.fuse_layers = nnx.List(fuse)

    def __call__(self, xs: list[Array]) -> list[Array]:
        xs = list(xs)
        for i, branch in enumerate(self.branches):
            for block in branch:
                xs[i] = block(xs[i])
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = None
            for j, f in enumerate(row):
                if j == i:
                    z = xs[j]
                elif j > i:
                    z = _upsample_nearest(_apply_conv_bn(f, xs[j], relu=False), 2 ** (j - i))
                    if z.shape[1:3] != xs[i].shape[1:3]:
                        raise ValueError(
                            f"HRNet branch {j} upsampled to {z.shape[1:3]} != branch {i} "
                            f"{xs[i].shape[1:3]}: input height/width must be multiples of 32"
                        )
                else:
                    z = xs[j]
                    for k, step in enumerate(f):
                        z = _apply_conv_bn(step, z, relu=k < len(f) - 1)
                y = z if y is None else y + z
            out.append(jax.nn.relu(y))
        return out


def _transition(pre: Sequence[int], cur: Sequence[int], rngs: nnx.Rngs, dtype) -> nnx.List:
    """timm HighResolutionNet._make_transition_layer: adapt channels, spawn lower-res branches."""
    layers: list = []
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(None if c == pre[i] else _conv_bn(pre[i], c, 3, 1, rngs, dtype))
        else:
            steps = []
            for k in range(i + 1 - len(pre)):
                out_c = c if k == i - len(pre) else pre[-1]
                steps.append(_conv_bn(pre[-1], out_c, 3, 2, rngs, dtype))
            layers.append(nnx.List(steps))
    return nnx.List(layers)


def _apply_transition(trans: nnx.List, ys: list[Array]) -> list[Array]:
    out = []
    for i, t in enumerate(trans):
        if t is None:
            out.append(ys[i])
        elif i < len(ys):  # same-resolution channel change (only in transition1)
            out.append(_apply_conv_bn(t, ys[i], relu=True))
        else:  # new branch from the lowest-resolution input, as timm (t(yl[-1]))
            z = ys[-1]
            for step in t:
                z = _apply_conv_bn(step, z, relu=True)
            out.append(z)
    return out


class HRNet(nnx.Module):
    """HRNet-W{width} backbone: ``x [b H W 3] -> [b H/4 W/4 w], ..., [b H/32 W/32 8w]``.

    ``num_modules`` are the module counts of stages 1-4 (stage 1 must be 1, as in every HRNet);
    ``num_blocks`` the residual blocks per branch (4 in HRNet-W18/32/48). ``stem_width`` is the
    channel count of the two stride-2 stem convs and the stage-1 bottleneck planes (64 in every
    timm HRNet, whatever the width; smaller only for tiny from-scratch models, where the
    stage-1 bottlenecks at 1/4 resolution otherwise dominate the cost).

    ``remat`` (``config.model.backbone.remat``): each stage-1 block and each multi-branch module
    runs under ``nnx.remat``, so its activations are recomputed in the backward pass instead of
    kept (less memory, about one more forward pass of compute); outputs and gradients unchanged.
    """

    def __init__(
        self,
        width: int,
        *,
        rngs: nnx.Rngs,
        num_modules: Sequence[int] = (1, 1, 4, 3),
        num_blocks: int = 4,
        stem_width: int = STEM_WIDTH,
        dtype=None,
        remat: bool = False,
    ):
        if len(num_modules) != 4 or num_modules[0] != 1 or min(num_modules) < 1:
            raise ValueError(f"num_modules must be (1, m2, m3, m4) with m >= 1, got {num_modules}")
        if width < 1 or num_blocks < 1 or stem_width < 1:
            raise ValueError(
                f"width, num_blocks and stem_width must be >= 1, got {width}, {num_blocks}, "
                f"{stem_width}"
            )
        self.width = width
        self.remat = bool(remat)
        self.channels = tuple(width * 2**i for i in range(4))
        # timm: stem_width = 64 and stage-1 planes = 64 (STAGE1_PLANES), so one knob scales both.
        self.conv1 = Conv(3, stem_width, 3, 2, rngs=rngs, dtype=dtype)
        self.bn1 = BatchNorm(stem_width)
        self.conv2 = Conv(stem_width, stem_width, 3, 2, rngs=rngs, dtype=dtype)
        self.bn2 = BatchNorm(stem_width)
        planes = STAGE1_PLANES * stem_width // STEM_WIDTH
        s1_out = planes * BOTTLENECK_EXPANSION
        self.layer1 = nnx.List(
            [
                Bottleneck(stem_width if k == 0 else s1_out, planes, rngs=rngs, dtype=dtype)
                for k in range(num_blocks)
            ]
        )
        pre: list[int] = [s1_out]
        for s in (2, 3, 4):
            cur = list(self.channels[:s])
            setattr(self, f"transition{s - 1}", _transition(pre, cur, rngs, dtype))
            mods = [
                HighResolutionModule(cur, num_blocks, rngs=rngs, dtype=dtype)
                for _ in range(num_modules[s - 1])
            ]
            setattr(self, f"stage{s}", nnx.List(mods))
            pre = cur

    def __call__(self, x: Float[Array, "b h w 3"]) -> list[Float[Array, "b hi wi ci"]]:
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"HRNet expects images [b, H, W, 3], got shape {x.shape}")
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        x = jax.nn.relu(self.bn2(self.conv2(x)))
        for block in self.layer1:
            x = self._run(block, x)
        ys = [x]
        for trans, stage in (
            (self.transition1, self.stage2),
            (self.transition2, self.stage3),
            (self.transition3, self.stage4),
        ):
            ys = _apply_transition(trans, ys)
            for module in stage:
                ys = self._run(module, ys)
        return ys

    def _run(self, module: nnx.Module, x):
        """``module(x)``, under ``nnx.remat`` when the backbone rematerialises."""
        if not self.remat:
            return module(x)
        return nnx.remat(lambda m, y: m(y))(module, x)

    def fuse(self) -> HRNet:
        """Eval-mode copy with every BatchNorm folded into its conv (inference path)."""
        return fold_batchnorm(self)


def hrnet_tiny(rngs: nnx.Rngs, dtype=None) -> HRNet:
    """Tiny HRNet for tests: width 4, one module per stage, one block per branch."""
    return HRNet(4, rngs=rngs, num_modules=(1, 1, 1, 1), num_blocks=1, dtype=dtype)


def _conv_bn_pairs(module: nnx.Module):
    """Yield (conv, bn) pairs: attributes convN/bnN, and [Conv, BatchNorm] lists."""
    for _path, node in nnx.iter_graph(module):
        if isinstance(node, nnx.List) and len(node) == 2:
            if isinstance(node[0], Conv) and isinstance(node[1], BatchNorm):
                yield node[0], node[1]
        elif isinstance(node, nnx.Module):
            for k in (1, 2, 3):
                conv, bn = getattr(node, f"conv{k}", None), getattr(node, f"bn{k}", None)
                if isinstance(conv, Conv) and isinstance(bn, BatchNorm):
                    yield conv, bn


def fold_batchnorm(model: HRNet) -> HRNet:
    """Return an eval-mode copy of ``model`` with BatchNorms folded into convs (model unchanged).

    Folding uses the running statistics, so the result computes ``model.eval()`` exactly (up to
    float rounding) with one conv + bias per layer; it is for inference only.
    """
    folded = nnx.clone(model)
    folded.eval()
    pairs = list(_conv_bn_pairs(folded))
    for conv, bn in pairs:
        fold_conv_bn(conv, bn)
    leftover = [
        bn for _, bn in nnx.iter_graph(folded) if isinstance(bn, BatchNorm) and not bn.folded
    ]
    if leftover:
        raise RuntimeError(f"fold_batchnorm: {len(leftover)} BatchNorm(s) without a preceding conv")
    return folded


def param_count(width: int, **kwargs) -> int:
    """Number of trainable parameters, from an abstract (non-allocating) init."""
    abstract = nnx.eval_shape(lambda: HRNet(width, rngs=nnx.Rngs(0), **kwargs))
    leaves = jax.tree.leaves(nnx.state(abstract, nnx.Param))
    return int(sum(math.prod(leaf.shape) for leaf in leaves))
