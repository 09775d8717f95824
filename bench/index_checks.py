"""The cost of lazygrad's integer index checks (IndexOutOfBounds): an embedding lookup and a cross-entropy loss at
GPT-2 124M shapes (B=16, T=1024, vocabulary 50304), with their checks and with the checks turned off, in one run.
A check is one small reduction over the index tensor, scheduled with the op; its flag is read at the next host read,
so it adds no synchronization. Run: python bench/index_checks.py [--device numpy|triton] [--quick]"""
import argparse, time
import numpy as np
import lazygrad
from lazygrad import Tensor
from lazygrad.ir.node import toposort
from lazygrad.ir.ops import Op
from lazygrad.nn import functional as F
from lazygrad.runtime import realize as engine
from lazygrad.runtime.device import get_device


def ms(build, dev, checks: bool, reps: int) -> float:
  """Median milliseconds of the kernels of `build()` (its checks' included or turned off), run again and again."""
  unchecked = Tensor._checked
  if not checks: Tensor._checked = lambda self, *a, **k: self
  try: out = build()
  finally: Tensor._checked = unchecked
  flags = [n.srcs[1] for n in toposort([out.node]) if n.op is Op.CHECK]
  items = engine.get_schedule([out.node] + flags)
  times = []
  for _ in range(reps + 1):
    t0 = time.perf_counter()
    engine.run_schedule(items)
    dev.synchronize()
    times.append(time.perf_counter() - t0)
  return float(np.median(times[1:])) * 1e3


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--device", default=None)
  ap.add_argument("--quick", action="store_true", help="a smaller vocabulary and batch")
  args = ap.parse_args()
  dev = get_device(args.device)
  B, T, V, C = (2, 256, 1024, 64) if args.quick or dev.name == "numpy" else (16, 1024, 50304, 768)
  rng = np.random.default_rng(0)
  idx = Tensor(rng.integers(0, V, (B, T)), device=dev.name)
  wte = Tensor(rng.standard_normal((V, C), dtype=np.float32), device=dev.name)
  logits = Tensor(rng.standard_normal((B * T, V), dtype=np.float32), device=dev.name)
  cases = {"embedding (B*T rows of the token table)": lambda: F.embedding(idx, wte),
           "cross_entropy (B*T x V logits)": lambda: logits.cross_entropy(idx.reshape(-1))}
  reps = 20 if dev.name != "numpy" else 5
  print(f"{dev.name}, B={B} T={T} V={V} C={C}")
  print(f"{'case':42s} {'checked ms':>11s} {'unchecked ms':>13s} {'added us':>9s}")
  for name, build in cases.items():
    on, off = ms(build, dev, True, reps), ms(build, dev, False, reps)
    print(f"{name:42s} {on:11.3f} {off:13.3f} {(on - off) * 1e3:9.1f}")


if __name__ == "__main__":
  main()
