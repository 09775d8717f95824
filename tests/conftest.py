"""Test set-up: the device under test comes from LAZYGRAD_DEVICE (numpy by default). Without a GPU, Triton runs
interpreted, which Triton decides when it is imported, so it is decided here, first."""
import os
import pytest

try:
  import torch
  HAS_GPU = torch.cuda.is_available()
except ImportError:
  HAS_GPU = False

os.environ.setdefault("LAZYGRAD_VERIFY", "1")   # every IR's contract is checked at each stage boundary
if not HAS_GPU or os.environ.get("LAZYGRAD_DEVICE") == "triton-interp":
  os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
  skip = pytest.mark.skip(reason="needs a CUDA GPU")
  for item in items:
    if "gpu" in item.keywords and not HAS_GPU: item.add_marker(skip)
