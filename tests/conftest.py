"""Test set-up: the device under test comes from LAZYGRAD_DEVICE (numpy by default). Without a GPU, Triton runs
interpreted, which Triton decides when it is imported, so it is decided here, first."""
import os, tempfile
import pytest

try:
  import torch
  HAS_GPU = torch.cuda.is_available()
except ImportError:
  HAS_GPU = False

os.environ.setdefault("LAZYGRAD_VERIFY", "1")   # every IR's contract is checked at each stage boundary
# a disk cache of this run's own: what a test schedules or renders does not depend on earlier runs
os.environ["LAZYGRAD_CACHE"] = tempfile.mkdtemp(prefix="lazygrad-test-cache-")
if not HAS_GPU or os.environ.get("LAZYGRAD_DEVICE") == "triton-interp":
  os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
  skip = pytest.mark.skip(reason="needs a CUDA GPU")
  for item in items:
    if "gpu" in item.keywords and not HAS_GPU: item.add_marker(skip)
