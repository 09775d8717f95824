"""What a Triton matmul needs to reach cuBLAS on Hopper: minimal bf16 kernels, C = A @ B^T with A (M, K) and B (N, K)
both K-major (nn.Linear's x @ W.T), at GPT-2's shapes, each the best of a few tilings, against torch.matmul (cuBLAS)
in the same process. Four forms: plain pointer loads, a program per tile; the same persistent (each of SM-count
programs loops over tiles, `tl.range(..., flatten=True)`); TMA descriptor loads (`tl.make_tensor_descriptor`), a
program per tile; TMA and persistent, flattened or not. Not lazygrad: the study that says where its DOT lowering should
go (bench/NOTES.md, session 9). Needs a CUDA GPU with TMA (capability 9+).
Run: python bench/triton_matmul_study.py"""
import torch
import triton
import triton.language as tl

TILINGS = ((128, 256, 64, 8, 3), (128, 128, 64, 8, 4), (256, 128, 64, 8, 3), (128, 256, 64, 8, 4), (128, 128, 64, 4, 4))
SHAPES = ((16384, 3072, 768), (16384, 768, 3072), (16384, 2304, 768), (16384, 768, 768), (16384, 50304, 768))


@triton.jit
def _tile(tile, num_m, num_n, GROUP: tl.constexpr):
  """Grouped order: GROUP row blocks by a run of column blocks."""
  group = tile // (GROUP * num_n)
  first_m = group * GROUP
  size = tl.minimum(num_m - first_m, GROUP)
  return first_m + (tile % size), (tile % (GROUP * num_n)) // size


@triton.jit
def _ptr_tile(a, b, c, pm, pn, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
  rm, rn, rk = pm * BM + tl.arange(0, BM), pn * BN + tl.arange(0, BN), tl.arange(0, BK)
  acc = tl.zeros([BM, BN], tl.float32)
  for k in range(0, K, BK):
    acc = tl.dot(tl.load(a + rm[:, None] * K + (k + rk)[None, :]), tl.load(b + rn[None, :] * K + (k + rk)[:, None]), acc)
  tl.store(c + rm[:, None] * N + rn[None, :], acc.to(tl.bfloat16))


@triton.jit
def plain(a, b, c, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP: tl.constexpr,
          SMS: tl.constexpr):
  pm, pn = _tile(tl.program_id(0), tl.cdiv(M, BM), tl.cdiv(N, BN), GROUP)
  _ptr_tile(a, b, c, pm, pn, N, K, BM, BN, BK)


@triton.jit
def persistent(a, b, c, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP: tl.constexpr,
               SMS: tl.constexpr):
  num_m, num_n = tl.cdiv(M, BM), tl.cdiv(N, BN)
  for tile in tl.range(tl.program_id(0), num_m * num_n, SMS, flatten=True):
    pm, pn = _tile(tile, num_m, num_n, GROUP)
    _ptr_tile(a, b, c, pm, pn, N, K, BM, BN, BK)


@triton.jit
def _descriptors(a, b, c, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
  return (tl.make_tensor_descriptor(a, shape=[M, K], strides=[K, 1], block_shape=[BM, BK]),
          tl.make_tensor_descriptor(b, shape=[N, K], strides=[K, 1], block_shape=[BN, BK]),
          tl.make_tensor_descriptor(c, shape=[M, N], strides=[N, 1], block_shape=[BM, BN]))


@triton.jit
def _tma_tile(ad, bd, cd, pm, pn, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
  acc = tl.zeros([BM, BN], tl.float32)
  for k in range(0, K, BK):
    acc = tl.dot(ad.load([pm * BM, k]), bd.load([pn * BN, k]).T, acc)
  cd.store([pm * BM, pn * BN], acc.to(tl.bfloat16))


@triton.jit
def tma(a, b, c, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP: tl.constexpr, SMS: tl.constexpr):
  ad, bd, cd = _descriptors(a, b, c, M, N, K, BM, BN, BK)
  pm, pn = _tile(tl.program_id(0), tl.cdiv(M, BM), tl.cdiv(N, BN), GROUP)
  _tma_tile(ad, bd, cd, pm, pn, K, BM, BN, BK)


@triton.jit
def tma_persistent(a, b, c, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP: tl.constexpr,
                   SMS: tl.constexpr):
  ad, bd, cd = _descriptors(a, b, c, M, N, K, BM, BN, BK)
  num_m, num_n = tl.cdiv(M, BM), tl.cdiv(N, BN)
  for tile in tl.range(tl.program_id(0), num_m * num_n, SMS, flatten=True):
    pm, pn = _tile(tile, num_m, num_n, GROUP)
    _tma_tile(ad, bd, cd, pm, pn, K, BM, BN, BK)


@triton.jit
def tma_persistent_not_flattened(a, b, c, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
                                 GROUP: tl.constexpr, SMS: tl.constexpr):
  ad, bd, cd = _descriptors(a, b, c, M, N, K, BM, BN, BK)
  num_m, num_n = tl.cdiv(M, BM), tl.cdiv(N, BN)
  for tile in range(tl.program_id(0), num_m * num_n, SMS):
    pm, pn = _tile(tile, num_m, num_n, GROUP)
    _tma_tile(ad, bd, cd, pm, pn, K, BM, BN, BK)


def timed(fn, n=30) -> float:
  """ms per call, CUDA events over n calls after 3 untimed ones."""
  for _ in range(3): fn()
  torch.cuda.synchronize()
  start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
  start.record()
  for _ in range(n): fn()
  end.record()
  torch.cuda.synchronize()
  return start.elapsed_time(end) / n


def main():
  triton.set_allocator(lambda size, alignment, stream: torch.empty(size, device="cuda", dtype=torch.int8))
  sms = torch.cuda.get_device_properties(0).multi_processor_count
  kernels = {"plain": plain, "persistent": persistent, "tma": tma, "tma persistent": tma_persistent,
             "tma persistent, not flattened": tma_persistent_not_flattened}
  print(f"{torch.cuda.get_device_name()}: bf16 C = A @ B^T, best tiling's time / cuBLAS's (higher is faster)")
  print(f"{'M x N x K':<20s} {'cuBLAS':>12s} " + " ".join(f"{k:>30s}" for k in kernels))
  for M, N, K in SHAPES:
    torch.manual_seed(0)
    A = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
    B = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
    C = torch.empty(M, N, device="cuda", dtype=torch.bfloat16)
    want = (A @ B.T).float()
    t_cublas = timed(lambda: torch.matmul(A, B.T, out=C))
    cells = []
    for name, kernel in kernels.items():
      best = None
      for bm, bn, bk, warps, stages in TILINGS:
        if not name.startswith("tma") and (M % bm or N % bn or K % bk): continue   # pointer kernels have no masks
        tiles = triton.cdiv(M, bm) * triton.cdiv(N, bn)
        grid = (min(sms, tiles),) if "persistent" in name else (tiles,)
        run = lambda: kernel[grid](A, B, C, M, N, K, bm, bn, bk, 8, sms, num_warps=warps, num_stages=stages)
        try:
          run()
          torch.cuda.synchronize()
        except triton.runtime.errors.OutOfResources: continue   # too much shared memory for this tiling
        assert torch.allclose(C.float(), want, atol=1, rtol=0.05), f"{name} {M}x{N}x{K} computed something else"
        t = timed(run)
        best = t if best is None else min(best, t)
      cells.append(f"{t_cublas / best:.2f}x" if best else "-")
    flops = 2 * M * N * K / (t_cublas * 1e-3) / 1e12
    print(f"{f'{M}x{N}x{K}':<20s} {f'{t_cublas * 1e3:.0f} us {flops:.0f} TF':>12s} " + " ".join(f"{c:>30s}" for c in cells))


if __name__ == "__main__":
  main()
