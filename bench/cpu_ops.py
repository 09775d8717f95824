"""The numpy backend against hand-written numpy on the same work, as ratios (lazygrad time / numpy time).

Each lazygrad timing covers the whole user-visible cost: building the graph, the (cached) schedule lookup and the
kernels. Run: ./dev bench cpu_ops   Targets: matmul <= 1.2x np.matmul, fused elementwise <= 2x the best numpy."""
import argparse, time
import numpy as np
from lazygrad import Tensor


def best_of(fn, reps: int) -> float:
  fn()  # warm-up: scheduling and lowering happen here, once
  times = []
  for _ in range(reps):
    t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
  return min(times)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--reps", type=int, default=5)
  ap.add_argument("--n", type=int, default=1 << 22, help="elements of the elementwise and reduction inputs")
  args = ap.parse_args()
  rng = np.random.default_rng(0)
  n = args.n
  rows = n // 1024
  a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
  x = rng.standard_normal((rows, 1024)).astype(np.float32)
  ta, tb, tc, tx = (Tensor(v).realize() for v in (a, b, c, x))

  def np_softmax():
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)

  def np_chain():
    out = np.add(a, b)
    np.multiply(out, c, out=out)
    return np.maximum(out, 0, out=out)

  cases = [
    (f"elementwise ((a+b)*c).relu() n={n}", lambda: ((ta + tb) * tc).relu().realize(), np_chain),
    (f"sum over rows {rows}x1024", lambda: tx.sum(1).realize(), lambda: x.sum(1)),
    (f"softmax {rows}x1024", lambda: tx.softmax(-1).realize(), np_softmax),
  ]
  for size in (512, 2048):
    m1, m2 = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    t1, t2 = Tensor(m1).realize(), Tensor(m2).realize()
    cases.append((f"matmul {size}x{size} fp32", lambda t1=t1, t2=t2: (t1 @ t2).realize(), lambda m1=m1, m2=m2: m1 @ m2))

  print(f"{'case':<42s} {'lazygrad ms':>12s} {'numpy ms':>10s} {'ratio':>7s}")
  for name, lz, ref in cases:
    t_lz, t_np = best_of(lz, args.reps), best_of(ref, args.reps)
    print(f"{name:<42s} {t_lz * 1e3:12.3f} {t_np * 1e3:10.3f} {t_lz / t_np:7.2f}")


if __name__ == "__main__":
  main()
