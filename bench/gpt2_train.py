"""GPT-2 training throughput: lazygrad against PyTorch eager and torch.compile on the same model and batch.

GPU (default when one is present): GPT-2 124M, B=16, T=1024, fp32 and bf16 autocast, AdamW; prints tokens/s and the
time to the first step (scheduling and compilation). CPU: a tiny config, lazygrad's numpy device against PyTorch on
the CPU. Runners are built one at a time, right before they are measured, and freed after. Run:
python bench/gpt2_train.py [--device numpy] [--steps 10] [--precision bf16] [--no-compile] [--runner "lazygrad jit"]
(`--runner` measures one runner only: on a GPU, run each in its own process, as lazygrad and torch do not share
80 GB well)."""
import argparse, sys, time
from pathlib import Path
import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "gpt2"))
import lazygrad
from lazygrad import Tensor
from lazygrad.nn import autocast
from lazygrad.runtime.device import default_device_name
from model import GPT, GPTConfig, CONFIGS          # noqa: E402
from torch_model import TorchGPT                  # noqa: E402


def batches(cfg, B, T, n, seed=0):
  rng = np.random.default_rng(seed)
  return [(rng.integers(0, cfg.vocab_size, (B, T)), rng.integers(0, cfg.vocab_size, (B, T))) for _ in range(n)]


def run_lazygrad(cfg, data, precision, device, use_jit=False):
  lazygrad.manual_seed(0)
  model = GPT(cfg, device=device)
  params = model.parameters()
  opts = [lazygrad.optim.AdamW([p for p in params if p.ndim >= 2], lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1),
          lazygrad.optim.AdamW([p for p in params if p.ndim < 2], lr=3e-4, betas=(0.9, 0.95), weight_decay=0.0)]
  def kernels(xt, yt):
    if precision == "bf16":
      with autocast("bfloat16"): _, loss = model(xt, yt)
    else: _, loss = model(xt, yt)
    for o in opts: o.zero_grad()
    loss.backward()
    lazygrad.optim.clip_grad_norm_(params, 1.0)
    lazygrad.realize(loss, *(t for o in opts for t in o.schedule_step()))
    return loss
  run = lazygrad.jit(kernels) if use_jit else kernels
  def step(x, y):
    return run(Tensor(x, device=device), Tensor(y, device=device)).item()
  return step


def run_torch(cfg, data, precision, device, compiled):
  torch.manual_seed(0)
  model = TorchGPT(cfg).to(device)
  with torch.no_grad():
    for name, p in model.params.items(): p.normal_(0, 0.02) if p.ndim >= 2 else p.zero_()
  fwd = torch.compile(model) if compiled else model
  params = list(model.parameters())
  opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
                           {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=3e-4, betas=(0.9, 0.95))
  def step(x, y):
    xt, yt = torch.tensor(x, device=device), torch.tensor(y, device=device)
    with torch.autocast(device_type="cuda" if device == "cuda" else "cpu", dtype=torch.bfloat16,
                        enabled=precision == "bf16"):
      _, loss = fwd(xt, yt)
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item()
  return step


def measure(step, data, steps):
  t0 = time.perf_counter()
  first_loss = step(*data[0])
  first = time.perf_counter() - t0
  step(*data[1])   # the second step may still schedule (values realized by the first are reused); a jit captures
  t0 = time.perf_counter()
  for x, y in data[2:2 + steps]: loss = step(x, y)
  return (time.perf_counter() - t0) / steps, first, first_loss, loss


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--device", default=None)
  ap.add_argument("--steps", type=int, default=10)
  ap.add_argument("--precision", choices=("fp32", "bf16", "both"), default="both")
  ap.add_argument("--no-compile", action="store_true")
  ap.add_argument("--runner", choices=("lazygrad", "lazygrad jit", "torch eager", "torch.compile"), default=None)
  args = ap.parse_args()
  device = args.device or default_device_name()
  gpu = device == "triton"
  cfg = GPTConfig(**CONFIGS["gpt2" if gpu else "tiny"], vocab_size=50304 if gpu else 128)
  B, T = (16, 1024) if gpu else (8, cfg.block_size)
  torch.backends.cuda.matmul.allow_tf32 = True   # tf32 on both sides, as the numbers in NOTES.md were taken
  lazygrad.set_float32_matmul_precision("high")
  lazygrad_dev, torch_dev = device, "cuda" if gpu else "cpu"
  data = batches(cfg, B, T, args.steps + 2)
  precisions = ("fp32", "bf16") if args.precision == "both" else (args.precision,)
  if not gpu: precisions = ("fp32",)
  rows = []
  for prec in precisions:
    runners = {"lazygrad": lambda: run_lazygrad(cfg, data, prec, lazygrad_dev),
               "lazygrad jit": lambda: run_lazygrad(cfg, data, prec, lazygrad_dev, use_jit=True),
               "torch eager": lambda: run_torch(cfg, data, prec, torch_dev, False)}
    if gpu and not args.no_compile: runners["torch.compile"] = lambda: run_torch(cfg, data, prec, torch_dev, True)
    for name, make in runners.items():
      if args.runner not in (None, name): continue
      step = make()
      dt, first, l0, l1 = measure(step, data, args.steps)
      del step
      rows.append((f"{name} {prec}", B * T / dt, dt * 1e3, first, l0, l1))
      print(f"{name} {prec}: {B * T / dt:,.0f} tok/s, {dt * 1e3:.1f} ms/step, first step {first:.1f} s, loss {l0:.3f} -> {l1:.3f}",
            flush=True)
      if gpu: torch.cuda.empty_cache()
  print(f"\nGPT-2 {'124M' if gpu else 'tiny'} B={B} T={T} on {torch.cuda.get_device_name() if gpu else 'CPU'} "
        f"(lazygrad device {lazygrad_dev})")
  print(f"{'run':<24s} {'tok/s':>12s} {'ms/step':>9s} {'first step s':>13s} {'loss0':>7s} {'loss':>7s}")
  for r in rows: print(f"{r[0]:<24s} {r[1]:12,.0f} {r[2]:9.1f} {r[3]:13.1f} {r[4]:7.3f} {r[5]:7.3f}")
  base = {r[0].split()[-1]: r[1] for r in rows if r[0].startswith("torch eager")}
  for r in rows:
    if r[0].startswith("lazygrad") and r[0].split()[-1] in base: print(f"{r[0]} / torch eager: {r[1] / base[r[0].split()[-1]]:.2f}")


if __name__ == "__main__":
  main()
