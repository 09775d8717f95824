"""GPT-2 training throughput, memory and start-up: lazygrad against PyTorch — eager and torch.compile, each with the
attention scores materialized ("math") and with SDPA (flash attention; lazygrad's attention is fused too) — on the
same model, batch and optimizer (AdamW, gradient clipping).

Each runner runs in a process of its own, one after another: lazygrad and torch do not share one GPU's memory well,
and a first step is only cold in a new process. Per runner: tokens/s and ms/step over --steps steps (after three
untimed ones: the first, a jit's capture, and its first replay, which instantiates the CUDA graph); the first step's
time in a process whose disk caches are empty ("cold": lazygrad's, Triton's, Inductor's, in a fresh temporary
folder) and in a second process that finds them filled ("warm"); the peak GPU memory
(torch.cuda.max_memory_allocated: lazygrad's buffers are torch tensors); kernels launched per step (lazygrad:
its counter, whether replayed one by one or as a CUDA graph; torch: CUDA kernels in a profiled step).

GPU (the default when one is present): GPT-2 124M, B=16, T=1024, bf16 autocast (--precision fp32: tf32 matmuls on
both sides). CPU: a tiny config, lazygrad's numpy device against PyTorch eager on the CPU (no cold/warm runs).
Data parallel (--gpus 1,2): each runner once per GPU count, started by torchrun (`python -m torch.distributed.run`)
with one process per GPU, each rank with its own batch of B sequences (the global batch grows with the count, as
torch DDP is usually scaled): lazygrad averages gradients with `lazygrad.distributed`, torch wraps the model in
DistributedDataParallel (compiled: torch.compile of the DDP model). tok/s counts every rank's tokens; the last column
is the scaling efficiency tok/s(N) / (N x tok/s(1)). No warm runs there.
Run: python bench/gpt2_train.py [--steps 10] [--precision bf16|fp32] [--runners "lazygrad jit,torch.compile + SDPA"]
[--gpus 1,2]   (`--runner NAME` measures one runner in this process and prints its row as JSON: what the parent runs.)"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

RUNNERS = ("lazygrad jit", "lazygrad", "torch eager", "torch eager + SDPA", "torch.compile", "torch.compile + SDPA")
GPU_DEFAULT = ("lazygrad jit", "torch eager", "torch eager + SDPA", "torch.compile", "torch.compile + SDPA")
CPU_DEFAULT = ("lazygrad jit", "lazygrad", "torch eager")


def batches(cfg, B, T, n, seed=0):
  rng = np.random.default_rng(seed)
  return [(rng.integers(0, cfg.vocab_size, (B, T)), rng.integers(0, cfg.vocab_size, (B, T))) for _ in range(n)]


def run_lazygrad(cfg, precision, device, use_jit, world):
  import lazygrad
  from lazygrad import Tensor, distributed as dist
  from lazygrad.nn import autocast
  from model import GPT
  lazygrad.manual_seed(0)
  model = GPT(cfg, device=device)
  params = model.parameters()
  dist.broadcast_parameters(params)
  opts = [lazygrad.optim.AdamW([p for p in params if p.ndim >= 2], lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1),
          lazygrad.optim.AdamW([p for p in params if p.ndim < 2], lr=3e-4, betas=(0.9, 0.95), weight_decay=0.0)]
  def kernels(xt, yt):
    if precision == "bf16":
      with autocast("bfloat16"): _, loss = model(xt, yt)
    else: _, loss = model(xt, yt)
    for o in opts: o.zero_grad()
    loss.backward()
    if world > 1:   # the backward runs in there, each gradient bucket's all-reduce overlapping the rest of it
      dist.average_gradients(params, along=(loss, *(p.grad for p in params)))
    lazygrad.optim.clip_grad_norm_(params, 1.0)
    lazygrad.realize(loss, *(t for o in opts for t in o.schedule_step()))
    return loss
  run = lazygrad.jit(kernels) if use_jit else kernels
  return lambda x, y: run(Tensor(x, device=device), Tensor(y, device=device)).item()


def run_torch(cfg, precision, device, compiled, attention, world):
  import torch
  from torch_model import TorchGPT
  torch.manual_seed(0)
  model = TorchGPT(cfg, attention).to(device)
  with torch.no_grad():
    for p in model.params.values(): p.normal_(0, 0.02) if p.ndim >= 2 else p.zero_()
  fwd = model
  if world > 1:
    from torch.nn.parallel import DistributedDataParallel
    fwd = DistributedDataParallel(model, device_ids=[torch.cuda.current_device()] if device == "cuda" else None)
  fwd = torch.compile(fwd) if compiled else fwd
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


def torch_launches(step, x, y):
  """CUDA kernels one step launches, from the profiler."""
  import torch
  from torch.profiler import profile, ProfilerActivity
  with profile(activities=[ProfilerActivity.CUDA]) as prof: step(x, y)
  return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def measure_one(name: str, args) -> dict:
  """Build and measure one runner in this process (see the module docstring)."""
  import torch
  import lazygrad
  from lazygrad import distributed
  from lazygrad.runtime.device import default_device_name
  from model import GPTConfig, CONFIGS
  device = args.device or default_device_name()
  gpu = device == "triton"
  world, rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))
  if world > 1:
    if name.startswith("lazygrad"): distributed.init()
    else:
      if gpu: torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
      torch.distributed.init_process_group("nccl" if gpu else "gloo")
  cfg = GPTConfig(**CONFIGS["gpt2" if gpu else "tiny"], vocab_size=50304 if gpu else 128)
  B, T = (16, 1024) if gpu else (8, cfg.block_size)
  torch.backends.cuda.matmul.allow_tf32 = True   # tf32 float32 matmuls on both sides
  lazygrad.set_float32_matmul_precision("high")
  data = batches(cfg, B, T, args.steps + 3, seed=rank)
  if gpu: torch.cuda.reset_peak_memory_stats()
  t0 = time.perf_counter()
  if name.startswith("lazygrad"): step = run_lazygrad(cfg, args.precision, device, name == "lazygrad jit", world)
  else: step = run_torch(cfg, args.precision, "cuda" if gpu else "cpu", name.startswith("torch.compile"),
                         "sdpa" if name.endswith("SDPA") else "math", world)
  loss0 = step(*data[0])
  row = {"runner": name, "gpus": world, "first": time.perf_counter() - t0, "loss0": loss0, "B": B, "T": T,
         "device": torch.cuda.get_device_name() if gpu else "CPU", "precision": args.precision}
  if args.steps == 0: return row
  step(*data[1])   # a jit captures here
  step(*data[2])   # and replays for the first time: CUDA instantiates the graph (once, ~0.6 s for GPT-2)
  k0 = lazygrad.counters.kernels
  if gpu: torch.cuda.synchronize()
  t0 = time.perf_counter()
  for x, y in data[3:]: loss = step(x, y)
  dt = (time.perf_counter() - t0) / args.steps
  row.update(ms=dt * 1e3, tok_s=B * T * world / dt, loss=loss,
             peak_gib=torch.cuda.max_memory_allocated() / 2**30 if gpu else None,
             launches=(lazygrad.counters.kernels - k0) / args.steps if name.startswith("lazygrad") else
             torch_launches(step, *data[0]) if gpu else None)
  if world > 1 and name.startswith("lazygrad"): distributed.shutdown()
  elif world > 1: torch.distributed.destroy_process_group()
  return row if rank == 0 else {}


def child(name: str, args, env: dict, steps: int, gpus: int = 1) -> dict:
  launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}"]
  cmd = (launcher if gpus > 1 else [sys.executable]) + [__file__, "--runner", name, "--steps", str(steps),
                                                         "--precision", args.precision]
  if args.device: cmd += ["--device", args.device]
  out = subprocess.run(cmd, env=env, capture_output=True, text=True)
  results = [line[len("RESULT "):] for line in out.stdout.splitlines() if line.startswith("RESULT ")]
  if out.returncode != 0 or not results:
    return {"runner": name, "gpus": gpus, "error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}
  return json.loads(results[-1])


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--device", default=None, help="lazygrad's device (default: a GPU when present)")
  ap.add_argument("--steps", type=int, default=10)
  ap.add_argument("--precision", choices=("fp32", "bf16"), default=None, help="default: bf16 on a GPU, fp32 on the CPU")
  ap.add_argument("--runners", default=None, help="comma-separated, from: " + ", ".join(RUNNERS))
  ap.add_argument("--gpus", default="1", help="comma-separated process counts, e.g. 1,2 (data parallel)")
  ap.add_argument("--runner", choices=RUNNERS, default=None, help="measure this one here (the parent's call)")
  args = ap.parse_args()
  sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "gpt2"))
  if args.runner:
    args.precision = args.precision or "bf16"
    row = measure_one(args.runner, args)
    if row: print("RESULT " + json.dumps(row), flush=True)
    return
  import torch
  gpu = (args.device or ("triton" if torch.cuda.is_available() else "numpy")) == "triton"
  args.precision = args.precision or ("bf16" if gpu else "fp32")
  names = args.runners.split(",") if args.runners else GPU_DEFAULT if gpu else CPU_DEFAULT
  counts = [int(n) for n in args.gpus.split(",")]
  rows = []
  for name in (n.strip() for n in names):
    with tempfile.TemporaryDirectory() as caches:   # empty disk caches: a cold first step; then a warm process
      env = {**os.environ, "LAZYGRAD_CACHE": f"{caches}/lazygrad", "TRITON_CACHE_DIR": f"{caches}/triton",
             "TORCHINDUCTOR_CACHE_DIR": f"{caches}/inductor", "PYTHONPATH": str(Path(__file__).parents[1])}
      for n in counts:
        row = child(name, args, env, args.steps, n)
        if gpu and n == 1 and "error" not in row and (name.startswith("lazygrad") or name.startswith("torch.compile")):
          row["first_warm"] = child(name, args, env, 0).get("first")
        rows.append(row)
        print(json.dumps(row), flush=True)
  base = next((r.get("tok_s") for r in rows if r["runner"] == "torch.compile + SDPA" and r.get("gpus", 1) == 1), None)
  single = {r["runner"]: r["tok_s"] for r in rows if "error" not in r and r.get("gpus", 1) == 1}
  first = next((r for r in rows if "error" not in r), {})
  print(f"\nGPT-2 {'124M' if gpu else 'tiny'} {args.precision} B={first.get('B')} T={first.get('T')} on "
        f"{first.get('device')}; each runner in its own process")
  print(f"{'run':<22s} {'GPUs':>4s} {'tok/s':>10s} {'ms/step':>8s} {'first cold s':>12s} {'first warm s':>12s} {'peak GiB':>8s} "
        f"{'launches':>8s} {'vs compile+SDPA':>15s} {'loss':>13s} {'scaling':>7s}")
  def fmt(v, spec: str) -> str:
    return format(v, spec) if isinstance(v, (int, float)) else "-".rjust(int(spec.split(".")[0].strip(",") or 0))
  for r in rows:
    if "error" in r: print(f"{r['runner']:<22s} failed: {r['error']}"); continue
    n = r.get("gpus", 1)
    ratio = r["tok_s"] / base if base and n == 1 else None
    scaling = r["tok_s"] / (n * single[r["runner"]]) if n > 1 and r["runner"] in single else None
    print(f"{r['runner']:<22s} {n:4d} {fmt(r['tok_s'], '10,.0f')} {fmt(r['ms'], '8.1f')} {fmt(r['first'], '12.1f')} "
          f"{fmt(r.get('first_warm'), '12.1f')} {fmt(r.get('peak_gib'), '8.1f')} {fmt(r.get('launches'), '8.0f')} "
          f"{fmt(ratio, '15.2f')} {r['loss0']:6.3f}>{r['loss']:6.3f} {fmt(scaling, '7.2f')}")


if __name__ == "__main__":
  main()
