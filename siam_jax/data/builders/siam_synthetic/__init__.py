"""siam_synthetic TFDS builder (docs/data.md)."""

from siam_jax.data.builders.siam_synthetic.builder import SiamSynthetic

__all__ = ["SiamSynthetic"]
