#!/bin/bash
export PYTHONPATH=$PWD LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
python - <<'PY' > $OUT/check.txt 2>&1
import torch, numpy as np, lazygrad as lg
from lazygrad import Tensor, Context
from lazygrad.nn import functional as F
for dt in ("float32", "bfloat16"):
  q, k, v = (Tensor.randn(2, 3, 200, 64).cast(dt).detach().requires_grad_() for _ in range(3))
  out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
  out.float().sum().backward()
  try:
    with Context(CHECK=1): lg.realize(out, q.grad, k.grad, v.grad)
  except Exception as e: print("CHECK FAILED", str(e)[:3000])
  tq, tk, tv = (torch.tensor(t.float().numpy(), device="cuda").to(getattr(torch, dt)).requires_grad_() for t in (q, k, v))
  to = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True); to.float().sum().backward()
  print(dt, "max err vs torch out", float((torch.tensor(out.float().numpy()) - to.float().cpu()).abs().max()),
        "dq", float((torch.tensor(q.grad.float().numpy()) - tq.grad.float().cpu()).abs().max()))
PY
head -c 5000 $OUT/check.txt
