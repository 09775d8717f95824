"""Views: movement ops as index arithmetic. A `View` maps an index in its shape to a buffer offset (strides, offset)
and a validity mask (from pad/shrink); a `ShapeTracker` is a stack of views for reshapes that cannot merge."""
from __future__ import annotations
import functools
from dataclasses import dataclass
from functools import cached_property
from ..helpers import prod, strides_for
from .ops import Op
from .symbolic import Lin, Var, Cond, in_range


def _canonical_strides(shape, strides): return tuple(0 if s == 1 else st for s, st in zip(shape, strides))


def _reshape_strides(old_shape, old_strides, new_shape):
  """Strides that let `new_shape` index the same memory as (old_shape, old_strides), or None (PyTorch's view rule)."""
  old = [(s, st) for s, st in zip(old_shape, old_strides) if s != 1]
  new_strides = [0] * len(new_shape)
  if not old: return tuple(new_strides)
  vd = len(new_shape) - 1
  base, tnum, vnum = old[-1][1], 1, 1
  for td in range(len(old) - 1, -1, -1):
    tnum *= old[td][0]
    if td == 0 or old[td - 1][1] != tnum * base:
      while vd >= 0 and (vnum < tnum or new_shape[vd] == 1):
        new_strides[vd] = vnum * base
        vnum *= new_shape[vd]
        vd -= 1
      if vnum != tnum: return None
      if td > 0: base, tnum, vnum = old[td - 1][1], 1, 1
  if vd != -1: return None
  return _canonical_strides(new_shape, new_strides)


@dataclass(frozen=True)
class View:
  shape: tuple
  strides: tuple
  offset: int = 0
  mask: tuple | None = None    # ((lo, hi), ...) valid index range per dim, None if all valid

  @staticmethod
  def create(shape, strides=None, offset=0, mask=None) -> "View":
    shape = tuple(shape)
    strides = _canonical_strides(shape, strides if strides is not None else strides_for(shape))
    if mask is not None:
      mask = tuple(mask)
      if any(lo >= hi for lo, hi in mask): mask = tuple((0, 0) for _ in shape)  # nothing valid
      elif all(lo == 0 and hi == s for (lo, hi), s in zip(mask, shape)): mask = None
    return View(shape, strides, offset, mask)

  @cached_property
  def contiguous(self) -> bool:
    return self.offset == 0 and self.mask is None and self.strides == strides_for(self.shape)

  def permute(self, order):
    return View.create([self.shape[i] for i in order], [self.strides[i] for i in order], self.offset,
                       None if self.mask is None else [self.mask[i] for i in order])

  def expand(self, shape):
    mask = None if self.mask is None else [m if s == ns else ((0, ns) if m != (0, 0) else (0, 0))
                                           for m, s, ns in zip(self.mask, self.shape, shape)]
    return View.create(shape, [st if s == ns else 0 for st, s, ns in zip(self.strides, self.shape, shape)],
                       self.offset, mask)

  def shrink(self, arg):
    offset = self.offset + sum(lo * st for (lo, _), st in zip(arg, self.strides))
    mask = None if self.mask is None else [(max(mlo, lo) - lo, min(mhi, hi) - lo) for (mlo, mhi), (lo, hi)
                                           in zip(self.mask, arg)]
    return View.create([hi - lo for lo, hi in arg], self.strides, offset, mask)

  def pad(self, arg):
    offset = self.offset - sum(b * st for (b, _), st in zip(arg, self.strides))
    mask = self.mask or [(0, s) for s in self.shape]
    return View.create([s + b + a for s, (b, a) in zip(self.shape, arg)], self.strides, offset,
                       [(lo + b, hi + b) for (lo, hi), (b, _) in zip(mask, arg)])

  def flip(self, axes):
    offset = self.offset + sum((self.shape[i] - 1) * self.strides[i] for i in axes)
    mask = None if self.mask is None else [(s - hi, s - lo) if i in axes else (lo, hi)
                                           for i, ((lo, hi), s) in enumerate(zip(self.mask, self.shape))]
    return View.create(self.shape, [-st if i in axes else st for i, st in enumerate(self.strides)], offset, mask)

  def reshape(self, shape) -> "View | None":
    """The same view in a new shape, or None when it needs a view of its own on top."""
    if shape == self.shape: return self
    if prod(shape) == 0: return View.create(shape)
    if self.mask is None:
      strides = _reshape_strides(self.shape, self.strides, shape)
      return None if strides is None else View.create(shape, strides, self.offset)
    # a masked view can only gain or lose size-1 dims
    if tuple(s for s in shape if s != 1) != tuple(s for s in self.shape if s != 1): return None
    if any(m == (0, 0) for m in self.mask): return None
    kept = [(st, m) for s, st, m in zip(self.shape, self.strides, self.mask) if s != 1]
    strides, mask, it = [], [], iter(kept)
    for s in shape:
      st, m = next(it) if s != 1 else (0, (0, 1))
      strides.append(st); mask.append(m)
    return View.create(shape, strides, self.offset, mask)

  def index(self, idxs: list[Lin]) -> tuple[Lin, list[Cond] | None]:
    """Buffer offset and validity conditions for per-dim indices (None conditions: never valid)."""
    conds: list[Cond] | None = []
    if self.mask is not None:
      for i, (lo, hi) in zip(idxs, self.mask):
        c = in_range(i, lo, hi)
        if c is None: return Lin.of(0), None
        conds += c
    idx = Lin.of(self.offset)
    for i, st in zip(idxs, self.strides):
      if st: idx = idx + i * st
    return idx, conds


def _merge(outer: View, inner: View) -> View | None:
  """`outer`, which reads `inner`'s elements by their row-major position, as one view (None: it cannot be): when
  the position each of its axes moves, split into inner's axes, never carries from one to the next, and all it reads
  (inside its own mask) is inside inner's. So a pad, a reshape and a shrink back within the unpadded part (a strided
  slice, a diagonal) end as one strided view."""
  rows, acc = [], 1   # inner's row-major strides
  for s in reversed(inner.shape): rows.append(acc); acc *= s
  rows.reverse()
  ranges = outer.mask or tuple((0, s) for s in outer.shape)
  if any(lo >= hi for lo, hi in ranges) or not 0 <= outer.offset < acc: return None
  lo = [outer.offset // r % s for r, s in zip(rows, inner.shape)]
  offset = inner.offset + sum(c * st for c, st in zip(lo, inner.strides))
  hi, strides = list(lo), []
  for st, (mlo, mhi) in zip(outer.strides, ranges):   # each stride as digits of inner's row-major strides
    rem, merged = abs(st), 0
    for j, r in enumerate(rows):
      c, rem = divmod(rem, r)
      c = c if st > 0 else -c
      lo[j] += min(c * mlo, c * (mhi - 1)); hi[j] += max(c * mlo, c * (mhi - 1))
      merged += c * inner.strides[j]
    strides.append(merged)
  valid = inner.mask or tuple((0, s) for s in inner.shape)
  if any(a < vlo or b >= vhi for a, b, (vlo, vhi) in zip(lo, hi, valid)): return None
  return View.create(outer.shape, strides, offset, outer.mask)


@dataclass(frozen=True)
class ShapeTracker:
  views: tuple

  @staticmethod
  def from_shape(shape) -> "ShapeTracker": return ShapeTracker((View.create(shape),))

  @property
  def shape(self) -> tuple: return self.views[-1].shape
  @property
  def contiguous(self) -> bool: return len(self.views) == 1 and self.views[0].contiguous

  def _top(self, v: View) -> "ShapeTracker":
    views = self.views[:-1]
    while views and (merged := _merge(v, views[-1])) is not None: views, v = views[:-1], merged
    return ShapeTracker(views + (v,))
  def permute(self, order): return self._top(self.views[-1].permute(order))
  def expand(self, shape): return self._top(self.views[-1].expand(shape))
  def shrink(self, arg): return self._top(self.views[-1].shrink(arg))
  def pad(self, arg): return self._top(self.views[-1].pad(arg))
  def flip(self, axes): return self._top(self.views[-1].flip(axes))

  def reshape(self, shape) -> "ShapeTracker":
    if (v := self.views[-1].reshape(tuple(shape))) is not None: return self._top(v)
    return ShapeTracker(self.views + (View.create(shape),))

  def bounds(self) -> tuple[int, int] | None:
    """The lowest and highest buffer offsets the view may reach (a superset where an index divides or wraps); None
    where it reaches none."""
    if 0 in self.shape: return None
    idx, valid = self.index([Lin.of(Var(i, 0, s - 1)) for i, s in enumerate(self.shape)])
    return None if valid is None else idx.bounds()

  def index(self, idxs: list[Lin]) -> tuple[Lin, list[Cond] | None]:
    """Buffer offset and validity of the element at `idxs`, through every view of the stack."""
    conds: list[Cond] = []
    for k, v in enumerate(reversed(self.views)):
      if k:   # the outer view's offset is a flat index into this view's shape
        flat, idxs = idx, []
        for s, st in zip(v.shape, strides_for(v.shape)):
          idxs.append((flat // st) % s if st else Lin.of(0))
      idx, c = v.index(idxs)
      if c is None: return idx, None
      conds += c
    return idx, conds

  def __repr__(self):
    def fmt(v: View):
      m = "" if v.mask is None else f" mask={list(v.mask)}"
      return f"View({list(v.shape)}, strides={list(v.strides)}, offset={v.offset}{m})"
    return " ∘ ".join(fmt(v) for v in self.views)


@functools.lru_cache(maxsize=1 << 16)
def view_of(node_shape: tuple, path: tuple) -> ShapeTracker:
  """The view of a node of shape `node_shape` after the movement ops `path` ((op, arg) pairs, outermost first)."""
  st = ShapeTracker.from_shape(node_shape)
  for op, arg in reversed(path):
    if op is Op.DETACH: continue   # the same values (a detached view's path holds one)
    st = {Op.RESHAPE: st.reshape, Op.PERMUTE: st.permute, Op.EXPAND: st.expand, Op.PAD: st.pad,
          Op.SHRINK: st.shrink, Op.FLIP: st.flip}[op](arg)
  return st
