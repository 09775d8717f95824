"""Movement ops: reshape, permute, expand, pad, shrink, flip, cat, stack, split, roll, diagonal, repeat_interleave,
meshgrid... Most are views (windows on the base tensor's memory, written through by in-place updates); pad, flip,
cat, roll, repeat_interleave and a reshape that strides cannot express make new tensors, as in PyTorch."""
from __future__ import annotations
import math
from typing import Sequence
import numpy as np
from ..dtypes import promote, bool_
from ..helpers import prod, ShapeError
from ..ir.view import view_of
from ..ir.ops import Op
from .args import _err, _shape_str, _norm_dim, _shape_arg
from .core import TensorCore

_CAT_FANIN = 16   # inputs of one cat kernel
_PAD_MODES = ("constant", "reflect", "replicate", "circular")


class Movement:
  """Tensor's movement ops (a mixin: see core)."""
  __slots__ = ()

  def _broadcast_to(self, shape) -> "Tensor":
    if self.shape == tuple(shape): return self
    pre = (1,) * (len(shape) - self.ndim) + self.shape
    return self.reshape(pre).expand(shape)

  def reshape(self, *shape) -> "Tensor":
    shape = _shape_arg(shape)
    if shape.count(-1) > 1: raise _err(ShapeError, "reshape", f"only one dimension can be -1, got {shape}")
    if -1 in shape:
      known = prod(s for s in shape if s != -1)
      if known == 0 or self.numel() % known:
        raise _err(ShapeError, "reshape", f"shape {_shape_str(shape)} is invalid for a tensor of shape "
                   f"{_shape_str(self.shape)} ({self.numel()} elements)", "the sizes must multiply to the same count")
      shape = tuple(self.numel() // known if s == -1 else s for s in shape)
    if any(s < 0 for s in shape): raise _err(ShapeError, "reshape", f"negative size in shape {_shape_str(shape)}")
    if prod(shape) != self.numel():
      raise _err(ShapeError, "reshape", f"shape {_shape_str(shape)} ({prod(shape)} elements) is invalid for a tensor of "
                 f"shape {_shape_str(self.shape)} ({self.numel()} elements)", "the sizes must multiply to the same count")
    out = self._mov(Op.RESHAPE, shape, shape)
    # as in torch, a reshape that strides cannot express is a copy, not a view
    return out._root() if out is not self and len(view_of(out._base.shape, out._path).views) > 1 else out
  view = reshape

  def permute(self, *dims) -> "Tensor":
    dims = tuple(_norm_dim("permute", d, self.ndim, self.shape) for d in _shape_arg(dims))
    if sorted(dims) != list(range(self.ndim)):
      raise _err(ShapeError, "permute", f"dims {dims} are not a permutation of the {self.ndim} dims of shape "
                 f"{_shape_str(self.shape)}", f"name each dim in 0..{self.ndim - 1} once")
    if dims == tuple(range(self.ndim)): return self
    return self._mov(Op.PERMUTE, tuple(self.shape[d] for d in dims), dims)

  def movedim(self, source, destination) -> "Tensor":
    """torch.movedim: dims `source` (an int or a sequence) moved to positions `destination`, the others keeping
    their order (a view)."""
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
      raise _err(ValueError, "movedim", f"source {src} and destination {dst} must name as many dims")
    src = tuple(_norm_dim("movedim", d, self.ndim, self.shape) for d in src)
    dst = tuple(_norm_dim("movedim", d, self.ndim, self.shape) for d in dst)
    if len(set(src)) < len(src) or len(set(dst)) < len(dst):
      raise _err(ValueError, "movedim", f"source {src} and destination {dst} must not repeat a dim")
    order, rest = [None] * self.ndim, iter(d for d in range(self.ndim) if d not in src)
    for s, d in zip(src, dst): order[d] = s
    return self.permute([next(rest) if o is None else o for o in order])
  moveaxis = movedim

  def transpose(self, dim0=-2, dim1=-1) -> "Tensor":
    order = list(range(self.ndim))
    a, b = _norm_dim("transpose", dim0, self.ndim, self.shape), _norm_dim("transpose", dim1, self.ndim, self.shape)
    order[a], order[b] = order[b], order[a]
    return self.permute(order)

  @property
  def T(self) -> "Tensor": return self.permute(tuple(range(self.ndim))[::-1])
  def t(self) -> "Tensor":
    """torch.Tensor.t: a 2-D tensor transposed; 0-D and 1-D ones as they are."""
    if self.ndim > 2: raise _err(ShapeError, "t", f"expects a tensor of at most 2 dims, got shape {_shape_str(self.shape)}",
                                 "use transpose(dim0, dim1) or mT")
    return self.T
  @property
  def mT(self) -> "Tensor": return self.transpose(-2, -1)

  def expand(self, *sizes) -> "Tensor":
    sizes = _shape_arg(sizes)
    if len(sizes) < self.ndim:
      raise _err(ShapeError, "expand", f"the number of sizes ({len(sizes)}) must be at least the number of dims of "
                 f"shape {_shape_str(self.shape)}")
    pre = (1,) * (len(sizes) - self.ndim) + self.shape
    new = tuple(p if s == -1 else s for s, p in zip(sizes, pre))
    for d, (p, s) in enumerate(zip(pre, new)):
      if p != s and p != 1:
        raise _err(ShapeError, "expand", f"cannot expand shape {_shape_str(self.shape)} to {_shape_str(sizes)}: "
                   f"dimension {d} has size {p}, not 1", "only size-1 dims can expand")
    return self.reshape(pre)._mov(Op.EXPAND, new, new)
  def expand_as(self, other): return self.expand(other.shape)

  def squeeze(self, dim=None) -> "Tensor":
    if dim is None: return self.reshape(tuple(s for s in self.shape if s != 1))
    dims = {_norm_dim("squeeze", d, self.ndim, self.shape) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
    return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1)))

  def unsqueeze(self, dim) -> "Tensor":
    d = _norm_dim("unsqueeze", dim, self.ndim + 1, self.shape)
    return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

  def flatten(self, start_dim=0, end_dim=-1) -> "Tensor":
    if self.ndim == 0: return self.reshape(1)
    s, e = _norm_dim("flatten", start_dim, self.ndim, self.shape), _norm_dim("flatten", end_dim, self.ndim, self.shape)
    return self.reshape(self.shape[:s] + (prod(self.shape[s:e + 1]),) + self.shape[e + 1:])

  def unflatten(self, dim, sizes) -> "Tensor":
    d = _norm_dim("unflatten", dim, self.ndim, self.shape)
    return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

  def _pad_shrink(self, arg) -> "Tensor":
    """Per-dim (before, after): positive pads with zeros, negative crops."""
    shrink = tuple((max(0, -b), s - max(0, -a)) for (b, a), s in zip(arg, self.shape))
    out = self
    if any(lo != 0 or hi != s for (lo, hi), s in zip(shrink, self.shape)):
      out = out._mov(Op.SHRINK, tuple(hi - lo for lo, hi in shrink), shrink)
    pad = tuple((max(0, b), max(0, a)) for b, a in arg)
    if any(b or a for b, a in pad):
      out = out._mov(Op.PAD, tuple(s + b + a for s, (b, a) in zip(out.shape, pad)), pad)
    return out

  def pad(self, pad: Sequence[int], value=0.0, mode: str = "constant") -> "Tensor":
    """torch.nn.functional.pad: `pad` holds (before, after) pairs starting from the last dim; negative sizes crop.
    mode 'constant' fills with value; 'reflect' mirrors the elements next to the edge, 'replicate' repeats the
    edge, 'circular' wraps around (after the crops, on any number of dims)."""
    if mode not in _PAD_MODES:
      raise _err(ValueError, "pad", f"mode must be one of {', '.join(map(repr, _PAD_MODES))}, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > self.ndim:
      raise _err(ShapeError, "pad", f"pad {tuple(pad)} must have an even length of at most 2*ndim = {2 * self.ndim} "
                 f"for shape {_shape_str(self.shape)}")
    arg = [(0, 0)] * self.ndim
    for i in range(len(pad) // 2): arg[self.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    for d, ((b, a), s) in enumerate(zip(arg, self.shape)):
      if s + b + a < 0: raise _err(ShapeError, "pad", f"pad {tuple(pad)} leaves dimension {d} of shape {_shape_str(self.shape)} with negative size")
    if mode != "constant": return self._pad_mode(arg, mode)
    out = self._pad_shrink(arg)
    if out is self: return self.clone()   # a new tensor, as in torch, never a view
    if value != 0:
      inside = self._const(True, self.shape, bool_, device=self.device)._pad_shrink(arg)
      return inside._where(out, value).cast(self.dtype)
    return out._root()

  def _pad_mode(self, arg: list, mode: str) -> "Tensor":
    """pad in a mode that reads the tensor's own elements: crops first, then each dim's two sides concatenated."""
    out = self._pad_shrink([(min(b, 0), min(a, 0)) for b, a in arg])
    for d, (b, a) in enumerate(arg):
      b, a, n = max(b, 0), max(a, 0), out.shape[d]
      if not (b or a): continue
      if (mode == "reflect" and max(b, a) >= n) or (mode == "circular" and max(b, a) > n) or n == 0:
        limit = {"reflect": "less than", "circular": "at most", "replicate": "at most"}[mode]
        raise _err(ShapeError, "pad", f"mode {mode!r} pads dimension {d} of size {n} by ({b}, {a})",
                   f"pad by {limit} the dimension's size" + (" (which must not be 0)" if n == 0 else ""))
      take = lambda lo, hi: out.shrink(tuple((lo, hi) if k == d else None for k in range(out.ndim)))
      wide = lambda t, k: t.expand(tuple(k if j == d else s for j, s in enumerate(t.shape)))
      left, right = {"reflect": lambda: (take(1, b + 1).flip(d), take(n - 1 - a, n - 1).flip(d)),
                     "replicate": lambda: (wide(take(0, 1), b), wide(take(n - 1, n), a)),
                     "circular": lambda: (take(n - b, n), take(0, a))}[mode]()
      out = type(self).cat([t for t in (left, out, right) if t.shape[d]], d)
    return out if out is not self else self.clone()

  def shrink(self, arg) -> "Tensor":
    arg = tuple((0, s) if a is None else a for a, s in zip(arg, self.shape))
    return self._pad_shrink([(-lo, hi - s) for (lo, hi), s in zip(arg, self.shape)])

  def flip(self, dims) -> "Tensor":
    """A new tensor (not a view) with the order of `dims` reversed."""
    given = (dims,) if isinstance(dims, int) else tuple(dims)
    dims = tuple(_norm_dim("flip", d, self.ndim, self.shape) for d in given)
    if len(set(dims)) != len(dims):
      raise _err(RuntimeError, "flip", f"dims {given} name a dimension of shape {_shape_str(self.shape)} twice",
                 "list each dim once")
    dims = tuple(sorted(d for d in dims if self.shape[d] > 1))
    return self._mov(Op.FLIP, self.shape, dims)._root() if dims else self.clone()

  def contiguous(self) -> "Tensor":
    """Self if it is a tensor in memory already, else a copy in contiguous memory (a fusion boundary)."""
    if self._base is None and self._node.op is Op.BUFFER: return self
    return self._new(Op.CONTIGUOUS, (self,), self.dtype, self.shape)

  def clone(self) -> "Tensor":
    """A copy in new memory of its own, as torch.clone: gradients flow through it, nothing else shares it."""
    return self._result(self._fresh(), (self,))

  def roll(self, shifts, dims=None) -> "Tensor":
    """torch.roll: elements shifted by `shifts` along `dims` (ints or sequences), wrapping around; without dims,
    along the flattened tensor (a new tensor)."""
    if dims is None:
      if not isinstance(shifts, int) and len(shifts) != 1:
        raise _err(ValueError, "roll", f"without dims, shifts must be one int, got {shifts}", "give dims")
      return self.flatten().roll(shifts, 0).reshape(self.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
      raise _err(ValueError, "roll", f"shifts {shifts} and dims {dims} must have one shift per dim")
    out = self
    for s, d in zip(shifts, dims):
      d = _norm_dim("roll", d, self.ndim, self.shape)
      n = out.shape[d]
      if n == 0 or s % n == 0: continue
      part = lambda lo, hi: out.shrink(tuple((lo, hi) if k == d else None for k in range(out.ndim)))
      out = type(self).cat([part(n - s % n, n), part(0, n - s % n)], d)
    return out if out is not self else self.clone()

  def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> "Tensor":
    """torch.diagonal: the elements (i, i + offset) of dims dim1 and dim2, as a new last dim (a view)."""
    if self.ndim < 2: raise _err(ShapeError, "diagonal", f"needs at least 2 dims, got shape {_shape_str(self.shape)}")
    d1, d2 = _norm_dim("diagonal", dim1, self.ndim, self.shape), _norm_dim("diagonal", dim2, self.ndim, self.shape)
    if d1 == d2: raise _err(ValueError, "diagonal", f"dim1 and dim2 must differ, both are {d1}")
    x = self.movedim((d1, d2), (-2, -1))
    lead, (n, m) = x.shape[:-2], x.shape[-2:]
    r0, c0 = max(0, -offset), max(0, offset)
    k = max(0, min(n - r0, m - c0))
    x = x.shrink(tuple(None for _ in lead) + ((r0, r0 + k), (c0, c0 + k)))
    flat = x._mov(Op.RESHAPE, lead + (k * k,), lead + (k * k,))   # a view even where strides cannot merge
    return flat._every((1,) * len(lead) + (k + 1,))                # a k x k block's diagonal: every (k+1)-th element

  def diag(self, diagonal: int = 0) -> "Tensor":
    """torch.diag: for a 1-d tensor, the square matrix with it on the `diagonal`-th diagonal; for a 2-d tensor, that
    diagonal (a new tensor)."""
    if self.ndim == 1: return self.diag_embed(diagonal)
    if self.ndim != 2: raise _err(ShapeError, "diag", f"needs a 1-d or 2-d tensor, got shape {_shape_str(self.shape)}")
    return self.diagonal(diagonal)._root()

  def diag_embed(self, offset: int = 0, dim1: int = -2, dim2: int = -1) -> "Tensor":
    """torch.diag_embed: the last dim (size k) placed on the offset-th diagonal of two new dims of size
    k + |offset| at dim1 and dim2 of the result, zeros elsewhere."""
    d1, d2 = (_norm_dim("diag_embed", d, self.ndim + 1, self.shape) for d in (dim1, dim2))
    if d1 == d2: raise _err(ValueError, "diag_embed", f"dim1 and dim2 must differ, both are {d1}")
    x = self.reshape(1) if self.ndim == 0 else self
    k = x.shape[-1]
    n = k + abs(offset)
    rows = x.pad((max(0, -offset), max(0, offset))).unsqueeze(-1)        # row r holds x[r - max(0, -offset)]
    on = self.arange(n, device=self.device).reshape(n, 1) + offset == self.arange(n, device=self.device)
    out = on._where(rows, self._const(0, (), self.dtype, device=self.device)).cast(self.dtype)
    return out.movedim((-2, -1), (d1, d2))

  def repeat_interleave(self, repeats, dim: int | None = None, *, output_size: int | None = None) -> "Tensor":
    """torch.repeat_interleave: each slice along dim (each element of the flattened tensor without dim) repeated
    `repeats` times: an int, or a 1-d integer tensor with a count per slice (read on the host: its sum is the
    result's size; the slices are then one GATHER)."""
    x, d = (self.flatten(), 0) if dim is None else (self, _norm_dim("repeat_interleave", dim, self.ndim, self.shape))
    if x.ndim == 0: x = x.reshape(1)
    n = x.shape[d]
    if not isinstance(repeats, int):
      counted = isinstance(repeats, TensorCore) and repeats.dtype.is_int and repeats.ndim <= 1
      if not counted or repeats.numel() not in (1, n):
        got = f"{repeats.dtype.name} {_shape_str(repeats.shape)}" if isinstance(repeats, TensorCore) else repr(repeats)
        raise _err(ShapeError, "repeat_interleave", f"repeats must be an int or a 1-d integer tensor of 1 or {n} "
                   f"counts, got {got}")
      counts = repeats.numpy().reshape(-1)
      if repeats.numel() == 1: repeats = int(counts[0])
    if isinstance(repeats, int): counts = np.full(n, repeats)
    if (counts < 0).any(): raise _err(ValueError, "repeat_interleave", f"repeats must be >= 0, got {counts.min()}")
    if output_size is not None and output_size != counts.sum():
      raise _err(ValueError, "repeat_interleave", f"output_size {output_size} is not the sum of the repeats, "
                 f"{counts.sum()}")
    if isinstance(repeats, int):   # a broadcast: no index
      wide = x.unsqueeze(d + 1).expand(x.shape[:d + 1] + (repeats,) + x.shape[d + 1:])
      return wide.reshape(x.shape[:d] + (n * repeats,) + x.shape[d + 1:])._root()
    return x.index_select(d, type(self)(np.repeat(np.arange(n), counts), device=self.device))

  def tile(self, *dims) -> "Tensor":
    """torch.tile: repeat, with dims padded by leading 1s to the tensor's rank."""
    dims = _shape_arg(dims)
    return self.repeat((1,) * (self.ndim - len(dims)) + dims)

  @classmethod
  def meshgrid(cls, *tensors, indexing: str = "ij") -> tuple["Tensor", ...]:
    """torch.meshgrid: for k tensors of sizes n1..nk (0-d or 1-d), k views of shape (n1, ..., nk), the i-th
    varying along dim i; indexing='xy' swaps the first two dims (and sizes)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)): tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
      raise _err(ValueError, "meshgrid", f"indexing must be 'ij' or 'xy', got {indexing!r}")
    if not tensors: raise _err(ValueError, "meshgrid", "expected at least one tensor")
    for i, t in enumerate(tensors):
      if t.ndim > 1:
        raise _err(ShapeError, "meshgrid", f"tensor {i} has shape {_shape_str(t.shape)}; all must be 0-d or 1-d")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1: axes[0], axes[1] = 1, 0
    shape = [0] * len(tensors)
    for t, a in zip(tensors, axes): shape[a] = t.numel()
    return tuple(t.reshape(tuple(s if k == a else 1 for k, s in enumerate(shape))).expand(tuple(shape))
                 for t, a in zip(tensors, axes))

  def repeat(self, *repeats) -> "Tensor":
    repeats = _shape_arg(repeats)
    if len(repeats) < self.ndim:
      raise _err(ShapeError, "repeat", f"{len(repeats)} repeats for a tensor of shape {_shape_str(self.shape)}",
                 f"give at least {self.ndim} repeat counts")
    base = self.reshape((1,) * (len(repeats) - self.ndim) + self.shape)
    inter = tuple(x for s in base.shape for x in (1, s))
    exp = tuple(x for r, s in zip(repeats, base.shape) for x in (r, s))
    return base.reshape(inter).expand(exp).reshape(tuple(r * s for r, s in zip(repeats, base.shape)))

  @classmethod
  def cat(cls, tensors: Sequence["Tensor"], dim: int = 0) -> "Tensor":
    tensors = list(tensors)
    if not tensors: raise _err(ValueError, "cat", "expected a non-empty list of tensors")
    ref = tensors[0]
    for i, t in enumerate(tensors):
      if t.ndim == 0:
        raise _err(ShapeError, "cat", f"zero-dimensional tensor (at position {i}) cannot be concatenated",
                   "unsqueeze(0) it, or use stack")
      ref._check_device("cat", t)
    d = _norm_dim("cat", dim, ref.ndim, ref.shape)
    for i, t in enumerate(tensors):
      if t.ndim != ref.ndim or any(a != b for j, (a, b) in enumerate(zip(t.shape, ref.shape)) if j != d):
        bad = next((j for j in range(max(t.ndim, ref.ndim)) if j != d and (j >= t.ndim or j >= ref.ndim or t.shape[j] != ref.shape[j])), None)
        raise _err(ShapeError, "cat", f"tensor 0 has shape {_shape_str(ref.shape)} but tensor {i} has shape "
                   f"{_shape_str(t.shape)}: dimension {bad} differs", f"all sizes except dim {d} must match")
    if len(tensors) > _CAT_FANIN:   # every element of one cat kernel tests every input: cat groups, then the groups
      return cls.cat([cls.cat(tensors[i:i + _CAT_FANIN], d).contiguous()
                      for i in range(0, len(tensors), _CAT_FANIN)], d)
    dt = ref.dtype
    for t in tensors[1:]: dt = promote(dt, t.dtype)
    total, offset, parts = sum(t.shape[d] for t in tensors), 0, []
    for t in tensors:
      arg = [(0, 0)] * ref.ndim
      arg[d] = (offset, total - offset - t.shape[d])
      offset += t.shape[d]
      parts.append((t.cast(dt)._pad_shrink(arg), cls._const(True, t.shape, bool_, device=t.device)._pad_shrink(arg)))
    out = parts[-1][0]
    for p, inside in reversed(parts[:-1]): out = inside._where(p, out)   # a select, not a sum: -0.0 stays -0.0
    return out._root()

  @classmethod
  def stack(cls, tensors: Sequence["Tensor"], dim: int = 0) -> "Tensor":
    tensors = list(tensors)
    if not tensors: raise _err(ValueError, "stack", "expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
      if t.shape != tensors[0].shape:
        raise _err(ShapeError, "stack", f"tensor 0 has shape {_shape_str(tensors[0].shape)} but tensor {i} has shape "
                   f"{_shape_str(t.shape)}", "stack needs tensors of one shape")
    d = _norm_dim("stack", dim, tensors[0].ndim + 1, tensors[0].shape)
    return cls.cat([t.unsqueeze(d) for t in tensors], d)

  def swapaxes(self, axis0: int, axis1: int) -> "Tensor": return self.transpose(axis0, axis1)
  swapdims = swapaxes
  def view_as(self, other) -> "Tensor": return self.view(other.shape)
  def reshape_as(self, other) -> "Tensor": return self.reshape(other.shape)
  def fliplr(self) -> "Tensor": return self.flip(1)
  def flipud(self) -> "Tensor": return self.flip(0)

  def narrow(self, dim: int, start: int, length: int) -> "Tensor":
    """The view of `length` elements from `start` along `dim` (torch.narrow; a negative start counts from the end)."""
    d = _norm_dim("narrow", dim, self.ndim, self.shape)
    n = self.shape[d]
    start = start + n if start < 0 else start
    if not 0 <= start <= n or length < 0 or start + length > n:
      raise _err(IndexError, "narrow", f"start {start} and length {length} do not fit dim {dim} of size {n} "
                 f"(shape {_shape_str(self.shape)})")
    return self[(slice(None),) * d + (slice(start, start + length),)]

  def select(self, dim: int, index: int) -> "Tensor":
    """The view at `index` along `dim`, without that dim (torch.select)."""
    d = _norm_dim("select", dim, self.ndim, self.shape)
    return self[(slice(None),) * d + (index,)]

  def rot90(self, k: int = 1, dims=(0, 1)) -> "Tensor":
    """Rotated by 90° k times in the plane of `dims`, from the first towards the second (torch.rot90)."""
    if len(dims) != 2: raise _err(ValueError, "rot90", f"dims must be two dims, got {dims!r}")
    a, b = (_norm_dim("rot90", d, self.ndim, self.shape) for d in dims)
    if a == b: raise _err(ValueError, "rot90", f"dims must differ, got {dims!r}")
    k %= 4
    if k == 0: return self
    if k == 2: return self.flip((a, b))
    return self.flip(b).transpose(a, b) if k == 1 else self.transpose(a, b).flip(b)

  def unbind(self, dim: int = 0) -> tuple["Tensor", ...]:
    """The slices along `dim`, without it (torch.unbind)."""
    d = _norm_dim("unbind", dim, self.ndim, self.shape)
    return tuple(part.squeeze(d) for part in self.split(1, d)) if self.shape[d] else ()

  def diff(self, n: int = 1, dim: int = -1, prepend=None, append=None) -> "Tensor":
    """The n-th forward difference along `dim`, after `prepend` and `append` join it there (torch.diff)."""
    d = _norm_dim("diff", dim, self.ndim, self.shape)
    x = type(self).cat([t for t in (prepend, self, append) if t is not None], d) if prepend is not None or \
      append is not None else self
    for _ in range(n):
      if x.shape[d] == 0: break
      hi, lo = x.split([1, x.shape[d] - 1], d)[1], x.split([x.shape[d] - 1, 1], d)[0]
      x = hi.logical_xor(lo) if x.dtype.is_bool else hi - lo
    return x

  def split(self, split_size_or_sections, dim: int = 0) -> tuple["Tensor", ...]:
    d = _norm_dim("split", dim, self.ndim, self.shape)
    n = self.shape[d]
    if isinstance(split_size_or_sections, int):
      if split_size_or_sections <= 0: raise _err(ValueError, "split", f"split size must be positive, got {split_size_or_sections}")
      sizes = [min(split_size_or_sections, n - i) for i in range(0, n, split_size_or_sections)] or [0]
    else:
      sizes = list(split_size_or_sections)
      if sum(sizes) != n:
        raise _err(ShapeError, "split", f"sections {sizes} sum to {sum(sizes)} but dimension {d} of shape "
                   f"{_shape_str(self.shape)} has size {n}", "the sections must add up to the dimension's size")
    out, start = [], 0
    for s in sizes:
      out.append(self.shrink(tuple((start, start + s) if i == d else None for i in range(self.ndim))))
      start += s
    return tuple(out)

  def tensor_split(self, indices_or_sections, dim: int = 0) -> tuple["Tensor", ...]:
    """torch.tensor_split: n parts as equal as can be (the first n % size one longer), or cut before each index."""
    d = _norm_dim("tensor_split", dim, self.ndim, self.shape)
    n = self.shape[d]
    if isinstance(indices_or_sections, int):
      if indices_or_sections <= 0:
        raise _err(ValueError, "tensor_split", f"the number of sections must be positive, got {indices_or_sections}")
      q, r = divmod(n, indices_or_sections)
      cuts = [i * q + min(i, r) for i in range(1, indices_or_sections)]
    else: cuts = [int(i) for i in indices_or_sections]
    bounds = [min(max(c if c >= 0 else c + n, 0), n) for c in cuts]
    starts = [0] + bounds
    ends = bounds + [n]
    return tuple(self.shrink(tuple((a, max(a, b)) if i == d else None for i in range(self.ndim)))
                 for a, b in zip(starts, ends))

  def _split_along(self, op: str, sections, dim: int, least: int) -> tuple["Tensor", ...]:
    if self.ndim < least: raise _err(ShapeError, op, f"needs at least {least} dims, got shape {_shape_str(self.shape)}")
    if isinstance(sections, int) and self.shape[dim] % sections:
      raise _err(ShapeError, op, f"dimension {dim} of shape {_shape_str(self.shape)} does not split into {sections} "
                 "equal parts", "use tensor_split for unequal parts")
    return self.tensor_split(sections, dim)
  def hsplit(self, sections): return self._split_along("hsplit", sections, 1 if self.ndim > 1 else 0, 1)
  def vsplit(self, sections): return self._split_along("vsplit", sections, 0, 2)
  def dsplit(self, sections): return self._split_along("dsplit", sections, 2, 3)

  def ravel(self) -> "Tensor": return self.reshape(-1)
  def broadcast_to(self, *shape) -> "Tensor": return self.expand(*shape)

  def sum_to_size(self, *size) -> "Tensor":
    """The sum over the dims that `size` broadcasts to self's shape, as torch.sum_to_size (a gradient's reduction)."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    lead = self.ndim - len(size)
    if lead < 0 or any(s not in (1, n) for s, n in zip(size, self.shape[lead:])):
      raise _err(ShapeError, "sum_to_size", f"size {_shape_str(size)} is not expandable to shape {_shape_str(self.shape)}")
    out = self.sum(tuple(range(lead))) if lead else self
    dims = tuple(i for i, (s, n) in enumerate(zip(size, out.shape)) if s == 1 and n != 1)
    return out.sum(dims, keepdim=True) if dims else out

  def chunk(self, chunks: int, dim: int = 0) -> tuple["Tensor", ...]:
    d = _norm_dim("chunk", dim, self.ndim, self.shape)
    return self.split(max(1, math.ceil(self.shape[d] / chunks)), d)
