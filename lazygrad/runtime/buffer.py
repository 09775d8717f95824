"""Buffers: flat device memory of one dtype."""
from __future__ import annotations
import itertools
from ..dtypes import DType

serials = itertools.count()   # buffers are numbered in the order they are made (a jit tells what a call made)


class Buffer:
  """`size` elements of `dtype` on `device`. `data` is the device's storage (a flat numpy array on the numpy device,
  a torch tensor on Triton devices), allocated on first use. `version` counts the in-place writes (ASSIGNs) into it,
  `written_at` is the user line of the last one. `owner` (a weak reference) is the one tensor that may hold the buffer
  as its memory and write it in place; other tensors reading it hold values (see Tensor). `serial` numbers buffers
  in the order they are made. A `planned` buffer's data is a view of a memory arena that other buffers share at other
times (runtime.memory): it must stay there, so a device never swaps in other memory. A buffer made with `fill`
(a function returning a host array of its values: random numbers) gets them at first use."""
  __slots__ = ("device", "dtype", "size", "data", "version", "written_at", "owner", "serial", "planned", "fill")

  def __init__(self, device, dtype: DType, size: int, data=None, planned: bool = False, fill=None):
    self.device, self.dtype, self.size, self.data, self.planned, self.fill = device, dtype, size, data, planned, fill
    self.version, self.written_at, self.owner, self.serial = 0, None, None, next(serials)

  @property
  def nbytes(self) -> int: return self.size * self.dtype.itemsize

  def bump(self, loc) -> int:
    """Count an in-place write (made at user line `loc`); returns the new version."""
    self.version += 1
    self.written_at = loc
    return self.version

  def ensure(self) -> "Buffer":
    if self.data is None:
      self.data = self.device.alloc(self.dtype, self.size) if self.fill is None else self.device.from_numpy(self.fill())
    self.fill = None
    return self

  def numpy(self):
    return self.device.to_numpy(self.ensure())

  def write(self, arr):
    """Copy the host array `arr` (this buffer's dtype and size) into this buffer."""
    self.device.write(self.ensure(), arr)

  def __repr__(self): return f"<Buffer {self.device.name} {self.dtype.name}[{self.size}]>"
