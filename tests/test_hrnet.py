"""HRNet backbone: structure, parameter counts, BN semantics, folding, timm parity, loading."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from siam_jax.models.convert import load_torch_hrnet
from siam_jax.models.hrnet import HRNet, fold_batchnorm, hrnet_tiny, param_count
from siam_jax.models.layers import BatchNorm, Conv


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


# ---------------------------------------------------------------- structure


def test_param_counts_match_timm_backbone():
    # timm.create_model('hrnet_w32'/'hrnet_w48', features_only=True, feature_location='') counts.
    assert param_count(32) == 29_305_536
    assert param_count(48) == 65_325_120


def test_tiny_shapes_strides_channels():
    m = hrnet_tiny(nnx.Rngs(0))
    out = m(jnp.ones((2, 64, 96, 3)))
    assert [o.shape for o in out] == [
        (2, 16, 24, 4),
        (2, 8, 12, 8),
        (2, 4, 6, 16),
        (2, 2, 3, 32),
    ]


def test_stem_width_scales_stem_and_stage1_only():
    # stem_width=16: stem convs 16 channels, stage-1 bottlenecks 16 planes (64 out, as 64 -> 256
    # in timm); the branch widths and the output shapes stay those of `width`.
    m = HRNet(4, rngs=nnx.Rngs(0), num_modules=(1, 1, 1, 1), num_blocks=1, stem_width=16)
    assert m.conv1.kernel.shape == (3, 3, 3, 16) and m.conv2.kernel.shape == (3, 3, 16, 16)
    assert m.layer1[0].conv1.kernel.shape == (1, 1, 16, 16)
    assert m.layer1[0].conv3.kernel.shape == (1, 1, 16, 64)
    out = m(jnp.ones((1, 64, 64, 3)))
    assert [o.shape[-1] for o in out] == [4, 8, 16, 32]
    # timm-layout weights (stem 64) do not fit it, and the loader names the key at fault.
    _, sd = _tiny_sd()
    with pytest.raises(ValueError, match=r"bn1\.bias: file \(64,\), model \(16,\)"):
        load_torch_hrnet(m, sd)


def test_bad_inputs_raise_clear_errors():
    m = hrnet_tiny(nnx.Rngs(0))
    with pytest.raises(ValueError, match="b, H, W, 3"):
        m(jnp.ones((1, 3, 64, 64)))
    with pytest.raises(ValueError, match="multiples of 32"):
        m(jnp.ones((1, 80, 64, 3)))
    with pytest.raises(ValueError, match="num_modules"):
        HRNet(4, rngs=nnx.Rngs(0), num_modules=(2, 1, 1, 1))


def _randomise_bn(model: nnx.Module, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _, bn in nnx.iter_graph(model):
        if isinstance(bn, BatchNorm):
            c = bn.num_features
            bn.scale[...] = jnp.asarray(rng.uniform(0.5, 1.5, c), jnp.float32)
            bn.bias[...] = jnp.asarray(rng.normal(0, 0.1, c), jnp.float32)
            bn.mean[...] = jnp.asarray(rng.normal(0, 0.1, c), jnp.float32)
            bn.var[...] = jnp.asarray(rng.uniform(0.5, 2.0, c), jnp.float32)


def test_fold_batchnorm_matches_eval_and_leaves_model_alone():
    m = hrnet_tiny(nnx.Rngs(1))
    _randomise_bn(m)
    m.eval()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 64, 64, 3)), jnp.float32)
    ref = m(x)
    folded = fold_batchnorm(m)
    for a, b in zip(folded(x), ref, strict=True):
        assert _rel(a, b) < 1e-5
    # the source model is untouched (still has unfolded BNs, same output)
    assert not any(bn.folded for _, bn in nnx.iter_graph(m) if isinstance(bn, BatchNorm))
    for a, b in zip(m(x), ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_mode_uses_batch_stats_and_updates_running_stats():
    m = hrnet_tiny(nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 32, 3)), jnp.float32)
    before = np.asarray(m.bn1.mean[...]).copy()
    m.train()
    m(x)
    assert not np.allclose(before, np.asarray(m.bn1.mean[...]))
    m.eval()
    after = np.asarray(m.bn1.mean[...]).copy()
    m(x)
    np.testing.assert_array_equal(after, np.asarray(m.bn1.mean[...]))


# ---------------------------------------------------------------- torch parity


def test_batchnorm_train_step_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=(3, 5, 4, 6)).astype(np.float32)  # NHWC
    tbn = torch.nn.BatchNorm2d(6, momentum=0.1, eps=1e-5)
    tbn.train()
    jbn = BatchNorm(6)
    for _ in range(2):  # two steps: running stats compound as in torch
        ty = tbn(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1)
        jy = jbn(jnp.asarray(x))
        np.testing.assert_allclose(jy, ty, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jbn.mean[...], tbn.running_mean.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jbn.var[...], tbn.running_var.numpy(), rtol=1e-6, atol=1e-6)


def _timm_features(cfg_name: str | None = None, tiny: bool = False):
    timm = pytest.importorskip("timm")
    torch = pytest.importorskip("torch")
    if tiny:
        from timm.models.hrnet import HighResolutionNetFeatures

        def st(n):
            return dict(
                num_modules=1,
                num_branches=n,
                block_type="BASIC",
                num_blocks=(1,) * n,
                num_channels=tuple(4 * 2**i for i in range(n)),
                fuse_method="SUM",
            )

        cfg = dict(
            stem_width=64,
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block_type="BOTTLENECK",
                num_blocks=(1,),
                num_channels=(64,),
                fuse_method="SUM",
            ),
            stage2=st(2),
            stage3=st(3),
            stage4=st(4),
        )
        t = HighResolutionNetFeatures(cfg, feature_location="")
    else:
        t = timm.create_model(cfg_name, features_only=True, feature_location="")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for mod in t.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(torch.rand(c, generator=g) + 0.5)
                mod.bias.copy_(0.1 * torch.randn(c, generator=g))
                mod.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
    return torch, t


def test_parity_with_timm_hrnet_w32_eval_and_folded():
    torch, t = _timm_features("hrnet_w32")
    t.eval()
    m = HRNet(32, rngs=nnx.Rngs(0))
    report = load_torch_hrnet(m, t.state_dict())
    assert report.ok and len(report.loaded) == 1525
    m.eval()
    folded = fold_batchnorm(m)
    rng = np.random.default_rng(0)
    for h, w in [(64, 64), (96, 64), (128, 160)]:
        x = rng.normal(size=(1, h, w, 3)).astype(np.float32)
        with torch.no_grad():
            ref = [
                r.numpy().transpose(0, 2, 3, 1)
                for r in t(torch.from_numpy(x.transpose(0, 3, 1, 2)))
            ]
        assert len(ref) == 5  # timm: stem tap + 4 branches; we return the 4 branches
        out, out_f = m(jnp.asarray(x)), folded(jnp.asarray(x))
        for i, (a, af, b) in enumerate(zip(out, out_f, ref[1:], strict=True)):
            assert a.shape == b.shape, (h, w, i)
            assert _rel(a, b) < 1e-4, (h, w, i, _rel(a, b))
            assert _rel(af, b) < 1e-4, (h, w, i, _rel(af, b))


def test_train_step_matches_timm_tiny():
    torch, t = _timm_features(tiny=True)
    m = hrnet_tiny(nnx.Rngs(0))
    assert load_torch_hrnet(m, t.state_dict()).ok
    t.train()
    m.train()
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        ref = [
            r.numpy().transpose(0, 2, 3, 1) for r in t(torch.from_numpy(x.transpose(0, 3, 1, 2)))
        ]
    out = m(jnp.asarray(x))
    for a, b in zip(out, ref[1:], strict=True):
        assert _rel(a, b) < 1e-4
    # running statistics after one train step, every BN layer
    sd = t.state_dict()
    for path, v in nnx.to_flat_state(nnx.state(m, nnx.BatchStat)):
        key = ".".join(map(str, path[:-1])) + (
            ".running_mean" if path[-1] == "mean" else ".running_var"
        )
        np.testing.assert_allclose(v[...], sd[key].numpy(), rtol=2e-4, atol=1e-5, err_msg=key)


# ---------------------------------------------------------------- loader errors


def _tiny_sd():
    """A state_dict in timm layout built from a Flax tiny model (independent init)."""
    m = hrnet_tiny(nnx.Rngs(3))
    sd = {}
    for path, v in nnx.to_flat_state(nnx.state(m)):
        name = ".".join(map(str, path[:-1]))
        leaf = {"kernel": "weight", "scale": "weight", "bias": "bias"}.get(path[-1])
        leaf = leaf or {"mean": "running_mean", "var": "running_var"}[path[-1]]
        arr = np.asarray(v[...])
        sd[f"{name}.{leaf}"] = arr.transpose(3, 2, 0, 1) if path[-1] == "kernel" else arr
    return m, sd


def test_loader_round_trip_missing_unexpected_ignored(tmp_path):
    src, sd = _tiny_sd()
    sd["classifier.weight"] = np.zeros((10, 2048), np.float32)
    sd["incre_modules.0.0.conv1.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    sd["bn1.num_batches_tracked"] = np.array(3)
    sd["stage9.extra.weight"] = np.zeros(3, np.float32)
    del sd["conv2.weight"]
    m = hrnet_tiny(nnx.Rngs(0))
    rep = load_torch_hrnet(m, sd, strict=False)
    assert rep.missing == ["conv2.weight"]
    assert rep.unexpected == ["stage9.extra.weight"]
    assert set(rep.ignored) == {
        "classifier.weight",
        "incre_modules.0.0.conv1.weight",
        "bn1.num_batches_tracked",
    }
    np.testing.assert_array_equal(
        m.stage4[0].fuse_layers[3][0][2][0].kernel[...],
        src.stage4[0].fuse_layers[3][0][2][0].kernel[...],
    )
    np.testing.assert_array_equal(m.layer1[0].bn3.var[...], src.layer1[0].bn3.var[...])
    with pytest.raises(ValueError, match="missing"):
        load_torch_hrnet(hrnet_tiny(nnx.Rngs(0)), sd, strict=True)


def test_loader_shape_mismatch_names_key():
    _, sd = _tiny_sd()
    sd["stage3.0.branches.1.0.bn2.running_var"] = np.ones(5, np.float32)
    with pytest.raises(ValueError, match=r"stage3\.0\.branches\.1\.0\.bn2\.running_var"):
        load_torch_hrnet(hrnet_tiny(nnx.Rngs(0)), sd)


def test_loader_reads_pth_file(tmp_path):
    torch = pytest.importorskip("torch")
    src, sd = _tiny_sd()
    p = tmp_path / "w.pth"
    torch.save({"state_dict": {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}}, p)
    m = hrnet_tiny(nnx.Rngs(0))
    assert load_torch_hrnet(m, p).ok
    x = jnp.ones((1, 32, 32, 3))
    m.eval()
    src.eval()
    for a, b in zip(m(x), src(x), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        load_torch_hrnet(m, tmp_path / "nope.pth")


def test_pointwise_conv_is_the_1x1_convolution_with_its_gradients():
    """layers.pointwise (a matrix product) against lax's own 1x1 convolution: values and both
    gradients (the reason it exists is how XLA differentiates it, so the gradients must agree)."""
    import jax

    from siam_jax.models import layers

    r = np.random.default_rng(0)
    x = jnp.asarray(r.normal(size=(2, 5, 7, 6)), jnp.float32)
    k = jnp.asarray(r.normal(size=(1, 1, 6, 4)), jnp.float32)
    g = jnp.asarray(r.normal(size=(2, 5, 7, 4)), jnp.float32)

    def conv(x, k):
        return jax.lax.conv_general_dilated(
            x, k, (1, 1), ((0, 0), (0, 0)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    np.testing.assert_allclose(layers.pointwise(x, k), conv(x, k), rtol=1e-5, atol=1e-5)
    want = jax.grad(lambda x, k: jnp.sum(conv(x, k) * g), argnums=(0, 1))(x, k)
    got = jax.grad(lambda x, k: jnp.sum(layers.pointwise(x, k) * g), argnums=(0, 1))(x, k)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # The Conv layer takes the product path for 1x1 / stride 1 and keeps the HWIO kernel.
    layer = Conv(6, 4, 1, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(layer(x), conv(x, layer.kernel[...]), rtol=1e-5, atol=1e-5)


def test_neck_fuse_equals_the_1x1_convolution_of_the_concatenated_branches():
    """The neck applies its 1x1 ``fuse`` conv as a matrix product: same output as the
    nnx.Conv module it holds (the kernel and the parameter tree are unchanged)."""
    import jax

    from siam_jax.models.neck import Neck

    neck = Neck(4, 8, rngs=nnx.Rngs(0))
    r = np.random.default_rng(1)
    branches = [
        jnp.asarray(r.normal(size=(2, 16 // 2**i, 16 // 2**i, 4 * 2**i)), jnp.float32)
        for i in range(4)
    ]
    neck.eval()  # running statistics: the reference below needs no batch statistics

    def reference(branches):
        n, h, w, _ = branches[0].shape
        ups = [branches[0]] + [
            jax.image.resize(x, (n, h, w, x.shape[-1]), "bilinear") for x in branches[1:]
        ]
        x = jax.nn.relu(neck.fuse_bn(neck.fuse(jnp.concatenate(ups, axis=-1))))
        return jax.nn.relu(neck.down_bn(neck.down(x)))

    np.testing.assert_allclose(neck(branches), reference(branches), rtol=1e-5, atol=1e-5)
    assert neck.fuse.kernel[...].shape == (1, 1, 60, 8)
