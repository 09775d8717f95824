"""Data-parallel training over torch.distributed: NCCL between GPUs, gloo between CPU processes, started by torchrun.

`init()` joins the process group torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT); without torchrun it leaves a single process (world size 1), with a note. Collectives work on lazygrad
tensors in place and without copies: a tensor is realized into its own memory, torch.distributed reads and writes
that memory (a torch tensor on the `triton` device; on `numpy`, a torch view of the host array), and the write is an
in-place update of the tensor (a new version of its buffer: readers of the old value were realized first).

Data parallelism: `broadcast_parameters` makes every rank start from rank 0's parameters (reporting any that
differed); after `backward`, `average_gradients` sums the gradients across ranks in a few flat buckets (one
all-reduce per bucket, not per tensor, each started as soon as the backward has written it) and leaves each
parameter's `.grad` as a view of its bucket divided by the world size, lazily, so the division joins the optimizer's
kernel. A gradient clipping after it sees the global
norm, because every rank then holds the global average."""
from __future__ import annotations
import datetime, os, warnings
from .tensor import Tensor, realize, overwrite
from .ir.ops import Op
from .codegen.schedule import written_buffer
from .runtime.buffer import Shifted
from .runtime.realize import jit_capture, launch_hooks


class DistributedError(RuntimeError):
  """A collective or process-group problem: a rank that did not join, parameters that disagree, a bad argument."""


_state = {"world": 1, "rank": 0, "local_rank": 0}


def init(backend: str | None = None, timeout_s: float = 300.0) -> int:
  """Join the process group torchrun started (backend: 'nccl' when lazygrad's default device is a GPU, else 'gloo');
  returns the world size. Without torchrun's environment: one process, and a note that says so. A rank that does
  not join within `timeout_s` makes the others fail with a DistributedError, not wait forever."""
  import torch.distributed as dist
  if dist.is_initialized(): return world_size()
  if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
    warnings.warn("lazygrad.distributed: not launched by torchrun (no RANK / WORLD_SIZE): training in one process",
                  stacklevel=2)
    return 1
  from .runtime.device import default_device_name
  rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
  gpu = default_device_name() == "triton"
  if gpu:
    import torch
    torch.cuda.set_device(local)   # lazygrad's triton device allocates on torch's current GPU
  try:
    dist.init_process_group(backend or ("nccl" if gpu else "gloo"), rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
  except Exception as e:
    raise DistributedError(f"rank {rank} of {world} could not join the process group at "
                           f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} within {timeout_s:g} s "
                           f"({type(e).__name__}: {e}). Fix: start every rank with the same torchrun command") from e
  _state.update(world=world, rank=rank, local_rank=local)
  return world


def shutdown():
  """Wait for every rank, then leave the process group (call it when training ends: a rank that exits while another
  still talks to it can take that one down)."""
  import torch.distributed as dist
  if not dist.is_initialized(): return
  dist.barrier()
  dist.destroy_process_group()
  _state.update(world=1, rank=0, local_rank=0)


def world_size() -> int: return _state["world"]
def rank() -> int: return _state["rank"]
def local_rank() -> int: return _state["local_rank"]
def is_main() -> bool:
  """Rank 0: the one that logs, evaluates and writes checkpoints."""
  return _state["rank"] == 0


class _Collective:
  """A collective on one buffer, in place, as a program: called with the buffer (a launch a jit capture records and
  its replays repeat on their memory; replayed from Python, not inside a CUDA graph). An asynchronous one returns at
  once; its `_Wait` (another launch) makes later work wait for it."""
  graphable = False

  def __init__(self, kind: str, arg, asynchronous: bool = False):
    self.kind, self.arg, self.asynchronous, self.work = kind, arg, asynchronous, None

  def __call__(self, bufs, scalars=()):
    import torch, torch.distributed as d
    buf = bufs[0].ensure()
    data = buf.data if isinstance(buf.data, torch.Tensor) else torch.from_numpy(buf.data)
    if self.kind == "broadcast": d.broadcast(data, self.arg)
    else: self.work = d.all_reduce(data, self.arg, async_op=self.asynchronous)


class _Wait:
  """The end of an asynchronous collective: later work (on a GPU, the stream) waits for it here."""
  graphable = False

  def __init__(self, collective: _Collective): self.collective = collective

  def __call__(self, bufs, scalars=()):
    if self.collective.work is not None: self.collective.work.wait()
    self.collective.work = None


def _launch(prg, buf, start: int, stop: int):
  """Run `prg` on elements [start, stop) of `buf`, recorded by a jit capture."""
  run = Shifted(prg, (start,), [stop - start])
  run([buf])
  if (cap := jit_capture()) is not None: cap.launched(run, [buf], 1, [])


class _Bucket:
  """Consecutive parameters' parts [start, stop) of a flat gradient buffer, summed by one all-reduce."""
  def __init__(self, buf, start: int, stop: int):
    self.buf, self.start, self.stop, self.parts, self.wait = buf, start, stop, {}, None


class _Overlap:
  """A launch hook of the engine (`runtime.realize.launch_hooks`) while the backward that writes flat gradient buffers
  runs: each bucket (the parts of consecutive parameters, the last parameters' first, about `bucket_bytes`) starts
  its asynchronous all-reduce as soon as the backward has written all of it, so the sums travel while the backward's
  later kernels run. A kernel that touches a bucket in flight, and `finish`, wait for it."""
  def __init__(self, flats, bucket_bytes: int):
    self.buckets: dict[int, list[_Bucket]] = {}
    for f in flats:
      buf = written_buffer(f.G.node)
      row: list[_Bucket] = []
      for p, start in sorted(zip(f.params, f.offsets), key=lambda t: -t[1]):
        stop = start + p.numel()
        if not row or (row[-1].stop - start) * buf.dtype.itemsize > bucket_bytes: row.append(_Bucket(buf, start, stop))
        row[-1].start = start
        row[-1].parts[start] = stop
      self.buckets[id(buf)] = row

  @staticmethod
  def _span(it, j: int, buf) -> tuple[int, int]:
    """The elements of `buf` the item's buffer slot j can reach."""
    if it.kernel is None: return 0, buf.size
    off = it.offsets[j] if it.offsets else 0
    lo, hi = it.kernel.spans[j]
    return off + lo, off + hi

  def before(self, it, bufs):
    for j, buf in enumerate(bufs):
      for b in self.buckets.get(id(buf), ()):
        if b.wait is not None:
          lo, hi = self._span(it, j, buf)
          if lo < b.stop and b.start < hi: self._finish(b)

  def after(self, it, bufs):
    for j, buf in enumerate(bufs[:len(it.outputs)]):
      lo, hi = self._span(it, j, buf)
      for b in self.buckets.get(id(buf), ()):
        if not b.parts: continue
        b.parts = {s: e for s, e in b.parts.items() if not (lo <= s and e <= hi)}
        if not b.parts:
          b.wait = _Wait(coll := _Collective("all_reduce", _sum(), asynchronous=True))
          _launch(coll, b.buf, b.start, b.stop)

  def _finish(self, b: _Bucket):
    _launch(b.wait, b.buf, b.start, b.stop)
    b.wait = None

  def finish(self):
    """Wait for the buckets in flight; all-reduce the ones the backward did not write (gradients realized before)."""
    for row in self.buckets.values():
      for b in row:
        if b.wait is not None: self._finish(b)
      if all(b.parts for b in row):   # none went during the backward: the whole buffer at once
        _launch(_Collective("all_reduce", _sum()), row[0].buf, 0, row[0].buf.size)
      else:
        for b in (b for b in row if b.parts): _launch(_Collective("all_reduce", _sum()), b.buf, b.start, b.stop)
      for b in row: b.parts = {}


def _sum():
  import torch.distributed as d
  return d.ReduceOp.SUM


def _collective(t: Tensor, prg: _Collective) -> Tensor:
  """Run `prg` on `t`'s own memory as an in-place update of `t` (recorded by a jit capture)."""
  realize(t)
  node = t._node
  if node.op is not Op.BUFFER or node.buffer.size != t.numel():
    raise DistributedError(f"{prg.kind}: the tensor of shape {tuple(t.shape)} is a view of other memory. Fix: pass "
                           "t.contiguous() (a tensor of its own)")
  def run():
    prg([node.buffer])
    if (cap := jit_capture()) is not None: cap.launched(prg, [node.buffer], 1, [])
  overwrite([(node.buffer, [t])], run)
  return t


def all_reduce(t: Tensor, op: str = "sum") -> Tensor:
  """Every rank's `t` becomes the elementwise `op` ('sum', 'max', 'min', 'product') over all ranks, in place;
  returns `t`. One process: `t` unchanged."""
  if world_size() == 1: return t
  import torch.distributed as dist
  ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN, "product": dist.ReduceOp.PRODUCT}
  if op not in ops: raise DistributedError(f"all_reduce: op must be one of {sorted(ops)}, got {op!r}")
  return _collective(t, _Collective("all_reduce", ops[op]))


def broadcast(t: Tensor, src: int = 0) -> Tensor:
  """Every rank's `t` becomes rank `src`'s, in place; returns `t`."""
  if world_size() == 1: return t
  return _collective(t, _Collective("broadcast", src))


def broadcast_parameters(params: list[Tensor], src: int = 0) -> list[str]:
  """Make every rank's parameters rank `src`'s (as DDP does at start). Returns the indices (as text) of those that
  differed on this rank, after warning about them: different initial weights usually mean an unseeded model."""
  if world_size() == 1: return []
  def digest(p: Tensor) -> tuple:
    x = p.detach().float()
    return x.sum().item(), (x * x).sum().item()
  before = [digest(p) for p in params]
  # memory, not views: a parameter an optimizer gathered into a flat buffer goes with the whole buffer
  bases = [p._rooted() for p in params]
  memory = {id(m): m for p, b in zip(params, bases) for m in [p if b is None else b]}
  for m in memory.values(): broadcast(m, src)
  differed = [str(i) for i, (b, p) in enumerate(zip(before, params)) if b != digest(p)]
  if differed:
    warnings.warn(f"lazygrad.distributed: rank {rank()}: parameters {', '.join(differed[:8])}"
                  f"{' ...' if len(differed) > 8 else ''} differed from rank {src}'s and were replaced by them "
                  "(seed every rank alike to start from the same weights)", stacklevel=2)
  return differed


def average_gradients(params: list[Tensor], bucket_bytes: int = 25 << 20, along: tuple = ()):
  """Average `.grad` over all ranks. Gradients an optimizer keeps in a flat buffer (see `optim._Flat`) are summed in
  buckets of about `bucket_bytes` (consecutive parameters, the last first), then divided in place; called right
  after `backward`, before anything realized the gradients, the backward runs here and each bucket's all-reduce
  starts as soon as the backward has written it, overlapping the rest of the backward (`along`: tensors to realize
  in the same schedule, the loss, so the forward does not run twice). Other gradients are packed into flat buckets
  (one per dtype and device run), each summed by one all-reduce, and each `.grad` becomes its slice of the bucket
  divided by the world size (lazy: the division fuses into whatever reads it next, the optimizer)."""
  world = world_size()
  if world == 1:
    if along: realize(*along)
    return
  from .autograd import no_grad
  from .optim import _whole_flats
  kept_flat = _whole_flats(params)   # gradients an optimizer keeps in flat buffers: summed there, by buckets
  if kept_flat:
    overlap = _Overlap(kept_flat, bucket_bytes)
    def run():
      launch_hooks.append(overlap)
      try: realize(*(f.G for f in kept_flat), *along)   # the backward, if it has not run yet, with its all-reduces
      finally: launch_hooks.remove(overlap)
      overlap.finish()
    overwrite([(written_buffer(f.G.node), [f.G]) for f in kept_flat], run)
  elif along: realize(*along)
  with no_grad():
    for f in kept_flat: f.G.assign(f.G / world)   # in place: each .grad stays its view
  whole = {id(p) for f in kept_flat for p in f.params}
  with_grad = [p for p in params if p.grad is not None and id(p) not in whole]
  buckets: list[list[Tensor]] = []
  for p in with_grad:
    last = buckets[-1] if buckets else None
    if last is None or last[0].grad.dtype != p.grad.dtype or last[0].grad.device != p.grad.device or \
       sum(q.grad.numel() for q in last) * p.grad.element_size() >= bucket_bytes:
      buckets.append([p])
    else: last.append(p)
  with no_grad():
    flats = [Tensor.cat([q.grad.reshape(-1) for q in b]) if len(b) > 1 else b[0].grad.reshape(-1).contiguous()
             for b in buckets]
    realize(*flats)   # every bucket in one schedule
    for flat, bucket in zip(flats, buckets):
      all_reduce(flat, "sum")
      offset = 0
      for q in bucket:
        n = q.grad.numel()
        q.grad = (flat[offset:offset + n] / world).reshape(q.grad.shape)
        offset += n
