"""Tensor creation: constants (full, zeros, ones...), ranges, host data, random numbers (drawn on the host from one
seeded generator, large draws in parallel chunks), torch tensors, and the `*_like` forms. The constructors are classmethods: `cls` is Tensor."""
from __future__ import annotations
import math, os
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from ..dtypes import DType, to_dtype, float32, int64, bool_
from ..helpers import ShapeError, JitError
from ..ir import build as B
from ..runtime.device import canonical_name
from ..runtime import realize as _engine
from .args import _err, _shape_str, _shape_arg

_rng = np.random.Generator(np.random.Philox(0))


def manual_seed(seed: int):
  """Seed the random generator. Random tensors are drawn on the host, so one seed gives the same values on
  every device."""
  global _rng
  if (fn := _engine.jit_running()) is not None:
    raise _err(JitError, "manual_seed", f"called inside {fn}, which lazygrad.jit is running to capture its kernels: "
               "replays do not run it, so they would draw other numbers than plain calls", "seed before the call")
  _rng = np.random.Generator(np.random.Philox(int(seed)))


_CHUNK = 1 << 20   # values per stream of a large draw
_pool = None


def _new_key() -> int:
  """The key of a new random tensor's Philox streams, from the seeded generator."""
  return int(_rng.integers(0, 2**63))


def _draw(fill, shape: tuple, key: int, dtype=np.float32) -> np.ndarray:
  """A new array of `shape` filled by `fill(generator, flat_part)` from the Philox streams of `key`: one per chunk of
  the array, the chunks filled on all CPU cores at once (numpy draws without the GIL: GPT-2's half a gigabyte of
  weights in a fraction of a second). The values depend on the key only, not on the number of cores."""
  global _pool
  out = np.empty(shape, dtype)
  flat = out.reshape(-1)
  def chunk(i: int):
    fill(np.random.Generator(np.random.Philox(key=(key << 64) | i)), flat[i * _CHUNK:(i + 1) * _CHUNK])
  n = -(-flat.size // _CHUNK)
  if n <= 1: chunk(0)
  else:
    if _pool is None: _pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="lazygrad-rng")
    list(_pool.map(chunk, range(n)))
  return out


def _uniform(low: float, high: float):
  def fill(g, out):   # in place: no temporaries
    g.random(out=out, dtype=np.float32)
    if (low, high) != (0.0, 1.0):
      out *= np.float32(high - low)
      out += np.float32(low)
  return fill


def _normal(mean: float, std: float):
  def fill(g, out):
    g.standard_normal(out=out, dtype=np.float32)
    if (mean, std) != (0.0, 1.0):
      out *= np.float32(std)
      out += np.float32(mean)
  return fill


class Creation:
  """Tensor's constructors and `*_like` forms (a mixin: see core)."""
  __slots__ = ()

  @classmethod
  def _const(cls, value, shape, dtype: DType, op: str = "full", device: str | None = None) -> "Tensor":
    """A constant on `device` (None: the default device); an op's constants go on its operand's device."""
    if any(s < 0 for s in shape):
      raise _err(ShapeError, op, f"negative dimension in shape {_shape_str(shape)}", "sizes must be >= 0")
    value = bool(value) if dtype.is_bool else int(value) if dtype.is_int else float(value)
    if dtype.is_int and not (info := np.iinfo(dtype.np)).min <= value <= info.max:
      raise _err(OverflowError, op, f"value {value} cannot be converted to {dtype.name} without overflow (its range is "
                 f"{info.min}..{info.max})", "use a value in range, or cast the tensor to a wider dtype first")
    return cls._wrap(B.const(value, dtype, shape, canonical_name(device)))   # reads no memory: not one of _roots

  @classmethod
  def full(cls, shape, fill_value, dtype=None, **kw) -> "Tensor":
    dt = to_dtype(dtype) if dtype is not None else bool_ if isinstance(fill_value, bool) else \
      int64 if isinstance(fill_value, int) else float32
    shape = _shape_arg((shape,) if isinstance(shape, int) else shape)
    return cls._const(fill_value, shape, dt, device=kw.pop("device", None))._with(**kw)

  @classmethod
  def zeros(cls, *shape, dtype=None, **kw) -> "Tensor": return cls.full(_shape_arg(shape), 0, dtype or float32, **kw)
  @classmethod
  def ones(cls, *shape, dtype=None, **kw) -> "Tensor": return cls.full(_shape_arg(shape), 1, dtype or float32, **kw)
  @classmethod
  def empty(cls, *shape, dtype=None, **kw) -> "Tensor":
    node = _engine.empty(to_dtype(dtype or float32), _shape_arg(shape), canonical_name(kw.pop("device", None)))
    return cls(node, **kw)

  @classmethod
  def arange(cls, start, end=None, step=1, dtype=None, **kw) -> "Tensor":
    if end is None: start, end = 0, start
    if step == 0: raise _err(ValueError, "arange", "step must be nonzero")
    is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dt = to_dtype(dtype) if dtype is not None else int64 if is_int else float32
    n = max(0, math.ceil((end - start) / step))
    if all(float(v).is_integer() for v in (start, step)):   # computed on the device from an IOTA: no host data
      iota = cls(B.iota(n, canonical_name(kw.pop("device", None))))
      return (iota * int(step) + int(start) if (step, start) != (1, 0) else iota).cast(dt)._with(**kw)
    return cls((start + np.arange(n, dtype=np.float64) * step).astype(dt.np), dtype=dt, **kw)

  @classmethod
  def linspace(cls, start, end, steps: int, dtype=None, **kw) -> "Tensor":
    return cls(np.linspace(start, end, steps, dtype=np.float64), dtype=dtype or float32, **kw)

  @classmethod
  def eye(cls, n: int, m: int | None = None, dtype=None, **kw) -> "Tensor":
    return cls(np.eye(n, m if m is not None else n), dtype=dtype or float32, **kw)

  @classmethod
  def _drawn(cls, fill, shape: tuple, host_dtype, dtype, kw) -> "Tensor":
    """A tensor of random numbers that `fill` draws on the host (see `_draw`) from a stream reserved now, when the
    tensor is made, and drawn when it is first used: the values depend on the seed and the order the tensors are
    made in, as torch's, and a tensor replaced before it is used is never drawn. A jit replay draws from a new
    stream each time."""
    dt = to_dtype(dtype)
    def draw(key: int): return _draw(fill, shape, key, host_dtype).astype(dt.np, copy=False)
    key = _new_key()
    return cls(_engine.drawn(lambda: draw(key), lambda: draw(_new_key()), dt, shape,
                             canonical_name(kw.pop("device", None))), **kw)

  @classmethod
  def rand(cls, *shape, dtype=None, **kw) -> "Tensor":
    return cls.uniform(*shape, dtype=dtype, **kw)

  @classmethod
  def randn(cls, *shape, dtype=None, **kw) -> "Tensor":
    return cls.normal(*shape, dtype=dtype, **kw)

  @classmethod
  def uniform(cls, *shape, low: float = 0.0, high: float = 1.0, dtype=None, **kw) -> "Tensor":
    shape = _shape_arg(shape)
    return cls._drawn(_uniform(low, high), shape, np.float32, dtype or float32, kw)

  @classmethod
  def normal(cls, *shape, mean: float = 0.0, std: float = 1.0, dtype=None, **kw) -> "Tensor":
    shape = _shape_arg(shape)
    return cls._drawn(_normal(mean, std), shape, np.float32, dtype or float32, kw)

  @classmethod
  def randint(cls, low, high=None, size=(), dtype=None, **kw) -> "Tensor":
    if high is None: low, high = 0, low
    shape = _shape_arg((size,) if isinstance(size, int) else size)
    def fill(g, out): out[...] = g.integers(low, high, out.shape)
    return cls._drawn(fill, shape, np.int64, dtype or int64, kw)

  @classmethod
  def from_torch(cls, t, device: str | None = None) -> "Tensor":
    """A tensor with a torch tensor's values; a CUDA tensor's memory is shared with device 'triton', not copied,
    unless it does not start at a 16-byte boundary (a slice at an odd offset): kernels take every buffer aligned so
    (tensor descriptors need it), so that one is copied and writes do not reach it."""
    return cls(_engine.from_torch(t, to_dtype(t.dtype), canonical_name(device or ("triton" if t.is_cuda else None))))

  # on an instance the constructors (classmethods) still make a Tensor, by default of self's dtype and device
  def _like_kw(self, dtype, kw): return {"dtype": dtype or self.dtype, "device": self.device, **kw}
  def zeros_like(self, dtype=None, **kw): return self.zeros(self.shape, **self._like_kw(dtype, kw))
  def ones_like(self, dtype=None, **kw): return self.ones(self.shape, **self._like_kw(dtype, kw))
  def full_like(self, fill_value, dtype=None, **kw):
    return self.full(self.shape, fill_value, **self._like_kw(dtype, kw))
  def empty_like(self, dtype=None, **kw): return self.empty(self.shape, **self._like_kw(dtype, kw))
  # torch's new_* take a size and default to self's dtype and device
  def new_zeros(self, *size, dtype=None, **kw): return self.zeros(*size, **self._like_kw(dtype, kw))
  def new_ones(self, *size, dtype=None, **kw): return self.ones(*size, **self._like_kw(dtype, kw))
  def new_empty(self, *size, dtype=None, **kw): return self.empty(*size, **self._like_kw(dtype, kw))
  def new_full(self, size, fill_value, dtype=None, **kw): return self.full(size, fill_value, **self._like_kw(dtype, kw))
  def new_tensor(self, data, dtype=None, **kw): return type(self)(data, **self._like_kw(dtype, kw))
  def rand_like(self, dtype=None, **kw): return self.rand(self.shape, **self._like_kw(dtype, kw))
  def randn_like(self, dtype=None, **kw): return self.randn(self.shape, **self._like_kw(dtype, kw))

  def _with(self, requires_grad=False) -> "Tensor":
    self.is_leaf = True
    self.requires_grad = requires_grad
    return self
