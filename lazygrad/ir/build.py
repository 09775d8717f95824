"""Graph building on lazy nodes: the primitives with their shape and dtype rules, and the few compositions the
gradient rules need. No user-facing checks (the Tensor API checks its arguments first, then builds here), no
autograd. A node is on its sources' device; a constant or an IOTA is made on the device it is given. Constants fold
as they are built."""
from __future__ import annotations
import math
import numpy as np
from ..dtypes import DType, bool_, float32, int64
from .alu import exec_alu
from .node import LazyNode, movement_shape
from .ops import Op, COMPARE, Attention

HALF = ("float16", "bfloat16")


def const(value, dtype: DType, shape: tuple, device: str) -> LazyNode:
  value = bool(value) if dtype.is_bool else int(value) if dtype.is_int else float(value)
  return LazyNode(Op.CONST, dtype, tuple(shape), (), value, device=device)


def like(n: LazyNode, value) -> LazyNode:
  """A constant of n's dtype and shape, on its device."""
  return const(value, n.dtype, n.shape, n.device)


def copy(n: LazyNode, device: str) -> LazyNode:
  """n's value on `device` (a canonical name): n itself there, a constant made there, else a COPY."""
  if n.device == device: return n
  if n.op is Op.CONST: return const(n.arg, n.dtype, n.shape, device)
  return LazyNode(Op.COPY, n.dtype, n.shape, (n,), device)


def alu(op: Op, *srcs: LazyNode, dtype: DType | None = None) -> LazyNode:
  """An elementwise primitive over sources of one shape; the result has `dtype` (default: the first source's, bool
  for comparisons). All-constant sources fold into a constant."""
  dtype = dtype or (bool_ if op in COMPARE else srcs[0].dtype)
  if all(s.op is Op.CONST for s in srcs):
    with np.errstate(all="ignore"): v = exec_alu(op, dtype, [np.asarray(s.arg, s.dtype.np) for s in srcs])
    return const(np.asarray(v).item(), dtype, srcs[0].shape, srcs[0].device)
  return LazyNode(op, dtype, srcs[0].shape, srcs)


def cast(n: LazyNode, dtype: DType) -> LazyNode: return n if n.dtype == dtype else alu(Op.CAST, n, dtype=dtype)
def where(c: LazyNode, a: LazyNode, b: LazyNode) -> LazyNode: return alu(Op.WHERE, c, a, b, dtype=a.dtype)
def add(a, b): return alu(Op.ADD, a, b)
def sub(a, b): return alu(Op.SUB, a, b)
def mul(a, b): return alu(Op.MUL, a, b)
def div(a, b): return alu(Op.DIV, a, b)
def neg(a): return alu(Op.NEG, a)


def in_float32(fn, *srcs: LazyNode) -> LazyNode:
  """fn over float32 copies of half-precision sources, rounded back once (how half-precision math is done)."""
  if srcs[0].dtype.name not in HALF: return fn(*srcs)
  return cast(fn(*(cast(s, float32) for s in srcs)), srcs[0].dtype)


def cos(x: LazyNode) -> LazyNode: return in_float32(lambda v: alu(Op.SIN, sub(like(v, math.pi / 2), v)), x)


def movement(op: Op, n: LazyNode, arg, loc=None) -> LazyNode:
  """A movement op (or a DETACH) over n; a reshape or expand to n's own shape is n itself."""
  shape = movement_shape(op, n.shape, arg)
  if shape == n.shape and op in (Op.RESHAPE, Op.EXPAND): return n
  return LazyNode(op, n.dtype, shape, (n,), arg, loc)


def apply_path(n: LazyNode, path: tuple, loc=None) -> LazyNode:
  """`n` seen through movement ops `path` ((op, arg) pairs, outermost first, as in a view's path)."""
  for op, arg in reversed(path): n = movement(op, n, arg, loc or n.loc)
  return n


def reshape(n: LazyNode, shape) -> LazyNode: return movement(Op.RESHAPE, n, tuple(shape))
def expand(n: LazyNode, shape) -> LazyNode: return movement(Op.EXPAND, n, tuple(shape))


def reduce(op: Op, n: LazyNode, axes: tuple) -> LazyNode:
  """`op` over `axes`, which keep size 1. A sum over a zero-size axis is a sum of one padded 0 (still a function of n,
  so its own gradient is an empty zero); an empty max is refused before it is built. A long sum with few results is
  split in two (`_split_sum`)."""
  if any(n.shape[a] == 0 for a in axes):
    n = movement(Op.PAD, n, tuple((0, 1) if i in axes and s == 0 else (0, 0) for i, s in enumerate(n.shape)))
  if not axes: return n
  if op is Op.REDUCE_SUM and (split := _split_sum(n, tuple(sorted(axes)))) is not None: return split
  return LazyNode(op, n.dtype, tuple(1 if i in axes else s for i, s in enumerate(n.shape)), (n,), axes)


SPLIT_MAX_RESULTS, SPLIT_MIN_LENGTH, SPLIT_CHUNK = 4096, 4096, 256


def _split_sum(n: LazyNode, axes: tuple) -> LazyNode | None:
  """A sum over the leading axes of `n` (column sums: a bias gradient over batch x time; or a total) with few results
  and a long reduction, as partial sums over chunks of SPLIT_CHUNK rows and then a sum of the partials: one kernel
  per result block would leave most of a GPU idle, two kernels spread the long reduction over many programs. Not a
  contraction (a sum of a product of broadcasts becomes a DOT, which tiles its reduction itself). None: no split."""
  if axes != tuple(range(len(axes))) or (n.op is Op.MUL and any(s.op is Op.EXPAND for s in n.srcs)): return None
  length, kept = math.prod(n.shape[:len(axes)]), n.shape[len(axes):]
  if length < SPLIT_MIN_LENGTH or math.prod(kept) > SPLIT_MAX_RESULTS: return None
  chunks = min(256, length // SPLIT_CHUNK)
  while chunks > 1 and length % chunks: chunks //= 2   # a power of two that divides the length
  if chunks < 8: return None
  parts = reduce(Op.REDUCE_SUM, reshape(n, (chunks, length // chunks, *kept)), (1,))
  total = LazyNode(Op.REDUCE_SUM, n.dtype, (1, 1, *kept), (parts,), (0,))
  return reshape(total, (1,) * len(axes) + kept)


def gather(x: LazyNode, index: LazyNode) -> LazyNode:
  """out[j.., r..] = x[index[j..], r..] (see ops.GATHER)."""
  return LazyNode(Op.GATHER, x.dtype, index.shape + x.shape[1:], (x, index))


def scatter_add(index: LazyNode, value: LazyNode, rows: int) -> LazyNode:
  """out[i, r..] = the sum of value[j, r..] over the j with index[j] == i (see ops.SCATTER_ADD)."""
  return LazyNode(Op.SCATTER_ADD, value.dtype, (rows,) + value.shape[1:], (index, value), rows)


def attention(part: str, q: LazyNode, k: LazyNode, v: LazyNode, scale: float, causal: bool,
              mask: LazyNode | None = None, grads: tuple = ()) -> LazyNode:
  """One part of fused attention (see `ops.Attention`); `grads` = (dO, lse, delta) for a gradient part."""
  lead, tq, dv = q.shape[:-2], q.shape[-2], v.shape[-1]
  shape, dtype = {"out": (lead + (tq, dv), q.dtype), "lse": (lead + (tq,), float32), "dq": (q.shape, q.dtype),
                  "dk": (k.shape, k.dtype), "dv": (v.shape, v.dtype)}[part]
  srcs = (q, k, v) + tuple(grads) + ((mask,) if mask is not None else ())
  return LazyNode(Op.ATTENTION, dtype, shape, srcs, Attention(part, float(scale), bool(causal), mask is not None))


def iota(n: int, device: str) -> LazyNode: return LazyNode(Op.IOTA, int64, (n,), device=device)
