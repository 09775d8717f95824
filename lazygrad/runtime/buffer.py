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
times (runtime.memory), or a part of another buffer (`parts`): it must stay there, so a device never swaps in other
memory. A buffer made with `fill`
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

  def copy_from(self, src: "Buffer", offset: int = 0):
    """Copy `src` (a buffer of this device and dtype) into elements [offset, offset + src.size) of this one, on the
    device."""
    self.device.copy(self.ensure().data[offset:offset + src.size], src.ensure().data)

  def write(self, arr):
    """Copy the host array `arr` (this buffer's dtype and size) into this buffer."""
    self.device.write(self.ensure(), arr)

  def __repr__(self): return f"<Buffer {self.device.name} {self.dtype.name}[{self.size}]>"


def parts(bufs: list[Buffer], offsets: tuple, sizes: list[int]) -> list[Buffer]:
  """Each buffer seen from element `offsets[i]` on, `sizes[i]` long: what a kernel rebased to the parts it touches
  (`codegen.kernel.rebased`) is given. A part seen twice is one Buffer, so a kernel updating memory it reads still sees
  them as one."""
  seen: dict = {}
  out = []
  for b, o, n in zip(bufs, offsets, sizes):
    if (key := (id(b), o, n)) not in seen:
      seen[key] = b if o == 0 and n == b.size else Buffer(b.device, b.dtype, n, b.ensure().data[o:o + n], planned=True)
    out.append(seen[key])
  return out


class Shifted:
  """A kernel program rebased to the parts of its buffers it touches, launched with whole buffers: it passes each
  from its offset. Recorded by a jit as any program is, so a replay with other buffers shifts those."""
  __slots__ = ("prg", "offsets", "sizes")

  def __init__(self, prg, offsets: tuple, sizes: list[int]): self.prg, self.offsets, self.sizes = prg, offsets, sizes
  def __call__(self, bufs: list[Buffer], scalars=()): self.prg(parts(bufs, self.offsets, self.sizes), scalars)
  def __getattr__(self, name): return getattr(self.prg, name)   # its source, uops and precision, for reports
