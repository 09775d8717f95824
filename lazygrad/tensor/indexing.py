"""Indexing: `x[idx]` (basic indices as views, integer tensors through GATHER), `x[idx] = value`, gather, one_hot,
and the checked indices that raise IndexOutOfBounds when realized."""
from __future__ import annotations
import numpy as np
from ..dtypes import int64
from ..helpers import prod, ShapeError
from ..ir.node import LazyNode
from ..ir.ops import Op
from ..runtime.realize import NO_FAILURE
from .args import _err, _shape_str, _broadcast_shape, _norm_dim
from .core import TensorCore


class Indexing:
  """Tensor's indexing (a mixin: see core)."""
  __slots__ = ()

  def __setitem__(self, idx, value):
    """`x[idx] = value` for basic indices (ints, slices, None, ...): writes through the view x[idx]."""
    view = self[idx]
    if view is not self and view._base is None:
      raise _err(NotImplementedError, "setitem", "assignment through integer-tensor indices is not supported yet",
                 "use basic indices (ints, slices), or build the result with where()")
    if isinstance(value, TensorCore) and value._base is not None and value._base is view._base and value._path == view._path:
      return   # `x[i] += y` wrote through the view already
    value = value if isinstance(value, TensorCore) else self._const(value, (), view.dtype, "setitem", view.device)
    view.assign(value._broadcast_to(_broadcast_shape("setitem", view.shape, value.shape)))

  def __getitem__(self, idx) -> "Tensor":
    """ints, slices (positive steps), None, ... and integer tensors, with PyTorch's result layout."""
    idx = list(idx) if isinstance(idx, tuple) else [idx]
    if sum(1 for i in idx if i is Ellipsis) > 1: raise _err(IndexError, "getitem", "an index can only have one ellipsis")
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if n_real > self.ndim:
      raise _err(IndexError, "getitem", f"too many indices ({n_real}) for a tensor of shape {_shape_str(self.shape)}")
    if any(i is Ellipsis for i in idx):
      e = next(k for k, i in enumerate(idx) if i is Ellipsis)
      idx = idx[:e] + [slice(None)] * (self.ndim - n_real) + idx[e + 1:]
    idx += [slice(None)] * (self.ndim - sum(1 for i in idx if i is not None))
    shrink, steps, kinds, dim = [], [], [], 0   # kinds: the result's dims before advanced indexing
    for i in idx:
      if i is None: kinds.append(("new",)); continue
      size = self.shape[dim]
      if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
        if not -size <= i < size:
          raise _err(IndexError, "getitem", f"index {i} is out of range for dimension {dim} with size {size} "
                     f"(shape {_shape_str(self.shape)})", f"use an index in [{-size}, {size - 1}]")
        shrink.append((int(i) % size, int(i) % size + 1)); steps.append(1); kinds.append(("drop",))
      elif isinstance(i, slice):
        start, stop, step = i.indices(size)
        if step <= 0: raise _err(ValueError, "getitem", f"slice step must be positive, got {i.step}")
        shrink.append((start, max(stop, start))); steps.append(step); kinds.append(("keep",))
      elif isinstance(i, (TensorCore, list, np.ndarray)):
        t = i if isinstance(i, TensorCore) else type(self)(np.asarray(i), device=self.device)
        if not t.dtype.is_int:
          raise _err(IndexError, "getitem", f"tensors used as indices must be integer tensors, got {t.dtype.name}")
        shrink.append((0, size)); steps.append(1); kinds.append(("tensor", t))
      else: raise _err(TypeError, "getitem", f"unsupported index {i!r}", "use ints, slices, None, ... or int tensors")
      dim += 1
    out = self.shrink(tuple(shrink)) if shrink else self
    for d, st in enumerate(steps):
      if st > 1: out = out._take_every(d, st)
    sizes = iter(out.shape)
    shape = [1 if k[0] == "new" else next(sizes) for k in kinds]
    kept = [(k, s) for k, s in zip(kinds, shape) if k[0] != "drop"]
    kinds, shape = [k for k, _ in kept], tuple(s for _, s in kept)
    out = out.reshape(shape)
    return out._advanced_index(list(kinds)) if any(k[0] == "tensor" for k in kinds) else out

  def _take_every(self, d: int, step: int) -> "Tensor":
    n = self.shape[d]
    m = -(-n // step)
    arg = [(0, 0)] * self.ndim
    arg[d] = (0, m * step - n)
    x = self._pad_shrink(arg).reshape(self.shape[:d] + (m, step) + self.shape[d + 1:])
    x = x.shrink(tuple((0, 1) if i == d + 1 else None for i in range(x.ndim)))
    return x.reshape(self.shape[:d] + (m,) + self.shape[d + 1:])

  def _advanced_index(self, kinds: list) -> "Tensor":
    """Index the dims marked ('tensor', t) with integer tensors. As in PyTorch, the broadcast index dims replace
    the indexed dims where those are adjacent, and go first otherwise."""
    tdims = [d for d, k in enumerate(kinds) if k[0] == "tensor"]
    rest = [d for d in range(self.ndim) if d not in tdims]
    bshape = _broadcast_shape("getitem", *(kinds[d][1].shape for d in tdims))
    flat = None
    for d in tdims:
      s, t = self.shape[d], kinds[d][1].cast(int64)
      t = t._checked(t, (t >= -s).logical_and(t < s), f"getitem: index {{}} is out of bounds for dimension {d} with "
                     f"size {s}")
      t = (t < 0).where(t + s, t)._broadcast_to(bshape)
      flat = t if flat is None else flat * s + t
    x = self.permute(tdims + rest)
    x = x.reshape((prod(self.shape[d] for d in tdims),) + x.shape[len(tdims):])
    out = x._gather0(flat)                                   # bshape + rest dims
    if tdims == list(range(tdims[0], tdims[-1] + 1)) and tdims[0] > 0:
      nb, before = len(bshape), tdims[0]
      out = out.permute(list(range(nb, nb + before)) + list(range(nb)) + list(range(nb + before, out.ndim)))
    return out

  def _checked(self, index: "Tensor", valid: "Tensor", message: str, error: str = "IndexOutOfBounds") -> "Tensor":
    """Self, checked when realized: every element of `index` where `valid` is false raises `error` (a class in
    lazygrad.errors) with `message`, its {} filled with such an element."""
    if index.numel() == 0: return self
    flag = valid.where(NO_FAILURE, index.cast(int64)).max()
    return self._result(LazyNode(Op.CHECK, self.dtype, self.shape, (self.node, flag.node), (error, message)), (self,))

  def _gather0(self, index: "Tensor") -> "Tensor":
    """out[j..., r...] = self[index[j...], r...] (the GATHER primitive: an indexed load, no copy of self)."""
    return self._new(Op.GATHER, (self, index.cast(int64) if index.dtype != int64 else index), self.dtype,
                     index.shape + self.shape[1:])

  def gather(self, dim: int, index: "Tensor") -> "Tensor":
    """torch.gather: out[i][j] = self[i][index[i][j]] for dim=1."""
    d = _norm_dim("gather", dim, self.ndim, self.shape)
    if index.ndim != self.ndim:
      raise _err(ShapeError, "gather", f"index shape {_shape_str(index.shape)} must have as many dims as input shape "
                 f"{_shape_str(self.shape)}")
    for k in range(self.ndim):
      if k != d and index.shape[k] > self.shape[k]:
        raise _err(ShapeError, "gather", f"index shape {_shape_str(index.shape)} is larger than input shape "
                   f"{_shape_str(self.shape)} in dimension {k}")
    n = self.shape[d]
    if not index.dtype.is_int: raise _err(TypeError, "gather", f"index must be an integer tensor, got {index.dtype.name}")
    index = index._checked(index, (index >= 0).logical_and(index < n), f"gather: index {{}} is out of bounds for "
                           f"dimension {d} with size {n}")
    x = self.shrink(tuple(None if k == d else (0, index.shape[k]) for k in range(self.ndim)))
    hit = index.cast(int64).unsqueeze(-1) == self.arange(n, device=self.device)                 # index.shape + (n,)
    src = x.permute([k for k in range(self.ndim) if k != d] + [d]).unsqueeze(d).expand(hit.shape)
    return hit.where(src, self._const(0, (), self.dtype, device=self.device)).sum(-1).cast(self.dtype)

  def one_hot(self, num_classes: int = -1) -> "Tensor":
    if not self.dtype.is_int: raise _err(TypeError, "one_hot", f"needs an integer tensor, got {self.dtype.name}")
    if num_classes < 0: num_classes = int(self.max().item()) + 1
    x = self._checked(self, (self >= 0).logical_and(self < num_classes), f"one_hot: class value {{}} is out of range "
                      f"for num_classes={num_classes}")
    return (x.unsqueeze(-1) == self.arange(num_classes, device=self.device)).cast(int64)
