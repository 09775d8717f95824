"""Where a lazygrad GPT-2 training step spends its time: Python graph building, scheduling (cached), and each
kernel (timed one by one with DEBUG=2, which synchronizes after every kernel). Prints the slowest kernels.
Run: python bench/gpt2_profile.py [--device triton] [--precision bf16]"""
import argparse, contextlib, io, re, sys, time
from collections import defaultdict
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "gpt2"))
import lazygrad
from lazygrad import Tensor, Context
from lazygrad.nn import autocast
from lazygrad.runtime.device import default_device_name
from model import GPT, GPTConfig, CONFIGS   # noqa: E402
from lazygrad.ir.ops import Op
from lazygrad.helpers import prod


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--device", default=None)
  ap.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
  args = ap.parse_args()
  device = args.device or default_device_name()
  gpu = device == "triton"
  cfg = GPTConfig(**CONFIGS["gpt2" if gpu else "tiny"], vocab_size=50304 if gpu else 128)
  B, T = (16, 1024) if gpu else (8, cfg.block_size)
  lazygrad.manual_seed(0)
  model = GPT(cfg, device=device)
  params = model.parameters()
  opt = lazygrad.optim.AdamW(params, lr=3e-4)
  rng = np.random.default_rng(0)
  def build():
    x, y = (Tensor(rng.integers(0, cfg.vocab_size, (B, T)), device=device) for _ in range(2))
    with autocast("bfloat16" if args.precision == "bf16" else None): _, loss = model(x, y)
    opt.zero_grad(); loss.backward()
    return [loss, *opt.schedule_step()]
  for _ in range(2): lazygrad.realize(*build())   # schedule and compile
  t0 = time.perf_counter(); targets = build(); t_build = time.perf_counter() - t0
  dev = lazygrad.runtime.device.get_device(device)
  t0 = time.perf_counter(); items = lazygrad.runtime.realize.get_schedule([t.node for t in targets])
  t_sched = time.perf_counter() - t0
  dev.synchronize(); t0 = time.perf_counter()
  lazygrad.runtime.realize.run_schedule(items); dev.synchronize(); t_run = time.perf_counter() - t0
  out = io.StringIO()
  with Context(DEBUG=2), contextlib.redirect_stdout(out): lazygrad.realize(*build())
  per_kernel = [(float(m.group(2)), m.group(1)) for m in re.finditer(r"kernel\s+\d+\s+(\S+)\s+([\d.]+) ms", out.getvalue())]
  by_name = defaultdict(lambda: [0.0, 0])
  for ms, name in per_kernel: by_name[name][0] += ms; by_name[name][1] += 1
  print(f"GPT {'124M' if gpu else 'tiny'} {args.precision} B={B} T={T} on {device}: {len(items)} kernels")
  print(f"graph building {t_build * 1e3:.0f} ms, schedule lookup {t_sched * 1e3:.0f} ms, run {t_run * 1e3:.0f} ms "
        f"(kernels alone, synchronized one by one: {sum(ms for ms, _ in per_kernel):.0f} ms)")
  print(f"{'kernel':<40s} {'count':>5s} {'total ms':>9s}")
  for name, (ms, n) in sorted(by_name.items(), key=lambda kv: -kv[1][0])[:15]: print(f"{name:<40s} {n:5d} {ms:9.2f}")
  # memory: what the step's schedule stores, by kernel and buffer type, planned (shared arena) or of its own
  sizes = defaultdict(lambda: [0, 0])
  for i, it in enumerate(items):
    for n, offset in zip(it.outputs, items.memory.offsets[i]):
      if n.op is Op.ASSIGN: continue
      key = (it.kernel.name if it.kernel else "copy", f"{n.dtype.short}{list(n.shape)}", "own" if offset is None else "planned")
      sizes[key][0] += 1; sizes[key][1] += prod(n.shape) * n.dtype.itemsize
  for d, p in items.memory.plans.items(): print(f"memory on {d}: {p.text()}")
  print(f"{'stored by':<40s} {'buffer':<28s} {'memory':<8s} {'count':>5s} {'GiB':>7s}")
  for (k, b, where), (n, nbytes) in sorted(sizes.items(), key=lambda kv: -kv[1][1])[:20]:
    print(f"{k:<40s} {b:<28s} {where:<8s} {n:5d} {nbytes / 2**30:7.3f}")


if __name__ == "__main__":
  main()
