#!/bin/bash
export PYTHONPATH=$PWD LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
python - <<'PY' 2>&1 | tail -3
import numpy as np, torch, lazygrad as lg
from lazygrad import Tensor, Context
rng = np.random.default_rng(0)
idx = rng.integers(0, 50304, (16, 1024)); w = rng.standard_normal((50304, 768)).astype(np.float32)
g = rng.standard_normal((16, 1024, 768)).astype(np.float32)
lw = Tensor(w, requires_grad=True); (lw[Tensor(idx)] * Tensor(g)).sum().backward()
with Context(CHECK=1): lg.realize(lw.grad)
tw = torch.tensor(w, requires_grad=True); (tw[torch.tensor(idx)] * torch.tensor(g)).sum().backward()
print("embedding grad max err", float(np.abs(lw.grad.numpy() - tw.grad.numpy()).max()))
PY
timeout 300 python bench/gpt2_train.py --runners "lazygrad jit,torch.compile + SDPA" --steps 10 2>&1 | tail -4
export LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout 400 python bench/gpt2_profile.py > $OUT/profile.txt 2>&1
head -c 1500 $OUT/profile.txt
