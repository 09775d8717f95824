"""Optimizers against torch.optim on a small MLP; one schedule per step; graphs that do not grow."""
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor, counters
from lazygrad.ir.node import toposort

rng = np.random.default_rng(0)
INIT = [rng.standard_normal((8, 16)).astype(np.float32) * 0.3, rng.standard_normal(16).astype(np.float32) * 0.1,
        rng.standard_normal((16, 3)).astype(np.float32) * 0.3, np.zeros(3, np.float32)]
X = rng.standard_normal((32, 8)).astype(np.float32)
Y = rng.integers(0, 3, 32)

OPTIMIZERS = {
  "sgd": (lambda p: lazygrad.optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
  "sgd_momentum_wd": (lambda p: lazygrad.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
                      lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
  "sgd_nesterov": (lambda p: lazygrad.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                   lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
  "adam": (lambda p: lazygrad.optim.Adam(p, lr=0.01, weight_decay=0.01), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01)),
  "adamw": (lambda p: lazygrad.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99)),
            lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99))),
}


def mlp(ps, x, y): return ((x @ ps[0] + ps[1]).relu() @ ps[2] + ps[3]).cross_entropy(y)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_trajectory_matches_torch(name):
  make_lg, make_t = OPTIMIZERS[name]
  ps = [Tensor(a, requires_grad=True) for a in INIT]
  tps = [torch.tensor(a, requires_grad=True) for a in INIT]
  opt, topt = make_lg(ps), make_t(tps)
  schedules = None
  for step in range(20):
    loss = mlp(ps, Tensor(X), Tensor(Y))
    opt.zero_grad(); loss.backward()
    lazygrad.realize(loss, *opt.schedule_step())
    tloss = torch.nn.functional.cross_entropy((torch.tensor(X) @ tps[0] + tps[1]).relu() @ tps[2] + tps[3],
                                              torch.tensor(Y))
    topt.zero_grad(); tloss.backward(); topt.step()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5, atol=1e-6)
    if step == 1: schedules = counters.schedules
  assert counters.schedules == schedules, "steps after the second must reuse the cached schedule"
  for p, tp in zip(ps, tps): np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_step_is_one_schedule_within_kernel_budget():
  """Forward, backward and the SGD update of a 2-layer MLP: one schedule, at most 28 kernels (forward 3, loss 3,
  backward 10 of which 3 store a computed matmul operand once, the SGD update with its gradients 8, bookkeeping)."""
  ps = [Tensor(a, requires_grad=True) for a in INIT]
  opt = lazygrad.optim.SGD(ps, lr=0.1)
  loss = mlp(ps, Tensor(X), Tensor(Y))
  loss.backward()
  k, s = counters.kernels, counters.schedules
  lazygrad.realize(loss, *opt.schedule_step())
  assert counters.schedules - s <= 1
  assert counters.kernels - k <= 28


def graph_size(tensors) -> int: return len(toposort([t.node for t in tensors], through_realized=True))


def test_graph_does_not_grow_with_training():
  ps = [Tensor(a, requires_grad=True) for a in INIT]
  opt = lazygrad.optim.AdamW(ps, lr=0.01)
  sizes = []
  for _ in range(6):
    loss = mlp(ps, Tensor(X), Tensor(Y))
    opt.zero_grad(); loss.backward()
    lazygrad.realize(loss, *opt.schedule_step())
    sizes.append(graph_size(ps + opt.m + opt.v + [opt.t]))
  assert sizes[0] == sizes[-1] == len(ps + opt.m + opt.v + [opt.t])   # every one a buffer, nothing hanging off


def test_grad_accumulates_without_zero_grad():
  p = Tensor(np.ones(3, np.float32), requires_grad=True)
  for _ in range(3): (p * 2).sum().backward()
  np.testing.assert_allclose(p.grad.numpy(), [6, 6, 6])


def test_clip_grad_norm():
  ps = [Tensor(a, requires_grad=True) for a in INIT]
  tps = [torch.tensor(a, requires_grad=True) for a in INIT]
  mlp(ps, Tensor(X), Tensor(Y)).backward()
  torch.nn.functional.cross_entropy((torch.tensor(X) @ tps[0] + tps[1]).relu() @ tps[2] + tps[3], torch.tensor(Y)).backward()
  norm = lazygrad.optim.clip_grad_norm_(ps, 0.5)
  tnorm = torch.nn.utils.clip_grad_norm_(tps, 0.5)
  np.testing.assert_allclose(norm.item(), tnorm.item(), rtol=1e-5)
  for p, tp in zip(ps, tps): np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_assign_runs_after_every_reader_of_the_old_value():
  a = Tensor(np.arange(4, dtype=np.float32))
  old_sum = a.sum()                      # reads the old a
  with lazygrad.no_grad(): a.assign(a * 10)
  lazygrad.realize(a, old_sum)
  assert old_sum.item() == 6.0
  np.testing.assert_allclose(a.numpy(), [0, 10, 20, 30])


def test_assign_reading_a_transposed_target_is_not_corrupted():
  m = np.arange(9, dtype=np.float32).reshape(3, 3)
  a = Tensor(m)
  a.assign(a.T + 1).realize()
  np.testing.assert_allclose(a.numpy(), m.T + 1)


def test_learning_rate_change_keeps_the_schedule():
  ps = [Tensor(a, requires_grad=True) for a in INIT]
  opt = lazygrad.optim.SGD(ps, lr=0.1)
  for step in range(4):
    opt.lr = 0.1 / (step + 1)
    loss = mlp(ps, Tensor(X), Tensor(Y)); opt.zero_grad(); loss.backward()
    lazygrad.realize(loss, *opt.schedule_step())
    if step == 1: s = counters.schedules
  assert counters.schedules == s
  assert abs(opt.lr - 0.025) < 1e-9


def test_states_of_same_shaped_parameters_have_memory_of_their_own():
  """Equal constants are one node: a realized one still alive must not give its memory to several states."""
  zeros = Tensor.zeros(3)
  alive = zeros.node   # noqa: F841  the shared node, realized below
  zeros.realize()
  ps = [Tensor(np.ones(3, np.float32), requires_grad=True) for _ in range(2)]
  opt = lazygrad.optim.Adam(ps, lr=0.1)
  (ps[0] * 2 + ps[1] * 3).sum().backward()
  opt.step()
  for p in ps: np.testing.assert_allclose(p.numpy(), 0.9, rtol=1e-6)
