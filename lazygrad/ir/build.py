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
from .ops import Op, COMPARE, Attention, Scan, Sort, scan_identity

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
  """`op` over `axes`, which keep size 1. A reduction over a zero-size axis reduces one padded element, 0 (1 for a
  product): still a function of n, so its own gradient is an empty zero; an empty max is refused before it is built,
  but where 0 is the smallest value (any and all reduce unsigned bytes). A long sum with few results is split in two
  (`_split_sum`)."""
  if any(n.shape[a] == 0 for a in axes):
    pads = tuple((0, 1) if i in axes and s == 0 else (0, 0) for i, s in enumerate(n.shape))
    padded = movement(Op.PAD, n, pads)
    if op is Op.REDUCE_PROD:
      padded = where(movement(Op.PAD, const(True, bool_, n.shape, n.device), pads), padded, like(padded, 1))
    n = padded
  if not axes: return n
  if op is Op.REDUCE_SUM and (split := _split_sum(n, tuple(sorted(axes)))) is not None: return split
  return LazyNode(op, n.dtype, tuple(1 if i in axes else s for i, s in enumerate(n.shape)), (n,), axes)


SPLIT_MAX_RESULTS, SPLIT_MIN_LENGTH, SPLIT_CHUNK = 4096, 4096, 256
SPLIT_MAX_CHUNKS, SPLIT_MAX_PARTIALS = 4096, 1 << 20


def _split_sum(n: LazyNode, axes: tuple) -> LazyNode | None:
  """A sum over the leading axes of `n` (column sums: a bias gradient over batch x time; or a total) with few results
  and a long reduction, as partial sums over chunks of at least SPLIT_CHUNK rows and then a sum of the partials: one
  kernel per result block would leave most of a GPU idle, two kernels spread the long reduction over many programs.
  As many chunks as SPLIT_MAX_CHUNKS and SPLIT_MAX_PARTIALS partial sums allow: a total (GPT-2's gradient norm over
  124M elements) in 4096 chunks, not 256 programs each walking 485760 elements (1.15 ms on an H100, 7x its memory
  traffic). Not a contraction (a sum of a product of broadcasts becomes a DOT, which tiles its reduction itself).
  None: no split."""
  if axes != tuple(range(len(axes))) or (n.op is Op.MUL and any(s.op is Op.EXPAND for s in n.srcs)): return None
  length, kept = math.prod(n.shape[:len(axes)]), n.shape[len(axes):]
  if length < SPLIT_MIN_LENGTH or math.prod(kept) > SPLIT_MAX_RESULTS: return None
  chunks = min(SPLIT_MAX_CHUNKS, SPLIT_MAX_PARTIALS // math.prod(kept), length // SPLIT_CHUNK)
  chunks = 1 << (chunks.bit_length() - 1)
  while chunks > 1 and length % chunks: chunks //= 2   # a power of two that divides the length
  if chunks < 8: return None
  parts = reduce(Op.REDUCE_SUM, reshape(n, (chunks, length // chunks, *kept)), (1,))
  total = LazyNode(Op.REDUCE_SUM, n.dtype, (1, 1, *kept), (parts,), (0,))
  return reshape(total, (1,) * len(axes) + kept)


def flip(n: LazyNode, axis: int) -> LazyNode: return movement(Op.FLIP, n, (axis,)) if n.shape[axis] > 1 else n


def scan(op: str, n: LazyNode, axis: int, reverse: bool = False) -> LazyNode:
  """The inclusive scan of n along `axis` by `op` (see ops.Scan), from the end if `reverse` (a flipped view, free);
  half precision is scanned in float32 and rounded once; a long one of few rows is split (`_split_scan`). Over fewer
  than two elements a scan is n itself."""
  if n.shape[axis] < 2 or n.numel == 0: return n
  if reverse: return flip(scan(op, flip(n, axis), axis), axis)
  one = lambda v: _split_scan(op, v, axis) or LazyNode(Op.SCAN, v.dtype, v.shape, (v,), Scan(op, axis))
  return in_float32(one, n)


SCAN_SPLIT_MIN_LENGTH, SCAN_SPLIT_MAX_ROWS, SCAN_CHUNK = 1 << 14, 1024, 2048


def _split_scan(op: str, n: LazyNode, axis: int) -> LazyNode | None:
  """A scan along an axis at least SCAN_SPLIT_MIN_LENGTH long, of at most SCAN_SPLIT_MAX_ROWS rows (each walked by one
  program, which would leave most of a GPU idle), in chunks of SCAN_CHUNK: every chunk scanned on its own, then
  combined with the total of the chunks before it (a short scan of the chunks' totals, shifted by one chunk). None:
  no split."""
  length, shape = n.shape[axis], n.shape
  if length < SCAN_SPLIT_MIN_LENGTH or n.numel // length > SCAN_SPLIT_MAX_ROWS: return None
  chunks = -(-length // SCAN_CHUNK)
  padded = pad_axis(n, axis, 0, chunks * SCAN_CHUNK - length)   # what follows the end changes nothing before it
  split = shape[:axis] + (chunks, SCAN_CHUNK) + shape[axis + 1:]
  inner = scan(op, reshape(padded, split), axis + 1)
  totals = scan(op, shrink_axis(inner, axis + 1, SCAN_CHUNK - 1, SCAN_CHUNK), axis)   # up to each chunk's end
  earlier = shrink_axis(totals, axis, 0, chunks - 1)
  before = where(pad_axis(const(True, bool_, earlier.shape, n.device), axis, 1, 0), pad_axis(earlier, axis, 1, 0),
                 const(scan_identity(op, n.dtype), n.dtype, totals.shape, n.device))
  return shrink_axis(reshape(_combine(op, inner, expand(before, split)), padded.shape), axis, 0, length)


def pad_axis(n: LazyNode, axis: int, before: int, after: int) -> LazyNode:
  if not before and not after: return n
  return movement(Op.PAD, n, tuple((before, after) if d == axis else (0, 0) for d in range(len(n.shape))))


def shrink_axis(n: LazyNode, axis: int, lo: int, hi: int) -> LazyNode:
  return movement(Op.SHRINK, n, tuple((lo, hi) if d == axis else (0, s) for d, s in enumerate(n.shape)))


def _combine(op: str, a: LazyNode, b: LazyNode) -> LazyNode:
  """Two values combined by a scan's op; where a max ties, the gradient goes to `a`, the later one."""
  if op == "sum": return add(a, b)
  if op == "prod": return mul(a, b)
  m = alu(Op.MAX, a, b)
  if op == "max": return m
  # logaddexp, shifted by the larger where it is finite (as logsumexp), no gradient through the shift
  infinite = alu(Op.CMPEQ, alu(Op.MAX, m, neg(m)), like(m, math.inf))
  m = movement(Op.DETACH, where(infinite, like(m, 0), m), None)
  return add(alu(Op.LOG, add(alu(Op.EXP, sub(a, m)), alu(Op.EXP, sub(b, m)))), m)


def scan_argmax(x: LazyNode, running_max: LazyNode, axis: int) -> LazyNode:
  """Where each running maximum of x along `axis` (`scan('max', x, axis)`) is: the last position up to there that
  holds it (from a NaN on, the last NaN's), as torch.cummax. A position that holds its own running maximum starts a
  run of elements it is the maximum of, so this is a running maximum of those positions."""
  hit = alu(Op.CMPEQ, x, running_max)
  if x.dtype.is_float: hit = alu(Op.OR, hit, alu(Op.CMPNE, x, x))
  size = x.shape[axis]
  pos = expand(reshape(iota(size, x.device), tuple(size if d == axis else 1 for d in range(len(x.shape)))), x.shape)
  return scan("max", where(hit, pos, const(0, int64, x.shape, x.device)), axis)


def sort(n: LazyNode, axis: int, descending: bool, part: str) -> LazyNode:
  """n sorted along `axis`: its values or their int64 indices (see ops.Sort)."""
  if n.shape[axis] < 2 or n.numel == 0: return n if part == "values" else const(0, int64, n.shape, n.device)
  return LazyNode(Op.SORT, n.dtype if part == "values" else int64, n.shape, (n,), Sort(axis, bool(descending), part))


def put_along(value: LazyNode, index: LazyNode, axis: int, size: int) -> LazyNode:
  """out[.., i, ..] = the sum of value[.., j, ..] over the j with index[.., j, ..] == i along `axis`, where out is
  `size` long (its other axes are value's): the gradient of picking elements along an axis (sort, cummax), as one
  scatter-add of the rows laid end to end (accumulated in float32)."""
  out_shape = value.shape[:axis] + (size,) + value.shape[axis + 1:]
  if value.numel == 0 or size == 0: return const(0, value.dtype, out_shape, value.device)
  last = tuple(d for d in range(len(value.shape)) if d != axis) + (axis,)
  v, i = (movement(Op.PERMUTE, x, last) for x in (value, index))
  rows, k, dev = math.prod(v.shape[:-1]), v.shape[-1], value.device
  starts = mul(expand(reshape(iota(rows, dev), (rows, 1)), (rows, k)), const(size, int64, (rows, k), dev))
  flat = reshape(add(reshape(i, (rows, k)), starts), (rows * k,))
  out = in_float32(lambda x: scatter_add(flat, reshape(x, (rows * k,)), rows * size), v)
  return movement(Op.PERMUTE, reshape(out, v.shape[:-1] + (size,)), tuple(last.index(d) for d in range(len(last))))


def gather(x: LazyNode, index: LazyNode) -> LazyNode:
  """out[j.., r..] = x[index[j..], r..] (see ops.GATHER)."""
  return LazyNode(Op.GATHER, x.dtype, index.shape + x.shape[1:], (x, index))


def scatter_add(index: LazyNode, value: LazyNode, rows: int) -> LazyNode:
  """out[i, r..] = the sum of value[j, r..] over the j with index[j] == i (see ops.SCATTER_ADD)."""
  return LazyNode(Op.SCATTER_ADD, value.dtype, (rows,) + value.shape[1:], (index, value), rows)


def attention(part: str, q: LazyNode, k: LazyNode, v: LazyNode, scale: float, causal: bool,
              mask: LazyNode | None = None, grads: tuple = ()) -> LazyNode:
  """One part of fused attention (see `ops.Attention`); `grads` = (dO, lse, out or delta) for a gradient part."""
  lead, tq, dv = q.shape[:-2], q.shape[-2], v.shape[-1]
  shape, dtype = {"out": (lead + (tq, dv), q.dtype), "lse": (lead + (tq,), float32), "dq": (q.shape, q.dtype),
                  "delta": (lead + (tq,), float32), "dk": (k.shape, k.dtype), "dv": (v.shape, v.dtype)}[part]
  srcs = (q, k, v) + tuple(grads) + ((mask,) if mask is not None else ())
  return LazyNode(Op.ATTENTION, dtype, shape, srcs, Attention(part, float(scale), bool(causal), mask is not None))


def iota(n: int, device: str) -> LazyNode: return LazyNode(Op.IOTA, int64, (n,), device=device)
