"""Devices: the interface a backend implements, and the registry that finds one by name. The default device comes
from LAZYGRAD_DEVICE, else triton on a machine with a CUDA GPU, else numpy.

A device holds buffers and runs kernels:
- `name`; `lowering` (LoweringOptions: how it wants kernels tiled);
- `alloc(dtype, size)`, `from_numpy(array)`, `to_numpy(buffer)`, `synchronize()` (and `Buffer.write` uses its storage);
- `from_torch(tensor, dtype)`: storage holding a torch tensor's values (`Tensor.from_torch`), its memory where the
  device can share it;
- `torch_device` (only where a buffer's storage is a torch tensor: the torch device it lives on): copies between two
  such devices are torch copies, other copies go through host memory (`realize.copy_buffer`);
- `compile(kernel, tiling, precision)`: a program for a kernel AST lowered with `tiling` (block sizes, warps,
  stages) and float32 contractions in `precision` ('ieee' or 'tf32'); the program is called with (buffers, scalars)
  and has `prog` (its uops). The realize engine's `compile_kernel` is the one caller, and caches by all four. A
  device that compiles source gets it from a renderer (`codegen/renderer.py`), as the Triton devices do.
The numpy interpreter and the Triton devices are the implementations; another backend registers a factory."""
from __future__ import annotations
import functools, os
from typing import Callable

_FACTORIES: dict[str, Callable] = {}
ALIASES = {"cpu": "numpy", "cuda": "triton", "gpu": "triton"}


def register_device(name: str, factory: Callable, aliases: tuple = ()):
  """Make `get_device(name)` (and its aliases) build the device with `factory()`, once, on first use."""
  _FACTORIES[name] = factory
  ALIASES.update({a: name for a in aliases})


def _numpy():
  from .numpy_device import NumpyDevice
  return NumpyDevice()


def _triton(interpret: bool):
  from .triton_device import TritonDevice
  return TritonDevice(interpret=interpret)


register_device("numpy", _numpy)
register_device("triton", lambda: _triton(False))
register_device("triton-interp", lambda: _triton(True))


def is_device_name(name: str) -> bool: return name.split(":")[0].lower() in _FACTORIES.keys() | ALIASES.keys()


def canonical_name(name: str | None) -> str:
  """The registered name of a device name or alias (None: the default device)."""
  name = str(name or default_device_name()).lower()
  name = ALIASES.get(name.split(":")[0] if name.startswith("cuda:") else name, name)
  if name not in _FACTORIES: raise ValueError(f"unknown device {name!r}; available: {', '.join(_FACTORIES)}")
  return name


def get_device(name: str | None = None):
  """The device called `name` ('numpy', 'triton' for CUDA, 'triton-interp' for Triton's CPU interpreter, or one
  registered since)."""
  return _make(canonical_name(name))


@functools.cache
def _make(name: str): return _FACTORIES[name]()


@functools.cache
def default_device_name() -> str:
  """LAZYGRAD_DEVICE if set, else 'triton' when a CUDA GPU and Triton are present, else 'numpy'."""
  if env := os.environ.get("LAZYGRAD_DEVICE"): return env
  try:
    import torch, triton  # noqa: F401
    if torch.cuda.is_available(): return "triton"
  except ImportError: pass
  return "numpy"
