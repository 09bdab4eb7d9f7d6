"""Parameter counts and forward FLOPs of the poster's model variants (the table in docs/model.md).

    python benchmark.py --model_stats [--flops] [--out stats.json]

The entry script passes the configs in (``{name: get_config}`` of configs/w32_frame.py etc.;
``get_config(ablation)`` with ablation in ``ROWS``): the library never imports ``configs``.

Parameter counts come from an abstract init (``nnx.eval_shape``: no memory, seconds). FLOPs are
XLA's cost analysis of the jitted forward (batch 1, eval mode, inference path) at 512x512,
per clip; lowering and compiling full HRNet-W48 on CPU takes a minute or two per variant.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

ROWS = ("base", "sia", "fd", "full")


def count_params(model_cfg) -> dict[str, int]:
    """Trainable parameters, total and per top-level part, from an abstract init."""
    from siam_jax.models import build_model

    model = nnx.eval_shape(lambda: build_model(model_cfg, rngs=nnx.Rngs(0)))
    counts: dict[str, int] = {}
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        part = str(path[0])
        counts[part] = counts.get(part, 0) + int(np.prod(var.get_value().shape))
    counts["total"] = sum(counts.values())
    return counts


def forward_flops(model_cfg, batch: int = 1) -> float:
    """XLA cost-analysis FLOPs of one forward pass on [batch t S S 3] (compiled, this backend)."""
    from siam_jax.benchmarking.timing import compiled_flops
    from siam_jax.models import build_model

    model = build_model(model_cfg, rngs=nnx.Rngs(0))
    model.eval()
    graphdef, state = nnx.split(model)
    size, t = model_cfg.input_size, model_cfg.clip_len
    images = jax.ShapeDtypeStruct((batch, t, size, size, 3), jnp.float32)

    def forward(state, images):
        return nnx.merge(graphdef, state)(images)

    return compiled_flops(jax.jit(forward).lower(state, images).compile())


def collect(get_configs: Mapping[str, Callable[[str], Any]], with_flops: bool) -> list[dict]:
    """One row per (config, ablation): parameter counts, and GFLOPs at 512 of the frame configs'
    Base and full rows when ``with_flops`` (compiles; minutes on CPU)."""
    rows = []
    for name, get_config in get_configs.items():
        for row in ROWS:
            cfg = get_config(row).model
            entry = {"config": name, "ablation": row, "params": count_params(cfg)}
            if with_flops and name.endswith("frame") and row in ("base", "full"):
                entry["gflops_512"] = forward_flops(cfg) / 1e9
            rows.append(entry)
            print(json.dumps(entry), flush=True)
    return rows
