"""lazygrad's Triton kernels against PyTorch on the same data, in one run on a CUDA GPU.

Cases: a device copy (the bandwidth ceiling), a fused elementwise chain (GB/s), row sums, softmax, layernorm,
matmuls at GPT-2 124M shapes in fp32 (tf32 on both sides) and bf16 (TFLOP/s against torch.matmul / cuBLAS), and
causal attention at GPT-2 shapes, forward and forward + backward, against torch's SDPA (flash) and its materialized
(math) form, AdamW over GPT-2's parameters against torch's fused AdamW, and a ResNet-style 3x3 bf16 convolution,
forward and forward + backward, against cuDNN.
lazygrad's time is its scheduled kernels run again on the same buffers (launch included, graph building not).
Run: python bench/gpu_kernels.py [--quick] [--only attention,matmul,...]   (see bench/NOTES.md for the recorded numbers)"""
import argparse, statistics
import torch
import triton.testing
import lazygrad
import lazygrad.nn.functional
from lazygrad import Tensor
from lazygrad.runtime import realize as engine


def bench(fn) -> float:
  """Median milliseconds of fn (CUDA events, after warm-up)."""
  return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def lazygrad_ms(*outs: Tensor) -> float:
  items = engine.get_schedule([o.node for o in outs])
  engine.run_schedule(items)    # compile and allocate once
  return bench(lambda: engine.run_schedule(items))


def interleaved_ms(*outs: Tensor, against, rounds: int = 3) -> tuple[float, float]:
  """Median ms of lazygrad's kernels for `outs` and of `against`, timed in turns: a long matmul runs the card into
  its power limit, and its clocks (cuBLAS's times moved 7% within one process) would otherwise favour one side."""
  items = engine.get_schedule([o.node for o in outs])
  engine.run_schedule(items)
  ours, theirs = [], []
  for _ in range(rounds):
    ours.append(bench(lambda: engine.run_schedule(items)))
    theirs.append(bench(against))
  return statistics.median(ours), statistics.median(theirs)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--quick", action="store_true", help="smaller sizes")
  ap.add_argument("--only", default="copy,elementwise,sum,layernorm,matmul,attention,adamw,conv",
                  help="comma-separated case groups to run")
  args = ap.parse_args()
  only = set(args.only.split(","))
  torch.manual_seed(0)
  n = 1 << (24 if args.quick else 28)
  rows = []   # (case, metric, lazygrad, torch, ratio)

  if only & {"copy", "elementwise"}: elementwise(rows, n)
  if "sum" in only: sums(rows, n)
  if "layernorm" in only: layernorm(rows, args.quick)
  if "matmul" in only: matmuls(rows, args.quick)
  if "attention" in only: attention(rows, args.quick)
  if "adamw" in only: adamw(rows, args.quick)
  if "conv" in only: conv(rows, args.quick)
  print(f"\ndevice: {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}")
  print(f"{'case':<44s} {'unit':>8s} {'lazygrad':>10s} {'torch':>10s} {'ratio':>7s}")
  for case, unit, lz, th, ratio in rows: print(f"{case:<44s} {unit:>8s} {lz:10.2f} {th:10.2f} {ratio:7.2f}")
  print("ratio: lazygrad/copy bandwidth for the elementwise chain, torch time / lazygrad time otherwise")


def elementwise(rows, n):
  a, b, c = (torch.randn(n, device="cuda") for _ in range(3))
  dst = torch.empty_like(a)
  copy_ms = bench(lambda: dst.copy_(a))
  copy_gbs = 2 * 4 * n / copy_ms / 1e6
  rows.append((f"device copy 2^{n.bit_length() - 1} fp32", "GB/s", copy_gbs, copy_gbs, 1.0))
  la, lb, lc = Tensor.from_torch(a), Tensor.from_torch(b), Tensor.from_torch(c)
  ms = lazygrad_ms(((la + lb) * lc).relu())
  t_ms = bench(lambda: torch.relu((a + b) * c))
  gbs = 4 * 4 * n / ms / 1e6
  rows.append((f"((a+b)*c).relu() 2^{n.bit_length() - 1}", "GB/s", gbs, 4 * 4 * n / t_ms / 1e6, gbs / copy_gbs))


def sums(rows, n):
  shape = (n // 4096, 4096)
  x = torch.randn(shape, device="cuda")
  lx = Tensor.from_torch(x)
  for name, lz, th in (("sum over rows", lambda: lx.sum(1), lambda: x.sum(1)),
                       ("sum over columns", lambda: lx.sum(0), lambda: x.sum(0)),
                       ("softmax rows", lambda: lx.softmax(-1), lambda: torch.softmax(x, -1))):
    ms, t_ms = lazygrad_ms(lz()), bench(th)
    rows.append((f"{name} {shape[0]}x{shape[1]}", "ms", ms, t_ms, t_ms / ms))


def layernorm(rows, quick):
  ln_shape = (16 * 1024 * (1 if quick else 4), 768)
  x, w, bias = torch.randn(ln_shape, device="cuda"), torch.randn(768, device="cuda"), torch.randn(768, device="cuda")
  lx, lw, lbias = Tensor.from_torch(x), Tensor.from_torch(w), Tensor.from_torch(bias)
  def lz_ln():
    mu = lx.mean(-1, keepdim=True)
    return (lx - mu) * (lx.var(-1, keepdim=True, correction=0) + 1e-5).rsqrt() * lw + lbias
  ms, t_ms = lazygrad_ms(lz_ln()), bench(lambda: torch.nn.functional.layer_norm(x, (768,), w, bias))
  rows.append((f"layernorm {ln_shape[0]}x768", "ms", ms, t_ms, t_ms / ms))
  # forward + backward, GPT-2's activations (16384 x 768), against torch.compile's fused kernels
  x, g = torch.randn(16384, 768, device="cuda"), torch.randn(16384, 768, device="cuda")
  tx, tw, tb = (t.clone().requires_grad_() for t in (x, w, bias))
  lx, lw, lb = (Tensor.from_torch(t).requires_grad_() for t in (x, w, bias))
  lazygrad.nn.functional.layer_norm(lx, (768,), lw, lb).backward(Tensor.from_torch(g))
  ms = lazygrad_ms(lx.grad, lw.grad, lb.grad)
  ln = torch.compile(lambda a, b, c: torch.nn.functional.layer_norm(a, (768,), b, c))
  t_ms = triton.testing.do_bench(lambda: ln(tx, tw, tb).backward(g), warmup=25, rep=100, grad_to_none=[tx, tw, tb],
                                 return_mode="median")
  rows.append(("layernorm fwd+bwd 16384x768 vs torch.compile", "ms", ms, t_ms, t_ms / ms))


def adamw(rows, quick):
  """One AdamW step over GPT-2 124M's parameters (148 tensors), against torch's fused AdamW."""
  shapes = [(50304, 768), (1024, 768)] + [(768,)] * 2 + 12 * [(768,), (768,), (2304, 768), (2304,), (768, 768), (768,),
                                                              (768,), (768,), (3072, 768), (3072,), (768, 3072), (768,)]
  ps = [torch.randn(s, device="cuda") for s in shapes]
  gs = [torch.randn(s, device="cuda") for s in shapes]
  tps = [p.clone().requires_grad_() for p in ps]
  for p, g in zip(tps, gs): p.grad = g.clone()
  topt = torch.optim.AdamW(tps, lr=1e-4, fused=True)
  lps = [Tensor.from_torch(p.clone()).requires_grad_() for p in ps]
  lopt = lazygrad.optim.AdamW(lps, lr=1e-4)   # gathers the parameters into one flat buffer
  # gradients g, as a backward writes them: into the optimizer's flat gradient buffer
  sum((p * Tensor.from_torch(g)).sum() for p, g in zip(lps, gs)).backward()
  lazygrad.realize(*(p.grad for p in lps))
  ms, t_ms = lazygrad_ms(*lopt.schedule_step()), bench(topt.step)
  rows.append((f"AdamW step, GPT-2 124M ({len(shapes)} tensors)", "ms", ms, t_ms, t_ms / ms))


def matmuls(rows, quick):
  torch.backends.cuda.matmul.allow_tf32 = True   # fp32 matmuls: tf32 tensor cores on both sides
  lazygrad.set_float32_matmul_precision("high")
  m = 16 * 1024 if not quick else 4096
  for dtype in (torch.float32, torch.bfloat16):
    for k, nn in ((768, 2304), (768, 3072), (3072, 768), (768, 50304)):
      if quick and nn == 50304: continue
      A, B = torch.randn(m, k, device="cuda", dtype=dtype), torch.randn(k, nn, device="cuda", dtype=dtype)
      W = B.T.contiguous()   # nn.Linear's layout: x @ W.T, W of (out, in)
      flops = 2 * m * k * nn
      for what, lz, th in (("", lambda: Tensor.from_torch(A) @ Tensor.from_torch(B), lambda: A @ B),
                           (" @W.T", lambda: Tensor.from_torch(A) @ Tensor.from_torch(W).T, lambda: A @ W.T)):
        ms, t_ms = interleaved_ms(lz(), against=th)
        rows.append((f"matmul {m}x{k}x{nn}{what} {'bf16' if dtype == torch.bfloat16 else 'tf32'}", "TFLOP/s",
                     flops / ms / 1e9, flops / t_ms / 1e9, t_ms / ms))
      del A, B, W


def attention(rows, quick):
  """Causal attention at GPT-2 124M shapes (B16, H12, T1024, D64, bf16): forward, and forward + backward."""
  from torch.nn.attention import sdpa_kernel, SDPBackend
  B, H, T, D = (4 if quick else 16), 12, 1024, 64
  q, k, v, g = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(4))
  for t in (q, k, v): t.requires_grad_()
  lq, lk, lv = (Tensor.from_torch(t.detach()).requires_grad_() for t in (q, k, v))
  out = lazygrad.nn.functional.scaled_dot_product_attention(lq, lk, lv, is_causal=True)
  fwd_ms = lazygrad_ms(out)
  out.backward(Tensor.from_torch(g))
  both_ms = lazygrad_ms(lq.grad, lk.grad, lv.grad)
  def torch_ms(backend, backward):
    def step():
      o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
      if backward: o.backward(g)
    with sdpa_kernel(backend): return bench(step) if not backward else \
      triton.testing.do_bench(step, warmup=25, rep=100, grad_to_none=[q, k, v], return_mode="median")
  for what, ms, backward in (("forward", fwd_ms, False), ("fwd+bwd", both_ms, True)):
    flash, math_ = torch_ms(SDPBackend.FLASH_ATTENTION, backward), torch_ms(SDPBackend.MATH, backward)
    rows.append((f"attention {what} B{B} H{H} T{T} D{D} causal bf16", "ms", ms, flash, flash / ms))
    rows.append(("  (torch materialized, math backend)", "ms", ms, math_, math_ / ms))


def conv(rows, quick):
  """A ResNet-style 3x3 convolution (stride 1, padding 1, bf16), forward and forward + backward, against cuDNN."""
  N, C, HW = (8 if quick else 32), 128, 56
  x, w, g = (torch.randn(*shape, device="cuda", dtype=torch.bfloat16)
             for shape in ((N, C, HW, HW), (C, C, 3, 3), (N, C, HW, HW)))
  for t in (x, w): t.requires_grad_()
  lx, lw = (Tensor.from_torch(t.detach()).requires_grad_() for t in (x, w))
  out = lazygrad.nn.functional.conv2d(lx, lw, padding=1)
  out.backward(Tensor.from_torch(g))
  fwd_ms, both_ms = lazygrad_ms(out), lazygrad_ms(out, lx.grad, lw.grad)   # a training step needs the output too
  torch.backends.cudnn.benchmark = True
  t_fwd = bench(lambda: torch.nn.functional.conv2d(x, w, padding=1))
  t_both = triton.testing.do_bench(lambda: torch.nn.functional.conv2d(x, w, padding=1).backward(g), warmup=25,
                                   rep=100, grad_to_none=[x, w], return_mode="median")
  for what, ms, ref in (("forward", fwd_ms, t_fwd), ("fwd+bwd", both_ms, t_both)):
    rows.append((f"conv2d 3x3 {what} N{N} C{C} {HW}x{HW} bf16 vs cuDNN", "ms", ms, ref, ref / ms))


if __name__ == "__main__":
  main()
