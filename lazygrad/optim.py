"""Optimizers. A step builds in-place updates (`assign`) of the parameters and their state; realizing them runs one
schedule, which also computes whatever forward and backward work the gradients still need.

The learning rate and the step count live in device tensors, so a changing learning rate or step never changes
the graph's structure: every step after the first reuses the cached schedule and kernels."""
from __future__ import annotations
import collections, functools, math, weakref
import numpy as np
from typing import Iterable
from .tensor import Tensor, realize
from .autograd import no_grad
from .ir.ops import Op


def _check(opt: str, name: str, value, ok) -> float:
  """A hyperparameter, refused (as torch refuses it) unless it is a finite number `ok` accepts."""
  if isinstance(value, Tensor): return value
  if not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
    raise ValueError(f"{opt}: invalid {name}: {value!r}")
  return float(value)


_ALIGN = 64   # elements: each parameter's part of a flat buffer starts at a multiple (aligned vector loads)
_flat_of_grads = weakref.WeakValueDictionary()   # id(flat gradient buffer) -> its _Flat


class _Flat:
  """Parameters of one device and dtype gathered into one flat buffer `P`, each parameter a view of its part (the
  tensors a model holds stay the same objects). The backward writes each gradient into its part of the flat
  gradient buffer `G` (`.grad` is that view) and the optimizer's states are flat too, so a step updates all the
  parameters in one elementwise kernel and gradient clipping reduces one buffer, instead of a few kernels per
  parameter. The gaps that align the parts stay zero in every buffer (a zero gradient keeps zeros zero)."""
  def __init__(self, params: list[Tensor], index: list[int]):
    self.params, self.index, self.offsets = params, index, []
    total = 0
    for p in params:
      self.offsets.append(total)
      total += -(-p.numel() // _ALIGN) * _ALIGN
    with no_grad():
      self.P, self.G = self.zeros(total), self.zeros(total)
      realize(self.P, self.G)
      for p, o in zip(params, self.offsets):   # device copies: a kernel per part would compile once per offset
        self.P.node.buffer.copy_from(p.node.buffer, o)
      for p, part, grad in zip(params, self.views(self.P), self.views(self.G)):
        p._become_view(part)
        p._grad_into = grad
    _flat_of_grads[id(self.G)] = self

  def zeros(self, size: int | None = None) -> Tensor:
    """A zero flat buffer of this group's size, dtype and device (memory of its own: a realized constant is shared by
    every equal constant still alive)."""
    p = self.params[0]
    return Tensor.zeros(size or self.P.numel(), dtype=p.dtype, device=p.device).clone()

  def views(self, flat: Tensor) -> list[Tensor]:
    return [flat[o:o + p.numel()].reshape(p.shape) for p, o in zip(self.params, self.offsets)]

  def ready(self) -> bool:
    """Whether every gradient of the group is in `G` (none missing, none replaced by another tensor)."""
    return all(p.grad is p._grad_into for p in self.params)


def _flatten(params: list[Tensor]) -> list[_Flat]:
  """The groups (device, dtype) of two or more parameters that have memory of their own, gathered into flat buffers;
  a parameter listed twice or a view of other memory stays as it is."""
  realize(*params)
  counts = collections.Counter(id(p) for p in params)
  groups: dict = {}
  for i, p in enumerate(params):
    if counts[id(p)] == 1 and p._base is None and p.node.op is Op.BUFFER and p.node.buffer.size == p.numel():
      groups.setdefault((p.device, p.dtype), []).append(i)
  return [_Flat([params[i] for i in idx], idx) for idx in groups.values() if len(idx) > 1]


def _whole_flats(params: list[Tensor]) -> list[_Flat]:
  """The flat gradient buffers that hold the gradients of `params` and of no other parameter."""
  ids = {id(p) for p in params}
  flats = {id(f): f for p in params if p.grad is not None and p.grad is p._grad_into
           and (f := _flat_of_grads.get(id(p._grad_into._base))) is not None}
  return [f for f in flats.values() if f.ready() and all(id(q) in ids for q in f.params)]


class Optimizer:
  """The base of the optimizers. With `flat=True` (the default) the parameters of each device and dtype are gathered
  into one flat buffer (see `_Flat`): one update kernel for all of them."""
  def __init__(self, params: Iterable[Tensor], lr: float, flat: bool = True):
    self.params = [p for p in params if p.requires_grad]
    if not self.params: raise ValueError(f"{type(self).__name__}: got no parameters that require grad")
    lr = _check(type(self).__name__, "learning rate", lr, lambda v: v >= 0)
    self._lr = Tensor([lr], device=self.params[0].device).realize()
    self.flats = _flatten(self.params) if flat else []
    # updates each parameter has had, as torch counts them: one whose gradient was None stays behind, and its bias
    # correction (Adam) or momentum start (SGD) follows its own count. On the host (whether a parameter has a
    # gradient is known here) and on the device (float32, exact to 2^24 steps: a jitted step replays the count)
    self._counts = [0] * len(self.params)
    self.steps = Tensor.zeros(len(self.params), device=self.params[0].device).clone().realize()

  @property
  def lr(self) -> float: return float(self._lr.numpy()[0])

  @lr.setter
  def lr(self, value: "float | Tensor"):
    """A number, or a 1-element tensor (a jitted step takes the learning rate as an argument that way)."""
    value = _check(type(self).__name__, "learning rate", value, lambda v: v >= 0)
    self._lr.assign(value.reshape(1) if isinstance(value, Tensor) else Tensor([value], device=self.params[0].device))

  def zero_grad(self, set_to_none: bool = True):
    if set_to_none:
      for p in self.params: p.grad = None
      return
    zeroed = set()
    with no_grad():
      for f in self.flats:
        if f.ready():   # in place, once for the group, as torch zeroes each .grad in place
          f.G.assign(0)
          zeroed.update(id(p) for p in f.params)
      for p in self.params:
        if p.grad is None or id(p) in zeroed: continue
        p.grad = p.grad.assign(0) if p.grad is p._grad_into else p.grad.zeros_like()

  def schedule_step(self) -> list[Tensor]:
    """The updates of one step, not yet realized: pass them to `lazygrad.realize` with anything else (the loss)
    to run forward, backward and update as one schedule."""
    with no_grad():
      groups = self._groups()
      updated = [i for _, idx in groups for i in idx]
      for i in updated: self._counts[i] += 1
      updates = [self._lr] + self._counted(updated)
      for f, idx in groups:
        if f is not None:   # the whole flat group: one kernel
          updates += [f.G] + self._update(f.P, f.G, idx[0], *(states[idx[0]]._base for states in self._state_lists()))
        else:
          (i,) = idx
          p = self.params[i]
          updates += [p.grad] + self._update(p, p.grad.cast(p.dtype), i, *(states[i] for states in self._state_lists()))
      return updates

  def _groups(self) -> list[tuple["_Flat | None", list[int]]]:
    """The parameters this step updates (those with a gradient), by index: a flat group as one (with its `_Flat`)
    when every gradient of it is in its flat buffer and its parameters have had the same number of updates, else one
    by one."""
    groups, done = [], set()
    for f in self.flats:
      if f.ready() and len({self._counts[i] for i in f.index}) == 1:
        groups.append((f, list(f.index)))
        done.update(f.index)
    return groups + [(None, [i]) for i, p in enumerate(self.params) if i not in done and p.grad is not None]

  def _counted(self, updated: list[int]) -> list[Tensor]:
    """`steps` counted up by one at the `updated` indices, in place."""
    if not updated: return []
    if len(updated) == len(self.params): return [self.steps.assign(self.steps + 1)]
    mask = np.zeros(len(self.params), np.float32)
    mask[updated] = 1
    return [self.steps.assign(self.steps + Tensor(mask, device=self.steps.device))]

  def step(self):
    realize(*self.schedule_step())

  def _update(self, p: Tensor, g: Tensor, i: int, *state: Tensor) -> list[Tensor]:
    """The in-place updates of parameter (or flat buffer) `p` with gradient `g` and its `state` tensors; `i` is the
    index of (the first of) its parameters, for their step count."""
    raise NotImplementedError
  def _state_lists(self) -> list[list[Tensor]]: return []

  def _states(self) -> list[Tensor]:
    """A zero state per parameter (a view of a flat state for a flattened one), made in one schedule. Each in memory
    of its own: the states of same-shaped parameters are updated in place together."""
    states: list = [None] * len(self.params)
    fresh = []
    for f in self.flats:
      fresh.append(flat := f.zeros())
      for i, view in zip(f.index, f.views(flat)): states[i] = view
    for i, p in enumerate(self.params):
      if states[i] is None:
        states[i] = Tensor.zeros(p.shape, dtype=p.dtype, device=p.device).clone()
        fresh.append(states[i])
    realize(*fresh)
    return states


class SGD(Optimizer):
  """torch.optim.SGD: momentum, dampening, nesterov, weight decay."""
  def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
               weight_decay: float = 0.0, flat: bool = True):
    super().__init__(params, lr, flat)
    for name, v in (("momentum", momentum), ("weight_decay", weight_decay), ("dampening", dampening)):
      _check("SGD", name, v, lambda v: v >= 0)
    if nesterov and (momentum <= 0 or dampening != 0):
      raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
    self.momentum, self.dampening, self.nesterov, self.weight_decay = momentum, dampening, nesterov, weight_decay
    self.bufs = self._states() if momentum else []

  def _state_lists(self): return [self.bufs] if self.momentum else []

  def _update(self, p, g, i, buf=None):
    if self.weight_decay: g = g + self.weight_decay * p
    out = []
    if self.momentum:
      # a parameter's first update starts its buffer at g (no dampening), as torch does
      first = self.steps[i:i + 1] == 1
      buf = buf.assign(first._where(g, self.momentum * buf + (1 - self.dampening) * g))
      g = g + self.momentum * buf if self.nesterov else buf
      out.append(buf)
    return out + [p.assign(p - self._lr * g)]


class Adam(Optimizer):
  """torch.optim.Adam (L2 weight decay added to the gradient)."""
  decoupled = False

  def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
               flat: bool = True):
    super().__init__(params, lr, flat)
    name = type(self).__name__
    if len(betas) != 2: raise ValueError(f"{name}: betas must be a pair, got {betas!r}")
    for i, b in enumerate(betas): _check(name, f"beta parameter at index {i}", b, lambda v: 0 <= v < 1)
    _check(name, "epsilon value", eps, lambda v: v >= 0)
    _check(name, "weight_decay value", weight_decay, lambda v: v >= 0)
    self.b1, self.b2, self.eps, self.weight_decay = betas[0], betas[1], eps, weight_decay
    self.m, self.v = self._states(), self._states()

  def _state_lists(self): return [self.m, self.v]

  def _update(self, p, g, i, m, v):
    if self.weight_decay and not self.decoupled: g = g + self.weight_decay * p
    t = self.steps[i:i + 1]   # this parameter's updates, this one included: its bias correction
    step_size, bias2_sqrt = self._lr / (1 - self.b1 ** t), (1 - self.b2 ** t).sqrt()
    m = m.assign(self.b1 * m + (1 - self.b1) * g)
    v = v.assign(self.b2 * v + (1 - self.b2) * (g * g))
    base = p * (1 - self._lr * self.weight_decay) if self.weight_decay and self.decoupled else p
    return [m, v, p.assign(base - step_size * m / (v.sqrt() / bias2_sqrt + self.eps))]


class AdamW(Adam):
  """torch.optim.AdamW: weight decay applied to the weights, not the gradient."""
  decoupled = True

  def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
               flat: bool = True):
    super().__init__(params, lr, betas, eps, weight_decay, flat)


def clip_grad_norm_(params: Iterable[Tensor], max_norm: float) -> Tensor:
  """Scale gradients so their global L2 norm is at most max_norm (lazily); returns the norm before clipping. A flat
  gradient buffer (see `_Flat`) is reduced and scaled in place as a whole."""
  params = [p for p in params if p.grad is not None]
  with no_grad():
    flats = _whole_flats(params)
    whole = {id(p) for f in flats for p in f.params}
    rest = [p for p in params if id(p) not in whole]
    squares = [f.G.float().square().sum() for f in flats] + [p.grad.float().square().sum() for p in rest]
    if not squares: return Tensor(0.0)
    norm = functools.reduce(lambda a, b: a + b, squares).sqrt()
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    for f in flats: f.G.assign(f.G * scale.cast(f.G.dtype))
    for p in rest: p.grad = p.grad * scale.cast(p.grad.dtype)
    return norm


def cosine_warmup_lr(step: int, warmup: int, total: int, max_lr: float, min_lr: float) -> float:
  """Linear warmup to max_lr over `warmup` steps, then cosine decay to min_lr at step `total` (nanoGPT's)."""
  if step < warmup: return max_lr * (step + 1) / warmup
  if step >= total: return min_lr
  ratio = (step - warmup) / max(1, total - warmup)
  return min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (max_lr - min_lr)
