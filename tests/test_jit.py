"""jit: a captured training step replays the same kernels, with new data, without scheduling or building graphs."""
import numpy as np
import pytest
import lazygrad
from lazygrad import Tensor, counters

rng = np.random.default_rng(0)
INIT = [rng.standard_normal((8, 16)).astype(np.float32) * 0.3, np.zeros(16, np.float32),
        rng.standard_normal((16, 3)).astype(np.float32) * 0.3, np.zeros(3, np.float32)]
DATA = [(rng.standard_normal((32, 8)).astype(np.float32), rng.integers(0, 3, 32)) for _ in range(6)]
LRS = [0.1, 0.08, 0.06, 0.05, 0.04, 0.03]


def trainer():
  ps = [Tensor(a, requires_grad=True) for a in INIT]
  opt = lazygrad.optim.AdamW(ps, lr=0.1)
  def step(x, y, lr):
    opt.lr = lr
    loss = ((x @ ps[0] + ps[1]).relu() @ ps[2] + ps[3]).cross_entropy(y)
    opt.zero_grad(); loss.backward()
    lazygrad.realize(loss, *opt.schedule_step())
    return loss
  return ps, step


def test_jit_replays_a_training_step_exactly():
  ps_a, plain = trainer()
  ps_b, step = trainer()
  jitted = lazygrad.jit(step)
  for i, ((x, y), lr) in enumerate(zip(DATA, LRS)):
    want = plain(Tensor(x), Tensor(y), Tensor([lr])).item()
    if i == 3: s, k = counters.schedules, counters.kernels
    (got,) = jitted(Tensor(x), Tensor(y), Tensor([lr]))
    assert got.item() == pytest.approx(want, rel=1e-6, abs=1e-7)
  assert counters.schedules == s                  # replays schedule nothing
  for a, b in zip(ps_a, ps_b): np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


def test_jit_refuses_new_shapes():
  _, step = trainer()
  jitted = lazygrad.jit(step)
  for _ in range(2): jitted(Tensor(DATA[0][0]), Tensor(DATA[0][1]), Tensor([0.1]))
  with pytest.raises(ValueError, match="shapes"):
    jitted(Tensor(DATA[0][0][:16]), Tensor(DATA[0][1][:16]), Tensor([0.1]))
