"""Reverse-mode autodiff on the lazy graph: one rule per primitive, each building more lazy nodes, so backward
is scheduled together with forward (and with the optimizer's update) and fuses like any other code."""
from __future__ import annotations
import contextlib, functools, threading
from typing import TYPE_CHECKING
from .dtypes import bool_
from .helpers import IdWeakSet
from .ir.node import LazyNode, apply_path, toposort
from .ir.ops import Op
if TYPE_CHECKING: from .tensor import Tensor


class _GradMode(threading.local):
  enabled = True


grad_mode = _GradMode()
grad_leaves = IdWeakSet()   # leaf tensors that require grad: where .grad lands


class no_grad(contextlib.ContextDecorator):
  """Context manager and decorator: tensors made inside do not require grad (like torch.no_grad)."""
  def __enter__(self):
    self.prev, grad_mode.enabled = grad_mode.enabled, False
  def __exit__(self, *exc):
    grad_mode.enabled = self.prev


def _inverse(perm): return tuple(sorted(range(len(perm)), key=lambda i: perm[i]))


def _rule(n: LazyNode, g: "Tensor", T) -> tuple:
  """Gradients of n's sources given the gradient g of n (None: no gradient flows there)."""
  src = [T(s) for s in n.srcs]
  out = T(n)
  op = n.op
  if op is Op.ADD: return g, g
  if op is Op.SUB: return g, -g
  if op is Op.MUL: return g * src[1], g * src[0]
  if op is Op.DIV: return g / src[1], -g * src[0] / (src[1] * src[1])
  if op is Op.POW:   # PyTorch's formulas, so zeros, infinities and NaNs come out as there
    x, y = src
    return (g * (y == 0).where(0.0, y * x ** (y - 1)),
            g * (x == 0).logical_and(y >= 0).where(0.0, out * x.log()))
  if op is Op.MOD: return g, -g * src[0].div(src[1], rounding_mode="trunc")   # fmod's, as in PyTorch
  if op is Op.NEG: return (-g,)
  if op is Op.RECIP: return (-g * out * out,)
  if op is Op.SQRT: return (g / (2 * out),)
  if op is Op.EXP: return (g * out,)
  if op is Op.LOG: return (g / src[0],)
  if op is Op.SIN: return (g * src[0].cos(),)
  if op is Op.TRUNC: return (g * 0,)
  if op is Op.MAX:   # a tie's gradient goes to the first operand (Tensor.maximum/clamp/relu order them)
    take_a = src[0] >= src[1]
    return take_a.where(g, 0.0), take_a.where(0.0, g)
  if op is Op.WHERE: return None, src[0].where(g, 0.0), src[0].where(0.0, g)
  if op is Op.CAST: return (g.cast(n.srcs[0].dtype),) if n.srcs[0].dtype.is_float else (None,)
  if op is Op.REDUCE_SUM: return (g.expand(n.srcs[0].shape),)
  if op is Op.REDUCE_MAX:   # ties share the gradient evenly, as torch.amax does
    hit = (src[0] == out.expand(n.srcs[0].shape)).cast(g.dtype)
    return (hit * (g / hit.sum(n.arg, keepdim=True)).expand(n.srcs[0].shape),)
  if op is Op.RESHAPE: return (g.reshape(n.srcs[0].shape),)
  if op is Op.PERMUTE: return (g.permute(_inverse(n.arg)),)
  if op is Op.EXPAND:
    axes = tuple(i for i, (a, b) in enumerate(zip(n.srcs[0].shape, n.shape)) if a != b)
    return (g.sum(axes, keepdim=True),)
  if op is Op.PAD: return (g.shrink(tuple((b, b + s) for (b, _), s in zip(n.arg, n.srcs[0].shape))),)
  if op is Op.SHRINK: return (g.pad(tuple(x for (lo, hi), s in reversed(list(zip(n.arg, n.srcs[0].shape)))
                                          for x in (lo, s - hi))),)
  if op is Op.FLIP: return (g.flip(n.arg),)
  if op is Op.CONTIGUOUS: return (g,)
  if op is Op.CHECK: return g, None
  if op is Op.ASSIGN: return _assign_rule(n, g, T)
  if op is Op.GATHER:   # scatter-add back, as a contraction with the one-hot of the index (a DOT, no atomics)
    x, index = src
    rows, flat = x.shape[0], index.reshape(-1)
    hit = (flat.unsqueeze(-1) == type(g).arange(rows, device=g.device)).cast(g.dtype)   # (picks, rows)
    return (hit.T @ g.reshape(flat.shape[0], -1)).reshape(x.shape), None
  return (None,) * len(n.srcs)   # comparisons, logic, integer division, detach: no gradient


def _assign_rule(n: LazyNode, g: "Tensor", T) -> tuple:
  """An in-place update's result is its value where it wrote (its region, or everywhere) and its target elsewhere."""
  if not n.arg: return None, g
  views = [n.srcs[0]]   # the target seen through the region's movement ops, one at a time
  for step in reversed(n.arg): views.append(apply_path(views[-1], (step,)))
  region = type(g)._const(True, views[-1].shape, bool_)._on(g)
  for v in reversed(views[1:]): region = _rule(v, region, T)[0]   # scattered back: a movement op's gradient
  return region.where(0.0, g), T(apply_path(g.node, n.arg))


def gradients(root: "Tensor", targets: list[list[LazyNode]], root_grad: "Tensor") -> list["Tensor | None"]:
  """d(root)/d(target) for each target, as lazy tensors (None where root does not depend on a target). A target is
  given as every node that stands for it (Tensor._versions): its gradient is the sum over them."""
  from .tensor import Tensor
  def T(node: LazyNode) -> Tensor: return Tensor._wrap(node, root)
  wanted = {id(n) for nodes in targets for n in nodes}
  order = toposort([root.node], through_realized=True)
  needs = set()
  for n in order:   # nodes on a path from a target to the root
    if id(n) in wanted or (n.op is not Op.DETACH and any(id(s) in needs for s in n.srcs)): needs.add(id(n))
  grads: dict[int, Tensor] = {id(root.node): root_grad}
  with no_grad():
    for n in reversed(order):
      if (g := grads.get(id(n))) is None: continue
      for s, sg in zip(n.srcs, _rule(n, g, T)):
        if sg is None or id(s) not in needs: continue
        prev = grads.get(id(s))
        grads[id(s)] = sg if prev is None else prev + sg
    out = []
    for nodes in targets:
      found = [grads[i] for i in dict.fromkeys(id(n) for n in nodes) if i in grads]
      out.append(functools.reduce(lambda a, b: a + b, found) if found else None)
  return out
