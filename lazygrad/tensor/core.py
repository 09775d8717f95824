"""The state of a Tensor and what every op builds on: its lazy node (own, or derived from a view's base), autograd's
entry points (backward, gradient), in-place updates (assign, the `x.op_()` forms), realization and host reads, and
the write ordering that keeps in-place updates from changing values built before them (`realize`, `overwrite`).

The ops live in the mixins of the other modules of this package; `Tensor` (in `__init__`) is this class with them.
No module of the package imports that class: every Tensor is a TensorCore, so they test `isinstance(x, TensorCore)`,
and they make tensors with `type(self)(...)` or the constructors, which are classmethods (`cls.full(...)`, and in an
op `self.arange(...)`, `self._const(...)`)."""
from __future__ import annotations
import weakref
from typing import TYPE_CHECKING
import numpy as np
from .. import autograd, dtypes
from ..dtypes import DType, to_dtype
from ..helpers import prod, user_frame, IdWeakSet, ShapeError, JitError
from ..ir.node import LazyNode, toposort
from ..ir.view import view_of
from ..ir.ops import Op, ALU
from ..ir import build as B
from ..runtime.device import canonical_name
from ..runtime import realize as _engine
from .args import _err, _shape_str, _broadcast_shape, _norm_dim
if TYPE_CHECKING: from ..runtime.buffer import Buffer

_roots = IdWeakSet()      # live tensors that are not views (they hold a node of their own)
_assigned = IdWeakSet()   # tensors whose node is an in-place update


class TensorCore:
  """A Tensor's state and the machinery under its ops (see the module docstring; the API is documented on Tensor)."""
  __slots__ = ("_node", "_base", "_path", "_src", "_past", "_requires_grad", "grad", "is_leaf", "_grad_into",
               "__weakref__")
  __array_priority__ = 1000   # numpy scalars on the left defer to our operators

  def __init__(self, data, dtype=None, requires_grad: bool = False, device: str | None = None):
    if isinstance(data, LazyNode): node = data
    elif isinstance(data, TensorCore):   # a new tensor with the values data has now (as torch.tensor(t) copies)
      src = data if dtype is None else data.cast(dtype)
      node = LazyNode(Op.DETACH, src.dtype, src.shape, (src.node,))
    else: node = _host_node(data, dtype, device)
    if device is not None: node = B.copy(node, canonical_name(device))   # a node or tensor given: moved there
    if node.op is Op.BUFFER and not _takes_buffer(self, node.buffer):   # someone else's memory: hold its value
      node = LazyNode(Op.DETACH, node.dtype, node.shape, (node,))
    self._node, self._base, self._path, self._src, self._past = node, None, (), None, None
    self.grad, self.is_leaf, self._requires_grad, self._grad_into = None, True, False, None
    _roots.add(self)
    self.requires_grad = requires_grad

  @classmethod
  def _wrap(cls, node: LazyNode) -> "Tensor":
    """A tensor for an existing node, not requiring grad (autograd's temporaries)."""
    t = cls.__new__(cls)
    t._node, t._base, t._path, t._src, t._past = node, None, (), None, None
    t.grad, t.is_leaf, t._requires_grad, t._grad_into = None, True, False, None
    return t

  # ---------------------------------------------------------------- the node: own, or derived from a view's base
  @property
  def node(self) -> LazyNode:
    """This tensor's lazy node. A view's node is its path applied to its base's current node."""
    base = self._rooted()
    if base is None: return self._node
    if self._src is not base._node: self._node, self._src = B.apply_path(base._node, self._path, self._node.loc), base._node
    return self._node

  @node.setter
  def node(self, node: LazyNode):
    if self._base is not None:
      raise _err(RuntimeError, "node", "a view's node follows its base and cannot be set", "use assign()")
    self._node = node

  def _rooted(self) -> "TensorCore | None":
    """This view's base, after moving a view of a tensor that has become a view itself (see `_become_view`) onto
    that one's base: a view's base always has memory of its own."""
    base = self._base
    if base is not None and base._base is not None:
      self._base, self._path, self._src = base._base, self._path + base._path, None
      base = self._base
    return base

  def _become_view(self, view: "TensorCore"):
    """Make this tensor, one with memory of its own, the view `view` is (of another tensor's memory, which holds
    its values already), keeping its identity, requires_grad and grad: how an optimizer gathers parameters into
    one flat buffer without changing the tensors a model holds."""
    if self._base is not None or not _in_memory(self._node) or view.shape != self.shape or view.dtype != self.dtype:
      raise _err(RuntimeError, "_become_view", "only a tensor with memory of its own can become a view of its shape")
    self._node, self._base, self._path, self._src, self._past = view._node, view._base, view._path, view._src, None
    _roots.discard(self)
    _assigned.discard(self)

  def _view(self, node: LazyNode, path: tuple, requires_grad: bool) -> "Tensor":
    """A view of this tensor's base: `node` is `path` ((op, arg) pairs, outermost first) applied to self."""
    t = self._wrap(node)
    base = self if (base := self._rooted()) is None else base
    t._base, t._path, t._src = base, path + self._path, base._node
    t._requires_grad = requires_grad
    t.is_leaf = not requires_grad
    return t

  def _root(self) -> "Tensor":
    """Self as a tensor of its own (a pad or flip is a new tensor in PyTorch, not a view)."""
    if self._base is not None:
      self._base, self._path, self._src = None, (), None
      _roots.add(self)
    return self

  def _fresh(self) -> LazyNode:
    """A node of self's value in new memory of its own: unique, so nothing else shares its identity or buffer."""
    target = _engine.empty(self.dtype, self.shape, self.device, self.node.loc)
    return LazyNode(Op.ASSIGN, self.dtype, self.shape, (target, self.node))

  # ---------------------------------------------------------------- autograd
  @property
  def requires_grad(self) -> bool: return self._requires_grad

  @requires_grad.setter
  def requires_grad(self, flag: bool):
    if flag and not (self.dtype.is_float):
      raise _err(RuntimeError, "requires_grad", f"only floating point tensors can require gradients, this "
                 f"{_shape_str(self.shape)} tensor is {self.dtype.name}", "cast with .float() first")
    if not flag and not self.is_leaf:
      raise _err(RuntimeError, "requires_grad", "you can only change requires_grad flags of leaf tensors",
                 "use .detach() to get a tensor outside the graph")
    if flag and not self._requires_grad and not _in_memory(self._root()._node):
      # a leaf's gradient is found by its node: a shared one (equal constants are one node) would merge gradients
      self._node = self._fresh()
    self._requires_grad = bool(flag)
    if flag and self.is_leaf: autograd.grad_leaves.add(self)
    else: autograd.grad_leaves.discard(self)

  def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
    self.requires_grad = requires_grad
    return self

  def detach(self) -> "Tensor":
    """The same values, outside the autograd graph: a view, so in-place updates of either show in both."""
    return self._view(LazyNode(Op.DETACH, self.dtype, self.shape, (self.node,)), ((Op.DETACH, None),), False)

  def _versions(self) -> list[LazyNode]:
    """Every node that has stood for this tensor and may still be read by a graph: the current one, the targets of
    in-place updates not yet realized, and (for a leaf) the nodes it held before them. Gradients to any of them are
    gradients to this tensor."""
    out, n = [], self.node
    while True:
      out.append(n)
      if n.op is not Op.ASSIGN: break
      n = n.srcs[0]
    return out + list(self._past or ())

  def _check_backward(self, op: str, gradient) -> "Tensor":
    if not self.requires_grad:
      raise _err(RuntimeError, op, f"this {self.node.op.name} tensor of shape {_shape_str(self.shape)} does not "
                 "require grad and has no gradient function", "make a leaf with requires_grad=True before computing it")
    if gradient is None:
      if self.numel() != 1:
        raise _err(RuntimeError, op, f"grad can be implicitly created only for scalar outputs, this {self.node.op.name} "
                   f"tensor has shape {_shape_str(self.shape)}", "pass gradient= of the same shape, or reduce first")
      return self._const(1.0, self.shape, self.dtype, device=self.device)
    gradient = gradient if isinstance(gradient, TensorCore) else type(self)(gradient, device=self.device)
    if gradient.shape != self.shape:
      raise _err(ShapeError, op, f"gradient shape {_shape_str(gradient.shape)} does not match the output shape "
                 f"{_shape_str(self.shape)}")
    return gradient.cast(self.dtype)

  def backward(self, gradient: "Tensor | None" = None, retain_graph: bool = False) -> None:
    """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad (lazily: nothing runs yet)."""
    g = self._check_backward("backward", gradient)
    leaves, ready = list(autograd.grad_leaves), []
    grads = self._gradients([t._versions() for t in leaves], g, ready)
    # in the order the backward completes them (the schedule orders writes into one flat gradient buffer only where
    # they may overlap: each parameter's gradient is written as soon as it is computed)
    for leaf, lg in ((leaves[i], grads[i]) for i in ready):
      if lg is None: continue
      lg = lg.cast(leaf.dtype)
      total = lg if leaf.grad is None else leaf.grad + lg
      # a leaf whose gradient has a place in an optimizer's flat buffer: written there, `.grad` is that view
      leaf.grad = total if leaf._grad_into is None else leaf._grad_into.assign(total)

  def gradient(self, *targets: "Tensor", gradient: "Tensor | None" = None) -> list["Tensor"]:
    """d(self)/d(target) for each target as new lazy tensors; `.grad` is left alone. Unused targets get zeros."""
    g = self._check_backward("gradient", gradient)
    grads = self._gradients([t._versions() for t in targets], g)
    return [t.zeros_like() if gr is None else gr.cast(t.dtype) for t, gr in zip(targets, grads)]

  def _gradients(self, targets: list[list[LazyNode]], g: "Tensor", ready: list[int] | None = None) -> list["Tensor | None"]:
    return [None if n is None else self._result(n, ()) for n in autograd.gradients(self.node, targets, g.node, ready)]

  # ---------------------------------------------------------------- properties
  # (from _node: a view's shape and dtype stay what they were when it was made, so its node need not be derived)
  @property
  def shape(self) -> tuple: return self._node.shape
  @property
  def dtype(self) -> DType: return self._node.dtype
  @property
  def ndim(self) -> int: return len(self._node.shape)
  @property
  def device(self) -> str: return self._node.device
  def numel(self) -> int: return prod(self.shape)
  nelement = numel
  def dim(self) -> int: return len(self._node.shape)
  ndimension = dim
  def is_floating_point(self) -> bool: return self.dtype.is_float

  @property
  def data(self) -> "Tensor":
    """torch's .data: this tensor's values without autograd, sharing its memory (`p.data -= lr * g` updates p)."""
    return self.detach()

  @data.setter
  def data(self, value: "Tensor"):
    with autograd.no_grad(): self.assign(value)
  def size(self, dim=None): return self.shape if dim is None else self.shape[_norm_dim("size", dim, self.ndim, self.shape)]
  def __len__(self):
    if not self.shape: raise _err(TypeError, "len", "len() of a 0-d tensor")
    return self.shape[0]
  def element_size(self) -> int: return self.dtype.itemsize

  def __repr__(self):
    body = np.array2string(self._host("repr"), separator=", ") if self.node.realized or self.numel() <= 64 else "<lazy>"
    return f"Tensor({body}, dtype={self.dtype.name})"

  # ---------------------------------------------------------------- realization
  def realize(self) -> "Tensor":
    """Compute this tensor (one schedule for everything it needs) and keep the result."""
    realize(self)
    return self

  def numpy(self) -> np.ndarray: return self._host("numpy")
  def item(self): return self._scalar("item")
  def tolist(self): return self._host("tolist").tolist()
  def __float__(self): return float(self._scalar("float"))
  def __int__(self): return int(self._scalar("int"))
  def __bool__(self): return bool(self._scalar("bool"))
  def __index__(self):
    if not self.dtype.is_int: raise _err(TypeError, "__index__", f"only integer tensors can be used as an index, got {self.dtype.name}")
    return int(self._scalar("__index__"))

  def _host(self, op: str) -> np.ndarray:
    """A copy of the values on the host; `op` is the user's call (for the error when a jit forbids reading)."""
    if (fn := _engine.jit_running()) is not None:
      raise _err(JitError, op, f"reads a tensor's value on the host inside {fn}, which lazygrad.jit is running to "
                 "capture its kernels: replays run only the kernels, so the value read now would be baked into every "
                 "later call", "return the tensor from the function and read it after the call")
    if self._rooted() is not None and _in_memory(self._base._node):
      # a view of memory: read a private copy, so that the view's own node stays a view of that memory (a node that
      # held a snapshot would be read by later graphs, and by every jit replay, in place of the memory)
      copy = self._wrap(self._fresh())
      realize(copy)
      node = copy._node
    else:
      node = self.node   # what realize computes (after it, a view may see its base through a new node)
      realize(self)
    _engine.raise_failed_checks()
    return np.array(node.buffer.numpy()[:self.numel()], copy=True).reshape(self.shape)

  def _scalar(self, op: str):
    if self.numel() != 1:
      raise _err(ValueError, op, f"only a tensor with one element can be converted to a Python scalar, got shape "
                 f"{_shape_str(self.shape)}", "index or reduce it first")
    return self._host(op).reshape(()).item()

  # ---------------------------------------------------------------- graph building primitives
  def _new(self, op: Op, srcs: tuple, dtype: DType, shape: tuple, arg=None) -> "Tensor":
    for s in srcs:
      if s._node.device != self._node.device: self._check_device(op.name.lower(), s)
    if op in ALU: return self._result(B.alu(op, *(s.node for s in srcs), dtype=dtype), srcs)   # constants fold there
    return self._result(LazyNode(op, dtype, tuple(shape), tuple(s.node for s in srcs), arg), srcs)

  def _result(self, node: LazyNode, srcs: tuple) -> "Tensor":
    """A new tensor (not a view) holding `node`, computed from `srcs`. Made under no_grad from tensors requiring
    grad, its node is detached: gradients do not flow through it (autograd follows the graph, not flags)."""
    if not autograd.grad_mode.enabled and any(s._requires_grad for s in srcs):
      node = LazyNode(Op.DETACH, node.dtype, node.shape, (node,))
    t = self._wrap(node)
    t._requires_grad = node.dtype.is_float and autograd.grad_mode.enabled and any(s._requires_grad for s in srcs)
    t.is_leaf = not t._requires_grad
    _roots.add(t)
    return t

  def _check_device(self, op: str, other: "Tensor"):
    if other.device != self.device:
      raise _err(RuntimeError, op, f"expected all tensors on one device, got {self.device} (shape "
                 f"{_shape_str(self.shape)}) and {other.device} (shape {_shape_str(other.shape)})",
                 f"move one with .to({self.device!r}) or .to({other.device!r})")

  def _alu(self, op: Op, *others: "Tensor", dtype: DType | None = None) -> "Tensor":
    return self._new(op, (self,) + others, dtype or self.dtype, self.shape)

  def _mov(self, op: Op, shape: tuple, arg) -> "Tensor":
    """A view of self through one movement op."""
    if tuple(shape) == self.shape and op in (Op.RESHAPE, Op.EXPAND): return self
    node, path = B.movement(op, self.node, arg), ((op, arg),)
    if not autograd.grad_mode.enabled and self._requires_grad:   # made under no_grad: no gradient flows through it
      node, path = LazyNode(Op.DETACH, self.dtype, node.shape, (node,)), ((Op.DETACH, None),) + path
    return self._view(node, path, self.dtype.is_float and autograd.grad_mode.enabled and self._requires_grad)

  # ---------------------------------------------------------------- in-place updates
  def assign(self, value) -> "Tensor":
    """In-place update, as PyTorch's `copy_`: this tensor (and every view of its memory) holds `value` from now on.
    Memory is written when realized; tensors built before still see the old value."""
    base = self if (base := self._rooted()) is None else base
    if autograd.grad_mode.enabled and self.requires_grad and base.is_leaf and base.requires_grad:
      what = "a leaf tensor" if base is self else "a view of a leaf tensor"
      raise _err(RuntimeError, "assign", f"{what} of shape {_shape_str(base.shape)} that requires grad is being used "
                 "in an in-place operation", "wrap the update in `with lazygrad.no_grad():`")
    if not isinstance(value, TensorCore): value = self._const(value, self.shape, self.dtype, "assign", self.device)
    self._check_device("assign", value)
    if value.shape != self.shape:
      raise _err(ShapeError, "assign", f"value shape {_shape_str(value.shape)} does not match the tensor shape "
                 f"{_shape_str(self.shape)}", "expand or reshape the value first")
    value = value.cast(self.dtype)
    tracked = autograd.grad_mode.enabled and value.requires_grad
    # a write into memory must not carry gradients built under no_grad into the tensor's identity (see _versions)
    vnode = value.node if tracked else LazyNode(Op.DETACH, value.dtype, value.shape, (value.node,))
    if self._base is None and not _in_memory(self._node):   # no memory to write: a new value (never an alias)
      # a tensor requiring grad keeps its history through the update (as torch's does under no_grad)
      new = value.node if tracked or self._requires_grad else vnode
      self._node = LazyNode(Op.CONTIGUOUS, new.dtype, new.shape, (new,)) if _in_memory(new) else new
    elif self._base is None: self._node = LazyNode(Op.ASSIGN, self.dtype, self.shape, (self._node, vnode))
    else:
      region = tuple((op, arg) for op, arg in self._path if op is not Op.DETACH)
      _check_writable_view(self, base, region)
      if not _in_memory(base._node): base._node = base._fresh()
      base._node = LazyNode(Op.ASSIGN, base.dtype, base.shape, (base._node, vnode), region or None)
    if base._node.op is Op.ASSIGN: _assigned.add(base)
    if tracked and not self._requires_grad:
      for t in {id(t): t for t in (self, base)}.values(): t._requires_grad, t.is_leaf = True, False
    return self

  # in-place forms: `x += y`, `x.add_(y)`; the result must keep x's dtype and shape, as in torch
  def _inplace(self, op: str, result: "Tensor") -> "Tensor":
    if dtypes.kind_order(result.dtype) > dtypes.kind_order(self.dtype):
      raise _err(TypeError, op, f"result type {result.dtype.name} can't be cast to the {self.dtype.name} tensor it would "
                 "be written into in place", f"use the out-of-place form, or cast the tensor to {result.dtype.name} first")
    if result.shape != self.shape:
      raise _err(ShapeError, op, f"the result's shape {_shape_str(result.shape)} (broadcast) does not fit the tensor "
                 f"of shape {_shape_str(self.shape)} it would be written into in place", "use the out-of-place form")
    return self.assign(result)

  def copy_(self, src) -> "Tensor":
    """Write src (broadcast, cast to this dtype) into this tensor in place."""
    src = src if isinstance(src, TensorCore) else type(self)(src, device=self.device)
    return self.assign(src._broadcast_to(_broadcast_shape("copy_", self.shape, src.shape)))
  def fill_(self, value) -> "Tensor":
    """Every element becomes `value` (a number, or a one-element tensor, which stays on the device)."""
    if isinstance(value, TensorCore):
      if value.numel() != 1:
        raise _err(RuntimeError, "fill_", f"the value must have one element, got shape {_shape_str(value.shape)}")
      value = value.reshape(()).cast(self.dtype)._broadcast_to(self.shape)
    return self.assign(value)
  def zero_(self) -> "Tensor": return self.assign(0)


def _takes_buffer(t: TensorCore, buffer) -> bool:
  """Make `t` the owner of `buffer` unless another live tensor owns it (two owners would write each other's memory)."""
  owner = buffer.owner() if buffer.owner is not None else None
  if owner is not None and owner is not t: return False
  buffer.owner = weakref.ref(t)
  return True


def _host_node(data, dtype, device: str | None) -> LazyNode:
  """A BUFFER node with a copy of host `data` (a list, scalar or array; in `dtype`, default: the data's, float32 for
  Python floats) on `device` (None: the default)."""
  arr = data if isinstance(data, np.ndarray) else np.array(data)
  if not isinstance(data, np.ndarray) and arr.dtype == np.float64: arr = arr.astype(np.float32)
  try: dt = to_dtype(dtype) if dtype is not None else dtypes.from_numpy(arr.dtype)
  except TypeError as e:
    raise _err(TypeError, "Tensor", f"cannot make a tensor of {arr.dtype} data" if dtype is None else str(e)) from None
  arr = np.array(arr, dtype=dt.np, order="C")   # a copy: later changes to `data` do not leak in
  return _engine.upload(arr, dt, canonical_name(device))


def _in_memory(node: LazyNode) -> bool:
  """Is `node` a tensor's own memory (a buffer, maybe with in-place updates pending), which can be written?"""
  while node.op is Op.ASSIGN: node = node.srcs[0]
  return node.op is Op.BUFFER


def _check_writable_view(view: TensorCore, base: TensorCore, region: tuple):
  """An in-place update through a view writes each of its elements to one distinct place of the base."""
  st = view_of(base.shape, region)
  v = st.views[-1]
  if len(st.views) > 1 or v.mask is not None or any(stride == 0 for stride, s in zip(v.strides, v.shape) if s > 1):
    raise _err(RuntimeError, "assign", f"this view of shape {_shape_str(view.shape)} does not map its elements "
               f"one to one onto its base of shape {_shape_str(base.shape)} (it is expanded, padded or reshaped "
               "beyond a strided view), so it cannot be written in place", "clone() it first")


def _before_writes(targets: list[LazyNode]) -> tuple[list[TensorCore], list[LazyNode]]:
  """Tensors and nodes to realize with `targets` so that no value is lost to an in-place write: what one scan finds
  may write buffers of its own (a pending update of another tensor), so scan again until nothing is added."""
  keep, parts = [], {}
  while True:
    more, found, writes_more = _scan_writes(targets + [t.node for t in keep] + list(parts.values()))
    keep += more
    parts.update((id(p), p) for p in found)
    if not writes_more: return keep, list(parts.values())


def _scan_writes(targets: list[LazyNode]) -> tuple[list[TensorCore], list[LazyNode], bool]:
  """What must be computed before the in-place writes of the schedule of `targets`, and whether the tensors found
  bring in-place writes of their own.

  Each write makes a new version of its buffer (rank 1, 2... along a chain of assigns; 0 is what the buffer holds
  now). Live tensors still waiting to read a version the schedule overwrites are realized with it (a tensor holding
  such a buffer itself, not as a view, gets a copy of it first). A value that reads two versions of one buffer
  (`y += x` after `x += 1`, with y made from the old x) cannot be one kernel: the parts reading the older one are
  computed first, into memory of their own."""
  rank: dict[int, tuple[int, int]] = {}   # node -> (buffer, version) for the nodes whose versions the schedule makes
  for n in toposort(targets):
    if n.op is Op.ASSIGN and not n.realized:
      below = rank.get(id(n.srcs[0]), (id(n.srcs[0].buffer), 0))
      rank[id(n)] = (below[0], below[1] + 1)
  if not rank: return [], [], False
  final: dict[int, int] = {}
  for b, k in rank.values(): final[b] = max(final.get(b, 0), k)
  # what a node reads of the written buffers: a frozenset of (buffer, version), interned, so that the many nodes of
  # a training step that read the same versions of the same parameters share one set, and unions are memoized
  empty: frozenset = frozenset()
  interned: dict[frozenset, frozenset] = {empty: empty}
  unions: dict[tuple[int, int], frozenset] = {}
  several: dict[int, dict] = {}   # id(set) -> {buffer: versions} for the buffers it reads at two versions or more
  reads: dict[int, frozenset] = {}
  parts: dict[int, LazyNode] = {}
  other_writes = []             # unrealized assigns outside this schedule, met on the way

  def union(a: frozenset, b: frozenset) -> frozenset:
    if a is b or not b: return a
    if not a: return b
    if (u := unions.get((id(a), id(b)))) is None: u = unions[id(a), id(b)] = interned.setdefault(a | b, a | b)
    return u

  def newest(read: frozenset, b: int, default: int) -> int:
    return max((k for buf, k in read if buf == b), default=default)

  def at_several_versions(read: frozenset) -> dict:
    if (out := several.get(id(read))) is None:
      by: dict[int, set] = {}
      for b, k in read: by.setdefault(b, set()).add(k)
      out = several[id(read)] = {b: ks for b, ks in by.items() if len(ks) > 1}
    return out

  def merge(n: LazyNode) -> frozenset:
    out = empty
    for s in n.srcs:
      if id(s) not in parts: out = union(out, reads[id(s)])
    return out

  def visit(root: LazyNode):
    stack = [(root, False)]
    while stack:
      n, ready = stack.pop()
      if id(n) in reads: continue
      if id(n) in rank and ready:
        b, k = rank[id(n)]
        if newest(reads[id(n.srcs[1])], b, k - 1) < k - 1: parts[id(n.srcs[1])] = n.srcs[1]   # value of an older version
        reads[id(n)] = interned.setdefault(frozenset({(b, k)}), frozenset({(b, k)}))
      elif n.realized:
        read = frozenset({(id(n.buffer), 0)}) if id(n.buffer) in final else empty
        reads[id(n)] = interned.setdefault(read, read)
      elif not ready:
        stack.append((n, True))
        stack.extend((s, False) for s in n.srcs if id(s) not in reads)
      else:
        r, split = merge(n), len(parts)
        for b, ks in at_several_versions(r).items():
          top = max(ks)
          parts.update((id(s), s) for s in n.srcs if not s.realized and newest(reads[id(s)], b, top) < top)
        reads[id(n)] = merge(n) if len(parts) != split else r
        if n.op is Op.ASSIGN: other_writes.append(n)

  for n in targets: visit(n)
  keep, wanted = [], {id(n) for n in targets}
  for t in list(_roots):
    n = t._node
    if id(n) in wanted or id(n) in rank: continue
    if n.realized:
      if id(n.buffer) not in final: continue
      t._node = LazyNode(Op.CONTIGUOUS, n.dtype, n.shape, (n,))   # copy on write
    else:
      visit(n)
      if not any(k < final[b] for b, k in reads[id(n)]): continue
    keep.append(t)
  # a part holding a pending update of another buffer (y's first `y += x`, computed before x's update) writes that
  # buffer in this schedule too: its readers are found by scanning again with the part as a target
  parts_write = any(s.op is Op.ASSIGN and not s.realized and id(s) not in rank
                    for s in toposort(list(parts.values()))) if parts and other_writes else False
  return keep, list(parts.values()), (bool(keep) and bool(other_writes)) or parts_write


def realize(*tensors: TensorCore):
  """Realize several tensors, on any devices, in one schedule."""
  _realize(tensors)


def _realize(tensors, overwritten: frozenset = frozenset()):
  """`realize`; `overwritten`: ids of buffers written right after, outside the schedule (none of the tensors may
  share their memory)."""
  if not tensors: return
  # a view of memory is realized as that memory (its pending updates): its node stays a view, never a snapshot
  tensors = tuple(b if (b := t._rooted()) is not None and _in_memory(b._node) else t for t in tensors)
  readers, parts = _before_writes([t.node for t in tensors]) if _assigned else ([], [])
  _engine.realize([t.node for t in tensors + tuple(readers)] + parts, held=lambda: [t._node for t in _roots],
                  overwritten=overwritten)
  for t in tensors + tuple(readers):   # drop the graph (later graphs start from the buffer), unless autograd needs it
    n = t._node
    if t._base is not None or n.op is Op.BUFFER or not n.realized: continue
    if n.op is Op.ASSIGN:   # its own memory (a clone, an update): the tensor is its buffer again
      if not (t.requires_grad and not t.is_leaf): _hold(t, n.buffer, n.loc)
    elif not t.requires_grad and _takes_buffer(t, n.buffer): t._node = LazyNode.from_buffer(n.buffer, t.shape, n.loc)
  for t in list(_assigned):   # a realized in-place update: the tensor is its buffer again
    n = t._node
    if n.op is Op.ASSIGN and not n.realized: continue
    _assigned.discard(t)
    if n.op is not Op.ASSIGN or (t.requires_grad and not t.is_leaf): continue
    _hold(t, n.buffer, n.loc)


def _hold(t: TensorCore, buffer: Buffer, loc):
  """`t` is `buffer` (its owner) as it is now; graphs built on the nodes it held before still send it their
  gradients."""
  if t.requires_grad: t._past = weakref.WeakSet(t._versions())
  t._node = LazyNode.from_buffer(buffer, t.shape, loc)
  buffer.owner = weakref.ref(t)


def overwrite(written: list[tuple[Buffer, list[TensorCore]]], run):
  """Call `run`, which writes the buffers of `written` outside any schedule (a jit replay's in-place updates), as an
  in-place update of the tensors listed with each buffer (which hold it now). Before, every other live tensor still
  waiting to read the current contents is realized (one holding such a buffer itself gets a copy); after, each buffer
  has a new version, which its tensors hold."""
  loc = user_frame()
  holders, bufs = {id(t) for _, ts in written for t in ts}, {id(b) for b, _ in written}
  if written and any(id(t) not in holders and (not t._node.realized or id(t._node.buffer) in bufs) for t in _roots):
    targets = [t._node for _, ts in written for t in ts]   # the updated tensors themselves are not copied
    for b, _ in written:
      now = LazyNode.from_buffer(b, (b.size,), loc)
      targets.append(LazyNode(Op.ASSIGN, b.dtype, now.shape, (now, now), None, loc))
    readers, _ = _before_writes(targets)   # whole buffers written once: no value reads two versions of one
    _realize(readers, frozenset(bufs))   # copies: a view of a written buffer would lose its value
  run()
  for b, ts in written:
    b.bump(loc)
    for t in ts: _hold(t, b, loc)
