"""Kernel AST: what one kernel computes, independent of how it is tiled.

A kernel has one iteration space `shape` (output axes first, then `n_reduce` reduce axes) and one or more outputs.
Its AST is a DAG of `KNode`s: LOAD/VALID/INDEX read through a ShapeTracker over the iteration space (size 1 on
reduce axes after a reduction; INDEX gives the position itself, an IOTA), CONST, SCALAR (a constant the kernel takes
as argument number `arg`), ALU ops, REDUCE over the reduce axes (its result has size 1 there and broadcasts back; a
reduction may read another, as softmax's sum reads its max), DOT (a contraction: the sum over the one reduce axis of
a * b, where a and b also vary along different output axes; arg (m, n, k), the axes of its result's rows, columns
and of the sum), ATTENTION (fused attention, a kernel template: its sources are q, k, v [dO, lse, delta] [mask]
loaded into the space (n, i, j, d, e) = batch, query, key, q/k feature, v feature; arg `ir.ops.Attention`; its value
varies along `ATTENTION_AXES[part]`), SCAN and SORT (kernel templates too: a scan or a sort of their source along
the last axis, the kernel's one reduce axis; arg `ir.ops.Scan` or `ir.ops.Sort`, naming that axis), and one STORE
root per output. A store seen with size 1 on the reduce axes writes a per-row value after the reductions; one that
spans them writes every element. A LOAD with a source is a gather: its address moves by `index * stride` (arg[2] =
(stride, rows)); a STORE with one (its index the second source) is a scatter-add: it adds into its output, which
starts at zero. Buffers are numbered: 0..n_out-1 are written (store i writes slot i), the rest read. A combined
kernel has no space of its own: its `parts` are kernels over their own spaces that share its buffers, each run on
programs of its own by one launch."""
from __future__ import annotations
from dataclasses import dataclass, replace
from enum import Enum, auto
from functools import cached_property
from typing import Any, NamedTuple
from ..dtypes import DType
from ..helpers import exact, InvalidIR
from ..ir.ops import Op, REDUCE
from ..ir.graph import ConsTable, evaluate, rewrite, toposort
from ..ir.symbolic import Lin, Var
from ..ir.view import ShapeTracker


class K(Enum):
  LOAD = auto(); STORE = auto(); CONST = auto(); VALID = auto(); INDEX = auto(); SCALAR = auto(); DOT = auto()
  ATTENTION = auto(); SCAN = auto(); SORT = auto()
  def __repr__(self): return self.name


# the axes of an attention kernel's space (batch, query, key, q/k feature, v feature) each part's value varies along
ATTENTION_AXES = {"out": {0, 1, 4}, "lse": {0, 1}, "dq": {0, 1, 3}, "delta": {0, 1}, "dk": {0, 2, 3},
                  "dv": {0, 2, 4}}


class Gather(NamedTuple):
  """A gather's load: the address moves by `index * stride`; an index outside [0, rows) reads nothing."""
  stride: int
  rows: int


class Access(NamedTuple):
  """Where a LOAD reads or a STORE writes: a buffer slot, seen through a view of the iteration space."""
  slot: int
  view: ShapeTracker
  gather: Gather | None = None


class Contraction(NamedTuple):
  """A DOT's axes: the rows of its result, its columns, and the axis summed."""
  m: int
  n: int
  k: int


class KNode:
  """An AST node. Hash-consed (see ir/graph.py): equal nodes are one object, shared by every kernel and graph that
  makes it, so a node carries no user lines: a schedule item knows which lines of the graph being run each of its
  kernel's nodes computes (`ScheduleItem.origins`)."""
  __slots__ = ("op", "dtype", "srcs", "arg", "__weakref__")
  _table = ConsTable()

  def __new__(cls, op: Op | K, dtype: DType, srcs: tuple = (), arg: Any = None):
    key = (op, dtype, tuple(id(s) for s in srcs), exact(arg))
    if (hit := cls._table.get(key)) is not None: return hit
    self = super().__new__(cls)
    self.op, self.dtype, self.srcs, self.arg = op, dtype, tuple(srcs), arg
    cls._table.add(key, self)
    return self

  def __repr__(self): return f"KNode({self.op.name}, {self.dtype.name}, arg={self.arg})"
  def __reduce__(self): return KNode, (self.op, self.dtype, self.srcs, self.arg)   # unpickled: hash-consed again

  @property
  def view(self) -> ShapeTracker:
    """The view of the iteration space a LOAD, STORE, VALID or INDEX goes through."""
    return self.arg.view if self.op in (K.LOAD, K.STORE) else self.arg

  def walk(self) -> list["KNode"]:
    """Nodes below and including self, sources first, each once."""
    return toposort([self])


@dataclass(frozen=True)
class BufSpec:
  dtype: DType
  size: int


@dataclass(frozen=True, eq=False)   # compared and hashed by identity: a cache lookup per launch stays cheap
class Kernel:
  name: str
  shape: tuple            # iteration space: output axes, then reduce axes
  n_reduce: int
  bufs: tuple             # BufSpec per buffer slot; slots [0, n_out) are outputs
  n_out: int
  stores: tuple           # KNode STORE roots
  scalars: tuple = ()     # dtype of each scalar argument
  # a horizontal fusion: kernels that share no data, each over its own iteration space, with this kernel's buffers,
  # scalars and output count, that one launch runs side by side; `stores` are theirs in order (`shape` is ())
  parts: tuple = ()

  @cached_property
  def nodes(self) -> list[KNode]: return toposort(self.stores)

  @cached_property   # read at every launch
  def scattered(self) -> tuple[int, ...]:
    """The output slots that scatter-add stores accumulate into: zeroed before the kernel runs."""
    return tuple(s.arg.slot for s in self.stores if s.arg.gather is not None)

  @cached_property
  def spans(self) -> tuple[tuple[int, int], ...]:
    """Per buffer slot, the half-open range of elements the kernel may read or write: the bounds of its loads' and
    stores' addresses (a superset where an index divides or wraps); (0, 0) for a slot it never touches. Check mode
    copies and compares only these: a kernel reading one parameter of a flat buffer touches a sliver of it."""
    lo, hi = [b.size for b in self.bufs], [0] * len(self.bufs)
    for n in self.nodes:
      if n.op not in (K.LOAD, K.STORE) or (reach := n.view.bounds()) is None: continue
      first, last = reach
      if (g := n.arg.gather) is not None:
        first, last = first + min(0, g.stride * (g.rows - 1)), last + max(0, g.stride * (g.rows - 1))
      s = n.arg.slot
      lo[s], hi[s] = min(lo[s], max(first, 0)), max(hi[s], min(last + 1, self.bufs[s].size))
    return tuple((a, b) if a < b else (0, 0) for a, b in zip(lo, hi))

  @property
  def reduces(self) -> list[KNode]: return [n for n in self.nodes if n.op in REDUCE or n.op is K.DOT]

  @property
  def header(self) -> list[str]:
    """The text form's first lines: name, iteration space, buffers (outputs starred), scalar arguments."""
    lines = [f"kernel {self.name} " + (f"parts={len(self.parts)}" if self.parts else
                                        f"shape={list(self.shape)} reduce_axes={self.n_reduce}"),
             "  bufs: " + ", ".join(f"b{i}:{b.dtype.name}[{b.size}]{'*' if i < self.n_out else ''}"
                                   for i, b in enumerate(self.bufs))]
    if self.scalars: lines.append("  scalars: " + ", ".join(f"s{i}:{d.name}" for i, d in enumerate(self.scalars)))
    lines += [f"  part {i}: {p.name} shape={list(p.shape)} reduce_axes={p.n_reduce} stores "
              + ", ".join(f"b{s.arg.slot}" for s in p.stores) for i, p in enumerate(self.parts)]
    return lines

  @cached_property
  def text(self) -> str:
    """Stable text form; also the cache key of the kernel's lowering."""
    names, lines = {}, self.header
    for i, n in enumerate(self.nodes):
      names[n] = f"%{i}"
      srcs = " ".join(names[s] for s in n.srcs)
      lines.append("  " + " ".join(p for p in (f"%{i} = {n.op.name} {n.dtype.name}", srcs, arg_text(n)) if p))
    return "\n".join(lines)

  def __str__(self): return self.text

  def verify(self):
    """Check the kernel AST's contract; raises InvalidIR naming the kernel and the node."""
    def fail(msg): raise InvalidIR(f"kernel {self.name}: {msg}\n{self.text}")
    if len(self.stores) != self.n_out or [s.arg.slot for s in self.stores] != list(range(self.n_out)):
      fail("its stores are not the buffer slots 0..n_out-1, one each")
    if not self.parts: return self._verify_space(fail)
    if tuple(s for p in self.parts for s in p.stores) != self.stores or self.shape or self.n_reduce:
      fail("its stores are not its parts' stores, in order (and a combined kernel has no iteration space)")
    for p in self.parts:
      if p.parts or not p.stores or (p.bufs, p.n_out, p.scalars) != (self.bufs, self.n_out, self.scalars):
        fail(f"its part {p.name} is combined, stores nothing or has buffers or scalars of its own")
      p._verify_space(fail)

  def _verify_space(self, fail):
    """The checks of the nodes against the kernel's iteration space (a combined kernel's, against each part's)."""
    rank, reduce_axes = len(self.shape), tuple(range(len(self.shape) - self.n_reduce, len(self.shape)))
    for n in self.nodes:
      if n.op in (K.LOAD, K.STORE, K.VALID, K.INDEX):
        st = n.view
        if len(st.shape) != rank or any(a != b and a != 1 for a, b in zip(st.shape, self.shape)):
          fail(f"{n} is seen through shape {st.shape}, not the iteration space {self.shape}")
      if n.op is K.LOAD and not (self.n_out <= n.arg.slot < len(self.bufs) and self.bufs[n.arg.slot].dtype == n.dtype):
        fail(f"{n} reads slot {n.arg.slot}, which is no input of its dtype")
      if n.op is K.SCALAR and not (n.arg < len(self.scalars) and self.scalars[n.arg] == n.dtype):
        fail(f"{n} is no scalar argument of its dtype")
      if n.op in REDUCE and tuple(n.arg) != reduce_axes: fail(f"{n} reduces {n.arg}, not the reduce axes {reduce_axes}")
      if n.op is K.DOT and contraction_axes(n.srcs, self.shape, self.n_reduce) != n.arg:
        fail(f"{n} is no contraction with row, column and sum axes {n.arg}")
      if n.op is K.ATTENTION and (rank != 5 or self.n_reduce or len(n.srcs) != 3 + 3 * n.arg.backward + n.arg.masked
                                  or len({x.dtype for x in n.srcs[:3]}) != 1):
        fail(f"{n} is no attention over the space (batch, query, key, d, e) with sources q, k, v of one dtype"
             + (", dO, lse, delta" if n.arg.backward else "") + (", mask" if n.arg.masked else ""))
      if n.op in (K.SCAN, K.SORT) and (self.n_reduce != 1 or n.arg.axis != rank - 1):
        fail(f"{n} does not run along the last axis, the one reduce axis")
    for s in self.stores:
      if s.arg.gather is not None and (len(s.srcs) != 2 or not s.srcs[1].dtype.is_int):
        fail(f"{s} scatters by no integer index")
    for s in self.stores:   # a per-row store (size 1 on the reduce axes) holds one value per row
      if extra := varying_axes(s.srcs[0]) - {a for a, size in enumerate(s.view.shape) if size > 1}:
        fail(f"{s} stores a value that varies along axes {sorted(extra)} through a view of size 1 there")


def arg_text(n: KNode) -> str:
  """A node's argument as the text form prints it ("" for none)."""
  if n.op in (K.LOAD, K.STORE) and n.arg.gather:
    return f"b{n.arg.slot}{' +=' if n.op is K.STORE else ''} {n.arg.view} + index*{n.arg.gather.stride} " \
           f"(rows {n.arg.gather.rows})"
  if n.op in (K.LOAD, K.STORE): return f"b{n.arg.slot} {n.arg.view}"
  if n.op in (K.DOT, K.ATTENTION, K.SCAN, K.SORT): return str(tuple(n.arg))
  if n.op is K.CONST: return repr(n.arg)
  if n.op is K.SCALAR: return f"s{n.arg}"
  return "" if n.op is Op.CAST or n.arg is None else str(n.arg)


def axis_vars(shape) -> list[Lin]:
  """One index variable per axis of an iteration space (the constant 0 for a size-1 axis)."""
  return [Lin.of(Var(d, 0, s - 1)) if s > 1 else Lin.of(0) for d, s in enumerate(shape)]


def varying_axes(node: KNode) -> set[int]:
  """Kernel axes a value varies along (a reduction's result does not vary along the axes it reduces)."""
  def axes(n: KNode, srcs: list) -> frozenset:
    out = frozenset().union(*srcs)   # a gather's index is a source of its load
    if n.op in (K.LOAD, K.VALID, K.INDEX):
      idx, conds = n.view.index(axis_vars(n.view.shape))
      out |= {v.axis for v in idx.vars() | {v for c in (conds or []) for v in c.x.vars()}}
    elif n.op in REDUCE: out -= set(n.arg)
    elif n.op is K.DOT: out -= {n.arg.k} if isinstance(n.arg, Contraction) else set(n.arg)   # before canonicalization
    elif n.op is K.ATTENTION: out &= ATTENTION_AXES[n.arg.part]
    elif n.op in (K.SCAN, K.SORT): out |= {n.arg.axis}
    return out
  return set(evaluate(node, lambda n: n.srcs, axes, {}))


def axes_of(node: KNode) -> set[int] | None:
  """Kernel axes a value varies along; None if it contains a reduction."""
  return None if any(n.op in REDUCE or n.op in (K.DOT, K.ATTENTION) for n in node.walk()) else varying_axes(node)



ALIGNED_BYTES = 16   # every buffer a kernel is passed starts at a multiple of this


def rebased(kernel: Kernel) -> tuple[Kernel, tuple[int, ...]]:
  """The kernel with each buffer slot's addresses counted from the 16-byte boundary at or before the first element it
  touches and its size the span from there (`Kernel.spans`), and those starts per slot (() where all are 0): the
  launch passes each buffer from there. A kernel reading one parameter of a flat buffer is then the same kernel for
  every parameter of that shape and alignment, compiled and launched for the first time once, not once per offset."""
  spans = kernel.spans
  # from a 16-byte boundary, so a slot starts as aligned as its buffer (what a tensor descriptor needs); a scattered
  # slot from its first element, since the launch zeroes the whole slot first
  scattered = set(kernel.scattered)
  starts = tuple(lo if i in scattered else lo - lo % max(1, ALIGNED_BYTES // b.dtype.itemsize)
                 for i, (b, (lo, _)) in enumerate(zip(kernel.bufs, spans)))
  bufs = tuple(BufSpec(b.dtype, hi - start) if hi > lo else b for b, start, (lo, hi) in zip(kernel.bufs, starts, spans))
  if not any(starts) and bufs == kernel.bufs: return kernel, ()
  def moved(k: KNode, srcs: tuple) -> KNode:
    if k.op not in (K.LOAD, K.STORE) or not starts[k.arg.slot]: return KNode(k.op, k.dtype, srcs, k.arg)
    inner, *outer = k.arg.view.views
    view = ShapeTracker((replace(inner, offset=inner.offset - starts[k.arg.slot]), *outer))
    return KNode(k.op, k.dtype, srcs, k.arg._replace(view=view))
  memo: dict = {}
  parts = tuple(replace(p, bufs=bufs, stores=tuple(rewrite(list(p.stores), moved, memo))) for p in kernel.parts)
  stores = tuple(s for p in parts for s in p.stores) if parts else tuple(rewrite(list(kernel.stores), moved, memo))
  return replace(kernel, bufs=bufs, stores=stores, parts=parts), starts if any(starts) else ()

def contraction_axes(operands, shape: tuple, n_reduce: int) -> Contraction | None:
  """(m, n, k) when summing the product of `operands` over the last axis of `shape` is a matrix product laid out
  (batch.., m, k) @ (batch.., k, n): one reduce axis, the first operand alone varies along m (its last axis the
  other does not vary along), the second alone along n, both along k; every other axis is a batch axis, before m
  and n, along which one operand may be broadcast (a weight shared by every image of a convolution); else None."""
  a, b = operands
  if n_reduce != 1 or not a.dtype.is_float: return None
  da, db = axes_of(a), axes_of(b)
  kk = len(shape) - 1
  if da is None or db is None or kk not in da or kk not in db: return None
  ma, nb = da - db - {kk}, db - da - {kk}
  if not ma or not nb: return None
  m, n = max(ma), max(nb)
  batch = set(range(kk)) - {m, n}
  if any(x > min(m, n) for x in batch): return None
  return Contraction(m, n, kk)
