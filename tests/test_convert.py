"""siam_jax.models.convert: timm / HigherHRNet / mmpose key layouts load every backbone tensor or
fail naming the keys; ``--check`` exit codes. The reference weights come from timm's HRNet."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import OrderedDict

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from siam_jax.common import safe_pickle
from siam_jax.models import convert
from siam_jax.models.hrnet import hrnet_tiny
from tests.test_hrnet import _rel, _timm_features

torch = pytest.importorskip("torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNTER = ".num_batches_tracked"


@pytest.fixture(scope="module")
def timm_tiny():
    """timm's HRNet (features, the tiny structure of ``hrnet_tiny``) and its state dict."""
    _, t = _timm_features(tiny=True)
    t.eval()
    return t, {k: v.detach().clone() for k, v in t.state_dict().items()}


def _save(sd: dict, path: str) -> None:
    if path.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, path)
    elif path.endswith("plain.pkl"):  # pickle.dump of numpy arrays (Detectron / mmcv style)
        with open(path, "wb") as f:
            pickle.dump(OrderedDict((k, v.numpy()) for k, v in sd.items()), f, protocol=4)
    elif path.endswith("legacy.pkl"):  # torch.save before 1.6: not a zip archive
        torch.save(sd, path, _use_new_zipfile_serialization=False)
    else:  # .pth and ROMP-style .pkl: torch.save archives
        torch.save(sd, path)


def _forward_matches(m, t) -> None:
    x = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        ref = [
            r.numpy().transpose(0, 2, 3, 1) for r in t(torch.from_numpy(x.transpose(0, 3, 1, 2)))
        ]
    m.eval()
    out = nnx.jit(lambda model, x: model(x))(m, jnp.asarray(x))
    for a, b in zip(out, ref[1:], strict=True):
        assert _rel(a, b) < 1e-4


@pytest.mark.parametrize("prefix", ["", "backbone.", "model.", "module.", "module.backbone."])
@pytest.mark.parametrize("ext", [".pth", ".safetensors", ".pkl", "plain.pkl", "legacy.pkl"])
def test_every_prefix_and_format_fills_every_tensor(timm_tiny, tmp_path, prefix, ext):
    t, sd = timm_tiny
    want = sorted(k for k in sd if not k.endswith(COUNTER))  # timm's backbone tensors
    path = str(tmp_path / f"w{ext}")
    _save({prefix + k: v for k, v in sd.items()}, path)
    m = hrnet_tiny(nnx.Rngs(1))
    report = convert.load_torch_hrnet(m, path)
    assert report.ok and report.total == len(want) and sorted(report.loaded) == want
    if ext == ".pth" and prefix == "module.backbone.":  # one forward: timm parity
        _forward_matches(m, t)
    else:
        kernel = sd["stage4.0.fuse_layers.3.0.2.0.weight"].numpy().transpose(2, 3, 1, 0)
        np.testing.assert_array_equal(m.stage4[0].fuse_layers[3][0][2][0].kernel[...], kernel)
        np.testing.assert_array_equal(m.bn2.var[...], sd["bn2.running_var"].numpy())


def test_mmpose_layout_ignores_the_head(timm_tiny):
    _, sd = timm_tiny
    mm = {f"backbone.{k}": v for k, v in sd.items()}
    mm["keypoint_head.final_layers.0.weight"] = torch.zeros(34, 4, 1, 1)
    mm["keypoint_head.deconv_layers.0.0.0.weight"] = torch.zeros(38, 4, 4, 4)
    m = hrnet_tiny(nnx.Rngs(2))
    report = convert.load_torch_hrnet(m, mm)
    assert report.ok and "keypoint_head.final_layers.0.weight" in report.ignored
    assert len(report.loaded) == report.total


def test_truncated_file_fails_naming_the_missing_keys(timm_tiny, tmp_path):
    _, sd = timm_tiny
    drop = ("conv2.weight", "stage3.0.branches.1.0.bn2.running_var", "transition1.1.0.0.weight")
    path = str(tmp_path / "cut.pth")
    _save({k: v for k, v in sd.items() if k not in drop}, path)
    m = hrnet_tiny(nnx.Rngs(0))
    before = np.asarray(m.conv1.kernel[...]).copy()
    with pytest.raises(convert.WeightsError) as e:
        convert.load_torch_hrnet(m, path)
    for key in drop:
        assert key in str(e.value)
    assert "missing (3)" in str(e.value)
    np.testing.assert_array_equal(m.conv1.kernel[...], before)  # nothing copied
    bad = {k: v for k, v in sd.items()}
    bad["stage2.0.fuse_layers.0.1.0.weight"] = torch.zeros(4, 8, 3, 3)
    bad["head.extra.weight"] = torch.zeros(3)
    with pytest.raises(convert.WeightsError, match=r"mis-shaped \(1\).*fuse_layers\.0\.1\.0"):
        convert.load_torch_hrnet(hrnet_tiny(nnx.Rngs(0)), bad)
    with pytest.raises(convert.WeightsError, match=r"unexpected \(1\): head\.extra\.weight"):
        convert.load_torch_hrnet(
            hrnet_tiny(nnx.Rngs(0)), {**sd, "head.extra.weight": torch.zeros(3)}
        )


def test_higherhrnet_single_scale_file(timm_tiny):
    """A last stage built as HigherHRNet builds it (timm's own ``multi_scale_output=False``)."""
    t, sd = timm_tiny
    full_rows = {
        k
        for k in sd
        if k.startswith("stage4.0.fuse_layers.")
        and k.split(".")[3] != "0"
        and not k.endswith(COUNTER)
    }
    stage4, _ = t._make_stage(t.stage4_cfg, [4, 8, 16, 32], multi_scale_output=False)
    single = {k: v for k, v in sd.items() if not k.startswith("stage4.")}
    single.update({f"stage4.{k}": v for k, v in stage4.state_dict().items()})
    single["final_layers.0.weight"] = torch.zeros(34, 4, 1, 1)  # HigherHRNet head
    single["deconv_layers.0.0.0.weight"] = torch.zeros(38, 4, 4, 4)
    assert not any(k in single for k in full_rows)
    with pytest.raises(convert.WeightsError, match="allow_single_scale") as e:
        convert.load_torch_hrnet(hrnet_tiny(nnx.Rngs(0)), single)
    assert f"missing ({len(full_rows)})" in str(e.value)
    m = hrnet_tiny(nnx.Rngs(0))
    report = convert.load_torch_hrnet(m, single, allow_single_scale=True)
    assert report.ok and set(report.single_scale) == full_rows
    assert len(report.loaded) == report.total - len(full_rows)
    np.testing.assert_array_equal(
        np.asarray(m.stage4[0].fuse_layers[0][1][0].kernel[...]),
        single["stage4.0.fuse_layers.0.1.0.weight"].numpy().transpose(2, 3, 1, 0),
    )


class _Reduce:
    """Pickles as ``func(*args)``: the classic code-execution payload."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_plain_pickle_mmpose_checkpoint_loads_with_timm_parity(timm_tiny, tmp_path):
    """An mmpose-layout checkpoint (``state_dict`` of ``backbone.`` + head keys) as a protocol-2
    plain pickle of numpy arrays: every tensor filled, and the forward matches timm's."""
    t, sd = timm_tiny
    state = OrderedDict((f"backbone.{k}", v.numpy()) for k, v in sd.items())
    state["keypoint_head.final_layers.0.weight"] = np.zeros((34, 4, 1, 1), np.float32)
    path = tmp_path / "higherhrnet_w32_coco.pkl"
    path.write_bytes(pickle.dumps({"meta": {"epoch": 3}, "state_dict": state}, protocol=2))
    m = hrnet_tiny(nnx.Rngs(3))
    report = convert.load_torch_hrnet(m, str(path))
    assert report.ok and len(report.loaded) == report.total
    assert report.layout == "backbone." and "keypoint_head.final_layers.0.weight" in report.ignored
    _forward_matches(m, t)


def test_malicious_plain_pickle_is_refused_without_running(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "w.pkl"
    payload = {"conv1.weight": _Reduce(os.system, f"touch {marker}")}
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"(posix|os)\.system") as err:
        convert.read_state_dict(path)
    assert str(path) in str(err.value)
    assert convert.main(["--check", str(path), "--width", "32"]) == 2  # the CLI: error, no crash
    assert str(path) in capsys.readouterr().err
    assert not marker.exists()


def test_plain_pickle_of_torch_tensors_says_how_to_resave(tmp_path):
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps({"conv1.weight": torch.zeros(2, 3)}))
    want = r"(?s)torch\._utils.*re-save .* with torch\.save"
    with pytest.raises(convert.WeightsError, match=want):
        convert.read_state_dict(path)


@pytest.fixture(scope="module")
def w32_file(tmp_path_factory):
    """timm's HRNet-W32 state dict (random init), saved as safetensors."""
    timm = pytest.importorskip("timm")
    t = timm.create_model("hrnet_w32", features_only=True, feature_location="")
    sd = {k: v for k, v in t.state_dict().items()}
    path = str(tmp_path_factory.mktemp("w32") / "hrnet_w32.safetensors")
    _save(sd, path)
    return path, sd


def test_check_cli_exit_codes(w32_file, tmp_path, capsys):
    path, sd = w32_file
    n = sum(not k.endswith(COUNTER) for k in sd)
    r = subprocess.run(
        [sys.executable, "-m", "siam_jax.models.convert", "--check", path, "--width", "32"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"fills {n} of {n} backbone tensors" in r.stdout
    assert convert.main(["--check", path, "--width", "48"]) == 1  # the wrong width
    assert "mis-shaped" in capsys.readouterr().err
    cut = str(tmp_path / "cut.safetensors")
    _save({k: v for k, v in sd.items() if not k.startswith("stage4.2.branches.3.")}, cut)
    assert convert.main(["--check", cut, "--width", "32"]) == 1
    out = capsys.readouterr()
    assert f"fills {n - 40} of {n}" in out.out and "stage4.2.branches.3.0.conv1.weight" in out.err
    assert convert.main(["--check", str(tmp_path / "nope.pth"), "--width", "32"]) == 2
