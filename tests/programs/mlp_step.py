"""A fixed small program for the golden text forms and docs/walkthrough.md: a two-layer MLP's loss and gradients.
Its line numbers are part of the goldens: edit it only together with them (tests/golden/mlp_step_*.txt)."""
import numpy as np
from lazygrad import Tensor


def build(device="numpy"):
  rng = np.random.default_rng(0)
  x = Tensor(rng.standard_normal((4, 8)).astype(np.float32), device=device)
  w1 = Tensor(rng.standard_normal((8, 16)).astype(np.float32), requires_grad=True, device=device)
  w2 = Tensor(rng.standard_normal((16, 3)).astype(np.float32), requires_grad=True, device=device)
  y = Tensor(np.array([0, 2, 1, 0]), device=device)
  loss = (x @ w1).relu().matmul(w2).cross_entropy(y)
  loss.backward()
  return [loss, w1.grad, w2.grad]
