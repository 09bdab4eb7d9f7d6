"""A tiny SIAM for tests and smoke runs (seconds on CPU); not a model of the poster.

    python train.py --config configs/tiny.py --workdir /tmp/siam_tiny --config.total_steps=2

HRNet width 4 with one module and one block per stage, 64x64 input (8x8 feature cells), k = 4
instance slots, d = 32, one SIA layer. ``get_config("video")`` gives clip_len 2. ``shrink(config)``
applies the same model sizes to any config (the poster configs' smoke test,
tests/test_train_all_datasets.py), leaving its data, recipe and clip length alone.
"""

from configs import default


def shrink(config):
    """The tiny model sizes on ``config`` (in place; returns it): input 64 px, HRNet-W4, k 4."""
    m = config.model
    m.input_size = 64
    m.max_instances = 4
    m.token_dim = 32
    m.backbone.width = 4
    m.backbone.num_modules = (1, 1, 1, 1)
    m.backbone.num_blocks = 1
    m.center.hidden = 16
    m.sia.num_layers = 1
    m.sia.num_heads = 4
    m.sia.mlp_ratio = 2.0
    m.fd.hidden = 32
    m.regressor.hidden = 64
    config.data.synthetic.image_size = 64
    return config


def get_config(setting: str = "frame"):
    if setting not in ("frame", "video"):
        raise ValueError(f"setting must be frame or video, got {setting!r}")
    config = shrink(default.get_config())
    config.model.clip_len = 1 if setting == "frame" else 2
    config.batch_size = 2
    return config
