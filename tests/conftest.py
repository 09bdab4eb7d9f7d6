"""Test-session setup shared by every test module."""

# PyTorch's triton (imported by timm/torchvision) and TensorFlow (imported by TFDS) both bundle
# LLVM; loading triton after TensorFlow segfaults the process, the other order is fine. pytest
# workers run data tests (TF) and reference-parity tests (timm) in one process, so the PyTorch
# references are imported first, when installed.
try:
    import timm  # noqa: F401
    import torch._dynamo  # noqa: F401
except ImportError:
    pass
