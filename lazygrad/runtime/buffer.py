"""Buffers: flat device memory of one dtype."""
from __future__ import annotations
from ..dtypes import DType


class Buffer:
  """`size` elements of `dtype` on `device`. `data` is the device's storage (a flat numpy array on the numpy device,
  a torch tensor on Triton devices), allocated on first use. `version` counts the in-place writes (ASSIGNs) into it,
  `written_at` is the user line of the last one. `owner` (a weak reference) is the one tensor that may hold the buffer
  as its memory and write it in place; other tensors reading it hold values (see Tensor)."""
  __slots__ = ("device", "dtype", "size", "data", "version", "written_at", "owner")

  def __init__(self, device, dtype: DType, size: int, data=None):
    self.device, self.dtype, self.size, self.data = device, dtype, size, data
    self.version, self.written_at, self.owner = 0, None, None

  @property
  def nbytes(self) -> int: return self.size * self.dtype.itemsize

  def ensure(self) -> "Buffer":
    if self.data is None: self.data = self.device.alloc(self.dtype, self.size)
    return self

  def numpy(self):
    return self.device.to_numpy(self.ensure())

  def __repr__(self): return f"<Buffer {self.device.name} {self.dtype.name}[{self.size}]>"
