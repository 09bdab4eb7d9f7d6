"""Neck: fuses the four HRNet branches into one feature map F at stride 8."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from siam_jax.models import layers


class ContextBlock(nnx.Module):
    """Residual block of two dilated 3x3 convs (BN, ReLU; ResNet BasicBlock shape): widens what
    a cell of F sees by 2 * dilation cells each way."""

    def __init__(self, d: int, dilation: int, *, rngs: nnx.Rngs, dtype=None):
        def conv():
            pad = ((dilation, dilation), (dilation, dilation))
            return nnx.Conv(d, d, (3, 3), padding=pad, kernel_dilation=dilation, use_bias=False,
                            dtype=dtype, rngs=rngs)  # fmt: skip

        self.conv1, self.bn1 = conv(), nnx.BatchNorm(d, momentum=0.9, dtype=dtype, rngs=rngs)
        self.conv2, self.bn2 = conv(), nnx.BatchNorm(d, momentum=0.9, dtype=dtype, rngs=rngs)

    def __call__(self, x: Float[Array, "n h w d"]) -> Float[Array, "n h w d"]:
        y = nnx.relu(self.bn1(self.conv1(x)))
        return nnx.relu(x + self.bn2(self.conv2(y)))


class Neck(nnx.Module):
    """Upsample branches to 1/4, concat (15w), 1x1 conv to d, stride-2 3x3 conv to 1/8, then
    ``context_blocks`` dilated residual blocks (0 in the poster configs; docs/choices.md).

    BatchNorm + ReLU after each conv, as in HRNet's own heads (HRNet-W32 "incre" / ROMP's
    backbone head); ``.train()``/``.eval()`` switch batch vs running statistics.
    """

    def __init__(
        self,
        width: int,
        d: int,
        *,
        rngs: nnx.Rngs,
        dtype=None,
        context_blocks: int = 0,
        context_dilation: int = 2,
    ):
        in_ch = width * (1 + 2 + 4 + 8)  # 15w (HRNet branch widths w, 2w, 4w, 8w)
        self.fuse = nnx.Conv(in_ch, d, (1, 1), use_bias=False, dtype=dtype, rngs=rngs)
        self.fuse_bn = nnx.BatchNorm(d, momentum=0.9, dtype=dtype, rngs=rngs)
        self.down = nnx.Conv(
            d,
            d,
            (3, 3),
            strides=(2, 2),
            padding=((1, 1), (1, 1)),
            use_bias=False,
            dtype=dtype,
            rngs=rngs,
        )
        self.down_bn = nnx.BatchNorm(d, momentum=0.9, dtype=dtype, rngs=rngs)
        self.context = nnx.List(
            [
                ContextBlock(d, context_dilation, rngs=rngs, dtype=dtype)
                for _ in range(context_blocks)
            ]
        )

    def __call__(self, branches: Sequence[Float[Array, "n _h _w _c"]]) -> Float[Array, "n h w d"]:
        if len(branches) != 4:
            raise ValueError(f"Neck expects 4 HRNet branches, got {len(branches)}")
        n, h, w, _ = branches[0].shape
        ups = [branches[0]]
        for x in branches[1:]:
            # Bilinear upsampling as HRNet's segmentation/pose heads do (F.interpolate bilinear).
            ups.append(jax.image.resize(x, (n, h, w, x.shape[-1]), "bilinear").astype(x.dtype))
        x = jnp.concatenate(ups, axis=-1)
        # self.fuse is a 1x1 conv: applied as the matrix product (layers.pointwise, same kernel).
        dtype = self.fuse.dtype or jnp.result_type(x.dtype, self.fuse.kernel.dtype)
        x = layers.pointwise(x.astype(dtype), self.fuse.kernel[...].astype(dtype))
        x = nnx.relu(self.fuse_bn(x))
        x = nnx.relu(self.down_bn(self.down(x)))
        for block in self.context:
            x = block(x)
        return x
