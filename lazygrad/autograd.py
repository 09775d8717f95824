"""Reverse-mode autodiff on the lazy graph: one rule per primitive, each building more lazy nodes, so backward
is scheduled together with forward (and with the optimizer's update) and fuses like any other code."""
from __future__ import annotations
import contextlib, functools, math, threading
import numpy as np
from .dtypes import bool_, float32, int64
from .helpers import IdWeakSet
from .ir import build as B
from .ir.node import LazyNode, toposort, grad_origin
from .ir.ops import Op


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


def _rule(n: LazyNode, g: LazyNode) -> tuple:
  """Gradients of n's sources given the gradient g of n (None: no gradient flows there), as lazy nodes."""
  op, s, k = n.op, n.srcs, lambda v: B.like(g, v)
  if op is Op.ADD: return g, g
  if op is Op.SUB: return g, B.neg(g)
  if op is Op.MUL: return B.mul(g, s[1]), B.mul(g, s[0])
  if op is Op.DIV:   # torch's -g * ((a/b)/b), from the forward's quotient n: no b*b to overflow
    return B.div(g, s[1]), B.neg(B.mul(g, B.div(n, s[1])))
  if op is Op.POW:   # PyTorch's formulas, so zeros, infinities and NaNs come out as there
    x, y = s
    dx = B.where(B.alu(Op.CMPEQ, y, k(0)), k(0), B.mul(y, B.alu(Op.POW, x, B.sub(y, k(1)))))
    y_nonneg = B.alu(Op.OR, B.alu(Op.CMPLT, k(0), y), B.alu(Op.CMPEQ, y, k(0)))
    dy = B.where(B.alu(Op.AND, B.alu(Op.CMPEQ, x, k(0)), y_nonneg), k(0), B.mul(n, B.alu(Op.LOG, x)))
    return B.mul(g, dx), B.mul(g, dy)
  if op is Op.MOD:   # fmod's, as in PyTorch: d/db = -trunc(a / b)
    return g, B.mul(B.neg(g), B.in_float32(lambda a, b: B.alu(Op.TRUNC, B.div(a, b)), s[0], s[1]))
  if op is Op.NEG: return (B.neg(g),)
  if op is Op.RECIP: return (B.mul(B.mul(B.neg(g), n), n),)
  if op is Op.SQRT: return (B.div(g, B.mul(k(2), n)),)
  if op is Op.EXP: return (B.mul(g, n),)
  if op is Op.EXP2: return (B.mul(g, B.mul(n, k(math.log(2)))),)
  if op is Op.LOG: return (B.div(g, s[0]),)
  if op is Op.SIN: return (B.mul(g, B.cos(s[0])),)
  if op is Op.TRUNC: return (B.mul(g, k(0)),)
  if op is Op.MAX:   # a tie's gradient goes to the first operand (Tensor.maximum/clamp/relu order them)
    take_a = B.alu(Op.OR, B.alu(Op.CMPLT, s[1], s[0]), B.alu(Op.CMPEQ, s[0], s[1]))
    return B.where(take_a, g, k(0)), B.where(take_a, k(0), g)
  if op is Op.WHERE: return None, B.where(s[0], g, k(0)), B.where(s[0], k(0), g)
  if op is Op.CAST: return (B.cast(g, s[0].dtype),) if s[0].dtype.is_float else (None,)
  if op is Op.REDUCE_SUM: return (B.expand(g, s[0].shape),)
  if op is Op.REDUCE_MAX:   # ties share the gradient evenly, as torch.amax does
    hit = B.cast(B.alu(Op.CMPEQ, s[0], B.expand(n, s[0].shape)), g.dtype)
    share = B.in_float32(lambda h, gr: B.div(gr, B.reduce(Op.REDUCE_SUM, h, n.arg)), hit, g)
    return (B.mul(hit, B.expand(share, s[0].shape)),)
  if op is Op.RESHAPE: return (B.reshape(g, s[0].shape),)
  if op is Op.PERMUTE: return (B.movement(Op.PERMUTE, g, _inverse(n.arg)),)
  if op is Op.EXPAND:
    axes = tuple(i for i, (a, b) in enumerate(zip(s[0].shape, n.shape)) if a != b)
    return (B.in_float32(lambda v: B.reduce(Op.REDUCE_SUM, v, axes), g),)
  if op is Op.PAD: return (B.movement(Op.SHRINK, g, tuple((b, b + sz) for (b, _), sz in zip(n.arg, s[0].shape))),)
  if op is Op.SHRINK: return (B.movement(Op.PAD, g, tuple((lo, sz - hi) for (lo, hi), sz in zip(n.arg, s[0].shape))),)
  if op is Op.FLIP: return (B.movement(Op.FLIP, g, n.arg),)
  if op in (Op.CONTIGUOUS, Op.CHECK): return (g,) + (None,) * (len(s) - 1)
  if op is Op.COPY: return (B.copy(g, s[0].device),)
  if op is Op.ASSIGN: return _assign_rule(n, g)
  if op is Op.ATTENTION: return _attention_rule(n, g)
  if op is Op.GATHER:   # each picked row's gradient added back to its row (accumulated in float32)
    x, index = s
    if index.numel == 0: return B.const(0, g.dtype, x.shape, g.device), None
    flat, rest = B.reshape(index, (index.numel,)), math.prod(x.shape[1:])
    gx = B.in_float32(lambda gr: B.scatter_add(flat, gr, x.shape[0]), B.reshape(g, (index.numel, rest)))
    return B.reshape(gx, x.shape), None
  if op is Op.SCATTER_ADD: return None, B.gather(g, s[0])
  if op is Op.REDUCE_PROD: return (_prod_rule(n, g),)
  if op is Op.SCAN: return (_scan_rule(n, g),)
  if op is Op.SORT:   # each value's gradient back to where it came from
    if n.arg.part == "indices" or not g.dtype.is_float: return (None,)
    x, (axis, descending, _) = s[0], n.arg
    return (B.put_along(g, B.sort(x, axis, descending, "indices"), axis, x.shape[axis]),)
  return (None,) * len(s)   # comparisons, logic, integer division, detach: no gradient


def _prod_rule(n: LazyNode, g: LazyNode) -> LazyNode | None:
  """d prod / d x_i is the product of the others: prod / x_i where no element is 0; where exactly one is, the product
  of the rest at that element and 0 elsewhere; where several are, 0 (as torch's, which also divides)."""
  if not g.dtype.is_float: return None
  x, shape, k = n.srcs[0], n.srcs[0].shape, lambda v: B.like(x, v)
  zero = B.alu(Op.CMPEQ, x, k(0))
  zeros = B.expand(B.reduce(Op.REDUCE_SUM, B.cast(zero, int64), n.arg), shape)
  others = B.expand(B.reduce(Op.REDUCE_PROD, B.where(zero, k(1), x), n.arg), shape)
  lone_zero = B.alu(Op.AND, zero, B.alu(Op.CMPEQ, zeros, B.like(zeros, 1)))
  dx = B.where(B.alu(Op.CMPEQ, zeros, B.like(zeros, 0)), B.div(B.expand(n, shape), x),
               B.where(lone_zero, others, k(0)))
  return B.mul(B.expand(g, shape), dx)


def _scan_rule(n: LazyNode, g: LazyNode) -> LazyNode | None:
  """Gradients of the scans: a sum's is the reverse sum; a max's goes to where each running maximum is; a
  logaddexp's and a product's as torch computes them (a product's without dividing by a zero)."""
  if not g.dtype.is_float: return None
  x, (op, axis) = n.srcs[0], n.arg
  if op == "sum": return B.scan("sum", g, axis, reverse=True)
  if op == "max": return B.put_along(g, B.scan_argmax(x, n, axis), axis, x.shape[axis])
  if op == "logaddexp":   # sum_i>=j g_i exp(x_j - out_i), with g's positive and negative parts in log space
    lowest = B.like(g, float(np.finfo(g.dtype.np).min))   # not -inf: -inf - out would be NaN where out is -inf
    log_abs = B.alu(Op.LOG, B.alu(Op.MAX, g, B.neg(g)))
    signed = [B.where(B.alu(Op.CMPLT, *pair), log_abs, lowest) for pair in ((B.like(g, 0), g), (g, B.like(g, 0)))]
    pos, neg = (B.alu(Op.EXP, B.add(B.scan("logaddexp", B.sub(p, n), axis, reverse=True), x)) for p in signed)
    return B.sub(pos, neg)
  # a product: before the first zero, sum_i>=j g_i out_i / x_j (the out_i after it are 0); at the first zero, the
  # reverse sum of g times the products with that zero taken as 1; after it, 0
  k = lambda v: B.like(x, v)
  zero = B.alu(Op.CMPEQ, x, k(0))
  zeros_so_far = B.scan("sum", B.cast(zero, int64), axis)
  before = B.alu(Op.CMPEQ, zeros_so_far, B.like(zeros_so_far, 0))
  first = B.alu(Op.AND, zero, B.alu(Op.CMPEQ, zeros_so_far, B.like(zeros_so_far, 1)))
  upto = B.div(B.scan("sum", B.mul(g, n), axis, reverse=True), B.where(before, x, k(1)))
  skip_zero = B.scan("prod", B.where(first, k(1), x), axis)
  at_zero = B.scan("sum", B.mul(g, skip_zero), axis, reverse=True)
  return B.where(before, upto, B.where(first, at_zero, k(0)))


def _attention_rule(n: LazyNode, g: LazyNode) -> tuple:
  """Fused attention's backward, as the flash-attention papers give it: the probabilities are recomputed tile by
  tile from q, k and the rows' log-sum-exp; delta = rowsum(dO * out) stands for rowsum(dP * P), computed by the dq
  kernel for its rows (from dO and out, which it loads) and stored for the dk, dv kernel. The mask gets no
  gradient (the Tensor API composes attention from primitives when it needs one); lse and the gradient parts are
  internal values, not differentiated again."""
  a = n.arg
  if a.part != "out": return (None,) * len(n.srcs)
  q, k, v = n.srcs[:3]
  mask = n.srcs[3] if a.masked else None
  lse = B.attention("lse", q, k, v, a.scale, a.causal, mask)
  dq, delta = (B.attention(p, q, k, v, a.scale, a.causal, mask, (g, lse, n)) for p in ("dq", "delta"))
  dk, dv = (B.attention(p, q, k, v, a.scale, a.causal, mask, (g, lse, delta)) for p in ("dk", "dv"))
  return (dq, dk, dv) + ((None,) if a.masked else ())


def _assign_rule(n: LazyNode, g: LazyNode) -> tuple:
  """An in-place update's result is its value where it wrote (its region, or everywhere) and its target elsewhere."""
  if not n.arg: return None, g
  views = [n.srcs[0]]   # the target seen through the region's movement ops, one at a time
  for step in reversed(n.arg): views.append(B.apply_path(views[-1], (step,)))
  region = B.const(True, bool_, views[-1].shape, n.device)
  for v in reversed(views[1:]): region = _rule(v, region)[0]   # scattered back: a movement op's gradient
  return B.where(region, B.like(g, 0), g), B.apply_path(g, n.arg)


def gradients(root: LazyNode, targets: list[list[LazyNode]], root_grad: LazyNode,
              ready: list[int] | None = None) -> list[LazyNode | None]:
  """d(root)/d(target) for each target, as lazy nodes (None where root does not depend on a target). A target is
  given as every node that stands for it (Tensor._versions): its gradient is the sum over them. `ready`, if given,
  is filled with the targets' indices in the order the backward completes their gradients (the last layer's first)."""
  wanted = {id(n) for nodes in targets for n in nodes}
  order = toposort([root], through_realized=True)
  needs = set()
  for n in order:   # nodes on a path from a target to the root
    if id(n) in wanted or (n.op is not Op.DETACH and any(id(s) in needs for s in n.srcs)): needs.add(id(n))
  grads: dict[int, LazyNode] = {id(root): root_grad}
  known = {id(n) for n in order}   # the forward graph, then every node already attributed
  for n in reversed(order):
    if (g := grads.get(id(n))) is None: continue
    for s, sg in zip(n.srcs, _rule(n, g)):
      if sg is None or id(s) not in needs: continue
      _record(sg, n, known)
      if (prev := grads.get(id(s))) is not None: _record(sg := B.add(prev, sg), s, known)   # s's gradient, summed
      grads[id(s)] = sg
  out = []
  for nodes in targets:
    found = [grads[i] for i in dict.fromkeys(id(n) for n in nodes) if i in grads]
    out.append(functools.reduce(B.add, found) if found else None)
    if found: _record(out[-1], nodes[0], known)
  if ready is not None:   # complete once the reverse walk has passed every node of the target
    pos = {id(n): i for i, n in enumerate(order)}
    first = {t: min((pos[id(n)] for n in nodes if id(n) in pos), default=-1) for t, nodes in enumerate(targets)}
    ready[:] = sorted(range(len(targets)), key=lambda t: -first[t])
  return out


def _record(grad: LazyNode, origin: LazyNode, known: set[int]):
  """Note in `grad_origin` that the nodes below `grad` which neither the forward graph nor an earlier rule holds
  were built to differentiate `origin`. Each node is walked once; all stay alive until `gradients` returns (the
  gradients hold them), so their ids in `known` are not reused meanwhile."""
  stack, note = [grad], grad_origin.setdefault   # a node an earlier backward pass built keeps its origin
  while stack:
    x = stack.pop()
    if id(x) in known: continue
    known.add(id(x))
    note(x, origin)
    stack.extend(x.srcs)
