"""Tensor: the user-facing, PyTorch-like API. Every method checks its arguments at once and returns a Tensor
wrapping a new lazy node; nothing runs until a value is needed (`realize`, `numpy`, `item`, `tolist`)."""
from __future__ import annotations
import functools, math, weakref
from typing import Sequence
import numpy as np
from . import dtypes
from .dtypes import DType, to_dtype, promote, promote_scalar, float32, int64, bool_
from .helpers import prod, user_frame, fmt_loc, IdWeakSet, ShapeError, JitError, DivisionByZero
from .ir.node import LazyNode, toposort
from .ir.view import view_of
from .ir.ops import Op, ALU
from .ir import build as B
from .runtime.buffer import Buffer
from .runtime.device import get_device, is_device_name
from .runtime import realize as _engine
from .runtime.realize import NO_FAILURE
from . import autograd


def _err(cls, op: str, msg: str, fix: str = ""):
  where = fmt_loc(user_frame())
  return cls(f"{op}: {msg}" + (f". Fix: {fix}" if fix else "") + f" (at {where})")


def _shape_str(s) -> str: return str(tuple(s))
def _is_scalar(x) -> bool: return isinstance(x, (int, float, bool, np.number, np.bool_))


def _broadcast_shape(op: str, *shapes) -> tuple:
  nd = max(len(s) for s in shapes)
  padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
  out = []
  for d in range(nd):
    sizes = {p[d] for p in padded} - {1}
    if len(sizes) > 1:
      raise _err(ShapeError, op, f"shapes {' and '.join(_shape_str(s) for s in shapes)} cannot broadcast: dimension "
                 f"{d - nd} has sizes {' vs '.join(str(p[d]) for p in padded)}",
                 "sizes must match or be 1 in every dimension, counted from the last; reshape or unsqueeze one operand")
    out.append(sizes.pop() if sizes else 1)
  return tuple(out)


def _norm_dim(op: str, d: int, ndim: int, shape=None) -> int:
  if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
    raise _err(TypeError, op, f"dim must be an int, got {type(d).__name__} {d!r}")
  lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
  if not lo <= d <= hi:
    raise _err(IndexError, op, f"dim {d} is out of range for a tensor of shape {_shape_str(shape or ())} "
               f"(ndim {ndim})", f"use a dim in [{lo}, {hi}]")
  return int(d) % max(ndim, 1)


def _shape_arg(shape) -> tuple:
  if len(shape) == 1 and isinstance(shape[0], (tuple, list)): shape = shape[0]
  return tuple(int(s) for s in shape)


_HALF = (dtypes.float16, dtypes.bfloat16)


def _opmath(fn):
  """Half-precision + - * / // with a Python number compute in float32 and round once, as PyTorch's CUDA kernels
  do ("opmath": x_half * 0.1 is half(float(x) * 0.1f), not x * half(0.1)). PyTorch's CPU kernels round the scalar
  of + and - to the half type first; lazygrad follows the GPU on every device. A number the half type holds exactly
  gives the same result either way and skips the detour. Both devices round the number to the half type for **, %
  and comparisons, and so does lazygrad (there, no decorator)."""
  @functools.wraps(fn)
  def op(self, other, *args, **kwargs):
    if self.dtype in _HALF and _is_scalar(other) and not isinstance(other, (bool, np.bool_)):
      with np.errstate(over="ignore"): exact = float(np.asarray(other, self.dtype.np)) == other
      if not exact: return fn(self.float(), other, *args, **kwargs).cast(self.dtype)
    return fn(self, other, *args, **kwargs)
  return op


# tanh(x) = x + x^3 * P(x^2) for |x| < cut: (cut, P's coefficients from the constant term up). float32: a minimax
# fit, under 0.8 ulp (the exp formula above 0.6 stays under 2); float64: Taylor's, exact to an ulp below 0.05.
_TANH_POLY = {"float32": (0.6, (-0.33333295583724976, 0.13331879675388336, -0.053780388087034225, 0.02078511007130146,
                                -0.005883185192942619)),
              "float64": (0.05, (-1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925))}

_rng = np.random.Generator(np.random.Philox(0))


def manual_seed(seed: int):
  """Seed the random generator. Random tensors are drawn on the host, so one seed gives the same values on
  every device."""
  global _rng
  if (fn := _engine.jit_running()) is not None:
    raise _err(JitError, "manual_seed", f"called inside {fn}, which lazygrad.jit is running to capture its kernels: "
               "replays do not run it, so they would draw other numbers than plain calls", "seed before the call")
  _rng = np.random.Generator(np.random.Philox(int(seed)))


class Tensor:
  """A lazily evaluated n-d array. See the package README for the supported API.

  Values and in-place updates follow PyTorch. A tensor made by an op holds a value fixed when it is built. Views
  (reshape, permute, expand, basic indexing, split, detach...) are windows on their base tensor: they show the base's
  current value and an in-place update of a view writes through to the base. An in-place update (`assign`, `+=`, an
  optimizer step) of a tensor backed by memory writes that memory when realized; before it does, every live tensor
  still waiting to read the old contents is realized, so nothing built earlier sees the new value. A graph that still
  needs an overwritten value and could not be kept (an old loss's backward) raises StaleValueError."""
  __slots__ = ("_node", "_base", "_path", "_src", "_past", "_requires_grad", "grad", "_device", "is_leaf",
               "__weakref__")
  __array_priority__ = 1000   # numpy scalars on the left defer to our operators

  def __init__(self, data, dtype=None, requires_grad: bool = False, device: str | None = None):
    self._device = get_device(device)
    if isinstance(data, LazyNode): node = data
    elif isinstance(data, Tensor):   # a new tensor with the values data has now (as torch.tensor(t) copies)
      src = data if dtype is None else data.cast(dtype)
      node, self._device = LazyNode(Op.DETACH, src.dtype, src.shape, (src.node,)), data._device
    else:
      arr = data if isinstance(data, np.ndarray) else np.array(data)
      if not isinstance(data, np.ndarray) and arr.dtype == np.float64: arr = arr.astype(np.float32)
      try: dt = to_dtype(dtype) if dtype is not None else dtypes.from_numpy(arr.dtype)
      except TypeError as e:
        raise _err(TypeError, "Tensor", f"cannot make a tensor of {arr.dtype} data" if dtype is None else str(e)) from None
      arr = np.array(arr, dtype=dt.np, order="C")   # a copy: later changes to `data` do not leak in
      buf = _uploaded(Buffer(self._device, dt, arr.size, self._device.from_numpy(arr)))
      node = LazyNode.from_buffer(buf, arr.shape)
    if node.op is Op.BUFFER and not _takes_buffer(self, node.buffer):   # someone else's memory: hold its value
      node = LazyNode(Op.DETACH, node.dtype, node.shape, (node,))
    self._node, self._base, self._path, self._src, self._past = node, None, (), None, None
    self.grad, self.is_leaf, self._requires_grad = None, True, False
    _roots.add(self)
    self.requires_grad = requires_grad

  @staticmethod
  def _wrap(node: LazyNode, ref: "Tensor") -> "Tensor":
    """A tensor for an existing node, on ref's device, not requiring grad (autograd's temporaries)."""
    t = Tensor.__new__(Tensor)
    t._node, t._base, t._path, t._src, t._past = node, None, (), None, None
    t.grad, t._device, t.is_leaf, t._requires_grad = None, ref._device, True, False
    return t

  # ---------------------------------------------------------------- the node: own, or derived from a view's base
  @property
  def node(self) -> LazyNode:
    """This tensor's lazy node. A view's node is its path applied to its base's current node."""
    base = self._base
    if base is None: return self._node
    if self._src is not base._node: self._node, self._src = B.apply_path(base._node, self._path, self._node.loc), base._node
    return self._node

  @node.setter
  def node(self, node: LazyNode):
    if self._base is not None:
      raise _err(RuntimeError, "node", "a view's node follows its base and cannot be set", "use assign()")
    self._node = node

  def _view(self, node: LazyNode, path: tuple, requires_grad: bool) -> "Tensor":
    """A view of this tensor's base: `node` is `path` ((op, arg) pairs, outermost first) applied to self."""
    t = Tensor._wrap(node, self)
    base = self._base if self._base is not None else self
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
    target = LazyNode.from_buffer(Buffer(self._device, self.dtype, self.numel()), self.shape, self.node.loc)
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
      return Tensor._const(1.0, self.shape, self.dtype)._on(self)
    gradient = gradient if isinstance(gradient, Tensor) else Tensor(gradient, device=self.device)
    if gradient.shape != self.shape:
      raise _err(ShapeError, op, f"gradient shape {_shape_str(gradient.shape)} does not match the output shape "
                 f"{_shape_str(self.shape)}")
    return gradient.cast(self.dtype)

  def backward(self, gradient: "Tensor | None" = None, retain_graph: bool = False) -> None:
    """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad (lazily: nothing runs yet)."""
    g = self._check_backward("backward", gradient)
    leaves = list(autograd.grad_leaves)
    for leaf, lg in zip(leaves, self._gradients([t._versions() for t in leaves], g)):
      if lg is None: continue
      lg = lg.cast(leaf.dtype)
      leaf.grad = lg if leaf.grad is None else leaf.grad + lg

  def gradient(self, *targets: "Tensor", gradient: "Tensor | None" = None) -> list["Tensor"]:
    """d(self)/d(target) for each target as new lazy tensors; `.grad` is left alone. Unused targets get zeros."""
    g = self._check_backward("gradient", gradient)
    grads = self._gradients([t._versions() for t in targets], g)
    return [t.zeros_like() if gr is None else gr.cast(t.dtype) for t, gr in zip(targets, grads)]

  def _gradients(self, targets: list[list[LazyNode]], g: "Tensor") -> list["Tensor | None"]:
    return [None if n is None else self._result(n, ()) for n in autograd.gradients(self.node, targets, g.node)]

  def assign(self, value) -> "Tensor":
    """In-place update, as PyTorch's `copy_`: this tensor (and every view of its memory) holds `value` from now on.
    Memory is written when realized; tensors built before still see the old value."""
    base = self._base if self._base is not None else self
    if autograd.grad_mode.enabled and self.requires_grad and base.is_leaf and base.requires_grad:
      what = "a leaf tensor" if base is self else "a view of a leaf tensor"
      raise _err(RuntimeError, "assign", f"{what} of shape {_shape_str(base.shape)} that requires grad is being used "
                 "in an in-place operation", "wrap the update in `with lazygrad.no_grad():`")
    value = value if isinstance(value, Tensor) else Tensor._const(value, self.shape, self.dtype, "assign")._on(self)
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

  # ---------------------------------------------------------------- properties
  # (from _node: a view's shape and dtype stay what they were when it was made, so its node need not be derived)
  @property
  def shape(self) -> tuple: return self._node.shape
  @property
  def dtype(self) -> DType: return self._node.dtype
  @property
  def ndim(self) -> int: return len(self._node.shape)
  @property
  def device(self) -> str: return self._device.name
  def numel(self) -> int: return prod(self.shape)
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
    node = self.node   # what realize computes (after it, a view may see its base through a new node)
    realize(self)
    _engine.raise_failed_checks()
    return np.array(node.buffer.numpy()[:self.numel()], copy=True).reshape(self.shape)

  def _scalar(self, op: str):
    if self.numel() != 1:
      raise _err(ValueError, op, f"only a tensor with one element can be converted to a Python scalar, got shape "
                 f"{_shape_str(self.shape)}", "index or reduce it first")
    return self._host(op).reshape(()).item()

  # ---------------------------------------------------------------- creation
  @staticmethod
  def _const(value, shape, dtype: DType, op: str = "full") -> "Tensor":
    if any(s < 0 for s in shape):
      raise _err(ShapeError, op, f"negative dimension in shape {_shape_str(shape)}", "sizes must be >= 0")
    value = bool(value) if dtype.is_bool else int(value) if dtype.is_int else float(value)
    if dtype.is_int and not (info := np.iinfo(dtype.np)).min <= value <= info.max:
      raise _err(OverflowError, op, f"value {value} cannot be converted to {dtype.name} without overflow (its range is "
                 f"{info.min}..{info.max})", f"use a value in range, or cast the tensor to a wider dtype first")
    t = Tensor._wrap(B.const(value, dtype, shape), _DEFAULT)   # a constant reads no memory: not one of _roots
    t._device = get_device()
    return t

  @staticmethod
  def full(shape, fill_value, dtype=None, **kw) -> "Tensor":
    dt = to_dtype(dtype) if dtype is not None else bool_ if isinstance(fill_value, bool) else \
      int64 if isinstance(fill_value, int) else float32
    return Tensor._const(fill_value, _shape_arg((shape,) if isinstance(shape, int) else shape), dt)._with(**kw)

  @staticmethod
  def zeros(*shape, dtype=None, **kw) -> "Tensor": return Tensor.full(_shape_arg(shape), 0, dtype or float32, **kw)
  @staticmethod
  def ones(*shape, dtype=None, **kw) -> "Tensor": return Tensor.full(_shape_arg(shape), 1, dtype or float32, **kw)
  @staticmethod
  def empty(*shape, dtype=None, **kw) -> "Tensor":
    dt = to_dtype(dtype or float32)
    return Tensor(np.empty(_shape_arg(shape), dt.np), dtype=dt, **kw)

  @staticmethod
  def arange(start, end=None, step=1, dtype=None, **kw) -> "Tensor":
    if end is None: start, end = 0, start
    if step == 0: raise _err(ValueError, "arange", "step must be nonzero")
    is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dt = to_dtype(dtype) if dtype is not None else int64 if is_int else float32
    n = max(0, math.ceil((end - start) / step))
    if all(float(v).is_integer() for v in (start, step)):   # computed on the device from an IOTA: no host data
      iota = Tensor(LazyNode(Op.IOTA, int64, (n,)), device=kw.pop("device", None))
      return (iota * int(step) + int(start) if (step, start) != (1, 0) else iota).cast(dt)._with(**kw)
    return Tensor((start + np.arange(n, dtype=np.float64) * step).astype(dt.np), dtype=dt, **kw)

  @staticmethod
  def linspace(start, end, steps: int, dtype=None, **kw) -> "Tensor":
    return Tensor(np.linspace(start, end, steps, dtype=np.float64), dtype=dtype or float32, **kw)

  @staticmethod
  def eye(n: int, m: int | None = None, dtype=None, **kw) -> "Tensor":
    return Tensor(np.eye(n, m if m is not None else n), dtype=dtype or float32, **kw)

  @staticmethod
  def _drawn(draw, dtype, kw) -> "Tensor":
    """A tensor of the host random numbers `draw()` returns; a jit capture keeps `draw` to draw anew on each replay."""
    t = Tensor(draw(), dtype=dtype, **kw)
    if (cap := _engine.jit_capture()) is not None: cap.uploaded(t.node.buffer, draw)
    return t

  @staticmethod
  def rand(*shape, dtype=None, **kw) -> "Tensor":
    shape = _shape_arg(shape)
    return Tensor._drawn(lambda: _rng.random(shape, dtype=np.float32), dtype or float32, kw)

  @staticmethod
  def randn(*shape, dtype=None, **kw) -> "Tensor":
    shape = _shape_arg(shape)
    return Tensor._drawn(lambda: _rng.standard_normal(shape, dtype=np.float32), dtype or float32, kw)

  @staticmethod
  def uniform(*shape, low: float = 0.0, high: float = 1.0, dtype=None, **kw) -> "Tensor":
    shape = _shape_arg(shape)
    return Tensor._drawn(lambda: _rng.uniform(low, high, shape).astype(np.float32), dtype or float32, kw)

  @staticmethod
  def normal(*shape, mean: float = 0.0, std: float = 1.0, dtype=None, **kw) -> "Tensor":
    shape = _shape_arg(shape)
    return Tensor._drawn(lambda: (_rng.standard_normal(shape, dtype=np.float32) * std + mean).astype(np.float32),
                         dtype or float32, kw)

  @staticmethod
  def randint(low, high=None, size=(), dtype=None, **kw) -> "Tensor":
    if high is None: low, high = 0, low
    shape = _shape_arg((size,) if isinstance(size, int) else size)
    return Tensor._drawn(lambda: _rng.integers(low, high, shape), dtype or int64, kw)

  @staticmethod
  def from_torch(t, device: str | None = None) -> "Tensor":
    """A tensor with a torch tensor's values; a CUDA tensor's memory is shared with device 'triton', not copied."""
    dev = get_device(device or ("triton" if t.is_cuda else None))
    dt = to_dtype(t.dtype)
    data = dev.from_torch(t, dt)   # the device's memory for it: shared where the device can, else a copy
    return Tensor(LazyNode.from_buffer(_uploaded(Buffer(dev, dt, t.numel(), data)), tuple(t.shape)), device=dev.name)

  def _like_kw(self, dtype): return {"dtype": dtype or self.dtype}
  def zeros_like(self, dtype=None, **kw): return Tensor.zeros(self.shape, **self._like_kw(dtype), **kw)
  def ones_like(self, dtype=None, **kw): return Tensor.ones(self.shape, **self._like_kw(dtype), **kw)
  def full_like(self, fill_value, dtype=None, **kw): return Tensor.full(self.shape, fill_value, **self._like_kw(dtype), **kw)
  def empty_like(self, dtype=None, **kw): return Tensor.empty(self.shape, **self._like_kw(dtype), **kw)
  def rand_like(self, dtype=None, **kw): return Tensor.rand(self.shape, **self._like_kw(dtype), **kw)
  def randn_like(self, dtype=None, **kw): return Tensor.randn(self.shape, **self._like_kw(dtype), **kw)

  def _with(self, requires_grad=False, device=None) -> "Tensor":
    if device is not None: self._device = get_device(device)
    self.is_leaf = True
    self.requires_grad = requires_grad
    return self

  # ---------------------------------------------------------------- graph building primitives
  def _new(self, op: Op, srcs: tuple, dtype: DType, shape: tuple, arg=None) -> "Tensor":
    for s in srcs:
      if s._device is not self._device: self._check_device(op.name.lower(), s)
    if op in ALU: return self._result(B.alu(op, *(s.node for s in srcs), dtype=dtype), srcs)   # constants fold there
    return self._result(LazyNode(op, dtype, tuple(shape), tuple(s.node for s in srcs), arg), srcs)

  def _result(self, node: LazyNode, srcs: tuple) -> "Tensor":
    """A new tensor (not a view) holding `node`, computed from `srcs`. Made under no_grad from tensors requiring
    grad, its node is detached: gradients do not flow through it (autograd follows the graph, not flags)."""
    if not autograd.grad_mode.enabled and any(s._requires_grad for s in srcs):
      node = LazyNode(Op.DETACH, node.dtype, node.shape, (node,))
    t = Tensor._wrap(node, self)
    t._requires_grad = node.dtype.is_float and autograd.grad_mode.enabled and any(s._requires_grad for s in srcs)
    t.is_leaf = not t._requires_grad
    _roots.add(t)
    return t

  def _check_device(self, op: str, other: "Tensor"):
    if other._device is not self._device:
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

  def cast(self, dtype) -> "Tensor":
    dt = to_dtype(dtype)
    return self if dt == self.dtype else self._alu(Op.CAST, dtype=dt)

  def _operands(self, op: str, other, reverse=False, dtype_fn=promote, wrap=True) -> tuple["Tensor", "Tensor"]:
    """Both operands as tensors of one dtype and one (broadcast) shape. An integer scalar out of an integer dtype's
    range wraps into it (`wrap`, as torch's arithmetic does) or is an error."""
    if isinstance(other, Tensor):
      dt = dtype_fn(self.dtype, other.dtype)
      if (self.ndim == 0) != (other.ndim == 0):   # a 0-d tensor only promotes to a higher kind, like a scalar
        dim_t, zero_t = (other, self) if self.ndim == 0 else (self, other)
        dt = zero_t.dtype if dtypes.kind_order(zero_t.dtype) > dtypes.kind_order(dim_t.dtype) else dim_t.dtype
      shape = _broadcast_shape(op, self.shape, other.shape)
      a, b = self.cast(dt)._broadcast_to(shape), other.cast(dt)._broadcast_to(shape)
    elif _is_scalar(other):
      dt = promote_scalar(self.dtype, other)
      if dt.is_int and wrap:   # uint8 + 300 adds 44, as in torch
        if not -2**63 <= other < 2**63:
          raise _err(OverflowError, op, f"the integer {other} does not fit in int64", "use a smaller number")
        other = dtypes.wrap_int(int(other), dt)
      a, b = self.cast(dt), Tensor._const(other, self.shape, dt, op)._on(self)
    else:
      raise _err(TypeError, op, f"unsupported operand type {type(other).__name__}; use a Tensor or a Python number")
    return (b, a) if reverse else (a, b)

  def _on(self, ref: "Tensor") -> "Tensor":
    self._device = ref._device
    return self

  def _broadcast_to(self, shape) -> "Tensor":
    if self.shape == tuple(shape): return self
    pre = (1,) * (len(shape) - self.ndim) + self.shape
    return self.reshape(pre).expand(shape)

  # ---------------------------------------------------------------- elementwise arithmetic
  @_opmath
  def add(self, other, reverse=False):
    a, b = self._operands("add", other, reverse)
    return a._alu(Op.OR if a.dtype.is_bool else Op.ADD, b)

  @_opmath
  def sub(self, other, reverse=False):
    a, b = self._operands("sub", other, reverse)
    if a.dtype.is_bool: raise _err(TypeError, "sub", "subtraction of bool tensors is not supported", "use logical_xor or cast to int")
    return a._alu(Op.SUB, b)

  @_opmath
  def mul(self, other, reverse=False):
    a, b = self._operands("mul", other, reverse)
    return a._alu(Op.AND if a.dtype.is_bool else Op.MUL, b)

  @_opmath
  def div(self, other, rounding_mode=None):
    """True division (integers become float32); rounding_mode 'floor' or 'trunc' as in torch.div."""
    if rounding_mode not in (None, "floor", "trunc"):
      raise _err(ValueError, "div", f"rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    if rounding_mode == "floor": return self.floor_divide(other)
    if rounding_mode is None and not (self.dtype.is_float or isinstance(other, Tensor) and other.dtype.is_float):
      # float32 before the operands meet, so an integer scalar is not wrapped into the tensor's dtype (uint8 / -4)
      self, other = self.float(), other.float() if isinstance(other, Tensor) else other
    a, b = self._operands("div", other)
    if rounding_mode == "trunc": return a._alu(Op.IDIV, _nonzero("div", b)) if a.dtype.is_int else a._alu(Op.DIV, b).trunc()
    return a._alu(Op.DIV, b)

  @_opmath
  def floor_divide(self, other, reverse=False):
    a, b = self._operands("floor_divide", other, reverse)
    if a.dtype.is_bool: raise _err(TypeError, "floor_divide", "not supported on bool tensors", "cast to int first")
    if a.dtype.is_float: return a._floor_divide_float(b)
    b = _nonzero("floor_divide", b)
    q = a._alu(Op.IDIV, b)   # truncates: step down where the signs differ and it was not exact
    fix = (a._alu(Op.MOD, b) != 0).logical_and((a < 0) != (b < 0))
    return fix.where(q - 1, q)

  def _floor_divide_float(self, other: "Tensor") -> "Tensor":
    """PyTorch's float floor division: from fmod, so that a/b rounding up to an integer does not count (1 // 0.1 is
    9, as in Python, not floor(10.0)); half types in float32, rounded once. Piecewise constant: no gradient."""
    a, b = self.detach()._f32(), other.detach()._f32()
    mod = a._alu(Op.MOD, b)
    div = (a - mod) / b
    div = ((mod != 0).logical_and((b < 0) != (mod < 0))).where(div - 1, div)
    fl = div.floor()
    fl = (div - fl > 0.5).where(fl + 1, fl)
    q = a / b
    return self._rounded((b == 0).where(q, (div == 0).where(q * 0, fl)))   # q * 0: a zero with the quotient's sign

  def remainder(self, other, reverse=False):
    """Python/torch modulo: the result has the sign of the divisor. From fmod, which is exact."""
    a, b = self._operands("remainder", other, reverse)
    r = a.fmod(b)
    return ((r != 0).logical_and((r < 0) != (b < 0))).where(r + b, r)

  def fmod(self, other):
    """C's fmod, as torch.fmod: the result has the sign of the dividend."""
    a, b = self._operands("fmod", other)
    if a.dtype.is_bool: raise _err(TypeError, "fmod", "not supported on bool tensors", "cast to int first")
    return a._alu(Op.MOD, _nonzero("remainder", b) if a.dtype.is_int else b)

  def pow(self, other, reverse=False):
    """torch.pow. Integer ** integer is exact (wrapping on overflow, as torch's integer math does); a float base or
    exponent makes the result float (int_tensor ** 2.0 is float32). A Python number as the exponent takes PyTorch's
    fast paths, which give its results exactly: x*x, x*x*x, sqrt, rsqrt, 1/x."""
    if not reverse and _is_scalar(other) and not isinstance(other, (bool, np.bool_)):
      x = self.cast(promote_scalar(self.dtype, other))
      if x.dtype.is_int:
        if other < 0:
          raise _err(RuntimeError, "pow", f"Integers to negative integer powers are not allowed ({x.dtype.name} "
                     f"tensor of shape {_shape_str(x.shape)} ** {other})", "cast the tensor to float first")
        return x._ipow(int(other))
      # torch's -2 fast path, 1 / (x*x), is not taken: built from primitives its gradient at 0 would be NaN
      fast = {2: lambda: x * x, 3: lambda: x * x * x, 0.5: x.sqrt, -0.5: x.rsqrt, -1: x.reciprocal}
      if other in fast: return fast[other]()
    a, b = self._operands("pow", other, reverse)
    if a.dtype.is_bool: raise _err(TypeError, "pow", "not supported on two bool tensors", "cast one to int or float")
    return a._alu(Op.POW, b) if a.dtype.is_float else a._ipow_tensor(b)

  def _ipow(self, e: int) -> "Tensor":
    """self ** e for an integer tensor and a Python int e >= 0: square-and-multiply, unrolled."""
    out, base = Tensor._const(1, self.shape, self.dtype)._on(self), self
    while e:
      if e & 1: out = out * base
      e >>= 1
      if e: base = base * base
    return out

  def _ipow_tensor(self, e: "Tensor") -> "Tensor":
    """self ** e for integer tensors, as torch's powi: square-and-multiply over every bit of e (a fixed loop of
    selects); for e < 0, 1 ** e is 1, (-1) ** e is -1 or 1 and anything else gives 0."""
    out, base = Tensor._const(1, self.shape, self.dtype)._on(self), self
    bits = 8 * self.dtype.itemsize - (self.dtype.kind == 'i')
    for i in range(bits):
      out = ((e & (1 << i)) != 0).where(out * base, out)
      if i + 1 < bits: base = base * base
    if self.dtype.kind == 'u': return out
    negative_power = (self == 1).logical_or(self == -1).where(((e & 1) != 0).where(self, 1), 0)
    return (e < 0).where(negative_power, out)

  def __neg__(self):
    if self.dtype.is_bool: raise _err(TypeError, "neg", "negation of a bool tensor is not supported", "use logical_not()")
    return self._alu(Op.NEG)

  __add__ = add
  def __radd__(self, o): return self.add(o, True)
  __sub__ = sub
  def __rsub__(self, o): return self.sub(o, True)
  __mul__ = mul
  def __rmul__(self, o): return self.mul(o, True)
  __truediv__ = div
  def __rtruediv__(self, o): return self.reciprocal() * o   # as in torch: 2 / x is (1 / x) * 2
  __floordiv__ = floor_divide
  def __rfloordiv__(self, o): return self.floor_divide(o, True)
  __mod__ = remainder
  def __rmod__(self, o): return self.remainder(o, True)
  __pow__ = pow
  def __rpow__(self, o): return self.pow(o, True)
  def __matmul__(self, o): return self.matmul(o)
  def __rmatmul__(self, o): return Tensor(o, device=self.device).matmul(self) if not isinstance(o, Tensor) else o.matmul(self)

  # in-place forms: `x += y`, `x.add_(y)`; the result must keep x's dtype and shape, as in torch
  def _inplace(self, op: str, result: "Tensor") -> "Tensor":
    if dtypes.kind_order(result.dtype) > dtypes.kind_order(self.dtype):
      raise _err(TypeError, op, f"result type {result.dtype.name} can't be cast to the {self.dtype.name} tensor it would "
                 "be written into in place", f"use the out-of-place form, or cast the tensor to {result.dtype.name} first")
    if result.shape != self.shape:
      raise _err(ShapeError, op, f"the result's shape {_shape_str(result.shape)} (broadcast) does not fit the tensor "
                 f"of shape {_shape_str(self.shape)} it would be written into in place", "use the out-of-place form")
    return self.assign(result)

  def __iadd__(self, o): return self._inplace("add_", self + o)
  def __isub__(self, o): return self._inplace("sub_", self - o)
  def __imul__(self, o): return self._inplace("mul_", self * o)
  def __itruediv__(self, o): return self._inplace("div_", self / o)
  def __ifloordiv__(self, o): return self._inplace("floor_divide_", self // o)
  def __imod__(self, o): return self._inplace("remainder_", self % o)
  def __ipow__(self, o): return self._inplace("pow_", self ** o)
  def __iand__(self, o): return self._inplace("bitwise_and_", self & o)
  def __ior__(self, o): return self._inplace("bitwise_or_", self | o)
  def __ixor__(self, o): return self._inplace("bitwise_xor_", self ^ o)

  def copy_(self, src) -> "Tensor":
    """Write src (broadcast, cast to this dtype) into this tensor in place."""
    src = src if isinstance(src, Tensor) else Tensor(src, device=self.device)
    return self.assign(src._broadcast_to(_broadcast_shape("copy_", self.shape, src.shape)))
  def fill_(self, value) -> "Tensor":
    """Every element becomes `value` (a number, or a one-element tensor, which stays on the device)."""
    if isinstance(value, Tensor):
      if value.numel() != 1:
        raise _err(RuntimeError, "fill_", f"the value must have one element, got shape {_shape_str(value.shape)}")
      value = value.reshape(()).cast(self.dtype)._broadcast_to(self.shape)
    return self.assign(value)
  def zero_(self) -> "Tensor": return self.assign(0)

  # comparisons and logic
  def _cmp(self, op: str, prim: Op, other, reverse=False) -> "Tensor":
    a, b = self._operands(op, other, reverse)
    return a._new(prim, (a, b), bool_, a.shape)

  def __lt__(self, o): return self._cmp("lt", Op.CMPLT, o)
  def __gt__(self, o): return self._cmp("gt", Op.CMPLT, o, reverse=True)
  def __le__(self, o): return (self < o).logical_or(self == o)
  def __ge__(self, o): return (self > o).logical_or(self == o)
  def __eq__(self, o): return self._cmp("eq", Op.CMPEQ, o)   # type: ignore[override]
  def __ne__(self, o): return self._cmp("ne", Op.CMPNE, o)   # type: ignore[override]
  __hash__ = object.__hash__
  lt, gt, le, ge, eq, ne = __lt__, __gt__, __le__, __ge__, __eq__, __ne__

  def _bitwise(self, op: str, prim: Op, other, reverse=False) -> "Tensor":
    a, b = self._operands(op, other, reverse)
    if a.dtype.is_float:
      raise _err(TypeError, op, f"bitwise ops need bool or integer tensors, got {a.dtype.name}", "compare first, or cast to int")
    return a._alu(prim, b)

  def __and__(self, o): return self._bitwise("bitwise_and", Op.AND, o)
  def __or__(self, o): return self._bitwise("bitwise_or", Op.OR, o)
  def __xor__(self, o): return self._bitwise("bitwise_xor", Op.XOR, o)
  def __rand__(self, o): return self._bitwise("bitwise_and", Op.AND, o, True)
  def __ror__(self, o): return self._bitwise("bitwise_or", Op.OR, o, True)
  def __rxor__(self, o): return self._bitwise("bitwise_xor", Op.XOR, o, True)
  def __invert__(self):
    if self.dtype.is_float: raise _err(TypeError, "bitwise_not", f"needs a bool or integer tensor, got {self.dtype.name}")
    if self.dtype.is_bool: return self._alu(Op.NOT)
    return self._alu(Op.XOR, Tensor._const(np.iinfo(self.dtype.np).max if self.dtype.kind == 'u' else -1, self.shape, self.dtype))
  def logical_not(self): return self.cast(bool_)._alu(Op.NOT)
  def _logical(self, op: str, prim: Op, other) -> "Tensor":
    a, b = self.cast(bool_)._operands(op, other.cast(bool_) if isinstance(other, Tensor) else bool(other))
    return a._alu(prim, b)
  def logical_and(self, o): return self._logical("logical_and", Op.AND, o)
  def logical_or(self, o): return self._logical("logical_or", Op.OR, o)
  def logical_xor(self, o): return self._logical("logical_xor", Op.XOR, o)

  def where(self, x, y) -> "Tensor":
    """`cond.where(x, y)`: x where self is true, else y (also `Tensor.where(cond, x, y)`)."""
    cond = self
    xs, ys = [v if isinstance(v, Tensor) else None for v in (x, y)]
    if xs is None and ys is None: dt = max((promote_scalar(bool_, v) for v in (x, y)), key=dtypes.kind_order)
    elif xs is None: dt = promote_scalar(ys.dtype, x)
    elif ys is None: dt = promote_scalar(xs.dtype, y)
    else: dt = promote(xs.dtype, ys.dtype)
    shape = _broadcast_shape("where", cond.shape, *(v.shape for v in (xs, ys) if v is not None))
    def prep(v):
      if isinstance(v, Tensor): return v.cast(dt)._broadcast_to(shape)
      return Tensor._const(v, shape, dt, "where")._on(cond)
    c = cond.cast(bool_)._broadcast_to(shape)
    return c._new(Op.WHERE, (c, prep(x), prep(y)), dt, shape)

  def masked_fill(self, mask: "Tensor", value) -> "Tensor":
    if isinstance(mask, Tensor) and not mask.dtype.is_bool:
      raise _err(TypeError, "masked_fill", f"mask must be a bool tensor, got {mask.dtype.name}", "compare to build a mask")
    if _broadcast_shape("masked_fill", self.shape, mask.shape) != self.shape:
      raise _err(ShapeError, "masked_fill", f"mask shape {_shape_str(mask.shape)} does not broadcast to the input "
                 f"shape {_shape_str(self.shape)}", "the mask may only have size-1 dims where the input is larger")
    return mask.where(value, self).cast(self.dtype)

  # The MAX primitive gives a tie's gradient to its first operand; each op below orders its operands (or averages
  # both orders) to get PyTorch's gradient at ties: maximum splits it, clamp passes it to the input, relu drops it.
  def maximum(self, other):
    a, b = self._operands("maximum", other)
    if a.dtype.is_bool: return a._alu(Op.OR, b)
    return (a._alu(Op.MAX, b) + b._alu(Op.MAX, a)) * 0.5 if a.dtype.is_float else a._alu(Op.MAX, b)

  def minimum(self, other):
    a, b = self._operands("minimum", other)
    if a.dtype.is_bool: return a._alu(Op.AND, b)
    if a.dtype.is_float: return -((-a).maximum(-b))
    return ~(~a)._alu(Op.MAX, ~b)   # ~x = -x-1 reverses the order and cannot overflow

  def clamp(self, min=None, max=None):
    if min is None and max is None: raise _err(ValueError, "clamp", "at least one of min and max must be given")
    out = self
    if min is not None:
      a, b = out._operands("clamp", min, wrap=False)
      out = a._alu(Op.MAX, b)
    if max is not None:
      a, b = out._operands("clamp", max, wrap=False)
      out = -((-a)._alu(Op.MAX, -b)) if a.dtype.is_float else (a > b).where(b, a)
    return out
  clip = clamp

  # ---------------------------------------------------------------- unary math
  def _float(self) -> "Tensor": return self if self.dtype.is_float else self.cast(float32)
  def exp(self): return self._float()._alu(Op.EXP)
  def log(self): return self._float()._alu(Op.LOG)
  def exp2(self): return (self._float() * math.log(2)).exp()
  def log2(self): return self.log() * (1 / math.log(2))
  def sqrt(self): return self._float()._alu(Op.SQRT)
  def rsqrt(self): return self.sqrt().reciprocal()
  def reciprocal(self): return self._float()._alu(Op.RECIP)
  def sin(self): return self._float()._alu(Op.SIN)
  def cos(self): return (math.pi / 2 - self._float()).sin()
  def trunc(self): return self._alu(Op.TRUNC) if self.dtype.is_float else self
  def floor(self):
    if not self.dtype.is_float: return self
    t = self.trunc()
    return (self < t).where(t - 1, t)
  def ceil(self):
    if not self.dtype.is_float: return self
    t = self.trunc()
    return (self > t).where(t + 1, t)
  def round(self):
    """Round half to even, like torch.round."""
    if not self.dtype.is_float: return self
    f = self.floor()
    diff = self - f
    even = (f % 2) == 0
    return (diff > 0.5).logical_or((diff == 0.5).logical_and(even.logical_not())).where(f + 1, f)
  def abs(self):
    if self.dtype.is_bool or self.dtype == dtypes.uint8: return self
    out = self * self.sign()   # gradient sign(x): 0 at 0, as in torch
    return out + 0.0 if self.dtype.is_float else out   # -0.0 * 0 is -0.0; abs(-0.0) is 0.0
  def sign(self):
    s = (self > 0).cast(self.dtype) - (self < 0).cast(self.dtype)
    # a value of self with gradient 0 (as torch's sign has), not a constant cut off from it
    return Tensor._const(False, self.shape, bool_)._on(self).where(self, s) if self.requires_grad else s
  def isnan(self): return self != self
  def isinf(self): return (self == math.inf).logical_or(self == -math.inf)
  def _f32(self) -> "Tensor":
    """Self in float32 if it is an integer or half tensor: activations compute there, as PyTorch's do."""
    return self if self.dtype in (float32, dtypes.float64) else self.cast(float32)
  def _rounded(self, out: "Tensor") -> "Tensor":
    """`out`, computed from self._f32(), rounded once to self's dtype if that is a half type."""
    return out.cast(self.dtype) if self.dtype in _HALF else out

  # sigmoid and tanh from exp(-|x|), which never overflows: exact to a few float32 ulps over the whole range (see
  # tests/test_numerics.py), with gradients that stay finite (no 0 * inf) for any input
  def sigmoid(self):
    x = self._f32()
    neg = x < 0
    z = neg.where(x, -x).exp()
    return self._rounded(neg.where(z, 1.0) / (1 + z))
  def tanh(self):
    x = self._f32()
    neg = x < 0
    a = neg.where(-x, x)
    w = (a * -2).exp()
    big = (1 - w) / (1 + w)
    # near 0, 1 - w cancels: an odd polynomial there, fed only small inputs so that its unused branch cannot make an
    # inf * 0 gradient
    cut, coefficients = _TANH_POLY[x.dtype.name]
    small = a < cut
    s = small.where(x, 0.0)
    s2 = s * s
    p = functools.reduce(lambda acc, c: c + s2 * acc, reversed(coefficients[:-1]), coefficients[-1])
    return self._rounded(small.where(s + s * (s2 * p), neg.where(-big, big)))
  def relu(self):
    x, zero = self._operands("relu", 0)
    return zero._alu(Op.MAX, x)   # zero first: at 0 the gradient goes to the constant, as torch's relu does
  def silu(self):
    x = self._f32()
    return self._rounded(x * x.sigmoid())
  def erf(self):
    """Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), composed from primitives."""
    x = self._float()
    t = (1 + 0.3275911 * x.abs()).reciprocal()
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    y = 1 - poly * (-(x * x)).exp()
    return (x < 0).where(-y, y)
  def gelu(self, approximate: str = "none"):
    x = self._f32()
    if approximate == "tanh":
      return self._rounded(0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh()))
    if approximate != "none": raise _err(ValueError, "gelu", f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return self._rounded(0.5 * x * (1 + (x * (1 / math.sqrt(2))).erf()))
  def square(self): return self * self

  def float(self): return self.cast(float32)
  def half(self): return self.cast(dtypes.float16)
  def bfloat16(self): return self.cast(dtypes.bfloat16)
  def int(self): return self.cast(dtypes.int32)
  def long(self): return self.cast(int64)
  def bool(self): return self.cast(bool_)
  def to(self, *args, dtype=None, device=None):
    """`to(dtype)`, `to(device)`, `to(device, dtype)` or `to(other)` (other's device and dtype), as in torch."""
    for a in args:
      if isinstance(a, Tensor): device, dtype = a._device.name, a.dtype
      elif isinstance(a, str) and is_device_name(a): device = a
      else: dtype = a
    out = self.cast(dtype) if dtype is not None else self
    if device is not None and get_device(device) is not self._device:
      out = Tensor(out._host("to"), dtype=out.dtype, device=device, requires_grad=out.requires_grad)
    return out
  def type(self, dtype): return self.cast(dtype)

  # ---------------------------------------------------------------- movement
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

  def transpose(self, dim0=-2, dim1=-1) -> "Tensor":
    order = list(range(self.ndim))
    a, b = _norm_dim("transpose", dim0, self.ndim, self.shape), _norm_dim("transpose", dim1, self.ndim, self.shape)
    order[a], order[b] = order[b], order[a]
    return self.permute(order)

  @property
  def T(self) -> "Tensor": return self.permute(tuple(range(self.ndim))[::-1])
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
    """torch.nn.functional.pad: `pad` holds (before, after) pairs starting from the last dim."""
    if mode != "constant": raise _err(ValueError, "pad", f"only mode='constant' is supported, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > self.ndim:
      raise _err(ShapeError, "pad", f"pad {tuple(pad)} must have an even length of at most 2*ndim = {2 * self.ndim} "
                 f"for shape {_shape_str(self.shape)}")
    arg = [(0, 0)] * self.ndim
    for i in range(len(pad) // 2): arg[self.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    for d, ((b, a), s) in enumerate(zip(arg, self.shape)):
      if s + b + a < 0: raise _err(ShapeError, "pad", f"pad {tuple(pad)} leaves dimension {d} of shape {_shape_str(self.shape)} with negative size")
    out = self._pad_shrink(arg)
    if out is self: return self.clone()   # a new tensor, as in torch, never a view
    if value != 0:
      inside = Tensor._const(True, self.shape, bool_)._on(self)._pad_shrink(arg)
      return inside.where(out, value).cast(self.dtype)
    return out._root()

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

  def repeat(self, *repeats) -> "Tensor":
    repeats = _shape_arg(repeats)
    if len(repeats) < self.ndim:
      raise _err(ShapeError, "repeat", f"{len(repeats)} repeats for a tensor of shape {_shape_str(self.shape)}",
                 f"give at least {self.ndim} repeat counts")
    base = self.reshape((1,) * (len(repeats) - self.ndim) + self.shape)
    inter = tuple(x for s in base.shape for x in (1, s))
    exp = tuple(x for r, s in zip(repeats, base.shape) for x in (r, s))
    return base.reshape(inter).expand(exp).reshape(tuple(r * s for r, s in zip(repeats, base.shape)))

  @staticmethod
  def cat(tensors: Sequence["Tensor"], dim: int = 0) -> "Tensor":
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
      return Tensor.cat([Tensor.cat(tensors[i:i + _CAT_FANIN], d).contiguous()
                         for i in range(0, len(tensors), _CAT_FANIN)], d)
    dt = ref.dtype
    for t in tensors[1:]: dt = promote(dt, t.dtype)
    total, offset, parts = sum(t.shape[d] for t in tensors), 0, []
    for t in tensors:
      arg = [(0, 0)] * ref.ndim
      arg[d] = (offset, total - offset - t.shape[d])
      offset += t.shape[d]
      parts.append((t.cast(dt)._pad_shrink(arg), Tensor._const(True, t.shape, bool_)._on(t)._pad_shrink(arg)))
    out = parts[-1][0]
    for p, inside in reversed(parts[:-1]): out = inside.where(p, out)   # a select, not a sum: -0.0 stays -0.0
    return out._root()

  @staticmethod
  def stack(tensors: Sequence["Tensor"], dim: int = 0) -> "Tensor":
    tensors = list(tensors)
    if not tensors: raise _err(ValueError, "stack", "expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
      if t.shape != tensors[0].shape:
        raise _err(ShapeError, "stack", f"tensor 0 has shape {_shape_str(tensors[0].shape)} but tensor {i} has shape "
                   f"{_shape_str(t.shape)}", "stack needs tensors of one shape")
    d = _norm_dim("stack", dim, tensors[0].ndim + 1, tensors[0].shape)
    return Tensor.cat([t.unsqueeze(d) for t in tensors], d)

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

  def chunk(self, chunks: int, dim: int = 0) -> tuple["Tensor", ...]:
    d = _norm_dim("chunk", dim, self.ndim, self.shape)
    return self.split(max(1, math.ceil(self.shape[d] / chunks)), d)

  # ---------------------------------------------------------------- indexing
  def __setitem__(self, idx, value):
    """`x[idx] = value` for basic indices (ints, slices, None, ...): writes through the view x[idx]."""
    view = self[idx]
    if view is not self and view._base is None:
      raise _err(NotImplementedError, "setitem", "assignment through integer-tensor indices is not supported yet",
                 "use basic indices (ints, slices), or build the result with where()")
    if isinstance(value, Tensor) and value._base is not None and value._base is view._base and value._path == view._path:
      return   # `x[i] += y` wrote through the view already
    value = value if isinstance(value, Tensor) else Tensor._const(value, (), view.dtype, "setitem")._on(view)
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
      elif isinstance(i, (Tensor, list, np.ndarray)):
        t = i if isinstance(i, Tensor) else Tensor(np.asarray(i), device=self.device)
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
    hit = index.cast(int64).unsqueeze(-1) == Tensor.arange(n, device=self.device)                 # index.shape + (n,)
    src = x.permute([k for k in range(self.ndim) if k != d] + [d]).unsqueeze(d).expand(hit.shape)
    return hit.where(src, Tensor._const(0, (), self.dtype)._on(self)).sum(-1).cast(self.dtype)

  # ---------------------------------------------------------------- reductions
  def _reduce_dims(self, op: str, dim) -> tuple:
    if dim is None: return tuple(range(self.ndim))
    dims = tuple(sorted({_norm_dim(op, d, self.ndim, self.shape) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}))
    return dims if self.ndim else ()   # a 0-d tensor accepts dim 0 / -1 and has nothing to reduce

  def _reduce(self, prim: Op, dims: tuple, keepdim: bool) -> "Tensor":
    out = self._result(B.reduce(prim, self.node, dims), (self,)) if dims and self.ndim else self
    return out if keepdim else out.reshape(tuple(s for i, s in enumerate(self.shape) if i not in dims))

  def sum(self, dim=None, keepdim=False, dtype=None, axis=None) -> "Tensor":
    dims = self._reduce_dims("sum", axis if dim is None else dim)
    out_dt = to_dtype(dtype) if dtype is not None else int64 if (self.dtype.is_int or self.dtype.is_bool) else self.dtype
    acc_dt = float32 if out_dt in (dtypes.float16, dtypes.bfloat16) else out_dt
    return self.cast(acc_dt)._reduce(Op.REDUCE_SUM, dims, keepdim).cast(out_dt)

  def mean(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    if not self.dtype.is_float:
      raise _err(TypeError, "mean", f"needs a floating point tensor, got {self.dtype.name}", "cast with .float() first")
    dims = self._reduce_dims("mean", axis if dim is None else dim)
    n = prod(self.shape[d] for d in dims)
    s = self.sum(dims, keepdim)
    return (s * (1 / n) if n else s / 0.0).cast(self.dtype)

  def max(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    dims = self._reduce_dims("max", axis if dim is None else dim)
    self._check_nonempty("max", dims)
    return self._reduce(Op.REDUCE_MAX, dims, keepdim)

  def min(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    dims = self._reduce_dims("min", axis if dim is None else dim)
    self._check_nonempty("min", dims)
    if self.dtype.is_float: return -((-self)._reduce(Op.REDUCE_MAX, dims, keepdim))
    return ~(~self)._reduce(Op.REDUCE_MAX, dims, keepdim)   # ~x = -x-1 reverses the order and cannot overflow
  amax, amin = max, min

  def _check_nonempty(self, op, dims):
    if any(self.shape[d] == 0 for d in dims):
      raise _err(IndexError, op, f"cannot reduce over a zero-size dimension of shape {_shape_str(self.shape)}",
                 "reduce over non-empty dims")

  def _arg_reduce(self, op: str, dim, keepdim: bool, largest: bool) -> "Tensor":
    if dim is None: return self.flatten()._arg_reduce(op, 0, False, largest).reshape((1,) * self.ndim if keepdim else ())
    d = _norm_dim(op, dim, self.ndim, self.shape)
    self._check_nonempty(op, (d,))
    x = self if largest else -self if self.dtype.is_float else ~self   # ~x: -x overflows at the integer minimum
    m = x.max(d, keepdim=True)
    hit = (x == m).logical_or(x.isnan()) if x.dtype.is_float else (x == m)
    n = self.shape[d]
    rev = Tensor.arange(n, 0, -1, dtype=int64, device=self.device).reshape(tuple(n if i == d else 1 for i in range(self.ndim)))
    first = hit.where(rev, 0).max(d, keepdim=keepdim)   # largest n-i is the first hit
    return n - first

  def argmax(self, dim=None, keepdim=False, axis=None): return self._arg_reduce("argmax", axis if dim is None else dim, keepdim, True)
  def argmin(self, dim=None, keepdim=False, axis=None): return self._arg_reduce("argmin", axis if dim is None else dim, keepdim, False)

  def var(self, dim=None, keepdim=False, correction=1, unbiased=None, axis=None) -> "Tensor":
    if unbiased is not None: correction = int(unbiased)
    dims = self._reduce_dims("var", axis if dim is None else dim)
    n = prod(self.shape[d] for d in dims)
    x = self._float()
    diff = x - x.mean(dims, keepdim=True)
    return (diff * diff).sum(dims, keepdim) / max(0, n - correction)

  def std(self, dim=None, keepdim=False, correction=1, unbiased=None, axis=None) -> "Tensor":
    return self.var(dim, keepdim, correction, unbiased, axis).sqrt()

  def logsumexp(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    dims = self._reduce_dims("logsumexp", axis if dim is None else dim)
    x = self._float()
    if any(self.shape[d] == 0 for d in dims): return x.sum(dims, keepdim) - math.inf
    m = x.max(dims, keepdim=True).detach()   # the result does not depend on m: no gradient through the max
    m = m.isinf().where(0.0, m)   # as torch: an infinite max is not subtracted (logsumexp([inf, 0]) is inf)
    out = (x - m).exp().sum(dims, keepdim=True).log() + m
    return out if keepdim else out.squeeze(dims)

  def softmax(self, dim=-1, dtype=None, axis=None) -> "Tensor":
    x = self._float() if dtype is None else self.cast(dtype)
    d = _norm_dim("softmax", axis if axis is not None else dim, self.ndim, self.shape) if self.ndim else ()
    if x.numel() == 0: return x
    e = (x - x.max(d, keepdim=True).detach()).exp()   # shifting by the max changes nothing but the rounding
    return e / e.sum(d, keepdim=True)

  def log_softmax(self, dim=-1, dtype=None, axis=None) -> "Tensor":
    x = self._float() if dtype is None else self.cast(dtype)
    d = _norm_dim("log_softmax", axis if axis is not None else dim, self.ndim, self.shape) if self.ndim else ()
    if x.numel() == 0: return x
    shifted = x - x.max(d, keepdim=True).detach()   # as torch: an infinite max gives NaN rows (log_softmax([inf, 0]))
    return shifted - shifted.exp().sum(d, keepdim=True).log()

  # ---------------------------------------------------------------- linear algebra and nn helpers
  def matmul(self, other: "Tensor") -> "Tensor":
    """torch.matmul: 1-D, 2-D, batched and broadcast. Lowered to a DOT by the compiler."""
    a, b = self, other
    if not isinstance(b, Tensor): b = Tensor(b, device=self.device)
    if a.ndim == 0 or b.ndim == 0:
      raise _err(ShapeError, "matmul", f"both arguments need at least 1 dimension, got shapes {_shape_str(a.shape)} and "
                 f"{_shape_str(b.shape)}", "use * for scalars")
    a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
    b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
      raise _err(ShapeError, "matmul", f"shapes {_shape_str(a.shape)} and {_shape_str(b.shape)} cannot be multiplied: "
                 f"inner dimensions {a2.shape[-1]} (dim -1 of the first) and {b2.shape[-2]} (dim "
                 f"{-2 if b.ndim > 1 else -1} of the second) differ", "transpose or reshape so the inner sizes match")
    if a.ndim > 2 and b.ndim == 2:   # a stack of rows times one matrix is one 2-d product (one contraction in backward)
      return a.reshape(-1, a.shape[-1]).matmul(b).reshape(a.shape[:-1] + (b.shape[-1],))
    batch = _broadcast_shape("matmul", a2.shape[:-2], b2.shape[:-2])
    dt = promote(a.dtype, b.dtype)
    acc = float32 if dt in (dtypes.float16, dtypes.bfloat16) else dt
    m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    x = a2.cast(acc)._broadcast_to(batch + (m, k)).reshape(batch + (m, 1, k))
    y = b2.cast(acc)._broadcast_to(batch + (k, n)).transpose(-1, -2).reshape(batch + (1, n, k))
    out = (x * y).sum(-1).cast(dt)
    if a.ndim == 1: out = out.squeeze(-2)
    if b.ndim == 1: out = out.squeeze(-1)
    return out
  dot = matmul

  def linear(self, weight: "Tensor", bias: "Tensor | None" = None) -> "Tensor":
    out = self.matmul(weight.T)
    return out if bias is None else out + bias

  def _tri(self, diagonal: int, lower: bool) -> "Tensor":
    if self.ndim < 2: raise _err(ShapeError, "tril" if lower else "triu", f"needs at least 2 dims, got shape {_shape_str(self.shape)}")
    r, c = self.shape[-2:]
    rows = Tensor.arange(r, device=self.device).reshape(r, 1)
    cols = Tensor.arange(c, device=self.device).reshape(1, c)
    keep = (cols <= rows + diagonal) if lower else (cols >= rows + diagonal)
    return keep.where(self, Tensor._const(0, (), self.dtype)._on(self)).cast(self.dtype)

  def tril(self, diagonal: int = 0): return self._tri(diagonal, True)
  def triu(self, diagonal: int = 0): return self._tri(diagonal, False)

  def one_hot(self, num_classes: int = -1) -> "Tensor":
    if not self.dtype.is_int: raise _err(TypeError, "one_hot", f"needs an integer tensor, got {self.dtype.name}")
    if num_classes < 0: num_classes = int(self.max().item()) + 1
    x = self._checked(self, (self >= 0).logical_and(self < num_classes), f"one_hot: class value {{}} is out of range "
                      f"for num_classes={num_classes}")
    return (x.unsqueeze(-1) == Tensor.arange(num_classes, device=self.device)).cast(int64)

  def cross_entropy(self, target: "Tensor", weight=None, reduction: str = "mean", ignore_index: int = -100,
                    label_smoothing: float = 0.0) -> "Tensor":
    """torch.nn.functional.cross_entropy with class-index targets; classes on dim 1 (or dim 0 for 1-D input)."""
    if weight is not None: raise _err(NotImplementedError, "cross_entropy", "class weights are not supported yet")
    if reduction not in ("mean", "sum", "none"):
      raise _err(ValueError, "cross_entropy", f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    logits = self if self.ndim != 1 else self.unsqueeze(0)
    tgt = target if self.ndim != 1 else target.reshape(1)
    if not tgt.dtype.is_int: raise _err(TypeError, "cross_entropy", f"target must hold class indices (an integer tensor), got {tgt.dtype.name}")
    expect = (logits.shape[0],) + logits.shape[2:]
    if tgt.shape != expect:
      raise _err(ShapeError, "cross_entropy", f"input shape {_shape_str(self.shape)} needs target shape "
                 f"{_shape_str(expect)}, got {_shape_str(target.shape)}")
    c = logits.shape[1]
    tgt = tgt._checked(tgt, ((tgt >= 0).logical_and(tgt < c)).logical_or(tgt == ignore_index),
                       f"cross_entropy: target {{}} is out of bounds for {c} classes")
    logp = logits.log_softmax(1)
    logp = logp.permute((0,) + tuple(range(2, logp.ndim)) + (1,))           # classes last
    hit = tgt.unsqueeze(-1) == Tensor.arange(c, device=self.device)
    nll = -hit.where(logp, 0.0).sum(-1)
    if label_smoothing:
      nll = (1 - label_smoothing) * nll - label_smoothing * logp.mean(-1)
    valid = tgt != ignore_index
    nll = valid.where(nll, 0.0)
    if self.ndim == 1: nll = nll.reshape(())
    if reduction == "none": return nll
    if reduction == "sum": return nll.sum()
    return nll.sum() / valid.cast(float32).sum()


_roots = IdWeakSet()      # live tensors that are not views (they hold a node of their own)
_DEFAULT = Tensor.__new__(Tensor)   # a stand-in reference for _wrap (its device is set right after)
_DEFAULT._device = None
_assigned = IdWeakSet()   # tensors whose node is an in-place update


_CAT_FANIN = 16   # inputs of one cat kernel


def _takes_buffer(t: Tensor, buffer) -> bool:
  """Make `t` the owner of `buffer` unless another live tensor owns it (two owners would write each other's memory)."""
  owner = buffer.owner() if buffer.owner is not None else None
  if owner is not None and owner is not t: return False
  buffer.owner = weakref.ref(t)
  return True


def _uploaded(buf: Buffer) -> Buffer:
  """`buf`, just filled from the host; a jit capture keeps a copy of its contents for replays that need them again."""
  if (cap := _engine.jit_capture()) is not None: cap.uploaded(buf, np.array(buf.numpy(), copy=True))
  return buf


def _in_memory(node: LazyNode) -> bool:
  """Is `node` a tensor's own memory (a buffer, maybe with in-place updates pending), which can be written?"""
  while node.op is Op.ASSIGN: node = node.srcs[0]
  return node.op is Op.BUFFER


def _check_writable_view(view: Tensor, base: Tensor, region: tuple):
  """An in-place update through a view writes each of its elements to one distinct place of the base."""
  st = view_of(base.shape, region)
  v = st.views[-1]
  if len(st.views) > 1 or v.mask is not None or any(stride == 0 for stride, s in zip(v.strides, v.shape) if s > 1):
    raise _err(RuntimeError, "assign", f"this view of shape {_shape_str(view.shape)} does not map its elements "
               f"one to one onto its base of shape {_shape_str(base.shape)} (it is expanded, padded or reshaped "
               "beyond a strided view), so it cannot be written in place", "clone() it first")


def _before_writes(targets: list[LazyNode]) -> tuple[list[Tensor], list[LazyNode]]:
  """Tensors and nodes to realize with `targets` so that no value is lost to an in-place write: what one scan finds
  may write buffers of its own (a pending update of another tensor), so scan again until nothing is added."""
  keep, parts = [], []
  while True:
    more, parts, writes_more = _scan_writes(targets + [t.node for t in keep])
    keep += more
    if not writes_more: return keep, parts


def _scan_writes(targets: list[LazyNode]) -> tuple[list[Tensor], list[LazyNode], bool]:
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
  reads: dict[int, dict] = {}   # node -> {buffer: versions read}, for the written buffers
  parts: dict[int, LazyNode] = {}
  other_writes = []             # unrealized assigns outside this schedule, met on the way

  def merge(n: LazyNode) -> dict:
    out: dict[int, set] = {}
    for s in n.srcs:
      if id(s) not in parts:
        for b, ks in reads[id(s)].items(): out.setdefault(b, set()).update(ks)
    return out

  def visit(root: LazyNode):
    stack = [(root, False)]
    while stack:
      n, ready = stack.pop()
      if id(n) in reads: continue
      if id(n) in rank and ready:
        b, k = rank[id(n)]
        if max(reads[id(n.srcs[1])].get(b, {k - 1})) < k - 1: parts[id(n.srcs[1])] = n.srcs[1]   # value of an older version
        reads[id(n)] = {b: {k}}
      elif n.realized: reads[id(n)] = {id(n.buffer): {0}} if id(n.buffer) in final else {}
      elif not ready:
        stack.append((n, True))
        stack.extend((s, False) for s in n.srcs if id(s) not in reads)
      else:
        r, split = merge(n), len(parts)
        for b, ks in r.items():
          if len(ks) > 1:
            parts.update((id(s), s) for s in n.srcs if not s.realized and max(reads[id(s)].get(b, {max(ks)})) < max(ks))
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
      if not any(min(ks) < final[b] for b, ks in reads[id(n)].items()): continue
    keep.append(t)
  return keep, list(parts.values()), bool(keep) and bool(other_writes)


def realize(*tensors: Tensor):
  """Realize several tensors in one schedule."""
  if not tensors: return
  for t in tensors[1:]: tensors[0]._check_device("realize", t)
  readers, parts = _before_writes([t.node for t in tensors]) if _assigned else ([], [])
  _engine.realize([t.node for t in tensors + tuple(readers)] + parts, tensors[0]._device)
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


def realize_all(tensors: list[Tensor]):
  """Realize tensors that may be on several devices: one schedule per device."""
  for dev in {id(t._device): t._device for t in tensors}.values(): realize(*(t for t in tensors if t._device is dev))


def _hold(t: Tensor, buffer: Buffer, loc):
  """`t` is `buffer` (its owner) as it is now; graphs built on the nodes it held before still send it their
  gradients."""
  if t.requires_grad: t._past = weakref.WeakSet(t._versions())
  t._node = LazyNode.from_buffer(buffer, t.shape, loc)
  buffer.owner = weakref.ref(t)


def overwrite(written: list[tuple[Buffer, list[Tensor]]], run):
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
    realize_all(readers)
  run()
  for b, ts in written:
    b.bump(loc)
    for t in ts: _hold(t, b, loc)


def _nonzero(op: str, divisor: Tensor) -> Tensor:
  """An integer divisor, checked: division by zero raises (as in torch), at once for a constant, else when computed."""
  if divisor.node.op is Op.CONST and divisor.node.arg == 0:
    raise _err(DivisionByZero, op, "integer division by zero", "divide by a nonzero number, or in floating point")
  return divisor._checked(divisor, divisor != 0, f"{op}: integer division by zero (divisor {{}})", "DivisionByZero")


def _inplace_form(name: str):
  def method(self, *args, **kwargs): return self._inplace(name + "_", getattr(self, name)(*args, **kwargs))
  method.__name__, method.__doc__ = name + "_", f"In-place {name}: the result is written into this tensor."
  return method


for _name in ("add", "sub", "mul", "div", "pow", "floor_divide", "remainder", "fmod", "clamp", "clip", "neg", "abs",
              "exp", "log", "sqrt", "rsqrt", "reciprocal", "sigmoid", "tanh", "relu", "floor", "ceil", "round", "trunc",
              "masked_fill", "square", "sin", "cos", "logical_not"):
  setattr(Tensor, _name + "_", _inplace_form(_name))
