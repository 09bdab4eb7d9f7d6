"""Atomic file writes: a file is either absent or whole, never half-written.

Every writer of the project (reports, predictions, body models, media, benchmark tables) goes
through ``atomic_path``: the data is written to a temporary file in the target's own folder (so
the final ``os.replace`` is a rename on one file system, atomic on POSIX) and only renamed onto
the target once the writer returns; on an exception the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[str]:
    """Yields a temporary path beside ``path``; renames it onto ``path`` on success.

    ``suffix`` (default: the target's own) keeps writers that pick a format from the file name
    (numpy's ``.npz``, PIL, video encoders) working on the temporary file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def jsonable(value: Any) -> Any:
    """JSON-ready copy: numpy scalars and arrays to Python, NaN/inf to ``None`` (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, data: Any, *, indent: int = 2) -> None:
    """Strict JSON (``jsonable``) written atomically."""
    write_text(path, json.dumps(jsonable(data), indent=indent, allow_nan=False) + "\n")
