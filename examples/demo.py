"""A tour of lazygrad on the default device: laziness, fusion, the IR at each stage, and a check against numpy.

Run: ./dev demo"""
import numpy as np
import lazygrad
from lazygrad import Tensor, Context, counters


def main():
  lazygrad.manual_seed(0)
  x = Tensor.randn(64, 128)
  w = Tensor.randn(128, 32) * 0.1
  b = Tensor.zeros(32)

  before = counters.kernels
  logits = (x @ w + b).gelu() @ Tensor.randn(32, 10)
  probs = logits.softmax(-1)
  print(f"built a {len(lazygrad.ir.node.toposort([probs.node]))}-node graph; kernels run so far: "
        f"{counters.kernels - before}")

  print("\n--- DEBUG=3: the schedule, the kernel ASTs the scheduler made, then one line per kernel ---")
  names = [it.kernel.name for it in lazygrad.runtime.realize.get_schedule([probs.node])]
  with Context(DEBUG=3):
    probs.realize()
  print(f"\nkernels run: {counters.kernels - before}, named after the functions whose work each does: "
        f"{', '.join(names)}")

  ref_h = x.numpy() @ w.numpy() + b.numpy()
  print("probabilities sum to one:", np.allclose(probs.numpy().sum(-1), 1.0, atol=1e-5))

  print("\n--- DEBUG=4: block-level uops of a fused elementwise+reduction kernel ---")
  with Context(DEBUG=4):
    ((x + 1) * x).relu().sum(1).realize()

  (Tensor.randn(64, 128) @ w + b).gelu().realize()
  again = counters.schedules, counters.lowerings
  for _ in range(3): (Tensor.randn(64, 128) @ w + b).gelu().realize()
  print(f"\nsame graph structure three more times: {counters.schedules - again[0]} new schedules, "
        f"{counters.lowerings - again[1]} new lowerings")
  print(f"hidden layer max |lazygrad - numpy| = "
        f"{np.abs((x @ w + b).numpy() - ref_h).max():.2e}")


if __name__ == "__main__":
  main()
