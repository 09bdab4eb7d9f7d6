"""siam_jax.common.files: a write either lands whole or leaves nothing behind."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from siam_jax.common import files


def test_write_json_is_strict_and_whole(tmp_path):
    path = tmp_path / "sub" / "r.json"
    files.write_json(path, {"a": np.float32(1.5), "b": np.arange(3), "c": math.nan})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None}
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "x.npz"
    files.write_text(path, "old")
    with pytest.raises(RuntimeError), files.atomic_path(path) as tmp:
        assert tmp.endswith(".npz") and tmp != str(path)
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("writer failed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
