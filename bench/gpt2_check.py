"""Check mode over a whole GPT-2 training step: every kernel of forward, backward, clipping and AdamW also runs on
the numpy interpreter with the same inputs, and the first kernel that differs beyond tolerance stops the run
(`lazygrad.runtime.check`). GPU: GPT-2 124M, bf16 autocast, B=1, T=1024 (the interpreter is the slow side: ~1 min).
CPU: the tiny config on the numpy device's twin, --device triton-interp (slow; keep it tiny).
Run: python bench/gpt2_check.py [--device triton] [--batch 1] [--seq 1024] [--layers 12]"""
import argparse, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "gpt2"))


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--device", default=None, help="lazygrad's device (default: a GPU when present)")
  ap.add_argument("--batch", type=int, default=1)
  ap.add_argument("--seq", type=int, default=None, help="default: 1024 on a GPU, the tiny block size elsewhere")
  ap.add_argument("--layers", type=int, default=None, help="default: the config's (12 for GPT-2 124M)")
  args = ap.parse_args()
  import lazygrad
  from lazygrad import Tensor, Context, counters
  from lazygrad.nn import autocast
  from lazygrad.runtime.device import default_device_name
  from model import GPT, GPTConfig, CONFIGS
  device = args.device or default_device_name()
  gpu = device == "triton"
  cfg = GPTConfig(**CONFIGS["gpt2" if gpu else "tiny"], vocab_size=50304 if gpu else 128)
  if args.layers: cfg.n_layer = args.layers
  T = args.seq or (1024 if gpu else cfg.block_size)
  lazygrad.manual_seed(0)
  model = GPT(cfg, device=device)
  params = model.parameters()
  opt = lazygrad.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
  rng = np.random.default_rng(0)
  x, y = (Tensor(rng.integers(0, cfg.vocab_size, (args.batch, T)), device=device) for _ in range(2))
  lazygrad.realize(*params)
  k0, t0 = counters.kernels, time.perf_counter()
  with Context(CHECK=1):
    with autocast("bfloat16"): _, loss = model(x, y)
    opt.zero_grad(); loss.backward()
    lazygrad.optim.clip_grad_norm_(params, 1.0)
    lazygrad.realize(loss, *opt.schedule_step())
  print(f"check mode passed: {counters.kernels - k0} kernels of a GPT-2 step (B={args.batch}, T={T}, {device}) "
        f"matched the numpy interpreter, loss {loss.item():.4f}, {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__": main()
