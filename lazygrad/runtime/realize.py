"""The realize engine: schedule (cached by graph structure), lower (cached by kernel text), run, report.

Input: the lazy nodes to realize, on any devices. Output: each of them backed by a buffer at its current version.
It owns the order of the stages: `get_schedule` (partition and build kernels, verified under LAZYGRAD_VERIFY),
`compile_kernel` (the one way from a kernel AST to a device program: tiling and precision explicit and in the cache
key), and `run_schedule` (allocation of outputs on their nodes' devices, launches and copies, check mode, DEBUG
reports). It also owns the memory the frontend starts from: `upload` (host data), `from_torch` and `empty` make the
BUFFER nodes tensors are created with."""
from __future__ import annotations
import contextlib, hashlib, pickle, threading, time, warnings
from dataclasses import dataclass
import numpy as np
from ..dtypes import DType, uint8
from ..helpers import (settings, counters, prod, fmt_loc, get_float32_matmul_precision, LRU, exact, timed, observers,
                       tell)
from ..ir.node import LazyNode, toposort, graph_text, verify as verify_graph
from ..ir.ops import Op, REDUCE, MOVEMENT
from ..codegen.schedule import schedule, schedule_text, ScheduleItem, is_parameter, written_buffer
from ..codegen.kernel import Kernel
from ..codegen.linearize import Tiling, choose_tiling
from .. import helpers
from .buffer import Buffer, Shifted, parts
from . import autotune
from .device import get_device
from .memory import Lifetime, MemoryPlan, plan
from . import disk_cache
from . import check


@dataclass
class _Template:
  """A schedule with its nodes replaced by their positions in the graph's topological order."""
  kernels: list[Kernel | None]
  outputs: list[list[int]]
  inputs: list[list[int]]
  scalars: list[list[int]]
  reasons: list[list[str]]
  origins: list[list[list[int]]]
  memory: "_Memory"
  offsets: list[tuple]


@dataclass
class _Memory:
  """Where a schedule's intermediates live: per device, the plan of its arena; per item and output, the offset in
  its device's arena, or None for memory of its own (targets, in-place updates, empty outputs)."""
  plans: dict[str, MemoryPlan]
  offsets: list[list[int | None]]


class Schedule(list):
  """The items of a schedule, in order, with the memory plan of its intermediates (`memory`); `new` when it was just
  built (not found in the cache): its programs may never have run."""
  def __init__(self, items, memory: _Memory | None = None, new: bool = False):
    super().__init__(items)
    self.memory, self.new = memory, new


def plan_memory(items: list[ScheduleItem], targets: list[LazyNode]) -> _Memory:
  """The memory plan of a schedule: its outputs that only its own kernels read (not targets, not in-place updates),
  placed per device by their lifetimes (see runtime.memory)."""
  wanted, last = {id(t) for t in targets}, {}
  for i, it in enumerate(items):
    for n in it.inputs: last[id(n)] = i
  lifetimes: dict[str, list[Lifetime]] = {}
  where: list[list[tuple[str, int] | None]] = []
  for i, it in enumerate(items):
    where.append([])
    for n in it.outputs:
      nbytes = prod(n.shape) * n.dtype.itemsize
      if n.op is Op.ASSIGN or id(n) in wanted or nbytes == 0: where[-1].append(None); continue
      spans = lifetimes.setdefault(n.device, [])
      where[-1].append((n.device, len(spans)))
      spans.append(Lifetime(i, max(i, last.get(id(n), i)), nbytes))
  with timed("plan memory"): plans = {d: plan(spans) for d, spans in lifetimes.items()}
  if settings.VERIFY:
    for p in plans.values(): p.verify()
  return _Memory(plans, [[plans[w[0]].offsets[w[1]] if w else None for w in ws] for ws in where])


_schedule_cache = LRU(1024)   # bounded: a long run that keeps making new graph structures does not grow forever
_program_cache = LRU(4096)
unread_checks: list[tuple] = []   # (flag buffer, (error, message), user line) of checks run but not yet read
NO_FAILURE = -2**63               # a check's flag when every element passed


class _JitCall(threading.local):
  """The lazygrad.jit call running in this thread, installed by `jit_call`."""
  fn: str | None = None
  capture = None


_jit_call = _JitCall()


@contextlib.contextmanager
def jit_call(fn: str, capture=None):
  """Run the body as lazygrad.jit's call of the function named `fn`, as plain code: host reads of tensor values are
  refused meanwhile (see `jit_running`). A `capture` (None: the call is not captured) records the kernel launches
  (`capture.launched`), host uploads (`uploaded`) and value checks (`checked`) of the call."""
  _jit_call.fn, _jit_call.capture = fn, capture
  try: yield
  finally: _jit_call.fn = _jit_call.capture = None


def jit_running() -> str | None:
  """The name of the function lazygrad.jit runs in this thread, else None."""
  return _jit_call.fn


def jit_capture():
  """The capture of the lazygrad.jit call running in this thread, else None."""
  return _jit_call.capture


def _structure_key(order: list[LazyNode]) -> tuple:
  """The graph with nodes named by position; realized nodes by dtype, shape, device and which of them share a buffer
  (an in-place kernel must run after every kernel that reads the old contents of its buffer, whichever node reads
  it)."""
  pos, key, first_on = {}, [], {}
  for i, n in enumerate(order):
    pos[id(n)] = i
    if n.realized: key.append(("B", n.dtype, n.shape, n.device, first_on.setdefault(id(n.buffer), i)))
    elif n.op is Op.BUFFER: raise _stale(n)
    else: key.append((n.op, n.dtype, n.shape, n.device, None if is_parameter(n) else exact(n.arg),
                      tuple(pos[id(s)] for s in n.srcs)))
  return tuple(key)


def _stale(n: LazyNode) -> helpers.StaleValueError:
  return helpers.StaleValueError(f"a tensor created at {fmt_loc(n.loc)} was overwritten by an in-place update at "
                         f"{fmt_loc(n.buffer.written_at)} after a computation reading its old value was built, and that "
                         f"value is gone. Fix: realize (or take the gradient of) what needs the old value before the "
                         f"in-place update, or update a clone()")


class _InGraph:
  """Per node of a cached kernel, the lazy nodes of the graph being run that it computes: looked up only when user
  lines are shown (DEBUG=5, check mode, dumps), so a realize does not pay for them."""
  __slots__ = ("order", "positions")
  def __init__(self, order: list[LazyNode], positions: list[list[int]]): self.order, self.positions = order, positions
  def __getitem__(self, i: int) -> list[LazyNode]: return [self.order[p] for p in self.positions[i]]
  def __len__(self) -> int: return len(self.positions)


def get_schedule(targets: list[LazyNode], order: list[LazyNode] | None = None) -> list[ScheduleItem]:
  """The schedule of `targets`, from the cache when this graph structure was scheduled before. `order`: the graph's
  nodes in topological order, if known."""
  order = order or toposort(targets)
  pos = {id(n): i for i, n in enumerate(order)}
  key = (tuple(pos[id(t)] for t in targets), _structure_key(order))
  new = (tpl := _schedule_cache.get(key)) is None   # new to this process: its programs may never have run here
  if new and (tpl := _stored_template(key)) is None:
    counters.schedules += 1
    with timed("schedule"):
      if settings.VERIFY: verify_graph(order)
      items = schedule(targets)
      if settings.VERIFY:
        for it in items:
          if it.kernel is not None: it.kernel.verify()
    tpl = _Template([it.kernel for it in items], *([[pos[id(n)] for n in getattr(it, f)] for it in items]
                                                  for f in ("outputs", "inputs", "scalars")), [it.reasons for it in items],
                    [[[pos[id(o)] for o in nodes] for nodes in it.origins] for it in items], plan_memory(items, targets),
                    [it.offsets for it in items])
    _schedule_cache[key] = tpl
    _store_template(key, tpl)
    if observers: tell("cache", "schedule", f"graph of {len(order)} nodes", False, "a graph structure not scheduled "
                       "before (or evicted from the cache since)", hash(key))
  elif observers: tell("cache", "schedule", f"graph of {len(order)} nodes", True, "the same graph structure was "
                       "scheduled before: its kernels are reused", hash(key))
  # the same kernels for every graph of this structure, with the nodes (and user lines) of the graph being run
  return Schedule([ScheduleItem(k, [order[i] for i in outs], [order[i] for i in ins], [order[i] for i in sc], why,
                                _InGraph(order, origins), offsets)
                   for k, outs, ins, sc, why, origins, offsets in zip(tpl.kernels, tpl.outputs, tpl.inputs,
                                                                      tpl.scalars, tpl.reasons, tpl.origins,
                                                                      tpl.offsets)], tpl.memory, new)


def _template_path(key: tuple):
  digest = hashlib.sha256(f"{disk_cache.version()}\n{key!r}".encode()).hexdigest()[:32]
  return disk_cache.ROOT / "schedules" / f"{digest}.pkl"


def _stored_template(key: tuple) -> _Template | None:
  """The schedule of this graph structure from the disk cache (made by an earlier process), or None."""
  path = _template_path(key)
  try:
    with timed("load schedule"): tpl = pickle.loads(disk_cache.read(path))
  except (OSError, ValueError, pickle.UnpicklingError, EOFError, AttributeError): return None
  _schedule_cache[key] = tpl
  if observers: tell("cache", "schedule", "a graph structure", True, f"scheduled by an earlier process: {path}",
                     hash(key))
  return tpl


_unwritable = []


def _store_template(key: tuple, tpl: _Template):
  for k in tpl.kernels:   # the kernels' texts (their program cache keys) go with them: a later process needs them at once
    if k is not None: k.text
  try: data = pickle.dumps(tpl, protocol=pickle.HIGHEST_PROTOCOL)
  except RecursionError: return   # a kernel AST too deep to pickle: this schedule is made anew by each process
  try: disk_cache.write(_template_path(key), data)
  except OSError as e:
    if not _unwritable:
      _unwritable.append(e)
      warnings.warn(f"lazygrad: schedules are not kept on disk ({type(e).__name__}: {e}); each process schedules "
                    "anew", RuntimeWarning, stacklevel=4)


def _precision() -> str:
  """How float32 contractions are rendered: 'ieee' (exact) or 'tf32'."""
  return "ieee" if get_float32_matmul_precision() == "highest" else "tf32"


def compile_kernel(kernel: Kernel, device, tiling: Tiling | None = None):
  """The one way from a kernel AST to a program the device runs: lowered with `tiling` (default: the device's
  choice for this kernel) and the float32 contraction precision in force, cached by all of them."""
  precision = _precision()
  tiling = tiling or autotune.chosen(kernel, device, precision) or choose_tiling(kernel, device.lowering)
  key = (device.name, device.lowering, tiling, precision, kernel.text)
  if (prg := _program_cache.get(key)) is None:
    if observers: tell("cache", "program", kernel.name, False, _program_miss(key), hash(key))
    prg = _program_cache[key] = device.compile(kernel, tiling, precision)   # it counts the lowerings it really does
  elif observers: tell("cache", "program", kernel.name, True, "compiled earlier in this process", hash(key))
  return prg


def _program_miss(key: tuple) -> str:
  """Why `key` is not in the program cache: which part of it differs from a program of the same kernel there."""
  parts = ("device", "lowering options", "tiling", "float32 precision")
  for other in _program_cache.keys():
    if other[-1] == key[-1]:
      return "compiled before with another " + " and ".join(p for p, a, b in zip(parts, other, key) if a != b)
  return "a kernel not compiled in this process (or evicted from the cache since)"


def kernel_cost(k: Kernel) -> tuple[int, int]:
  """(bytes moved, flops) estimates for DEBUG=2: every buffer once; per ALU op one flop per element of its space (a
  combined kernel's: its parts')."""
  nbytes = sum(b.size * b.dtype.itemsize for b in k.bufs)
  if k.parts: return nbytes, sum(kernel_cost(p)[1] for p in k.parts)
  out_elems = prod(k.shape[:len(k.shape) - k.n_reduce])
  flops = 0
  for r in k.reduces: flops += prod(k.shape) * (1 + sum(1 for n in r.srcs[0].walk() if isinstance(n.op, Op)))
  flops += out_elems * sum(1 for n in k.nodes if isinstance(n.op, Op) and n.op not in REDUCE)
  return nbytes, flops


def copy_buffer(bufs: list[Buffer], scalars=()):
  """Copy bufs[1] into bufs[0], on another device: a torch copy where both devices keep torch tensors (no host round
  trip), else through host memory. Called as a kernel program is, so lazygrad.jit records and replays it."""
  dst, src = bufs[0].ensure(), bufs[1]
  if getattr(dst.device, "torch_device", None) and getattr(src.device, "torch_device", None):
    dst.device.copy(dst.data, src.ensure().data[:dst.size])
  else: dst.write(src.numpy()[:dst.size])


def _run_copy(it: ScheduleItem):
  t0 = time.perf_counter()
  bufs = [it.outputs[0].buffer, it.inputs[0].buffer]
  copy_buffer(bufs)
  if (cap := jit_capture()) is not None: cap.launched(copy_buffer, bufs, 1, [])
  if settings.DEBUG >= 2:
    bufs[0].device.synchronize()
    n = it.outputs[0]
    print(f"  copy   {counters.copies:5d} {it.inputs[0].device + ' -> ' + n.device:<32s} "
          f"{(time.perf_counter() - t0) * 1e3:9.3f} ms")
  counters.copies += 1


def _nothing_to_compute(it: ScheduleItem) -> bool:
  """An empty output, or an empty iteration space (an update of an empty region: `x[3:] += 1` of 3 elements)."""
  return any(prod(n.shape) == 0 for n in it.outputs) or (it.kernel is not None and prod(it.kernel.shape) == 0)


# objects told about every kernel launch, `before(item, bufs)` and `after(item, bufs)` (bufs: the item's outputs' then
# its inputs' buffers, whole): lazygrad.distributed starts each gradient bucket's all-reduce as soon as the backward
# has written it, while the rest of the backward runs
launch_hooks: list = []


def run_schedule(items: list[ScheduleItem], held=frozenset()):
  """Run the items in order, each kernel on its outputs' device, into new buffers there (an assign: its target's).
  A `Schedule`'s planned intermediates share one arena per device, except nodes whose ids are in `held` (those live
  tensors hold keep memory of their own); afterwards they are no longer realized, as their memory was reused."""
  t_start = time.perf_counter()
  timing = any(hasattr(o, "ran") for o in observers)   # an observer wants each kernel's time
  memory: _Memory | None = getattr(items, "memory", None) if settings.PLAN else None
  if getattr(items, "new", False): _precompile(items)
  arenas, planned = {}, []
  for i, it in enumerate(items):
    for j, n in enumerate(it.outputs):
      if n.op is Op.ASSIGN: n.buffer = _target_buffer(n); continue
      dev = get_device(n.device)
      offset = memory.offsets[i][j] if memory is not None else None
      if offset is None or id(n) in held: n.set_buffer(Buffer(dev, n.dtype, prod(n.shape))); continue
      if n.device not in arenas: arenas[n.device] = _alloc_arena(dev, memory, items)
      n.set_buffer(Buffer(dev, n.dtype, prod(n.shape), dev.view(arenas[n.device], offset, n.dtype, prod(n.shape)),
                          planned=True))
      planned.append(n)
    if _nothing_to_compute(it):
      _written(it.outputs); continue
    if it.kernel is None:
      _run_copy(it); continue
    device = it.outputs[0].buffer.device
    bufs = [n.buffer for n in it.outputs] + [n.buffer for n in it.inputs]
    scalars = [n.dtype.np(n.arg).item() for n in it.scalars]   # rounded to their dtype, as a literal would be
    sizes = [b.size for b in it.kernel.bufs]
    seen = parts(bufs, it.offsets, sizes) if it.offsets else bufs   # what the kernel's addresses count in
    if observers: tell("kernel", it, seen, scalars)
    prg = compile_kernel(it.kernel, device)
    if tilings := autotune.pending(it.kernel, device, _precision()):
      prg = _tune(it, device, bufs, scalars, tilings)
    if observers: tell("compiled", it, prg)
    if settings.DEBUG >= 3:
      print(it.kernel.text + ("\n  values: " + ", ".join(f"s{i}={v!r}" for i, v in enumerate(scalars)) if scalars else ""))
    if settings.DEBUG >= 4: print(prg.prog.text)
    if settings.DEBUG >= 5 and getattr(prg, "source", None): print(it.annotated(prg.source))
    checking = settings.CHECK and device.name != "numpy"
    if checking: before = check.snapshot(it.kernel, seen)
    if timing: device.synchronize()
    t0 = time.perf_counter()
    if it.offsets: prg = Shifted(prg, it.offsets, sizes)
    for hook in launch_hooks: hook.before(it, bufs)
    prg(bufs, scalars)
    if timing:
      device.synchronize()
      tell("ran", it, time.perf_counter() - t0)
    if (cap := jit_capture()) is not None: cap.launched(prg, bufs, len(it.outputs), scalars)
    if checking: check.compare(it, prg, seen, scalars, before)
    _written(it.outputs)
    for hook in launch_hooks: hook.after(it, bufs)
    if settings.DEBUG >= 2:
      device.synchronize()
      dt = time.perf_counter() - t0
      nbytes, flops = kernel_cost(it.kernel)
      print(f"  kernel {counters.kernels:5d} {it.kernel.name:<32s} {dt * 1e3:9.3f} ms {nbytes / dt / 1e9:8.2f} GB/s "
            f"{flops / dt / 1e9:8.2f} GFLOP/s")
    counters.kernels += 1
  _settle_versions(items)
  for n in planned: n.buffer = None   # its memory is reused: a later graph reading it computes it again
  if settings.DEBUG >= 1:
    copies = sum(it.kernel is None for it in items)
    kernels = len(items) - copies
    print(f"realize: {kernels} kernel{'s' if kernels != 1 else ''}" +
          (f", {copies} cop{'ies' if copies != 1 else 'y'}" if copies else "") +
          f" in {(time.perf_counter() - t_start) * 1e3:.3f} ms" +
          "".join(f"; {d} memory: {memory.plans[d].text()}" for d in arenas))


def _tune(it: ScheduleItem, device, bufs: list[Buffer], scalars: list, tilings: list):
  """The program of the tiling `autotune` chooses for the item's contraction kernel, timing the candidates on the
  item's buffers the first time (not a kernel that reads memory it writes: a second run would change its result)."""
  precision = _precision()
  reads = {id(b) for b in bufs[len(it.outputs):]}
  if it.kernel.scattered or any(id(b) in reads for b in bufs[:len(it.outputs)]):
    autotune.untimed(it.kernel, device, precision)
  else:
    sizes = [b.size for b in it.kernel.bufs]
    def launch_with(prg): (Shifted(prg, it.offsets, sizes) if it.offsets else prg)(bufs, scalars)
    autotune.tune(it.kernel, device, precision, {t: compile_kernel(it.kernel, device, t) for t in tilings},
                  launch_with)
  return compile_kernel(it.kernel, device)


def _precompile(items: list[ScheduleItem]):
  """Compile a new schedule's programs before the first runs, where a device can compile many at once."""
  per_device: dict = {}
  for it in items:
    if it.kernel is not None and not _nothing_to_compute(it):
      dev = get_device(it.outputs[0].device)
      if not getattr(dev, "can_precompile", False): continue
      try:   # the tilings a tuner will time compile now too, with the rest
        for tiling in autotune.pending(it.kernel, dev, _precision()) or [None]:
          per_device.setdefault(dev, []).append(compile_kernel(it.kernel, dev, tiling))
      except Exception: pass   # raised again where the kernel runs, after the dumps and checks that come first
  for dev, programs in per_device.items(): dev.precompile(programs)


def _alloc_arena(dev, memory: _Memory, items: list[ScheduleItem]):
  """The arena of the schedule's intermediates on `dev`; out of memory, an error naming the planned peak and the
  largest buffers with the user lines that make them."""
  try: return dev.alloc(uint8, memory.plans[dev.name].size)
  except helpers.OutOfDeviceMemory as e:
    outs = [(prod(n.shape) * n.dtype.itemsize, o is None, n, it) for i, it in enumerate(items)
            for n, o in zip(it.outputs, memory.offsets[i]) if n.device == dev.name and n.op is not Op.ASSIGN]
    largest = "; ".join(f"{n.dtype.short}[{','.join(map(str, n.shape))}] {b / 2**20:.0f} MiB from "
                        f"{it.kernel.name if it.kernel else 'a copy'} at {fmt_loc(n.loc)}"
                        for b, _, n, it in sorted(outs, key=lambda x: -x[0])[:5])
    raise helpers.OutOfDeviceMemory(
      f"out of memory for a schedule of {len(items)} kernels: its intermediates are planned into "
      f"{memory.plans[dev.name].text()}; its results take {sum(b for b, own, _, _ in outs if own) / 2**30:.2f} GiB "
      f"more. Largest: {largest}. {e}. Fix: a smaller batch or sequence, bfloat16 autocast, or the step in parts "
      "(gradient accumulation)") from None


def _target_buffer(n: LazyNode):
  """The memory an assign writes: its target's, the nearest version below it that has memory (updates of disjoint
  parts of one buffer run in any order, so the version just below may not have run yet)."""
  while (n := n.srcs[0]).buffer is None: pass
  return n.buffer


def _settle_versions(items: list[ScheduleItem]):
  """After a schedule, the last update of each buffer holds the buffer's version (what the memory holds is its
  value) and the updates below it hold older ones, whatever order updates of disjoint parts ran in."""
  assigns = [n for it in items for n in it.outputs if n.op is Op.ASSIGN and n.buffer is not None]
  below = {id(n.srcs[0]) for n in assigns}
  for n in assigns:
    n.version = min(n.version, n.buffer.version - 1) if id(n) in below else n.buffer.version


def _written(outputs: list[LazyNode]):
  """An in-place write makes a new version of its buffer: nodes holding an older one are no longer realized."""
  for n in outputs:
    if n.op is Op.ASSIGN: n.version = n.buffer.bump(n.loc)


def _share_reshaped_buffers(nodes: list[LazyNode], written: set) -> bool:
  """A reshape or detach of a realized node is the same memory: give it that buffer instead of a copy kernel,
  unless the schedule writes that buffer (the node's value would go with it). Whether any node was given one."""
  shared = False
  for n in nodes:
    base = n
    while base.op in (Op.RESHAPE, Op.DETACH) and not base.realized: base = base.srcs[0]
    if base is not n and base.realized and id(base.buffer) not in written:
      n.set_buffer(base.buffer)
      shared = True
  return shared


def realize(nodes: list[LazyNode], held=lambda: (), overwritten: frozenset = frozenset()):
  """Compute `nodes` (on whatever devices they are) in one schedule; each gets a buffer holding its value. `held()`:
  the nodes live tensors hold; if the schedule stores one (or what one is a view of), it keeps its memory.
  `overwritten`: ids of buffers the caller writes right after (no node may take one as its memory)."""
  targets = list({id(n): n for n in nodes if not n.realized}.values())
  if not targets: return
  order = toposort(targets)
  if _share_reshaped_buffers(targets, {id(written_buffer(n)) for n in order if n.op is Op.ASSIGN} | overwritten):
    if not (targets := [n for n in targets if not n.realized]): return
    order = toposort(targets)
  checks = [n for n in order if n.op is Op.CHECK]   # their flags are computed in the same schedule
  targets += list({id(c.srcs[1]): c.srcs[1] for c in checks if not c.srcs[1].realized}.values())
  if settings.DEBUG >= 6: print(graph_text(targets))
  stages = dict(counters.seconds) if settings.DEBUG >= 1 else None
  if observers: tell("graph", targets)
  items = get_schedule(targets, order)
  if settings.DEBUG >= 2: print(schedule_text(items, order))
  if observers: tell("schedule", items, order)
  run_schedule(items, _viewed(held()) if items.memory.plans and settings.PLAN else frozenset())
  if stages is not None and (spent := {k: v - stages.get(k, 0.0) for k, v in counters.seconds.items()
                                       if v - stages.get(k, 0.0) > 0}):
    print("compile: " + ", ".join(f"{k} {v:.3f} s" for k, v in spent.items()))   # where a cold start's time goes
  checks = [(c.srcs[1].buffer, c.arg, c.loc) for c in checks]
  if (cap := jit_capture()) is not None: cap.checked(checks)
  note_checks(checks)


def _viewed(nodes) -> set[int]:
  """The ids of `nodes` and of the unrealized nodes they are views of (through movement ops and detach)."""
  ids = set()
  for n in nodes:
    ids.add(id(n))
    while not n.realized and (n.op in MOVEMENT or n.op is Op.DETACH):
      n = n.srcs[0]
      ids.add(id(n))
  return ids


def note_checks(checks: list):
  """Checks whose flags were just computed: read at once on the numpy device or under check mode, else at the next
  host read (or when many are waiting, so the list stays bounded)."""
  unread_checks.extend(checks)
  if settings.CHECK or len(unread_checks) > 256 or any(b.device.name == "numpy" for b, _, _ in checks):
    raise_failed_checks()


def raise_failed_checks():
  """Read the flags of the index and divisor checks run so far and raise the first that failed. The numpy device
  does this as each schedule ends; on a GPU reading a flag waits for the device, so it is done when a value is read
  on the host anyway (`Tensor.numpy`, `item`...), or at once under check mode."""
  pending, unread_checks[:] = list(unread_checks), []
  for buf, (error, message), loc in pending:
    if (v := int(buf.numpy()[0])) != NO_FAILURE: raise getattr(helpers, error)(f"{message.format(v)} (at {fmt_loc(loc)})")


def upload(array: np.ndarray, dtype: DType, device: str) -> LazyNode:
  """A BUFFER node on `device` holding the values of the host `array` (of `dtype`'s numpy type; the buffer may share
  its memory). A jit capture keeps a copy of the values for replays."""
  dev = get_device(device)
  buf = Buffer(dev, dtype, array.size, dev.from_numpy(array))
  if (cap := jit_capture()) is not None: cap.uploaded(buf, np.array(array, copy=True))
  return LazyNode.from_buffer(buf, array.shape)


def drawn(draw, redraw, dtype: DType, shape: tuple, device: str) -> LazyNode:
  """A BUFFER node on `device` whose values the host function `draw()` makes when the buffer is first used (never,
  if it is replaced before: a layer's default initialisation that a model overwrites). A jit capture calls
  `redraw()` for each replay's values."""
  buf = Buffer(get_device(device), dtype, prod(shape), fill=draw)
  if (cap := jit_capture()) is not None: cap.uploaded(buf, redraw)
  return LazyNode.from_buffer(buf, tuple(shape))


def from_torch(tensor, dtype: DType, device: str) -> LazyNode:
  """A BUFFER node on `device` holding a torch tensor's values: its memory where the device can share it."""
  dev = get_device(device)
  buf = Buffer(dev, dtype, tensor.numel(), dev.from_torch(tensor, dtype))
  if (cap := jit_capture()) is not None: cap.uploaded(buf, np.array(buf.numpy(), copy=True))
  return LazyNode.from_buffer(buf, tuple(tensor.shape))


def empty(dtype: DType, shape: tuple, device: str, loc=None) -> LazyNode:
  """A BUFFER node of new, uninitialized memory on `device` (allocated when first used)."""
  return LazyNode.from_buffer(Buffer(get_device(device), dtype, prod(shape)), tuple(shape), loc)
