"""One MLP training step (forward, backward, AdamW) on the numpy backend against the same step in PyTorch on the CPU.

Run: ./dev bench cpu_train   Prints step times and the ratio lazygrad / PyTorch."""
import argparse, time
import numpy as np
import torch
import lazygrad
from lazygrad import Tensor


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=256)
  ap.add_argument("--sizes", type=str, default="784,512,512,10")
  ap.add_argument("--steps", type=int, default=20)
  args = ap.parse_args()
  sizes = [int(s) for s in args.sizes.split(",")]
  rng = np.random.default_rng(0)
  init = []
  for a, b in zip(sizes, sizes[1:]):
    init += [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32), np.zeros(b, np.float32)]
  X = rng.standard_normal((args.batch, sizes[0])).astype(np.float32)
  Y = rng.integers(0, sizes[-1], args.batch)

  def forward(ps, x, relu):
    for i in range(0, len(ps), 2):
      x = x @ ps[i] + ps[i + 1]
      if i + 2 < len(ps): x = relu(x)
    return x

  ps = [Tensor(a, requires_grad=True) for a in init]
  opt = lazygrad.optim.AdamW(ps, lr=1e-3)
  xt, yt = Tensor(X), Tensor(Y)
  def lg_step():
    loss = forward(ps, xt, lambda h: h.relu()).cross_entropy(yt)
    opt.zero_grad(); loss.backward()
    lazygrad.realize(loss, *opt.schedule_step())
    return loss.item()

  tps = [torch.tensor(a, requires_grad=True) for a in init]
  topt = torch.optim.AdamW(tps, lr=1e-3)
  tx, ty = torch.tensor(X), torch.tensor(Y)
  def torch_step():
    loss = torch.nn.functional.cross_entropy(forward(tps, tx, torch.relu), ty)
    topt.zero_grad(); loss.backward(); topt.step()
    return loss.item()

  results = {}
  for name, step in (("pytorch (cpu)", torch_step), ("lazygrad (numpy)", lg_step)):
    step(); step()  # warm-up: scheduling and lowering happen in the first step
    k0 = lazygrad.counters.kernels
    t0 = time.perf_counter()
    for _ in range(args.steps): loss = step()
    results[name] = (time.perf_counter() - t0) / args.steps
    if name.startswith("lazygrad"): kernels = (lazygrad.counters.kernels - k0) / args.steps
    print(f"{name:<18s} {results[name] * 1e3:8.2f} ms/step  loss {loss:.4f}")
  print(f"kernels per lazygrad step: {kernels:.0f}")
  print(f"ratio lazygrad / pytorch: {results['lazygrad (numpy)'] / results['pytorch (cpu)']:.2f}")


if __name__ == "__main__":
  main()
