"""Typed PRNG key arrays in checkpoints.

Orbax stores plain arrays, so a typed key leaf (``jax.random.key``; NNX keeps its RNG streams
as such) is saved as its raw key data (``jax.random.key_data``, uint32) and wrapped again on
restore with the key implementation the abstract target names (threefry, rbg, ...).
"""

from __future__ import annotations

import jax


def is_key(x) -> bool:
    """True for a typed PRNG key array (or its abstract ``ShapeDtypeStruct``)."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_saveable(tree):
    """Typed PRNG key leaves -> their uint32 key data."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def abstract_saveable(abstract):
    """The abstract tree Orbax restores into: key leaves become their key data's shape/dtype,
    with the key's sharding."""

    def leaf(x):
        if is_key(x):
            data = jax.eval_shape(jax.random.key_data, x)
            return jax.ShapeDtypeStruct(
                data.shape, data.dtype, sharding=getattr(x, "sharding", None)
            )
        return x

    return jax.tree.map(leaf, abstract)


def from_saveable(restored, abstract):
    """Restored key data -> typed keys again, where ``abstract`` has a key leaf."""

    def leaf(r, a):
        if is_key(a):
            # the key implementation lives on the key dtype (threefry, rbg, ...)
            return jax.random.wrap_key_data(r, impl=getattr(a.dtype, "_impl", None))
        return r

    return jax.tree.map(leaf, restored, abstract)
