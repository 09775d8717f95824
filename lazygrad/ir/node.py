"""Lazy graph nodes: immutable and hash-consed, so equal subgraphs are one object.

Stage 1 of the pipeline. Input: Tensor ops (built through `ir/build.py`). Output: a DAG of `LazyNode`s over the
primitives of `ir/ops.py`, each with the user's file:line and its device. Contract (`verify`): every node's shape,
dtype and device are what its op and sources make them; sources of a realized node are not read."""
from __future__ import annotations
import itertools, weakref
from typing import Any
from ..dtypes import DType
from ..helpers import user_frame, fmt_loc, fmt_origin, prod, exact, InvalidIR
from .ops import Op, MOVEMENT, ALU, COMPARE, REDUCE, SCAN_OPS
from .view import view_of
from . import graph
from .graph import ConsTable

_table = ConsTable()
_buffer_ids = itertools.count()
# backward node -> the forward node whose gradient rule built it (recorded by autograd, read by the drawings): a side
# table, so node creation pays nothing for it; weak in its keys, so an entry goes with its backward node
grad_origin: "weakref.WeakKeyDictionary[LazyNode, LazyNode]" = weakref.WeakKeyDictionary()


class LazyNode:
  """One node of the lazy graph: `(op, dtype, shape, srcs, arg)`, on `device` (a canonical device name).

  A source node's device is given (a BUFFER's is its buffer's; a CONST's or IOTA's is part of its identity, so equal
  constants on two devices are two nodes), a COPY's is its arg, any other node's is its sources'. `loc` is the user's
  file:line that created it. `buffer` is set once the node was realized: later schedules load it instead of
  recomputing it. `version` is the buffer's write count when it received this node's value: an in-place write into
  the buffer (an ASSIGN) makes every older node on it unrealized, so a computed node is computed again from its
  sources and an overwritten BUFFER node can no longer be read (see runtime/realize.py)."""
  __slots__ = ("op", "dtype", "shape", "srcs", "arg", "device", "loc", "buffer", "version", "key", "__weakref__")

  def __new__(cls, op: Op, dtype: DType, shape: tuple, srcs: tuple = (), arg: Any = None, loc=None,
              device: str | None = None):
    if srcs: device = arg if op is Op.COPY else srcs[0].device
    elif device is None: raise InvalidIR(f"lazy graph: a {op.name} node needs its device")
    key = (op, dtype, shape, tuple(id(s) for s in srcs), exact(arg), device)
    if op is not Op.BUFFER and (hit := _table.get(key)) is not None: return hit
    self = super().__new__(cls)
    self.op, self.dtype, self.shape, self.srcs, self.arg, self.device = op, dtype, shape, srcs, arg, device
    self.loc, self.buffer, self.version, self.key = loc or user_frame(), None, 0, key
    if op is not Op.BUFFER: _table.add(key, self)
    return self

  @staticmethod
  def from_buffer(buffer, shape: tuple, loc=None) -> "LazyNode":
    n = LazyNode(Op.BUFFER, buffer.dtype, shape, (), next(_buffer_ids), loc, buffer.device.name)
    n.set_buffer(buffer)
    return n

  def set_buffer(self, buffer):
    """This node's value is now in `buffer`, as the buffer holds it today."""
    self.buffer, self.version = buffer, buffer.version

  @property
  def realized(self) -> bool:
    b = self.buffer
    return b is not None and self.version == b.version
  @property
  def numel(self) -> int: return prod(self.shape)

  def __repr__(self):
    arg = "" if self.arg is None else f", arg={self.arg}"
    return f"<{self.op.name} {self.dtype.name}{list(self.shape)}{arg} @{fmt_loc(self.loc)}>"


def movement_shape(op: Op, shape: tuple, arg) -> tuple:
  """The shape a movement op makes of `shape`."""
  if op in (Op.RESHAPE, Op.EXPAND): return tuple(arg)
  if op is Op.PERMUTE: return tuple(shape[i] for i in arg)
  if op is Op.PAD: return tuple(s + b + a for s, (b, a) in zip(shape, arg))
  if op is Op.SHRINK: return tuple(hi - lo for lo, hi in arg)
  return shape   # FLIP, DETACH


def _attention_contract(n: LazyNode) -> str | None:
  a, s = n.arg, n.srcs
  if len(s) != 3 + 3 * a.backward + a.masked: return f"{len(s)} sources for attention part {a.part!r}"
  q, k, v = s[:3]
  lead, (tq, d), (tk, dv) = q.shape[:-2], q.shape[-2:], v.shape[-2:]
  want = [lead + (tq, d), lead + (tk, d), lead + (tk, dv)]
  if a.backward: want += [lead + (tq, dv), lead + (tq,), lead + (tq, dv) if a.query_major else lead + (tq,)]
  if a.masked: want.append(lead + (tq, tk))
  if [x.shape for x in s] != want: return f"attention sources of shapes {[x.shape for x in s]}, want {want}"
  if not (q.dtype.is_float and q.dtype == k.dtype == v.dtype): return "attention's q, k, v share one float dtype"
  if a.masked and not (s[-1].dtype.is_bool or s[-1].dtype.is_float): return "an attention mask is bool or float"
  shape = {"out": lead + (tq, dv), "lse": lead + (tq,), "dq": q.shape, "delta": lead + (tq,), "dk": k.shape,
           "dv": v.shape}[a.part]
  return None if n.shape == shape else f"attention part {a.part!r} of shape {n.shape}, want {shape}"


def _contract(n: LazyNode) -> str | None:
  """What is wrong with one node of the lazy graph, or None (its shape, dtype and device as its op and sources make
  them)."""
  s, op = n.srcs, n.op
  if op is Op.COPY:
    if n.device != n.arg or s[0].device == n.device: return f"a COPY from {s[0].device} to {n.arg} is on {n.device}"
  elif any(x.device != n.device for x in s):
    return f"sources on devices {[x.device for x in s]}, the node on {n.device} (only a COPY changes devices)"
  if op in (Op.BUFFER, Op.CONST, Op.IOTA):
    if s: return "a source node has sources"
    if op is Op.IOTA and (len(n.shape) != 1 or not n.dtype.is_int): return "an IOTA is 1-d and integer"
    return None
  if op in ALU:
    if any(x.shape != n.shape for x in s): return "ALU sources must have the node's shape"
    if op is Op.WHERE: ok = s[0].dtype.is_bool and s[1].dtype == s[2].dtype == n.dtype
    elif op in COMPARE: ok = n.dtype.is_bool and s[0].dtype == s[1].dtype
    else: ok = op is Op.CAST or all(x.dtype == n.dtype for x in s)
    return None if ok else f"dtypes {[x.dtype.name for x in s]} -> {n.dtype.name} do not fit {op.name}"
  if op in MOVEMENT:
    if op is Op.RESHAPE and prod(n.arg) != prod(s[0].shape): return f"reshape of {s[0].shape} to {n.arg}"
    if op is Op.EXPAND and (len(n.arg) != len(s[0].shape) or any(a not in (1, b) for a, b in zip(s[0].shape, n.arg))):
      return f"expand of {s[0].shape} to {n.arg}"
    want = movement_shape(op, s[0].shape, n.arg)
  elif op in REDUCE:
    if list(n.arg) != sorted(set(n.arg)) or any(not 0 <= a < len(s[0].shape) for a in n.arg): return f"bad axes {n.arg}"
    want = tuple(1 if i in n.arg else x for i, x in enumerate(s[0].shape))
  elif op is Op.GATHER:
    if not s[1].dtype.is_int: return "a GATHER's index is integer"
    want = s[1].shape + s[0].shape[1:]
  elif op is Op.CHECK:
    if s[1].shape != () or not s[1].dtype.is_int: return "a CHECK's flag is an integer scalar"
    want = s[0].shape
  elif op is Op.ATTENTION: return _attention_contract(n)
  elif op in (Op.SCAN, Op.SORT):
    a, want = n.arg, s[0].shape
    if not 0 <= a.axis < len(want): return f"{op.name.lower()} along axis {a.axis} of shape {want}"
    if op is Op.SCAN and (a.op not in SCAN_OPS or (a.op == "logaddexp" and not n.dtype.is_float)):
      return f"a {a.op!r} scan of {n.dtype.name}"
    if op is Op.SORT and a.part not in ("values", "indices"): return f"a sort part {a.part!r}"
    if op is Op.SORT and a.part == "indices":
      return None if n.shape == want and n.dtype.name == "int64" else "a sort's indices are int64 of its source's shape"
  elif op is Op.SCATTER_ADD:
    if len(s[0].shape) != 1 or not s[0].dtype.is_int or s[1].shape[:1] != s[0].shape:
      return f"a SCATTER_ADD's index is 1-d integer, a row per value row: got {s[0].shape} and {s[1].shape}"
    want, s = (n.arg,) + s[1].shape[1:], s[1:]
  elif op is Op.ASSIGN:
    if s[0].shape != n.shape: return "an ASSIGN has its target's shape"
    if view_of(n.shape, n.arg or ()).shape != s[1].shape: return "an ASSIGN's value has the shape of its region"
    want = n.shape
  else: want = s[0].shape   # CONTIGUOUS, DETACH, COPY
  if n.shape != tuple(want): return f"shape {n.shape}, its op and sources make {tuple(want)}"
  return None if n.dtype == s[0].dtype else f"dtype {n.dtype.name}, its source's is {s[0].dtype.name}"


def verify(order: list[LazyNode]):
  """Check the lazy graph's contract for each (unrealized) node; raises InvalidIR naming the node."""
  for n in order:
    if not n.realized and (err := _contract(n)) is not None: raise InvalidIR(f"lazy graph: {n}: {err}")


def toposort(roots, through_realized: bool = False) -> list[LazyNode]:
  """Nodes reachable from roots, sources first. Realized nodes are leaves (what they were computed from is not
  visited) unless `through_realized`."""
  if through_realized: return graph.toposort(roots)
  return graph.toposort(roots, lambda n: () if n.realized else n.srcs)


def graph_text(roots) -> str:
  """Stable text form of a lazy graph below `roots` (realized nodes are leaves), one typed SSA line per node:
  `%7: f32[16,768] = add %5 %6   # model.py:42 (Tensor.add)`. A realized node prints as the buffer it is, a
  source node with its device; a node of the backward pass names the forward node it differentiates (`grad of mul
  @ model.py:40 (Tensor.mul)`); constants are folded as the graph is built."""
  order, names, lines = toposort(roots), {}, []
  for i, n in enumerate(order):
    names[id(n)] = f"%{i}"
    if n.realized: rhs = f"buffer {n.device}"
    else:
      op = n.op.name.lower()
      arg = "" if n.arg is None or n.op is Op.BUFFER else " " + (repr(n.arg) if n.op is Op.CONST else str(n.arg))
      rhs = " ".join([op] + [names[id(s)] for s in n.srcs]) + arg + (f" {n.device}" if not n.srcs else "")
    head = f"%{i}: {n.dtype.short}[{','.join(map(str, n.shape))}] = {rhs}"
    fwd = grad_origin.get(n)
    grad = f" grad of {fwd.op.name.lower()} @ {fmt_origin(fwd.loc)}" if fwd is not None else ""
    lines.append(f"{head:<44s} # {fmt_origin(n.loc)}{grad}")
  return "\n".join(lines)
