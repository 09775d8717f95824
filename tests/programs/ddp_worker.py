"""One rank of the data-parallel test (tests/test_distributed.py), started with torchrun's environment variables:
collectives, then a few AdamW steps of a small MLP on this rank's half of each batch (gradient buckets all-reduced
while the backward runs); writes what it saw to
$OUT_DIR/rank{RANK}.npz. With WORLD_SIZE unset it trains alone on whole batches (the reference)."""
import os, sys, warnings
import numpy as np
import lazygrad
from lazygrad import Tensor, nn, optim, distributed as dist


def batches(steps: int):
  rng = np.random.default_rng(123)
  return [(rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8)) for _ in range(steps)]


def main(out_dir: str):
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    world = dist.init(timeout_s=60)
    r = dist.rank()
    seen = {"world": np.array(world)}
    if world > 1:
      seen["sum"] = dist.all_reduce(Tensor([float(r + 1)] * 4)).numpy()
      seen["max"] = dist.all_reduce(Tensor([float(r), -float(r)]), "max").numpy()
      seen["bcast"] = dist.broadcast(Tensor.full((3,), float(r + 5)), src=1).numpy()
    lazygrad.manual_seed(r)   # ranks start from different weights: rank 0's are broadcast (and rank 1 is told)
    model = [nn.Linear(6, 16), nn.Linear(16, 3)]
    params = [p for m in model for p in m.parameters()]
    seen["differed"] = np.array(len(dist.broadcast_parameters(params)))
    opt = optim.AdamW(params, lr=1e-2)
    losses, launched_at = [], []   # the kernel count at each bucket's all-reduce
    real_launch = dist._launch
    def launch(prg, *args):
      if isinstance(prg, dist._Collective) and prg.asynchronous: launched_at.append(lazygrad.counters.kernels)
      real_launch(prg, *args)
    dist._launch = launch
    for x, y in batches(4):
      if world > 1:   # this rank's half of the global batch
        half = len(x) // world
        x, y = x[r * half:(r + 1) * half], y[r * half:(r + 1) * half]
      logits = model[1](model[0](Tensor(x)).relu())
      loss = logits.cross_entropy(Tensor(y))
      opt.zero_grad(); loss.backward()
      before = lazygrad.counters.kernels
      dist.average_gradients(params, bucket_bytes=256, along=(loss,))   # small buckets: several all-reduces
      seen.setdefault("overlapped", []).append(sum(before < k < lazygrad.counters.kernels for k in launched_at))
      launched_at.clear()
      optim.clip_grad_norm_(params, 1.0)
      opt.step()
      losses.append(dist.all_reduce(loss.detach().reshape(1).contiguous()).item() / world)
    seen["losses"] = np.array(losses)
    seen["overlapped"] = np.array(seen["overlapped"])
    for i, p in enumerate(params): seen[f"p{i}"] = p.numpy()
  seen["warned"] = np.array(sum("differed" in str(w.message) for w in caught))
  np.savez(os.path.join(out_dir, f"rank{os.environ.get('RANK', 'alone')}.npz"), **seen)
  dist.shutdown()


if __name__ == "__main__":
  main(sys.argv[1])
