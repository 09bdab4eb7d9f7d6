"""Test-session setup shared by every test module."""

import pytest

# PyTorch's triton (imported by timm/torchvision) and TensorFlow (imported by TFDS) both bundle
# LLVM; loading triton after TensorFlow segfaults the process, the other order is fine. pytest
# workers run data tests (TF) and reference-parity tests (timm) in one process, so the PyTorch
# references are imported first, when installed.
try:
    import timm  # noqa: F401
    import torch._dynamo  # noqa: F401
except ImportError:
    pass


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    """A TFDS data_dir holding siam_synthetic/tiny as its builder writes it (array_record)."""
    from siam_jax.data.builders.siam_synthetic import SiamSynthetic

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    SiamSynthetic(
        config="tiny", data_dir=data_dir, file_format="array_record"
    ).download_and_prepare()
    return data_dir
