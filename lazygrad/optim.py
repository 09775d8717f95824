"""Optimizers. A step builds in-place updates (`assign`) of the parameters and their state; realizing them runs one
schedule, which also computes whatever forward and backward work the gradients still need.

The learning rate and the step count live in device tensors, so a changing learning rate or step never changes
the graph's structure: every step after the first reuses the cached schedule and kernels."""
from __future__ import annotations
import math
from typing import Iterable
from .tensor import Tensor, realize
from .autograd import no_grad


def _check(opt: str, name: str, value, ok) -> float:
  """A hyperparameter, refused (as torch refuses it) unless it is a finite number `ok` accepts."""
  if isinstance(value, Tensor): return value
  if not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
    raise ValueError(f"{opt}: invalid {name}: {value!r}")
  return float(value)


class Optimizer:
  def __init__(self, params: Iterable[Tensor], lr: float):
    self.params = [p for p in params if p.requires_grad]
    if not self.params: raise ValueError(f"{type(self).__name__}: got no parameters that require grad")
    lr = _check(type(self).__name__, "learning rate", lr, lambda v: v >= 0)
    self._lr = Tensor([lr], device=self.params[0].device).realize()

  @property
  def lr(self) -> float: return float(self._lr.numpy()[0])

  @lr.setter
  def lr(self, value: "float | Tensor"):
    """A number, or a 1-element tensor (a jitted step takes the learning rate as an argument that way)."""
    value = _check(type(self).__name__, "learning rate", value, lambda v: v >= 0)
    self._lr.assign(value.reshape(1) if isinstance(value, Tensor) else Tensor([value], device=self.params[0].device))

  def zero_grad(self, set_to_none: bool = True):
    for p in self.params: p.grad = None if set_to_none or p.grad is None else p.grad.zeros_like()

  def schedule_step(self) -> list[Tensor]:
    """The updates of one step, not yet realized: pass them to `lazygrad.realize` with anything else (the loss)
    to run forward, backward and update as one schedule."""
    with no_grad():
      updates = [self._lr]
      for i, p in enumerate(self.params):
        if p.grad is None: continue
        updates += [p.grad] + self._update(i, p, p.grad.cast(p.dtype))
      return updates + self._extra_state()

  def step(self):
    realize(*self.schedule_step())

  def _update(self, i: int, p: Tensor, g: Tensor) -> list[Tensor]: raise NotImplementedError
  def _extra_state(self) -> list[Tensor]: return []

  def _states(self) -> list[Tensor]:
    """A zero state per parameter, made in one schedule. Each in memory of its own: a realized constant is shared by
    every equal constant still alive, and the states of same-shaped parameters are updated in place together."""
    states = [Tensor.zeros(p.shape, dtype=p.dtype, device=p.device).clone() for p in self.params]
    realize(*states)
    return states


class SGD(Optimizer):
  """torch.optim.SGD: momentum, dampening, nesterov, weight decay."""
  def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
               weight_decay: float = 0.0):
    super().__init__(params, lr)
    for name, v in (("momentum", momentum), ("weight_decay", weight_decay), ("dampening", dampening)):
      _check("SGD", name, v, lambda v: v >= 0)
    if nesterov and (momentum <= 0 or dampening != 0):
      raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
    self.momentum, self.dampening, self.nesterov, self.weight_decay = momentum, dampening, nesterov, weight_decay
    self.bufs = self._states() if momentum else []
    self.started = Tensor([0.0], device=self.params[0].device).realize()   # 0 before the first step, then 1

  def _update(self, i, p, g):
    if self.weight_decay: g = g + self.weight_decay * p
    out = []
    if self.momentum:
      # the first step starts the buffer at g (no dampening), as torch does
      buf = self.bufs[i].assign((self.started > 0).where(self.momentum * self.bufs[i] + (1 - self.dampening) * g, g))
      g = g + self.momentum * buf if self.nesterov else buf
      out.append(buf)
    return out + [p.assign(p - self._lr * g)]

  def _extra_state(self): return [self.started.assign(self.started * 0 + 1)]


class Adam(Optimizer):
  """torch.optim.Adam (L2 weight decay added to the gradient)."""
  decoupled = False

  def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
    super().__init__(params, lr)
    name = type(self).__name__
    if len(betas) != 2: raise ValueError(f"{name}: betas must be a pair, got {betas!r}")
    for i, b in enumerate(betas): _check(name, f"beta parameter at index {i}", b, lambda v: 0 <= v < 1)
    _check(name, "epsilon value", eps, lambda v: v >= 0)
    _check(name, "weight_decay value", weight_decay, lambda v: v >= 0)
    self.b1, self.b2, self.eps, self.weight_decay = betas[0], betas[1], eps, weight_decay
    self.m, self.v = self._states(), self._states()
    self.t = Tensor([0.0], device=self.params[0].device).realize()

  def schedule_step(self) -> list[Tensor]:
    with no_grad():
      self.t.assign(self.t + 1)
      # per-step scalars, shared by every parameter's update
      self.step_size = self._lr / (1 - self.b1 ** self.t)
      self.bias2_sqrt = (1 - self.b2 ** self.t).sqrt()
    return super().schedule_step()

  def _update(self, i, p, g):
    if self.weight_decay and not self.decoupled: g = g + self.weight_decay * p
    m = self.m[i].assign(self.b1 * self.m[i] + (1 - self.b1) * g)
    v = self.v[i].assign(self.b2 * self.v[i] + (1 - self.b2) * (g * g))
    base = p * (1 - self._lr * self.weight_decay) if self.weight_decay and self.decoupled else p
    return [m, v, p.assign(base - self.step_size * m / (v.sqrt() / self.bias2_sqrt + self.eps))]

  def _extra_state(self): return [self.t]


class AdamW(Adam):
  """torch.optim.AdamW: weight decay applied to the weights, not the gradient."""
  decoupled = True

  def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
    super().__init__(params, lr, betas, eps, weight_decay)


def clip_grad_norm_(params: Iterable[Tensor], max_norm: float) -> Tensor:
  """Scale gradients so their global L2 norm is at most max_norm (lazily); returns the norm before clipping."""
  params = [p for p in params if p.grad is not None]
  with no_grad():
    total = None
    for p in params:
      sq = p.grad.float().square().sum()
      total = sq if total is None else total + sq
    if total is None: return Tensor(0.0)
    norm = total.sqrt()
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    for p in params: p.grad = p.grad * scale.cast(p.grad.dtype)
    return norm


def cosine_warmup_lr(step: int, warmup: int, total: int, max_lr: float, min_lr: float) -> float:
  """Linear warmup to max_lr over `warmup` steps, then cosine decay to min_lr at step `total` (nanoGPT's)."""
  if step < warmup: return max_lr * (step + 1) / warmup
  if step >= total: return min_lr
  ratio = (step - warmup) / max(1, total - warmup)
  return min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (max_lr - min_lr)
