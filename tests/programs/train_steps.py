"""A fixed small program for the report tests: three jitted SGD steps of a two-layer MLP, then a plain evaluation."""
import numpy as np
import lazygrad
from lazygrad import Tensor, nn, optim

rng = np.random.default_rng(0)


class MLP(nn.Module):
  def __init__(self):
    self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 3)

  def __call__(self, x): return self.fc2(self.fc1(x).relu())


model = MLP()
opt = optim.SGD(model.parameters(), lr=0.1)


@lazygrad.jit
def step(x, y):
  opt.zero_grad()
  loss = model(x).cross_entropy(y)
  loss.backward()
  opt.step()
  return loss


for i in range(3):
  x = Tensor(rng.standard_normal((4, 8)).astype(np.float32))
  y = Tensor(rng.integers(0, 3, 4))
  print(f"step {i}: loss {step(x, y).item():.4f}")
print("eval:", model(Tensor(np.ones((2, 8), np.float32))).softmax(-1).numpy().round(3).tolist())
