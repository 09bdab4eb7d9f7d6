"""Conv / BatchNorm building blocks with PyTorch semantics, NHWC.

Parameter names follow what the torch -> flax key remap in ``convert.py`` expects:
Conv ``kernel`` (HWIO) [+ ``bias`` after BN folding], BatchNorm ``scale``, ``bias`` (Params) and
``mean``, ``var`` (BatchStats).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

# torch.nn.BatchNorm2d defaults (torch/nn/modules/batchnorm.py): eps=1e-5; HRNet uses momentum 0.1
# (timm/models/hrnet.py: _BN_MOMENTUM), i.e. running = (1 - 0.1) * running + 0.1 * batch.
TORCH_BN_EPS = 1e-5
TORCH_BN_MOMENTUM = 0.1


def pointwise(
    x: Float[Array, "... ci"], kernel: Float[Array, "1 1 ci co"]
) -> Float[Array, "... co"]:
    """A 1x1 stride-1 convolution as the matrix product it is (``x @ kernel[0, 0]``).

    The same numbers as ``conv_general_dilated`` with a 1x1 HWIO kernel, but XLA differentiates
    it as two matrix products: the kernel gradient of a 1x1 *convolution* is lowered as a
    convolution whose window is the whole feature map, which XLA's CPU backend runs about ten
    times slower than the GEMM (and with a transposed copy of the activations; measured on the
    quickstart step, docs/choices.md "Quickstart step profile").
    """
    return jnp.einsum("...c,cd->...d", x, kernel[0, 0])


class Conv(nnx.Module):
    """2-D convolution, NHWC input, HWIO kernel, symmetric padding as torch's ``padding=k//2``.

    Bias-free by default (every HRNet backbone conv has ``bias=False``); ``bias`` appears only
    when a following BatchNorm is folded in (``fold_batchnorm``).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        stride: int = 1,
        *,
        rngs: nnx.Rngs,
        dtype=None,
    ):
        self.in_ch, self.out_ch = in_ch, out_ch
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = kernel_size // 2
        self.dtype = dtype
        # Kaiming normal, fan_out, relu gain as timm's HighResolutionNet.init_weights.
        std = math.sqrt(2.0 / (out_ch * kernel_size * kernel_size))
        shape = (kernel_size, kernel_size, in_ch, out_ch)
        self.kernel = nnx.Param(std * jax.random.normal(rngs.params(), shape, jnp.float32))
        self.bias: nnx.Param | None = nnx.data(None)

    def __call__(self, x: Float[Array, "b h w ci"]) -> Float[Array, "b ho wo co"]:
        if x.shape[-1] != self.in_ch:
            raise ValueError(f"Conv expects {self.in_ch} input channels, got shape {x.shape}")
        dtype = self.dtype or x.dtype
        if self.kernel_size == 1 and self.stride == 1:
            y = pointwise(x.astype(dtype), self.kernel[...].astype(dtype))
            if self.bias is not None:
                y = y + self.bias[...].astype(dtype)
            return y
        p = self.padding
        y = jax.lax.conv_general_dilated(
            x.astype(dtype),
            self.kernel[...].astype(dtype),
            window_strides=(self.stride, self.stride),
            padding=((p, p), (p, p)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        if self.bias is not None:
            y = y + self.bias[...].astype(dtype)
        return y


class BatchNorm(nnx.Module):
    """BatchNorm2d with PyTorch's exact semantics over the channel (last) axis.

    Train mode normalises with the batch mean and *biased* batch variance, and updates the running
    variance with the *unbiased* one (n / (n - 1)), as torch does (documented in
    torch.nn.BatchNorm2d). flax's nnx.BatchNorm stores the biased variance, hence this
    small module. Under a sharded jit the means are over the global batch.
    """

    def __init__(
        self,
        num_features: int,
        *,
        momentum: float = TORCH_BN_MOMENTUM,
        eps: float = TORCH_BN_EPS,
        use_running_average: bool = False,
    ):
        self.num_features = num_features
        self.momentum, self.eps = momentum, eps
        self.use_running_average = use_running_average
        self.folded = False  # set by fold_batchnorm: the affine map now lives in the preceding conv
        self.scale = nnx.Param(jnp.ones((num_features,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((num_features,), jnp.float32))
        self.mean = nnx.BatchStat(jnp.zeros((num_features,), jnp.float32))
        self.var = nnx.BatchStat(jnp.ones((num_features,), jnp.float32))

    def __call__(self, x: Float[Array, "... c"]) -> Float[Array, "... c"]:
        if self.folded:
            return x
        if x.shape[-1] != self.num_features:
            raise ValueError(f"BatchNorm expects {self.num_features} channels, got shape {x.shape}")
        xf = x.astype(jnp.float32)  # statistics in float32 even for bfloat16 activations
        if self.use_running_average:
            mean, var = self.mean[...], self.var[...]
        else:
            axes = tuple(range(x.ndim - 1))
            n = math.prod(x.shape[:-1])
            mean = jnp.mean(xf, axis=axes)
            var = jnp.mean(jnp.square(xf - mean), axis=axes)  # biased, used to normalise
            unbiased = var * (n / max(n - 1, 1))
            m = self.momentum
            self.mean[...] = (1.0 - m) * self.mean[...] + m * mean
            self.var[...] = (1.0 - m) * self.var[...] + m * unbiased
        inv = jax.lax.rsqrt(var + self.eps) * self.scale[...]
        return ((xf - mean) * inv + self.bias[...]).astype(x.dtype)


def fold_conv_bn(conv: Conv, bn: BatchNorm) -> None:
    """Fold an (eval-mode) BatchNorm into the conv before it, in place; the BN becomes identity.

    y = (conv(x) - mean) * scale / sqrt(var + eps) + bias  ==  conv'(x) + b'
    with kernel' = kernel * s, b' = bias - mean * s, s = scale / sqrt(var + eps).
    """
    if bn.folded:
        return
    if conv.out_ch != bn.num_features:
        raise ValueError(f"cannot fold BatchNorm({bn.num_features}) into Conv(out={conv.out_ch})")
    s = bn.scale[...] * jax.lax.rsqrt(bn.var[...] + bn.eps)
    conv.kernel = nnx.Param(conv.kernel[...] * s)  # HWIO: scale the output axis
    old_b = conv.bias[...] if conv.bias is not None else 0.0
    conv.bias = nnx.Param((old_b - bn.mean[...]) * s + bn.bias[...])
    bn.folded = True
