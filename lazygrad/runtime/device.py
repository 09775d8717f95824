"""Device registry. The default device comes from LAZYGRAD_DEVICE, else numpy on a machine without a GPU."""
from __future__ import annotations
import functools, os


@functools.cache
def get_device(name: str | None = None):
  name = (name or default_device_name()).lower()
  if name in ("numpy", "cpu"):
    from .numpy_device import NumpyDevice
    return NumpyDevice()
  raise ValueError(f"unknown device {name!r}; available: 'numpy'")


def default_device_name() -> str:
  return os.environ.get("LAZYGRAD_DEVICE", "numpy")
