"""Optimizers against torch.optim on a small MLP; one schedule per step; graphs that do not grow."""
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor, counters
from lazygrad.ir.node import toposort
from lazygrad.ir.ops import Op, MOVEMENT

rng = np.random.default_rng(0)
INIT = [rng.standard_normal((8, 16)).astype(np.float32) * 0.3, rng.standard_normal(16).astype(np.float32) * 0.1,
        rng.standard_normal((16, 3)).astype(np.float32) * 0.3, np.zeros(3, np.float32)]
X = rng.standard_normal((32, 8)).astype(np.float32)
Y = rng.integers(0, 3, 32)

OPTIMIZERS = {
  "sgd": (lambda p, **kw: lazygrad.optim.SGD(p, lr=0.1, **kw), lambda p: torch.optim.SGD(p, lr=0.1)),
  "sgd_momentum_wd": (lambda p, **kw: lazygrad.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01,
                                                         **kw),
                      lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
  "sgd_nesterov": (lambda p, **kw: lazygrad.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, **kw),
                   lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
  "adam": (lambda p, **kw: lazygrad.optim.Adam(p, lr=0.01, weight_decay=0.01, **kw),
           lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01)),
  "adamw": (lambda p, **kw: lazygrad.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99), **kw),
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
    sizes.append(graph_size(ps + opt.m + opt.v + [opt.steps]))
  assert sizes[0] == sizes[-1]
  # every one a buffer or a view of one (a part of a flat buffer): nothing hanging off
  nodes = toposort([t.node for t in ps + opt.m + opt.v + [opt.steps]], through_realized=True)
  assert {n.op for n in nodes} <= {Op.BUFFER} | MOVEMENT and sum(n.op is Op.BUFFER for n in nodes) == 4


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


def _pair(make_opt=lambda ps: lazygrad.optim.AdamW(ps, lr=0.05), make_topt=lambda ps: torch.optim.AdamW(ps, lr=0.05)):
  ps = [Tensor(a, requires_grad=True) for a in INIT]
  tps = [torch.tensor(a, requires_grad=True) for a in INIT]
  return ps, make_opt(ps), tps, make_topt(tps)


def _close(ps, tps):
  for p, t in zip(ps, tps): np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_flat_parameters_keep_their_identity_and_views_made_before_follow():
  """The optimizer gathers the parameters into one flat buffer: the tensors stay the same objects with the same
  values, a view made before (a transposed weight) shows the updated values, and .grad is a view of the flat
  gradient buffer."""
  ps = [Tensor(a, requires_grad=True) for a in INIT]
  ids, w_t = [id(p) for p in ps], ps[0].T
  opt = lazygrad.optim.AdamW(ps, lr=0.1)
  assert [id(p) for p in ps] == ids and len(opt.flats) == 1
  for p, a in zip(ps, INIT): np.testing.assert_array_equal(p.numpy(), a)
  mlp(ps, Tensor(X), Tensor(Y)).backward()
  assert all(p.grad is p._grad_into and p.grad._base is opt.flats[0].G for p in ps)
  opt.step()
  assert not np.array_equal(ps[0].numpy(), INIT[0])
  np.testing.assert_array_equal(w_t.numpy(), ps[0].numpy().T)


@pytest.mark.parametrize("flat", [True, False])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_parameter_without_gradient_keeps_its_own_step_count_like_torch(name, flat):
  """A step where some parameters get no gradient leaves them alone; each parameter counts its own updates, as torch
  does: Adam's bias correction and SGD's momentum start follow that count (the last layer first updates at step 1
  here, and skips step 3 again)."""
  make_lg, make_t = OPTIMIZERS[name]
  ps, tps = [Tensor(a, requires_grad=True) for a in INIT], [torch.tensor(a, requires_grad=True) for a in INIT]
  opt, topt = make_lg(ps, flat=flat), make_t(tps)
  for step in range(5):
    if step in (0, 3):   # the last layer gets no gradient
      loss, tloss = (Tensor(X) @ ps[0] + ps[1]).relu().sum(), (torch.tensor(X) @ tps[0] + tps[1]).relu().sum()
    else:
      loss = mlp(ps, Tensor(X), Tensor(Y))
      tloss = torch.nn.functional.cross_entropy((torch.tensor(X) @ tps[0] + tps[1]).relu() @ tps[2] + tps[3],
                                                torch.tensor(Y))
    opt.zero_grad(); loss.backward(); opt.step()
    topt.zero_grad(); tloss.backward(); topt.step()
    for p, t in zip(ps, tps): np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("subset", [False, True])
def test_clipping_flat_gradients_matches_torch(subset):
  """Clipping all the gradients of a flat buffer reduces and scales the buffer in place; clipping some of them
  clips those alone."""
  ps, opt, tps, topt = _pair()
  for _ in range(3):
    loss = mlp(ps, Tensor(X), Tensor(Y)) * 50
    tloss = torch.nn.functional.cross_entropy((torch.tensor(X) @ tps[0] + tps[1]).relu() @ tps[2] + tps[3],
                                              torch.tensor(Y)) * 50
    opt.zero_grad(); loss.backward()
    topt.zero_grad(); tloss.backward()
    norm = lazygrad.optim.clip_grad_norm_(ps[:2] if subset else ps, 1.0)
    tnorm = torch.nn.utils.clip_grad_norm_(tps[:2] if subset else tps, 1.0)
    np.testing.assert_allclose(norm.item(), tnorm.item(), rtol=1e-5)
    for p, t in zip(ps, tps): np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)
    opt.step(); topt.step()
    _close(ps, tps)


def test_gradients_accumulate_in_the_flat_buffer_like_torch():
  """zero_grad(set_to_none=False) zeroes the flat buffer in place; two backward passes add up."""
  ps, opt, tps, topt = _pair(lambda ps: lazygrad.optim.SGD(ps, lr=0.1, momentum=0.9),
                             lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
  for _ in range(3):
    opt.zero_grad(set_to_none=False); topt.zero_grad(set_to_none=False)
    for half in (slice(0, 16), slice(16, 32)):
      mlp(ps, Tensor(X[half]), Tensor(Y[half])).backward()
      torch.nn.functional.cross_entropy((torch.tensor(X[half]) @ tps[0] + tps[1]).relu() @ tps[2] + tps[3],
                                        torch.tensor(Y[half])).backward()
    opt.step(); topt.step()
    _close(ps, tps)
