"""Indexing: `x[idx]` (basic indices as views, integer, bool and list indices through GATHER), `x[idx] = value`,
gather and the scatter family, index_select/add/fill/copy/put, masked_select, nonzero, one_hot, and the checked
indices that raise IndexOutOfBounds when realized.

Sums into memory (scatter_add, index_add, scatter_reduce's 'sum' and 'mean', the counts that say which elements an
index writes) are the SCATTER_ADD primitive: atomic adds, work in proportion to the index. Writes where the last of
several writers wins (scatter with a tensor, index_copy, `x[int_tensor] = tensor`) and the reductions that have no
atomic form (prod, amax, amin) compare each index with every position of the dim it indexes: index size x dim size,
cheap for the dims they are used on (classes, a few rows); each winner's value is then one GATHER."""
from __future__ import annotations
import math
import numpy as np
from ..dtypes import int32, int64, float32, float64, bool_, float16, bfloat16
from ..helpers import prod, strides_for, ShapeError
from ..ir.node import LazyNode
from ..ir.ops import Op
from ..runtime.realize import NO_FAILURE
from .args import _err, _shape_str, _broadcast_shape, _norm_dim, _is_scalar
from .core import TensorCore
from .elementwise import _inplace_form

_SCATTER_REDUCES = ("sum", "prod", "mean", "amax", "amin")


class Indexing:
  """Tensor's indexing (a mixin: see core)."""
  __slots__ = ()

  # ---------------------------------------------------------------- x[idx], x[idx] = value
  def __getitem__(self, idx) -> "Tensor":
    """Basic indices (ints, slices with any step, None, ...) give a view of self; integer tensors, lists and bool
    masks pick elements into a new tensor, laid out as PyTorch lays them out (a list of lists is one index, as in
    numpy and PyTorch's next reading). A mask's true elements are read from the device (they decide the size)."""
    view, kinds = self._basic_index("getitem", idx)
    if all(k[0] == "keep" for k in kinds): return view
    return view._advanced_index(view._int_kinds(kinds))

  def __setitem__(self, idx, value):
    """`x[idx] = value` (value broadcast, cast to x's dtype) as an in-place update: basic indices write through the
    view x[idx]; integer tensors, lists and masks write the elements they pick (where an index repeats, the last
    write wins, as in PyTorch's CPU kernels). `x[mask] = number` stays lazy."""
    view, kinds = self._basic_index("setitem", idx)
    if value is view or isinstance(value, TensorCore) and value._base is not None and value._base is view._base and \
       value._path == view._path: return   # `x[i] += y` wrote through the view already
    if all(k[0] == "keep" for k in kinds):
      value = view._setitem_value(value, view.shape)
      if view.numel(): view.assign(value)   # (an empty region: nothing to write, and no kernel of size 0)
      return
    masks = [d for d, k in enumerate(kinds) if k[0] == "mask"]
    one = not isinstance(value, TensorCore) or value.numel() == 1
    if one and len(masks) == 1 and not any(k[0] == "tensor" for k in kinds):   # a select, nothing read on the host
      d, mask = masks[0], kinds[masks[0]][1]
      mask = mask.reshape((1,) * d + mask.shape + (1,) * (view.ndim - d - mask.ndim))
      view.assign(mask._where(view._setitem_value(value, ()), view))
      return
    view.assign(view._index_put(view._int_kinds(kinds), value))

  def _setitem_value(self, value, shape: tuple, expand: bool = True) -> "Tensor":
    """value as a tensor in self's dtype with as many dims as `shape` (leading size-1 dims beyond them dropped, as
    PyTorch drops them; missing ones added), expanded to `shape` unless not `expand`."""
    if not isinstance(value, TensorCore):
      value = self._const(value, (), self.dtype, "setitem", self.device) if _is_scalar(value) else \
        type(self)(value, device=self.device)
    self._check_device("setitem", value)
    while value.ndim > len(shape) and value.shape[0] == 1: value = value.reshape(value.shape[1:])
    if value.ndim > len(shape) or any(v not in (1, s) for v, s in zip(value.shape[::-1], shape[::-1])):
      raise _err(ShapeError, "setitem", f"a value of shape {_shape_str(value.shape)} cannot be written into the "
                 f"indexed shape {_shape_str(shape)}", "the value's sizes must match or be 1, counted from the last")
    value = value.cast(self.dtype).reshape((1,) * (len(shape) - value.ndim) + value.shape)
    return value.expand(shape) if expand else value

  def _basic_index(self, op: str, idx) -> tuple["Tensor", list]:
    """x[idx] for the basic parts of idx, as a view: ints, slices (a negative step flips), None and `...`. Dims
    indexed by an integer tensor (or list) are kept whole and marked ('tensor', t); a bool mask's first dim is
    ('mask', m), its others ('masked',); every other dim of the view is ('keep',)."""
    items = [self._index_item(op, i) for i in (idx if isinstance(idx, tuple) else (idx,))]
    if sum(1 for i in items if i is Ellipsis) > 1: raise _err(IndexError, op, "an index can only have one ellipsis")
    width = [0 if i is None or i is Ellipsis else i.ndim if isinstance(i, TensorCore) and i.dtype.is_bool else 1
             for i in items]
    if sum(width) > self.ndim:
      raise _err(IndexError, op, f"too many indices ({sum(width)}) for a tensor of shape {_shape_str(self.shape)}")
    e = next((k for k, i in enumerate(items) if i is Ellipsis), len(items))
    items[e:e + 1] = [slice(None)] * (self.ndim - sum(width))   # `...`, or the dims left after the last index
    bounds, flips, steps, shape, kinds, dim = [], [], [], [], [], 0
    for i in items:
      if i is None:
        shape.append(1); kinds.append(("keep",))
        continue
      size = self.shape[dim]
      if isinstance(i, TensorCore) and i.dtype.is_bool:
        if i.shape != self.shape[dim:dim + i.ndim]:
          raise _err(IndexError, op, f"the mask of shape {_shape_str(i.shape)} does not match dims {dim}.."
                     f"{dim + i.ndim - 1} of the indexed shape {_shape_str(self.shape)}")
        bounds += [(0, s) for s in i.shape]; steps += [1] * i.ndim; shape += list(i.shape)
        kinds += [("mask", i)] + [("masked",)] * (i.ndim - 1)
        dim += i.ndim
        continue
      if isinstance(i, TensorCore):
        bounds.append((0, size)); steps.append(1); shape.append(size); kinds.append(("tensor", i))
      elif isinstance(i, slice):
        if i.step == 0: raise _err(ValueError, op, "slice step cannot be zero")
        start, stop, step = i.indices(size)
        m = len(range(start, stop, step))   # taken from the first (a flip first for a negative step), every k-th
        k = abs(step) if m > 1 else 1
        bounds.append((start, min(size, start + m * k)) if step > 0 else (max(0, start + 1 - m * k), start + 1))
        if step < 0 and m > 1: flips.append(dim)
        steps.append(k); shape.append(m); kinds.append(("keep",))
      else:
        if not -size <= i < size:
          raise _err(IndexError, op, f"index {i} is out of range for dimension {dim} with size {size} "
                     f"(shape {_shape_str(self.shape)})", f"use an index in [{-size}, {size - 1}]")
        bounds.append((int(i) % size, int(i) % size + 1)); steps.append(1)
      dim += 1
    out = self.shrink(tuple(bounds))
    if flips: out = out._mov(Op.FLIP, out.shape, tuple(flips))
    if any(s > 1 for s in steps): out = out._every(steps)
    return out._mov(Op.RESHAPE, tuple(shape), tuple(shape)), kinds   # a view even where strides cannot merge

  def _index_item(self, op: str, i):
    """One index as _basic_index takes it: ints, slices, None and `...` as they are, anything else a tensor."""
    if i is None or i is Ellipsis or isinstance(i, slice): return i
    if isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)): return int(i)
    if isinstance(i, (list, tuple, np.ndarray, TensorCore)):
      a = i if isinstance(i, TensorCore) else np.asarray(i)
      t = i if isinstance(i, TensorCore) else type(self)(a if a.size else a.astype(np.int64), device=self.device)
      if t.dtype.is_int or (t.dtype.is_bool and t.ndim): return t
      raise _err(IndexError, op, f"tensors used as indices must be integer or bool (with dims), got a "
                 f"{t.dtype.name} tensor of shape {_shape_str(t.shape)}")
    raise _err(TypeError, op, f"unsupported index {i!r}", "use ints, slices, None, ..., lists or int/bool tensors")

  def _every(self, steps) -> "Tensor":
    """A view of every steps[d]-th element along each dim d, from the first."""
    m = [-(-s // k) for s, k in zip(self.shape, steps)]
    x = self._pad_shrink([(0, mi * k - s) for s, k, mi in zip(self.shape, steps, m)])
    inter = tuple(v for mi, k in zip(m, steps) for v in (mi, k))
    x = x._mov(Op.RESHAPE, inter, inter).shrink(tuple(v for mi in m for v in ((0, mi), (0, 1))))
    return x._mov(Op.RESHAPE, tuple(m), tuple(m))

  def _int_kinds(self, kinds: list) -> list:
    """kinds with each bool mask replaced by the integer indices of its true elements, one tensor per dim it
    covers (read from the device: how many there are decides the result's shape)."""
    out = list(kinds)
    for d, k in enumerate(kinds):
      if k[0] == "mask": out[d:d + k[1].ndim] = [("tensor", t) for t in k[1].nonzero(as_tuple=True)]
    return out

  def _flat_index(self, kinds: list) -> tuple["Tensor", list, list]:
    """For the dims marked ('tensor', t): those dims, the others, and each picked element's row of
    self._rows(those, others) (indices checked, negative ones wrapped), broadcast to one shape."""
    tdims = [d for d, k in enumerate(kinds) if k[0] == "tensor"]
    rest = [d for d in range(self.ndim) if d not in tdims]
    for d in tdims: self._check_device("getitem", kinds[d][1])
    bshape = _broadcast_shape("getitem", *(kinds[d][1].shape for d in tdims))
    flat = None
    for d in tdims:
      s, t = self.shape[d], kinds[d][1].cast(int64)
      t = t._checked(t, (t >= -s).logical_and(t < s), f"getitem: index {{}} is out of bounds for dimension {d} with "
                     f"size {s}")
      t = (t < 0)._where(t + s, t)._broadcast_to(bshape)
      flat = t if flat is None else flat * s + t
    return flat, tdims, rest

  def _rows(self, tdims: list, rest: list) -> "Tensor":
    """Self with dims `tdims` moved first and flattened into one."""
    x = self.permute(tdims + rest)
    return x.reshape((prod(self.shape[d] for d in tdims),) + x.shape[len(tdims):])

  def _advanced_index(self, kinds: list) -> "Tensor":
    """Index the dims marked ('tensor', t) with integer tensors. As in PyTorch, the broadcast index dims replace
    the indexed dims where those are adjacent, and go first otherwise."""
    flat, tdims, rest = self._flat_index(kinds)
    out = self._rows(tdims, rest)._gather0(flat)                                   # index dims, then the rest
    order = _index_layout(tdims, flat.ndim, out.ndim)
    return out if order is None else out.permute(order)

  def _index_put(self, kinds: list, value, accumulate: bool = False) -> "Tensor":
    """Self with the elements `_advanced_index(kinds)` picks replaced by `value` (broadcast to what it picks), or
    with value added to them (`accumulate`, where repeated indices add up)."""
    flat, tdims, rest = self._flat_index(kinds)
    rows = self._rows(tdims, rest)
    nb, n_rows, rest_shape = flat.ndim, rows.shape[0], rows.shape[1:]
    order = _index_layout(tdims, nb, nb + len(rest))
    picked = flat.shape + rest_shape
    v = self._setitem_value(value, tuple(picked[i] for i in order) if order else picked, expand=False)
    if order: v = v.permute(_inverse(order))
    flat = flat.reshape(flat.numel())
    if accumulate or any(s > 1 for s in v.shape[:nb]):
      v = v.expand(picked).reshape((flat.numel(),) + rest_shape)
      new = rows + rows._added(flat, v, n_rows) if accumulate else rows._put(flat, v)
    else:   # one value for every picked element: which write wins does not matter
      hit = rows._added(flat, self._const(True, flat.shape, bool_, device=self.device), n_rows)
      new = hit.reshape((n_rows,) + (1,) * len(rest))._where(v.reshape(v.shape[nb:]), rows)
    new = new.cast(self.dtype).reshape(tuple(self.shape[d] for d in tdims + rest))
    return new.permute(_inverse(tdims + rest))

  def index_put(self, indices, values, accumulate: bool = False) -> "Tensor":
    """torch.index_put: self with self[indices] = values (a new tensor); `accumulate` adds instead, repeated
    indices adding up. `indices`: a tuple of integer (or bool) tensors, one per leading dim."""
    kinds = [("keep",)] * self.ndim
    d = 0
    for i in indices:
      t = self._index_item("index_put", i)
      if not isinstance(t, TensorCore):
        raise _err(TypeError, "index_put", f"indices must be tensors, got {type(i).__name__}")
      if t.dtype.is_bool: kinds[d:d + t.ndim] = [("mask", t)] + [("masked",)] * (t.ndim - 1)
      else: kinds[d] = ("tensor", t)
      d += t.ndim if t.dtype.is_bool else 1
    return self._index_put(self._int_kinds(kinds), values, accumulate)

  # ---------------------------------------------------------------- primitives under the ops
  def _checked(self, index: "Tensor", valid: "Tensor", message: str, error: str = "IndexOutOfBounds") -> "Tensor":
    """Self, checked when realized: every element of `index` where `valid` is false raises `error` (a class in
    lazygrad.errors) with `message`, its {} filled with such an element."""
    if index.numel() == 0: return self
    flag = valid._where(NO_FAILURE, index.cast(int64)).max()
    return self._result(LazyNode(Op.CHECK, self.dtype, self.shape, (self.node, flag.node), (error, message)), (self,))

  def _gather0(self, index: "Tensor") -> "Tensor":
    """out[j..., r...] = self[index[j...], r...] (the GATHER primitive: an indexed load, no copy of self)."""
    return self._new(Op.GATHER, (self, index.cast(int64) if index.dtype != int64 else index), self.dtype,
                     index.shape + self.shape[1:])

  def _added(self, index: "Tensor", value: "Tensor", rows: int) -> "Tensor":
    """out[i, r..] = the sum of value[j, r..] over the j with index[j] == i, in value's dtype (bools: any): the
    SCATTER_ADD primitive, atomic adds into zeroed memory. Half floats add in float32, bools and narrow integers in
    int32 (what atomics take)."""
    dt = value.dtype
    if value.numel() == 0: return self._const(0, (rows,) + value.shape[1:], dt, device=self.device)
    acc = float32 if dt in (float16, bfloat16) else int32 if dt.is_bool or (dt.is_int and dt.itemsize < 4) else dt
    v = value.cast(acc)
    return v._new(Op.SCATTER_ADD, (index.cast(int64), v), acc, (rows,) + value.shape[1:], rows).cast(dt)

  def _put(self, index: "Tensor", value: "Tensor") -> "Tensor":
    """Self (rows, r..) with row index[j] replaced by value[j] (the largest j where several name one row)."""
    if index.numel() == 0: return self
    w = _last_writer(index, self.shape[0])
    return (w >= 0).reshape(w.shape + (1,) * (self.ndim - 1))._where(value._gather0(w.maximum(0)), self)

  def _positions(self, d: int, index: "Tensor") -> "Tensor":
    """For each element of `index` (self's rank, no larger than self off dim d): the flat position in self of the
    element at its own coordinates with the one along dim d replaced by its value."""
    strides = strides_for(self.shape)
    pos = index.cast(int64) * strides[d]
    if index.numel() == 0: return pos
    for k, size in enumerate(index.shape):
      if k != d and size > 1:
        pos = pos + self.arange(0, size * strides[k], strides[k], device=self.device).reshape(
          (size,) + (1,) * (index.ndim - 1 - k))
    return pos

  def _embed(self, part: "Tensor") -> "Tensor":
    """Self with its leading corner of part's shape replaced by `part`."""
    if part.shape == self.shape: return part
    arg = [(0, s - p) for s, p in zip(self.shape, part.shape)]
    inside = self._const(True, part.shape, bool_, device=self.device)._pad_shrink(arg)
    return inside._where(part._pad_shrink(arg), self)

  # ---------------------------------------------------------------- gather and the scatter family
  def _scatter_args(self, op: str, dim: int, index, src=None) -> tuple:
    """Checked arguments of gather/scatter ops: (dim, self, index, src), 0-d ones as 1-d (PyTorch takes them)."""
    d = _norm_dim(op, dim, self.ndim, self.shape)
    if not isinstance(index, TensorCore) or not index.dtype.is_int:
      raise _err(TypeError, op, f"index must be an integer tensor, got "
                 f"{index.dtype.name if isinstance(index, TensorCore) else type(index).__name__}")
    tensors = [("index", index)] + ([("src", src)] if isinstance(src, TensorCore) else [])
    for name, t in tensors:
      self._check_device(op, t)
      if t.ndim != self.ndim:
        raise _err(ShapeError, op, f"{name} of shape {_shape_str(t.shape)} must have as many dims as the input of "
                   f"shape {_shape_str(self.shape)}")
    for k in range(self.ndim):
      if k != d and index.shape[k] > self.shape[k]:
        raise _err(ShapeError, op, f"index shape {_shape_str(index.shape)} is larger than the input shape "
                   f"{_shape_str(self.shape)} in dimension {k}", f"the index may be larger only along dim {d}")
      if isinstance(src, TensorCore) and index.shape[k] > src.shape[k]:
        raise _err(ShapeError, op, f"index shape {_shape_str(index.shape)} is larger than the src shape "
                   f"{_shape_str(src.shape)} in dimension {k}", "src must be at least as large as the index")
    x = self
    if self.ndim == 0:
      x, index, src = x.reshape(1), index.reshape(1), src.reshape(1) if isinstance(src, TensorCore) else src
    n = x.shape[d]
    index = index._checked(index, (index >= 0).logical_and(index < n), f"{op}: index {{}} is out of bounds for "
                           f"dimension {d} with size {n}")
    return d, x, index, src

  def gather(self, dim: int, index: "Tensor") -> "Tensor":
    """torch.gather: out[i][j] = self[i][index[i][j]] for dim=1 (one GATHER: work in proportion to the index)."""
    d, x, idx, _ = self._scatter_args("gather", dim, index)
    return x.reshape(x.numel())._gather0(x._positions(d, idx)).reshape(index.shape)

  def take(self, index: "Tensor") -> "Tensor":
    """torch.take: the elements of self, read as 1-D, at `index` (of any shape: the result's)."""
    return self.reshape(-1)[index]

  def take_along_dim(self, indices: "Tensor", dim: int | None = None) -> "Tensor":
    """torch.take_along_dim: gather along `dim` with self and indices broadcast over the other dims; dim None reads
    self as 1-D."""
    if dim is None: return self.reshape(-1).gather(0, indices.reshape(-1))
    d = _norm_dim("take_along_dim", dim, self.ndim, self.shape)
    if indices.ndim != self.ndim:
      raise _err(ShapeError, "take_along_dim", f"indices of shape {_shape_str(indices.shape)} and input of shape "
                 f"{_shape_str(self.shape)} need the same number of dims")
    shape = [max(a, b) for a, b in zip(self.shape, indices.shape)]
    x = self.expand(*[s if i != d else self.shape[d] for i, s in enumerate(shape)])
    return x.gather(d, indices.expand(*[s if i != d else indices.shape[d] for i, s in enumerate(shape)]))

  def _same_dtype(self, op: str, src: "Tensor"):
    if src.dtype != self.dtype:
      raise _err(TypeError, op, f"src is {src.dtype.name} but the input is {self.dtype.name}",
                 f"cast src with .to({self.dtype.name})")

  def scatter_add(self, dim: int, index: "Tensor", src: "Tensor") -> "Tensor":
    """torch.scatter_add: a copy of self with src[i][j] added at [index[i][j]][j] for dim=0; repeated indices add
    up (atomic adds, work in proportion to the index)."""
    return self.scatter_reduce(dim, index, src, "sum")

  def scatter_reduce(self, dim: int, index: "Tensor", src: "Tensor", reduce: str, *,
                     include_self: bool = True) -> "Tensor":
    """torch.scatter_reduce: each element that index names (along dim, as in scatter) becomes the `reduce` ('sum',
    'prod', 'mean', 'amax', 'amin') of the src values sent to it, and of its own value if include_self. 'sum' and
    'mean' add in memory; 'prod', 'amax' and 'amin' compare every index with every position of dim."""
    op = "scatter_reduce"
    if reduce not in _SCATTER_REDUCES:
      raise _err(ValueError, op, f"reduce must be one of {', '.join(map(repr, _SCATTER_REDUCES))}, got {reduce!r}")
    if not isinstance(src, TensorCore): raise _err(TypeError, op, f"src must be a tensor, got {type(src).__name__}")
    self._same_dtype(op, src)
    if reduce == "mean" and self.dtype.is_bool: raise _err(TypeError, op, "no 'mean' of bools", "cast to int or float")
    d, x, idx, src = self._scatter_args(op, dim, index, src)
    if idx.numel() == 0: return self.clone()
    src = src.shrink(tuple((0, s) for s in idx.shape))
    if reduce in ("sum", "mean"):
      flat = x._positions(d, idx).reshape(idx.numel())
      scattered = lambda v: x._added(flat, v.reshape(idx.numel()), x.numel()).reshape(x.shape)
      wide = lambda v: v.cast(float32) if v.dtype in (float16, bfloat16) else v   # a mean of halves in float32
      total = scattered(wide(src))
      count = scattered(self._const(1, idx.shape, int32, device=self.device))
      if reduce == "sum": out = x + total if include_self else (count > 0)._where(total, x)
      else:
        n = count + 1 if include_self else count.maximum(1)
        total = total + wide(x) if include_self else total
        out = (count > 0)._where(total // n if x.dtype.is_int else total / n, x)
      return out.cast(self.dtype).reshape(self.shape)
    n = x.shape[d]
    region = x.shrink(tuple((0, n if k == d else s) for k, s in enumerate(idx.shape)))
    at = idx.movedim(d, -1).unsqueeze(d)   # index j of each fiber along a new last dim: region + (J,) once broadcast
    hit = at == self.arange(n, device=self.device).reshape(tuple(n if k == d else 1 for k in range(x.ndim)) + (1,))
    fill = _identity(reduce, x.dtype)
    cand = hit._where(src.movedim(d, -1).unsqueeze(d), fill)
    if include_self: cand = type(self).cat([region.unsqueeze(-1)._broadcast_to(cand.shape[:-1] + (1,)), cand], -1)
    red = cand.amax(-1) if reduce == "amax" else cand.amin(-1) if reduce == "amin" else cand.prod(-1)
    if not include_self: red = hit.any(-1)._where(red, region)
    return x._embed(red.cast(x.dtype)).reshape(self.shape)

  def scatter(self, dim: int, index: "Tensor", src=None, *, value=None, reduce: str | None = None) -> "Tensor":
    """torch.scatter: a copy of self with self[index[i][j]][j] = src[i][j] for dim=0 (src a tensor, or `value` /
    src a number). Where index names one element several times the last write wins (as in PyTorch's CPU kernels);
    reduce='add' or 'multiply' combines them with the element instead (scatter_reduce 'sum' / 'prod')."""
    op = "scatter"
    if (src is None) == (value is None): raise _err(TypeError, op, "give exactly one of src and value")
    if src is None or not isinstance(src, TensorCore): value, src = (src if src is not None else value), None
    if reduce is not None:
      if reduce not in ("add", "multiply"):
        raise _err(ValueError, op, f"reduce must be 'add' or 'multiply', got {reduce!r}")
      if src is None: src = self._const(value, index.shape, self.dtype, op, self.device)
      return self.scatter_reduce(dim, index, src, "sum" if reduce == "add" else "prod")
    if src is not None: self._same_dtype(op, src)
    d, x, idx, src = self._scatter_args(op, dim, index, src)
    if src is None:   # one value: which write wins does not matter
      flat = x._positions(d, idx).reshape(idx.numel())
      hit = x._added(flat, self._const(True, flat.shape, bool_, device=self.device), x.numel()).reshape(x.shape)
      return hit._where(self._const(value, (), self.dtype, op, self.device), x).reshape(self.shape)
    if idx.numel() == 0: return self.clone()
    w = _last_writer(idx.movedim(d, -1), x.shape[d]).movedim(-1, d)   # the winning j of each element, -1: none
    picked = src.reshape(src.numel())._gather0(src._positions(d, w.maximum(0)))
    region = x.shrink(tuple((0, s) for s in w.shape))
    return x._embed((w >= 0)._where(picked, region)).reshape(self.shape)

  # ---------------------------------------------------------------- index_* along one dim
  def _dim_index(self, op: str, dim: int, index, source=None) -> tuple[int, "Tensor"]:
    """Checked (dim, 1-d index) of the index_* ops; `source` must be self's shape with the index's length at dim."""
    d = _norm_dim(op, dim, self.ndim, self.shape)
    if not isinstance(index, TensorCore) or not index.dtype.is_int or index.ndim > 1:
      got = f"{index.dtype.name} {_shape_str(index.shape)}" if isinstance(index, TensorCore) else type(index).__name__
      raise _err(TypeError, op, f"index must be a 1-d (or 0-d) integer tensor, got {got}")
    self._check_device(op, index)
    index = index.reshape(index.numel())
    if source is not None:
      want = self.shape[:d] + index.shape + self.shape[d + 1:]
      if not isinstance(source, TensorCore) or source.shape != want:
        got = _shape_str(source.shape) if isinstance(source, TensorCore) else type(source).__name__
        raise _err(ShapeError, op, f"source must have shape {_shape_str(want)} (the input's, with the index's "
                   f"length at dim {d}), got {got}")
      self._check_device(op, source)
      self._same_dtype(op, source)
    n = self.shape[d]
    return d, index._checked(index, (index >= 0).logical_and(index < n), f"{op}: index {{}} is out of bounds for "
                                                                          f"dimension {d} with size {n}")

  def index_select(self, dim: int, index: "Tensor") -> "Tensor":
    """torch.index_select: the slices of self along dim that a 1-d index names, in its order (one GATHER)."""
    if self.ndim == 0: return self.reshape(1).index_select(dim, index).reshape(())
    d, idx = self._dim_index("index_select", dim, index)
    return self.movedim(d, 0)._gather0(idx).movedim(0, d)

  def index_add(self, dim: int, index: "Tensor", source: "Tensor", *, alpha=1) -> "Tensor":
    """torch.index_add: a copy of self with alpha * source's i-th slice along dim added to slice index[i];
    repeated indices add up (one SCATTER_ADD)."""
    if self.ndim == 0: return self.reshape(1).index_add(dim, index, source.reshape(1), alpha=alpha).reshape(())
    d, idx = self._dim_index("index_add", dim, index, source)
    added = self._added(idx, source.movedim(d, 0), self.shape[d]).movedim(0, d)
    return (self + (added * alpha if alpha != 1 else added)).cast(self.dtype)

  def index_copy(self, dim: int, index: "Tensor", source: "Tensor") -> "Tensor":
    """torch.index_copy: a copy of self with slice index[i] along dim replaced by source's i-th slice (the last one
    where an index repeats)."""
    if self.ndim == 0: return self.reshape(1).index_copy(dim, index, source.reshape(1)).reshape(())
    d, idx = self._dim_index("index_copy", dim, index, source)
    return self._index_put([("tensor", idx) if k == d else ("keep",) for k in range(self.ndim)], source)

  def index_fill(self, dim: int, index: "Tensor", value) -> "Tensor":
    """torch.index_fill: a copy of self with the slices along dim that index names set to value (a number or a
    0-d tensor)."""
    if self.ndim == 0: return self.reshape(1).index_fill(dim, index, value).reshape(())
    d, idx = self._dim_index("index_fill", dim, index)
    if isinstance(value, TensorCore) and value.ndim:
      raise _err(ShapeError, "index_fill", f"value must be a number or a 0-d tensor, got shape "
                 f"{_shape_str(value.shape)}")
    n = self.shape[d]
    hit = self._added(idx, self._const(True, idx.shape, bool_, device=self.device), n)
    value = value.cast(self.dtype) if isinstance(value, TensorCore) else self._const(value, (), self.dtype,
                                                                                      "index_fill", self.device)
    return hit.reshape(tuple(n if k == d else 1 for k in range(self.ndim)))._where(value, self)

  # ---------------------------------------------------------------- data-dependent shapes: read on the host
  def nonzero(self, *, as_tuple: bool = False):
    """torch.nonzero: the int64 indices of the nonzero elements, one row each ((count, ndim)), or with as_tuple one
    1-d tensor per dim. Their number decides the shape, so self is computed and read on the host."""
    hits = np.argwhere((self != 0).numpy().reshape(self.shape if self.ndim or not as_tuple else (1,)))
    make = lambda a: type(self)(np.ascontiguousarray(a, np.int64), device=self.device)
    return tuple(make(hits[:, k]) for k in range(hits.shape[1])) if as_tuple else make(hits)

  def unique(self, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """torch.unique, sorted: the distinct values of the flattened tensor (dim=None), or the distinct slices along
    `dim` in lexicographic order; with return_inverse each element's (each slice's) index among them, with
    return_counts how often each occurs. Their number decides the shape, so self is computed and read on the host;
    no gradient, as in torch."""
    data = self.numpy()
    if dim is None:
      values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True)
      inverse = inverse.reshape(self.shape)
    else:
      d = _norm_dim("unique", dim, self.ndim, self.shape)
      if self.ndim == 0:
        raise _err(IndexError, "unique", f"dim {dim} is out of range for a 0-d tensor", "use dim=None")
      if any(n == 0 for a, n in enumerate(self.shape) if a != d):
        raise _err(ValueError, "unique", f"slices along dim {d} of shape {_shape_str(self.shape)} are empty, so they "
                   "cannot be compared", f"unique along a dim of size 0 ({d} is not), or over dim=None")
      if self.shape[d] == 0: values, inverse, counts = data, np.zeros(0, np.int64), np.zeros(0, np.int64)
      else: values, inverse, counts = np.unique(data, axis=d, return_inverse=True, return_counts=True)
      inverse = inverse.reshape(-1)
    make = lambda a, dt=None: type(self)(np.ascontiguousarray(a), dtype=dt, device=self.device)
    out = (make(values, self.dtype),) + ((make(inverse.astype(np.int64)),) if return_inverse else ()) + \
          ((make(counts.astype(np.int64)),) if return_counts else ())
    return out[0] if len(out) == 1 else out

  def bincount(self, weights: "Tensor | None" = None, minlength: int = 0) -> "Tensor":
    """torch.bincount of a 1-d tensor of non-negative integers: how often each value occurs (or the sum of its
    `weights`), max + 1 bins at least `minlength`. The maximum decides the shape: it is read on the host."""
    if self.ndim != 1 or not self.dtype.is_int:
      raise _err(ValueError, "bincount", f"expects a 1-d integer tensor, got {self.dtype.name} of shape "
                 f"{_shape_str(self.shape)}")
    top = int(self.max()) if self.numel() else -1
    if self.numel() and int(self.min()) < 0: raise _err(ValueError, "bincount", "the values must be non-negative")
    bins = max(top + 1, minlength)
    if weights is None:
      return self.zeros(bins, dtype=int64, device=self.device).scatter_add(0, self, self.ones_like(dtype=int64))
    dt = weights.dtype if weights.dtype in (float32, float64) else float64   # as torch: half and int weights too
    return self.zeros(bins, dtype=dt, device=self.device).scatter_add(0, self, weights.cast(dt))

  def histc(self, bins: int = 100, min: float = 0.0, max: float = 0.0) -> "Tensor":
    """torch.histc: counts of the elements in `bins` equal bins over [min, max] (the data's own range when min equals
    max; a single value's range widened by 1 each side), the top edge in the last bin, elements outside ignored."""
    if not self.dtype.is_float: raise _err(TypeError, "histc", f"needs a float tensor, got {self.dtype.name}")
    if bins <= 0: raise _err(ValueError, "histc", f"bins must be positive, got {bins}")
    if min > max: raise _err(ValueError, "histc", f"min ({min}) must not exceed max ({max})")
    x = self.reshape(-1)
    if min == max and x.numel():
      lo, hi = x.min().detach(), x.max().detach()
    else: lo, hi = x._const(float(min), (), x.dtype, device=x.device), x._const(float(max), (), x.dtype, device=x.device)
    same = lo == hi
    lo, hi = same._where(lo - 1, lo), same._where(hi + 1, hi)
    inside = (x >= lo).logical_and(x <= hi)
    idx = ((x - lo) * bins / (hi - lo)).floor().clamp(0, bins - 1)
    idx = inside._where(idx, 0).cast(int64)
    return self.zeros(bins, dtype=self.dtype, device=self.device).scatter_add(0, idx, inside.cast(self.dtype))

  def fill_diagonal_(self, fill_value, wrap: bool = False) -> "Tensor":
    """torch.Tensor.fill_diagonal_: the main diagonal (every dim's index equal) set to `fill_value`, in place; a tall
    2-D tensor's diagonal restarts below the square with wrap=True."""
    if self.ndim < 2 or (self.ndim > 2 and len(set(self.shape)) != 1):
      raise _err(ShapeError, "fill_diagonal_", f"needs a 2-D tensor or one with every dim equal, got shape "
                 f"{_shape_str(self.shape)}")
    step = sum(int(np.prod(self.shape[i + 1:])) for i in range(self.ndim))   # flat distance between diagonal elements
    flat = type(self).arange(self.numel(), device=self.device)
    n = min(self.shape)
    on = (flat % step == 0)
    if not (wrap and self.ndim == 2): on = on.logical_and(flat < n * step)
    return self._inplace("fill_diagonal_", on.reshape(self.shape)._where(fill_value, self))

  def argwhere(self) -> "Tensor":
    """torch.argwhere: nonzero()."""
    return self.nonzero()

  def masked_select(self, mask: "Tensor") -> "Tensor":
    """torch.masked_select: a 1-d tensor of self's elements where mask (bool, broadcast with self) is true. The mask
    is read on the host (its count is the result's size); self's values stay lazy, with their gradient."""
    if not isinstance(mask, TensorCore) or not mask.dtype.is_bool:
      raise _err(TypeError, "masked_select", "mask must be a bool tensor", "compare to build a mask")
    self._check_device("masked_select", mask)
    shape = _broadcast_shape("masked_select", self.shape, mask.shape)
    where = np.flatnonzero(mask._broadcast_to(shape).numpy())
    flat = self._broadcast_to(shape).reshape(prod(shape))
    return flat._gather0(type(self)(where.astype(np.int64), device=self.device))

  def one_hot(self, num_classes: int = -1) -> "Tensor":
    if not self.dtype.is_int: raise _err(TypeError, "one_hot", f"needs an integer tensor, got {self.dtype.name}")
    if num_classes < 0: num_classes = int(self.max().item()) + 1
    x = self._checked(self, (self >= 0).logical_and(self < num_classes), f"one_hot: class value {{}} is out of range "
                      f"for num_classes={num_classes}")
    return (x.unsqueeze(-1) == self.arange(num_classes, device=self.device)).cast(int64)


def _inverse(order) -> list: return sorted(range(len(order)), key=lambda i: order[i])


def _index_layout(tdims: list, nb: int, ndim: int) -> list | None:
  """The permutation from (nb index dims, the other dims) to PyTorch's layout of an advanced index: the index dims
  in place of the indexed dims where those are adjacent, else first (None: already so)."""
  if tdims != list(range(tdims[0], tdims[-1] + 1)) or tdims[0] == 0: return None
  before = tdims[0]
  return list(range(nb, nb + before)) + list(range(nb)) + list(range(nb + before, ndim))


def _last_writer(index: "Tensor", n: int) -> "Tensor":
  """For index (..., J) with values in [0, n): (..., n), at t the largest j with index[..., j] == t, else -1 (which
  of several writes to one element wins: the last). One comparison of every index with every t."""
  j = index.shape[-1]
  hit = index.unsqueeze(-2) == index.arange(n, device=index.device).reshape(n, 1)
  return hit._where(index.arange(j, device=index.device), -1).amax(-1)


def _identity(reduce: str, dtype):
  """The value that leaves a `reduce` unchanged, in dtype."""
  if reduce == "prod": return True if dtype.is_bool else 1
  if dtype.is_bool: return reduce == "amin"
  if dtype.is_float: return -math.inf if reduce == "amax" else math.inf
  info = np.iinfo(dtype.np)
  return int(info.min) if reduce == "amax" else int(info.max)


for _name in ("scatter", "scatter_add", "scatter_reduce", "index_add", "index_copy", "index_fill", "index_put"):
  setattr(Indexing, _name + "_", _inplace_form(_name))
