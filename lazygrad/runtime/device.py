"""Device registry. The default device comes from LAZYGRAD_DEVICE, else numpy on a machine without a GPU."""
from __future__ import annotations
import functools, os


DEVICES = ("numpy", "triton", "triton-interp")


ALIASES = {"cpu": "numpy", "cuda": "triton", "gpu": "triton"}


def canonical_name(name: str | None) -> str:
  """'numpy', 'triton' or 'triton-interp' for a device name or alias (None: the default device)."""
  name = str(name or default_device_name()).lower()
  name = ALIASES.get(name.split(":")[0] if name.startswith("cuda:") else name, name)
  if name not in DEVICES: raise ValueError(f"unknown device {name!r}; available: {', '.join(DEVICES)}")
  return name


def get_device(name: str | None = None):
  """The device called `name` ('numpy', 'triton' for CUDA, 'triton-interp' for Triton's CPU interpreter)."""
  return _make(canonical_name(name))


@functools.cache
def _make(name: str):
  if name == "numpy":
    from .numpy_device import NumpyDevice
    return NumpyDevice()
  from .triton_device import TritonDevice
  return TritonDevice(interpret=name == "triton-interp")


@functools.cache
def default_device_name() -> str:
  """LAZYGRAD_DEVICE if set, else 'triton' when a CUDA GPU and Triton are present, else 'numpy'."""
  if env := os.environ.get("LAZYGRAD_DEVICE"): return env
  try:
    import torch, triton  # noqa: F401
    if torch.cuda.is_available(): return "triton"
  except ImportError: pass
  return "numpy"
