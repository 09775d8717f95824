"""The compiler's own time per realize, with every cache warm: building a small graph (an MLP step's forward and
backward, 20 ops), looking up its schedule and programs, launching tiny kernels on the numpy device. This is what
dumping and reporting must not change while they are off. Prints microseconds per realize (best of --reps rounds of
--n realizes), plain, then with a dump directory and with a report collecting, which do cost.
Run: ./dev bench compiler_overhead"""
import argparse, tempfile, time, warnings
import numpy as np
from lazygrad import Tensor, debug, realize


def step(x, w1, w2):
  h = (x @ w1).relu()
  loss = (h @ w2).softmax(-1).log().mean()
  loss.backward()
  return [loss, w1.grad, w2.grad]


def per_realize(n: int, reps: int, args) -> float:
  best = float("inf")
  for _ in range(reps):
    t0 = time.perf_counter()
    for _ in range(n):
      for t in args[1:]: t.grad = None
      realize(*step(*args))
    best = min(best, (time.perf_counter() - t0) / n)
  return best * 1e6


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--n", type=int, default=200)
  ap.add_argument("--reps", type=int, default=5)
  a = ap.parse_args()
  rng = np.random.default_rng(0)
  args = [Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=i > 0, device="numpy")
          for i, s in enumerate([(4, 8), (8, 16), (16, 3)])]
  per_realize(2, 1, args)   # warm the caches
  rows = [("plain", per_realize(a.n, a.reps, args))]
  with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
    with debug.dump(d): rows.append(("dumping", per_realize(a.n // 10, a.reps, args)))
    with debug.report(f"{d}/report.html"): rows.append(("reporting", per_realize(a.n // 10, a.reps, args)))
  print(f"{'mode':<10s} {'µs per realize':>15s}")
  for name, us in rows: print(f"{name:<10s} {us:15.1f}")


if __name__ == "__main__": main()
