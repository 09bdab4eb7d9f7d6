"""The one pickle loader of siam-jax: an allow-list unpickler that cannot be made to run code.

A pickle names the globals it needs (``module.name``) and may call them (REDUCE). Every pickle
the project reads (SMPL models, 3DPW sequence files, AGORA dataframes, fits and predictions,
CMU-Panoptic annotations) is data, so ``find_class`` resolves only the classes such data needs
and refuses every other global, before the opcode that would call it runs:

* numpy arrays, dtypes and scalars, under ``numpy.core`` (NumPy 1) and ``numpy._core`` (NumPy 2);
* ``_codecs.encode`` as Python 3 protocol-2 pickles use it for numpy's raw bytes, limited to
  ``(str, 'latin1')``, which only turns text into bytes;
* scipy.sparse csc / csr / coo matrices (SMPL's ``J_regressor``), whatever private module path
  the writing scipy used (``scipy.sparse.csc``, ``scipy.sparse._csc``, ...);
* the pandas classes a DataFrame pickle refers to (the AGORA dataframes), as the installed
  pandas and older ones name them, plus pyarrow's array restorers for pandas' string columns;
* chumpy classes (the official SMPL files) as inert stand-ins holding their state
  (``ChumpyStandIn``; ``plain_array`` turns them and sparse matrices into numpy arrays);
* torch tensors saved inside AGORA's fit pickles, re-loaded with ``torch.load(weights_only=True)``
  (torch's own safe loader);
* a few builtins (``object``, ``set``, ``frozenset``, ``slice``, ``complex``, ``bytearray``) and
  ``copyreg._reconstructor`` (Python 2 era class pickles; it only instantiates allowed classes);
* ``collections.OrderedDict``, the container of every PyTorch ``state_dict`` (plain-pickle HRNet
  weights written with ``pickle.dump(OrderedDict of numpy arrays)``); it only builds a mapping.

A refusal raises ``UnsafePickleError`` naming the file and the global.
"""

from __future__ import annotations

import collections
import copyreg
import io
import os
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list; the message names file and global."""


class _StandIn:
    """Inert replacement for a pickled class: records the pickled state, runs nothing."""

    def __init__(self, *args, **kwargs):
        self.state = None

    def __setstate__(self, state):
        self.state = state


class ChumpyStandIn(_StandIn):
    """For chumpy classes; its array is the ``x`` (or ``a``) of the state."""

    def to_array(self, key: str) -> np.ndarray:
        state = self.state
        if isinstance(state, dict):
            for name in ("x", "a"):
                if isinstance(state.get(name), np.ndarray):
                    return state[name]
        raise ValueError(
            f"'{key}' is a chumpy expression that is not a plain array; convert the file with "
            "smplx's tools/clean_ch.py first"
        )


def plain_array(value: Any, key: str) -> Any:
    """A chumpy stand-in or scipy sparse matrix as a dense numpy array; other values unchanged."""
    if isinstance(value, ChumpyStandIn):
        return value.to_array(key)
    if hasattr(value, "toarray") and type(value).__module__.startswith("scipy.sparse"):
        return np.asarray(value.toarray())
    return value


def _latin1_encode(obj: Any, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` restricted to what numpy's protocol-2 pickles need (str -> bytes)."""
    if not isinstance(obj, str) or encoding.replace("-", "").lower() not in ("latin1", "utf8"):
        raise UnsafePickleError(f"_codecs.encode({type(obj).__name__}, {encoding!r}) refused")
    return obj.encode(encoding)


def _numpy_globals() -> dict[str, Any]:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    out = {
        "multiarray._reconstruct": multiarray._reconstruct,
        "multiarray.scalar": multiarray.scalar,
        "numeric._frombuffer": numeric._frombuffer,
    }
    return out


def _numpy(module: str, name: str):
    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    for prefix in ("numpy.core.", "numpy._core."):
        if module.startswith(prefix):
            key = f"{module[len(prefix) :]}.{name}"
            return _numpy_globals().get(key)
    if module == "numpy" and name in ("bool_", "float32", "float64", "int32", "int64", "uint8"):
        return getattr(np, name)
    return None


_SPARSE = ("csc_matrix", "csr_matrix", "coo_matrix")


def _scipy(module: str, name: str):
    if module.startswith("scipy.sparse") and name in _SPARSE:
        import scipy.sparse

        return getattr(scipy.sparse, name)
    return None


def _pandas_table() -> dict[str, Callable]:
    import pandas as pd
    from pandas._libs import internals as libinternals
    from pandas.core.indexes import base as index_base
    from pandas.core.internals import managers

    table: dict[str, Any] = {
        "DataFrame": pd.DataFrame,
        "Series": pd.Series,
        "Index": pd.Index,
        "RangeIndex": pd.RangeIndex,
        "StringDtype": pd.StringDtype,
        "BlockManager": managers.BlockManager,
        "SingleBlockManager": managers.SingleBlockManager,
        "_new_Index": index_base._new_Index,
        "_unpickle_block": libinternals._unpickle_block,
    }
    from pandas import arrays

    for name in ("ArrowStringArray", "StringArray"):
        if hasattr(arrays, name):
            table[name] = getattr(arrays, name)
    from pandas.core.internals import blocks

    if hasattr(blocks, "new_block"):
        table["new_block"] = blocks.new_block
    return table


def _pandas(module: str, name: str):
    # Old pandas wrote classes under other private paths (pandas.core.frame.DataFrame,
    # pandas.core.indexes.range.RangeIndex, ...): the name is looked up in a fixed table, never
    # as an attribute of the module the file names.
    if module == "pandas" or module.startswith("pandas."):
        return _pandas_table().get(name)
    if module == "pyarrow.lib" and name in ("_restore_array", "py_buffer", "type_for_alias"):
        import pyarrow.lib

        return getattr(pyarrow.lib, name)
    return None


def _torch(module: str, name: str):
    if module == "torch.storage" and name == "_load_from_bytes":
        import torch

        return lambda b: torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
    return None


_BUILTINS = {
    "object": object,
    "set": set,
    "frozenset": frozenset,
    "slice": slice,
    "complex": complex,
    "bytearray": bytearray,
}


def resolve(module: str, name: str):
    """The allowed object for ``module.name``, or None (refused)."""
    if module in ("__builtin__", "builtins"):
        return _BUILTINS.get(name)
    if module in ("copy_reg", "copyreg") and name == "_reconstructor":
        return copyreg._reconstructor
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module == "_codecs" and name == "encode":
        return _latin1_encode
    if module == "chumpy" or module.startswith("chumpy."):
        return ChumpyStandIn
    for lookup in (_numpy, _scipy, _pandas, _torch):
        found = lookup(module, name)
        if found is not None:
            return found
    return None


class SafeUnpickler(pickle.Unpickler):
    """Resolves only the allow-listed globals (module doc); refuses everything else."""

    def find_class(self, module: str, name: str):
        found = resolve(module, name)
        if found is None:
            raise UnsafePickleError(
                f"refused to load global '{module}.{name}': not on siam_jax's allow-list of "
                "data classes (siam_jax/common/safe_pickle.py); this file may be malicious"
            )
        return found


def loads(raw: bytes, source: str = "<bytes>") -> Any:
    """The object of pickle bytes ``raw`` (latin1 for Python-2 str); errors name ``source``."""
    try:
        return SafeUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{source}: {e}") from None


def load(path: str | os.PathLike, what: str = "pickle") -> Any:
    """The object of the pickle file ``path``; ``what`` names the kind of file in errors.

    Raises ``UnsafePickleError`` for a refused global, ``ValueError`` for a file that is not a
    readable pickle, ``FileNotFoundError`` for a missing one; each message names the file.
    """
    source = f"{what} {os.fspath(path)}"
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return loads(raw, source)
    except UnsafePickleError:
        raise
    except Exception as e:  # a corrupt or truncated pickle: any unpickling error
        raise ValueError(f"{source} is not a readable pickle: {type(e).__name__}: {e}") from e


__all__ = ["ChumpyStandIn", "SafeUnpickler", "UnsafePickleError", "load", "loads", "plain_array"]
