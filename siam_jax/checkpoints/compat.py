"""Is a saved tree the one we expect? Compared before any array is read, so a checkpoint of
another architecture fails with the first key that differs instead of a deep Orbax/tensorstore
error."""

from __future__ import annotations

import jax


def _path_name(path) -> str:
    parts = []
    for p in path:
        for attr in ("key", "name", "idx"):
            if hasattr(p, attr):
                parts.append(str(getattr(p, attr)))
                break
        else:
            parts.append(str(p))
    # nnx.Variable leaves appear as ``.value`` in some trees and not in others.
    if parts and parts[-1] == "value":
        parts = parts[:-1]
    return ".".join(parts)


def _shapes(tree) -> dict[str, tuple[int, ...]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {_path_name(p): tuple(getattr(x, "shape", ())) for p, x in flat}


def _order(key: str) -> tuple[int, str]:
    # Model parameters before model state before the rest (optimizer slots): the parameters say
    # what actually differs.
    return (0 if key.startswith("params") else 1 if key.startswith("rest") else 2, key)


def check_compatible(saved, expected, where: str) -> None:
    """Raises ``ValueError`` naming the first key that is missing, unexpected or reshaped.

    ``saved``: the checkpoint's metadata tree (or any tree of arrays); ``expected``: the abstract
    target; ``where``: the checkpoint folder, named in the message.
    """
    got, want = _shapes(saved), _shapes(expected)
    missing = sorted(set(want) - set(got), key=_order)
    unexpected = sorted(set(got) - set(want), key=_order)
    reshaped = sorted((k for k in set(want) & set(got) if want[k] != got[k]), key=_order)
    if not (missing or unexpected or reshaped):
        return
    lines = [f"{where}: checkpoint does not match this model (another architecture?)"]
    if missing:
        lines.append(f"  missing key {missing[0]!r} ({len(missing)} missing in all)")
    if unexpected:
        lines.append(f"  unexpected key {unexpected[0]!r} ({len(unexpected)} in all)")
    if reshaped:
        k = reshaped[0]
        lines.append(
            f"  key {k!r} has shape {got[k]} in the checkpoint, {want[k]} in the model "
            f"({len(reshaped)} differ in all)"
        )
    raise ValueError("\n".join(lines))
