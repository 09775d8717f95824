"""Device registry. The default device comes from LAZYGRAD_DEVICE, else numpy on a machine without a GPU."""
from __future__ import annotations
import functools, os


DEVICES = ("numpy", "triton", "triton-interp")


@functools.cache
def get_device(name: str | None = None):
  """The device called `name` ('numpy', 'triton' for CUDA, 'triton-interp' for Triton's CPU interpreter)."""
  name = (name or default_device_name()).lower()
  if name in ("numpy", "cpu"):
    from .numpy_device import NumpyDevice
    return NumpyDevice()
  if name in ("triton", "cuda", "gpu", "triton-interp"):
    from .triton_device import TritonDevice
    return TritonDevice(interpret=name == "triton-interp")
  raise ValueError(f"unknown device {name!r}; available: {', '.join(DEVICES)}")


@functools.cache
def default_device_name() -> str:
  """LAZYGRAD_DEVICE if set, else 'triton' when a CUDA GPU and Triton are present, else 'numpy'."""
  if env := os.environ.get("LAZYGRAD_DEVICE"): return env
  try:
    import torch, triton  # noqa: F401
    if torch.cuda.is_available(): return "triton"
  except ImportError: pass
  return "numpy"
