#!/bin/bash
export PYTHONPATH=$PWD LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
cd bench && timeout 400 python - <<'PY' 2>&1 | tail -25
import sys, time, torch, numpy as np
sys.path.insert(0, "../examples/gpt2"); sys.argv = ["x"]
import gpt2_train as G
import lazygrad
from lazygrad import Tensor
from model import GPTConfig, CONFIGS
cfg = GPTConfig(**CONFIGS["gpt2"], vocab_size=50304)
lazygrad.set_float32_matmul_precision("high")
data = G.batches(cfg, 16, 1024, 8)
step = G.run_lazygrad(cfg, "bf16", "triton", True)
for x, y in data[:3]: step(x, y)
torch.cuda.synchronize()
# time the parts of a step
for x, y in data[3:6]:
  t0 = time.perf_counter(); xt, yt = Tensor(x, device="triton"), Tensor(y, device="triton"); t1 = time.perf_counter()
  out = step.__closure__  # noqa
  l = step(x, y); t2 = time.perf_counter()
  print(f"upload {1e3*(t1-t0):.2f} ms, step+item {1e3*(t2-t1):.2f} ms")
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
  t0 = time.perf_counter(); step(*data[6]); t1 = time.perf_counter()
ev = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
print(f"profiled step wall {1e3*(t1-t0):.1f} ms; CUDA events {len(ev)}; CUDA time {sum(e.device_time for e in ev)/1e3:.1f} ms")
print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=12))
PY
