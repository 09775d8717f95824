"""JIT: capture the kernels a function launches, then replay them on later calls: no graph building, scheduling or
cache lookups, only the launches (and the host random draws they need).

Calls. Tensor arguments may be positional or keyword, alone or at any depth inside lists, tuples and dicts. A call's
signature is the structure of its arguments, every non-tensor value in them (which must be hashable), each tensor's
shape, dtype, device and requires_grad (a view's: also the view it is of its base), which tensor arguments share
memory, and the modes no_grad and autocast. The first call with a signature runs the function as plain code, the
second runs it again and captures its kernels, later calls replay them with the new arguments' memory. So a new shape,
dtype or non-tensor value captures anew (pass numbers that change every call, a learning rate, as tensors). The last
`max_captures` (8) signatures are kept, each capture with its intermediate buffers. A jitted method (`@lazygrad.jit`
on a `def` in a class) keeps its captures per object. Jitted functions called inside a jitted function run as plain
code, part of the outer one.

What a replay does:
- Tensors the function reads other than its arguments (parameters, optimizer state) are read by memory: in-place
  updates made between calls show. When the tensors that held such memory at the capture all hold other memory
  (`load_state_dict`, `Module.to`, or `model.w = Tensor(...)` dropping the old tensor), the call captures anew; a
  name rebound while the old tensor lives on elsewhere is not seen.
- In-place updates (optimizer steps, `assign` to an argument) are written as in-place updates of the tensors holding
  that memory: live tensors still waiting to read the old values are realized first, the holders then see the new ones.
- Random tensors made inside (`Tensor.rand`, `randn`, `uniform`, `normal`, `randint`, so dropout) are drawn again, in
  the capture's order, from the current generator: a jitted run draws the numbers a plain run with the same seed draws.
  Other host data made inside (`Tensor([...])`, `arange`) is a constant, as it was at capture. Copies between
  devices (`.to`) are replayed in their place among the kernels.
- Results come back as the function returned them (a tensor, None, lists, tuples, dicts, nested), each tensor in new
  memory: a result held from an earlier call never changes. A result that is an argument comes back as the new call's
  argument, one that existed before the call (state) as itself, the others without autograd history (on every call:
  call backward inside the function). Non-tensor results come back as captured.
- Tensors the function made and left reachable (`p.grad`, attributes it set) hold each replay's values while they
  stay reachable. Python effects themselves (attributes set, lists appended, flags like `module.training` read)
  happen only on calls that run the function: pass what changes as arguments.
- Pending in-place updates of live tensors are realized before every call; those the function leaves pending are
  realized at its end, as part of the call.
- On the `triton` (GPU) device a replay is one CUDA graph (or one per run of launches between collectives, which
  run from Python between them): the launches always address the same memory, so arguments
  are copied into the capture's own buffers (and back, if the function writes them in place), and results and kept
  tensors live in memory the capture keeps. A result held from an earlier call is copied out before a replay
  overwrites that memory (only if it is still alive). `graph=False` (or LAZYGRAD_JIT_GRAPH=0) replays launch by launch
  into new memory, as other devices do; `graph=True` (or LAZYGRAD_JIT_GRAPH=1) replays the static way on any device,
  launching from Python where there are no graphs.

Raises JitError, on the call that runs the function: a host read of a tensor's value inside it (`item`, `numpy`,
`tolist`, `bool`/`int`/`float`, `repr` with values) or `manual_seed` (baked into replays); an
unhashable non-tensor argument; a tensor argument with autograd history (computed from tensors requiring grad); setting
`.grad` of an argument; kernels that read a tensor the call dropped (an old `.grad` that backward accumulated into).
On a replay: an argument sharing memory with a tensor the function reads as state, when either is updated in place."""
from __future__ import annotations
import collections, functools, itertools, time, weakref
import numpy as np
from .autograd import grad_mode
from .helpers import JitError, counters, settings, user_frame, IdWeakSet, observers, tell, timed
from .ir.node import LazyNode, toposort
from .amp import autocast_dtype
from .tensor import Tensor, realize, overwrite, _hold, _roots, _assigned
from .runtime.buffer import Buffer, serials
from .runtime import realize as engine, memory
from .dtypes import uint8

_TENSOR, _LEAF = "tensor", "leaf"   # template tags (containers are tagged with their type)


class _Flat:
  """Structures of lists, tuples (named ones too) and dicts as templates, with their distinct tensors pulled out.
  With `fn` (the jitted function's name) they are arguments: their other values must be hashable."""

  def __init__(self, fn: str | None = None):
    self.tensors: list[Tensor] = []
    self._at: dict[int, int] = {}
    self.fn = fn

  def index(self, t: Tensor) -> int | None:
    """t's position among the tensors (by identity), None if it is not one of them."""
    return self._at.get(id(t))

  def walk(self, x, where: str = ""):
    if isinstance(x, Tensor):
      if id(x) not in self._at:
        self._at[id(x)] = len(self.tensors)
        self.tensors.append(x)
      return (_TENSOR, self._at[id(x)])
    if type(x) in (list, tuple) or (isinstance(x, tuple) and hasattr(x, "_fields")):
      return (type(x), tuple(self.walk(v, f"{where}[{i}]") for i, v in enumerate(x)))
    if type(x) is dict: return (dict, tuple((k, self.walk(v, f"{where}[{k!r}]")) for k, v in x.items()))
    if self.fn is not None:
      try: hash(x)
      except TypeError:
        raise JitError(f"jit {self.fn}: argument {where} is an unhashable {type(x).__name__}, but non-tensor arguments "
                       "key the captures. Fix: pass arrays as Tensors and other values in a hashable form (a tuple, a "
                       "frozenset)") from None
    return (_LEAF, type(x), x)


def _build(template, values: list):
  """The structure `template` describes, with `values` for its tensors."""
  kind, body = template[0], template[1]
  if kind is _TENSOR: return values[body]
  if kind is _LEAF: return template[2]
  if kind is dict: return {k: _build(v, values) for k, v in body}
  items = [_build(v, values) for v in body]
  return kind(*items) if hasattr(kind, "_fields") else kind(items)


class _Capture:
  """What a call being captured does, in order: its kernel launches, host uploads and value checks."""

  def __init__(self):
    self.first = next(serials)   # buffers the call makes are numbered after this
    self.launches: list = []     # (program, buffers, how many of them it writes, scalar arguments)
    self.uploads: dict = {}      # id(buffer) -> (buffer, its host array or the draw that makes new ones)
    self.checks: list = []       # (flag buffer, (error, message), user line): index and divisor checks

  def launched(self, prg, bufs: list[Buffer], n_out: int, scalars: list):
    self.launches.append((prg, bufs, n_out, scalars))
  def uploaded(self, buf: Buffer, source): self.uploads[id(buf)] = (buf, source)
  def checked(self, checks: list): self.checks += checks
  def made(self, buf: Buffer) -> bool: return buf.serial > self.first

  def needed(self, wanted: set) -> list:
    """The launches a replay repeats: in-place writes of memory older than the call, and the launches computing the
    `wanted` buffers (ids), directly or through what they read. Work the call did for tensors made before it (values
    an in-place write made it realize) is not repeated."""
    out = []
    for prg, bufs, n_out, scalars in reversed(self.launches):
      if any(id(b) in wanted or not self.made(b) for b in bufs[:n_out]):
        out.append((prg, bufs, n_out, scalars))
        wanted.update(id(b) for b in bufs)
    return out[::-1]


class jit:
  """Decorator: capture the kernels a function launches and replay them on later calls (see the module docstring)."""

  def __new__(cls, fn=None, *args, **options):
    if fn is None: return lambda f: cls(f, *args, **options)   # @lazygrad.jit(graph=False)
    return super().__new__(cls)

  def __init__(self, fn=None, max_captures: int = 8, graph: bool | None = None):
    self.fn, self.max_captures, self.graph = fn, max_captures, graph
    self.name = getattr(fn, "__qualname__", None) or repr(fn)
    self._attr = getattr(fn, "__name__", None)   # where a jitted method keeps each object's own jit
    self._calls: collections.OrderedDict = collections.OrderedDict()   # signature -> None (ran once) or its replay
    functools.update_wrapper(self, fn)

  def __set_name__(self, owner, name): self._attr = name

  def __get__(self, obj, objtype=None):
    """The jit of the method bound to `obj`, made on first use and kept in obj's __dict__ (found there next time):
    its captures hold that object's tensors."""
    if obj is None: return self
    bound = jit(self.fn.__get__(obj, objtype), max_captures=self.max_captures, graph=self.graph)
    try: vars(obj)[self._attr] = bound
    except TypeError:
      raise JitError(f"jit {self.name}: {type(obj).__name__} objects have no __dict__ to keep each object's captures "
                     f"in. Fix: jit the bound method instead (self.{self._attr} = lazygrad.jit(self._step), with the "
                     "undecorated method as _step), or give the class a __dict__") from None
    return bound

  def __call__(self, *args, **kwargs):
    if engine.jit_running() is not None: return self.fn(*args, **kwargs)   # inside another jit's function: plain code
    realize(*(t for t in _assigned if not t._node.realized))
    flat = _Flat(self.name)
    structure = (tuple(flat.walk(a, f"args[{i}]") for i, a in enumerate(args)),
                 tuple((k, flat.walk(v, f"kwargs[{k!r}]")) for k, v in sorted(kwargs.items())))
    inputs, holders, desc = self._inputs(flat.tensors)
    key = (structure, desc, grad_mode.enabled, autocast_dtype())
    replay = self._calls.get(key)
    if replay is not None and not replay.replaced():
      self._calls.move_to_end(key)
      return replay(flat.tensors, inputs, holders)
    capture = _Capture() if key in self._calls else None   # seen before (or its state was replaced): capture now
    if observers:
      why = ("the state it read at the capture was replaced" if replay is not None else "the second call with this "
             "signature") if capture else self._new_signature(key)
      t0, launched = time.perf_counter(), counters.kernels + counters.copies
    before = IdWeakSet()
    for t in _roots: before.add(t)
    grads = [t.grad for t in flat.tensors]
    out = _Flat()
    with engine.jit_call(self.name, capture):
      template = out.walk(self.fn(*args, **kwargs))
      # the results, and the in-place updates the call left pending: replays must make them too
      realize(*out.tensors, *(t for t in _assigned if not t._node.realized))
    for i, (t, g) in enumerate(zip(flat.tensors, grads)):
      if t.grad is not g:
        raise JitError(f"jit {self.name}: sets .grad of tensor argument {i} (shape {t.shape}), and a replay cannot "
                       "give the next call's arguments a .grad. Fix: let the function read the tensors it "
                       "differentiates (model parameters) instead of taking them as arguments, or return their "
                       "gradients (gradient())")
    results = [("arg", flat.index(t)) if flat.index(t) is not None else ("same", t) if t in before else
               ("new", t.node.buffer, t.shape) for t in out.tensors]
    self._calls[key] = replay = _Replay(self.name, capture, before, inputs, template, results, self.graph) \
      if capture else None
    if replay is not None and settings.DEBUG >= 1:
      print(f"jit {self.name}: captured {len(replay.launches)} kernels" +
            "".join(f"; {d} memory: {p.text()}" for d, p in replay.memory))
    if observers: tell("jit", self.name, "capture" if capture else "run", why,
                       counters.kernels + counters.copies - launched, time.perf_counter() - t0)
    self._calls.move_to_end(key)
    while len(self._calls) > self.max_captures: self._calls.popitem(last=False)
    return _build(template, [_on(r[1], r[2]) if r[0] == "new" else t for t, r in zip(out.tensors, results)])

  def _new_signature(self, key: tuple) -> str:
    """Why a call runs as plain code: its signature's first difference from the last call's."""
    if not self._calls: return "the first call"
    last = next(reversed(self._calls))
    if key[2:] != last[2:]: return "a new signature: no_grad or autocast changed"
    if key[0] != last[0] or len(key[1]) != len(last[1]):
      return "a new signature: the argument structure or a non-tensor value changed"
    fields = ("memory sharing", "shape", "dtype", "view", "device", "requires_grad")
    for i, (a, b) in enumerate(zip(last[1], key[1])):
      for name, x, y in zip(fields, a, b):
        if x != y: return f"a new signature: tensor argument {i}'s {name} changed from {x} to {y}"
    return "a new signature"

  def _inputs(self, tensors: list[Tensor]) -> tuple[list[Buffer], list[list[Tensor]], tuple]:
    """The memory of the tensor arguments (realized; distinct buffers), the argument tensors holding each (views
    hold their base's), and the tensors' part of the signature."""
    roots = {}
    for i, t in enumerate(tensors):
      if t.requires_grad and not t.is_leaf:
        raise JitError(f"jit {self.name}: tensor argument {i} (shape {t.shape}) was computed from tensors that require "
                       "grad, and replays cannot extend its autograd history. Fix: pass it .detach()ed, or compute it "
                       "inside the function")
      root = t._base if t._base is not None else t
      roots[id(root)] = root
    realize(*roots.values())
    bufs, holders, at, desc = [], [], {}, []
    for t in tensors:
      root = t._base if t._base is not None else t
      b = root._node.buffer
      if id(b) not in at:
        at[id(b)] = len(bufs)
        bufs.append(b); holders.append([])
      if not any(h is root for h in holders[at[id(b)]]): holders[at[id(b)]].append(root)
      desc.append((at[id(b)], root.shape, root.dtype, t._path, t.device, t.requires_grad))
    return bufs, holders, tuple(desc)


def _copy_of(buf: Buffer) -> Buffer:
  b = Buffer(buf.device, buf.dtype, buf.size)
  engine.copy_buffer([b, buf])
  return b


def _on(buf: Buffer, shape: tuple) -> Tensor:
  """A new tensor holding `buf` (a result: no autograd history)."""
  return Tensor(LazyNode.from_buffer(buf, shape))


def _share_memory(made: list[Buffer], launches: list) -> list:
  """Give the captured step's intermediates (`made` by the call, held by no one after it) memory by their lifetimes
  over all its launches, across the schedules it ran (runtime.memory): one arena per device. A buffer some launch
  reads before any writes it keeps its memory (its value comes from before the replay). Returns the plans."""
  span: dict[int, list] = {}   # id(buffer) -> [first launch, last launch, whether the first writes it]
  for i, (_, bufs, n_out, _) in enumerate(launches):
    for j, b in enumerate(bufs):
      if id(b) in span: span[id(b)][1] = i
      else: span[id(b)] = [i, i, j < n_out]
  per_device: dict = {}
  for b in made:
    if span.get(id(b), (0, 0, False))[2]: per_device.setdefault(b.device, []).append(b)
  plans = []
  for dev, bufs in per_device.items():
    with timed("plan memory"):
      p = memory.plan([memory.Lifetime(span[id(b)][0], span[id(b)][1], b.nbytes) for b in bufs])
    if settings.VERIFY: p.verify()
    for b in bufs: b.data = None   # the schedules' arenas go before the step's comes: the peak is one of them
    arena = dev.alloc(uint8, p.size)
    for b, offset in zip(bufs, p.offsets): b.data, b.planned = dev.view(arena, offset, b.dtype, b.size), True
    plans.append((dev.name, p))
  return plans


class _Replay:
  """A captured call. Its launches address a table of buffers: the call's inputs, then fixed buffers (state, and
  intermediates nothing else can reach), then buffers made anew for each replay (those reachable after the call:
  results, tensors the function kept). Before the launches, host data is copied in: random numbers drawn anew, and
  constants into buffers a replay writes or makes anew."""

  def __init__(self, name: str, cap: _Capture, before: IdWeakSet, inputs: list[Buffer], template, results: list,
               graph: bool | None):
    self.name, self.template = name, template
    live = list(_roots)
    reach = {id(n.buffer) for n in toposort([t._node for t in live]) if n.realized}   # memory that outlives the call
    kept = [t for t in live if t not in before and t._node.realized]   # tensors the function made and kept
    new = [r[1] for r in results if r[0] == "new"]
    launches = cap.needed({id(b) for b in new} | {id(t._node.buffer) for t in kept} | {id(c[0]) for c in cap.checks})
    needed = {id(b) for _, bufs, _, _ in launches for b in bufs}
    for _, bufs, _, _ in cap.launches:   # intermediates of work replays skip: nothing reads them, free their memory
      for b in bufs:
        if b.planned and cap.made(b) and id(b) not in needed: b.data = None
    is_input = {id(b) for b in inputs}
    for _, bufs, n_out, _ in launches:
      if any(not cap.made(b) and id(b) not in is_input and id(b) not in reach for b in bufs[n_out:]):
        raise JitError(f"jit {name}: the captured kernels read a tensor that the call dropped (such as an old .grad "
                       "that backward() added to), so replays would read the value it had at the capture. Fix: "
                       "start from a new value inside the function (optimizer.zero_grad() before backward()), or "
                       "update such tensors in place (assign)")
    written = {id(b) for _, bufs, n_out, _ in launches for b in bufs[:n_out]}
    uploads = [(b, src) for b, src in cap.uploads.values() if callable(src) or id(b) in written or id(b) in reach]
    used = {id(b): b for _, bufs, _, _ in launches for b in bufs} | {id(b): b for b, _ in uploads} | \
           {id(b): b for b in new} | {id(t._node.buffer): t._node.buffer for t in kept}
    # made anew each replay: what outlives the call, and check flags (a GPU reads them later, after other replays)
    outlive = reach | {id(c[0]) for c in cap.checks}
    anew = [b for b in used.values() if id(b) not in is_input and cap.made(b) and id(b) in outlive]
    self.fixed = [b for b in used.values() if id(b) not in is_input and not (cap.made(b) and id(b) in outlive)]
    returned = {id(b) for b in new}   # the capture's own results: already handed back, they keep their memory
    self.memory = _share_memory([b for b in self.fixed if cap.made(b) and id(b) not in cap.uploads and
                                 id(b) not in returned], launches)
    self.fixed_ids = {id(b) for b in self.fixed}
    self.anew = [(b.device, b.dtype, b.size) for b in anew]
    slot = {id(b): i for i, b in enumerate(inputs + self.fixed + anew)}
    self.launches = [(prg, [slot[id(b)] for b in bufs], scalars) for prg, bufs, _, scalars in launches]
    self.copies = sum(prg is engine.copy_buffer for prg, _, _, _ in launches)
    self.checks = [(slot[id(b)], what, loc) for b, what, loc in cap.checks]
    self.uploads = [(slot[id(b)], src) for b, src in uploads]
    self.results = [(r[0], slot[id(r[1])], r[2]) if r[0] == "new" else r for r in results]
    # state: memory older than the call, with the live tensors holding it now
    self.state = [(b, [weakref.ref(t) for t in live if t._node.realized and t._node.buffer is b])
                  for b in self.fixed if not cap.made(b)]
    # in-place writes: of an input (held by the arguments), of state (held by its tensors)
    self.writes_in = [i for i, b in enumerate(inputs) if id(b) in written]
    self.writes = [(b, refs) for b, refs in self.state if id(b) in written]
    self.state_written = {id(b) for b, _ in self.writes}
    # tensors the function made and kept on an input or on memory made anew: given each replay's
    fixed = range(len(inputs), len(inputs) + len(self.fixed))
    self.rebinds = [[weakref.ref(t), slot[id(t._node.buffer)], weakref.ref(t._node)] for t in kept
                    if slot[id(t._node.buffer)] not in fixed]
    # static replays: the launches always address the same memory (a CUDA graph bakes its addresses in); arguments
    # are copied in (and, if written, back out), results and kept tensors live in memory the replay keeps
    devices = {b.device for _, bufs, _, _ in launches for b in bufs} | {b.device for b in inputs}
    self.device = next(iter(devices)) if len(devices) == 1 else None
    capturable = self.device is not None and self.device.can_capture and not self.copies and \
      any(getattr(prg, "graphable", True) for prg, _, _, _ in launches)
    if graph is None and settings.JIT_GRAPH >= 0: graph = bool(settings.JIT_GRAPH)
    self.static = graph is True or (graph is None and capturable)
    if self.static:
      self.static_in = [Buffer(b.device, b.dtype, b.size) for b in inputs]
      self.static_new = [Buffer(*spec) for spec in self.anew]
      self.run_static = None   # the CUDA graph (or the launch loop), made at the first replay
      self.capturable = capturable

  def _static_program(self, table: list[Buffer]):
    """The function that runs the launches on `table`: CUDA graphs of them where the device can capture one, else
    the launches themselves, from Python. A launch that cannot be graphed (a collective) runs from Python between
    the graphs of the runs of launches before and after it."""
    for b in table: b.ensure()
    parts = []
    for graphable, run in itertools.groupby(self.launches, key=lambda launch: getattr(launch[0], "graphable", True)):
      def launch(run=list(run)):
        for prg, slots, scalars in run: prg([table[i] for i in slots], scalars)
      parts.append((self.device.capture(launch) if self.capturable and graphable else None) or launch)
    def replay():
      for part in parts: part()
    return parts[0] if len(parts) == 1 else replay

  def replaced(self) -> bool:
    """Whether the tensors holding some state at the capture all hold other memory now (loaded, moved, or dropped
    for a new tensor): the function would read that instead of what the kernels read."""
    return any(refs and not any((t := r()) is not None and t._node.buffer is b for r in refs) for b, refs in self.state)

  def __call__(self, tensors: list[Tensor], inputs: list[Buffer], holders: list[list[Tensor]]):
    t0 = time.perf_counter()
    for i, b in enumerate(inputs):   # the kernels were captured with separate memory for the two
      if id(b) in (self.fixed_ids if i in self.writes_in else self.state_written):
        raise JitError(f"jit {self.name}: a tensor argument shares memory with a tensor the captured kernels read as "
                       "state (not as an argument), and one of them is updated in place. Fix: pass a copy (.clone())")
    if self.static:   # the launches read copies of the arguments; what the user sees are the arguments themselves
      for mine, given in zip(self.static_in, inputs): engine.copy_buffer([mine, given])
      table, visible = self.static_in + self.fixed + self.static_new, inputs + self.fixed + self.static_new
    else: table = visible = inputs + self.fixed + [Buffer(*spec) for spec in self.anew]
    for slot, source in self.uploads:
      b = table[slot]
      b.write(np.asarray(source() if callable(source) else source, b.dtype.np))
    written = [(b, [t for r in refs if (t := r()) is not None and t._node.realized and t._node.buffer is b])
               for b, refs in self.writes] + [(inputs[i], holders[i]) for i in self.writes_in]
    # kept tensors still holding what a replay gave them (not gone, not given another value since) get this one's
    following = [(r, t) for r in self.rebinds if (t := r[0]()) is not None and t._node is r[2]()]
    if self.static:   # results and kept tensors of earlier replays are in this memory: kept ones follow, others copy
      written += [(b, [t for _, t in following if t._node.buffer is b]) for b in self.static_new]
    def launch():
      if not self.static:
        for prg, slots, scalars in self.launches: prg([table[i] for i in slots], scalars)
        return
      if self.run_static is None: self.run_static = self._static_program(table)
      self.run_static()
      for i in self.writes_in: engine.copy_buffer([inputs[i], self.static_in[i]])
    overwrite(written, launch)
    counters.kernels += len(self.launches) - self.copies
    counters.copies += self.copies
    if self.checks:   # the flags of this replay's checks, read as realize reads them (a static flag: a copy of it)
      flags = [(table[i], what, loc) for i, what, loc in self.checks]
      if self.static: flags = [(_copy_of(b), what, loc) for b, what, loc in flags]
      engine.note_checks(flags)
    loc = user_frame()
    for r, t in following:
      _hold(t, visible[r[1]], loc)
      r[2] = weakref.ref(t._node)
    values = [tensors[r[1]] if r[0] == "arg" else r[1] if r[0] == "same" else _on(visible[r[1]], r[2])
              for r in self.results]
    if settings.DEBUG >= 1:
      how = " (CUDA graph)" if self.static and self.capturable else " (static)" if self.static else ""
      print(f"jit {self.name}: replayed {len(self.launches)} kernels{how} in "
            f"{(time.perf_counter() - t0) * 1e3:.3f} ms")
    if observers: tell("jit", self.name, "replay", "a call with the captured signature", len(self.launches),
                       time.perf_counter() - t0)
    return _build(self.template, values)
