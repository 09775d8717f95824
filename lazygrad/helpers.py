"""Small shared utilities at the bottom of the package: the exceptions users meet, settings from the environment,
counters, caches, the user's source line."""
from __future__ import annotations
import collections, contextlib, functools, math, os, sys, threading, time, weakref

# ---------------------------------------------------------------- the exceptions a user can meet (lazygrad.errors)
class ShapeError(ValueError):
  """A shape that an op cannot take; the message names the op, the shapes, the dimension and the fix."""


class IndexOutOfBounds(IndexError, RuntimeError):
  """An integer index (tensor indexing, gather, embedding, one_hot, a cross-entropy target) outside its dimension.
  Index values live on the device: the numpy device raises when the schedule runs, the GPU at the next read of a
  value on the host (like CUDA's asynchronous errors, but naming the index, the size and the user's line)."""


class DivisionByZero(ZeroDivisionError, RuntimeError):
  """Integer division or remainder by zero (PyTorch raises too); raised like IndexOutOfBounds."""


class InvalidValue(ValueError, RuntimeError):
  """A value an op cannot take, found when realized (a negative probability); raised like IndexOutOfBounds."""


class StaleValueError(RuntimeError):
  """A graph reads a value that an in-place update overwrote after the graph was built (PyTorch's 'modified by an
  inplace operation'); the message names where the value was made and where it was overwritten."""


class InvalidIR(RuntimeError):
  """An IR that breaks its stage's contract (raised by the verify() checks, on in the tests): a bug in lazygrad."""


class OutOfDeviceMemory(MemoryError, RuntimeError):
  """A device could not allocate memory; the message names what was being allocated, the schedule's planned peak,
  its largest buffers with the user lines that make them, and the device's free and total memory."""


class JitError(RuntimeError):
  """A function given to lazygrad.jit does something a replay of its kernels could not reproduce; the message names
  the function, what it did and the fix."""


_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def prod(xs) -> int:
  return math.prod(xs)


def exact(arg):
  """`arg` as a key that also tells apart what == does not: a float's sign (-0.0 from 0.0, so x * -0.0 is not
  hash-consed into x * 0.0)."""
  return (arg, math.copysign(1.0, arg)) if isinstance(arg, float) else arg


def getenv(key: str, default=0):
  return type(default)(os.environ.get(key, default))


class _Settings(threading.local):
  """Debug knobs: read from the environment once, overridable with `Context`."""
  def __init__(self):
    self.DEBUG = getenv("DEBUG", 0)
    self.CHECK = getenv("LAZYGRAD_CHECK", 0)
    self.VERIFY = getenv("LAZYGRAD_VERIFY", 0)   # check each IR's contract at every stage boundary (tests turn it on)
    self.PLAN = getenv("LAZYGRAD_PLAN", 1)       # share memory between a schedule's intermediates (runtime.memory)
    self.AUTOTUNE = getenv("LAZYGRAD_AUTOTUNE", 1)   # time a contraction's tilings at its first launch (runtime.autotune)
    self.JIT_GRAPH = getenv("LAZYGRAD_JIT_GRAPH", -1)   # jit replays: -1 a CUDA graph where possible, 0 never, 1 static


settings = _Settings()

_PRECISIONS = {"highest": "highest", "ieee": "highest", "high": "high", "tf32": "high", "medium": "medium"}


def _precision(name: str) -> str:
  if str(name).lower() not in _PRECISIONS:
    raise ValueError(f"float32 matmul precision must be 'highest', 'high' or 'medium', got {name!r}")
  return _PRECISIONS[str(name).lower()]


_fp32_precision = _precision(os.environ.get("LAZYGRAD_FP32_PRECISION", "highest"))


def set_float32_matmul_precision(precision: str):
  """As torch.set_float32_matmul_precision: 'highest' (the default) multiplies float32 exactly, 'high' and
  'medium' allow tf32 tensor cores on the GPU (10-bit mantissa inputs, float32 accumulation). Process-wide; also
  LAZYGRAD_FP32_PRECISION in the environment."""
  global _fp32_precision
  _fp32_precision = _precision(precision)


def get_float32_matmul_precision() -> str: return _fp32_precision


@contextlib.contextmanager
def Context(**kwargs):
  """Temporarily change settings: `with Context(DEBUG=3): y.realize()`."""
  if unknown := [k for k in kwargs if not hasattr(settings, k)]:
    raise AttributeError(f"Context: unknown setting {unknown[0]!r}; known: {', '.join(vars(settings))}")
  old = {k: getattr(settings, k) for k in kwargs}
  for k, v in kwargs.items(): setattr(settings, k, v)
  try: yield
  finally:
    for k, v in old.items(): setattr(settings, k, v)


class Counters:
  """Public counters. `kernels`: kernels executed; `copies`: copies between devices; `schedules`: graphs scheduled
  (cache misses); `lowerings`: kernel ASTs lowered to uops (cache misses); `seconds`: time spent per compiler stage
  (`timed`): 'schedule', 'plan memory', 'lower', 'render', 'load' (a rendered source imported), 'triton compile'."""
  def __init__(self): self.reset()
  def reset(self):
    self.kernels = self.copies = self.schedules = self.lowerings = 0
    self.seconds: dict[str, float] = collections.defaultdict(float)
  def __repr__(self):
    return (f"Counters(kernels={self.kernels}, copies={self.copies}, schedules={self.schedules}, "
            f"lowerings={self.lowerings})")


counters = Counters()


@contextlib.contextmanager
def timed(stage: str):
  """Add the body's wall time to `counters.seconds[stage]`."""
  t0 = time.perf_counter()
  try: yield
  finally: counters.seconds[stage] += time.perf_counter() - t0


# Objects told what the compiler does as it happens (lazygrad.debug's dump and report): `tell(event, ...)` calls
# each one's method of that name, if it has one. The events: graph(targets), schedule(items, order),
# kernel(item, bufs, scalars), compiled(item, program), ran(item, seconds), cache(kind, name, hit, reason, key),
# jit(name, action, reason, launches, seconds). An observer with a `ran` method gets per-kernel times, which
# synchronizes the device after every kernel.
observers: list = []


def tell(event: str, *args):
  for o in observers:
    if (method := getattr(o, event, None)) is not None: method(*args)


_TENSOR_DIR = os.path.join(_PKG_DIR, "tensor")


WRAPPER_CODES: set = set()   # code of wrappers that are not the api a user called (lazygrad.amp's)


def user_frame():
  """(filename, lineno, api) of the innermost stack frame outside the lazygrad package; `api` names the lazygrad
  function that frame called (`Tensor.add` for `x + y`, `AdamW.schedule_step`), or '' if none."""
  f, inner, below = sys._getframe(1), None, None   # the outermost lazygrad code, and the one it called
  while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
    if f.f_code not in WRAPPER_CODES: inner, below = f.f_code, inner
    f = f.f_back
  if f is None: return ("?", 0, "")
  if inner is None: return (f.f_code.co_filename, f.f_lineno, "")
  code = below if inner.co_qualname == "Module.__call__" and below is not None else inner   # LayerNorm.forward
  # the Tensor class is assembled from mixins: its methods are Tensor's, whichever defines them
  api = "Tensor." + code.co_name if code.co_filename.startswith(_TENSOR_DIR) else code.co_qualname
  return (f.f_code.co_filename, f.f_lineno, api)


def fmt_loc(loc) -> str:
  return f"{os.path.basename(loc[0])}:{loc[1]}" if loc else "?"


def fmt_origin(loc) -> str:
  """`file:line (api)`: where a node was made, and through which lazygrad function."""
  return fmt_loc(loc) + (f" ({loc[2]})" if loc and len(loc) > 2 and loc[2] else "")


@functools.lru_cache(None)
def strides_for(shape: tuple) -> tuple:
  """Contiguous (row-major) strides; size-1 dims get stride 0 so views compare canonically."""
  strides, acc = [], 1
  for s in reversed(shape):
    strides.append(acc if s != 1 else 0)
    acc *= s
  return tuple(reversed(strides))


class LRU(collections.OrderedDict):
  """A dict that keeps its `size` most recently used entries (the compiler's caches: bounded memory in long runs)."""
  def __init__(self, size: int):
    super().__init__()
    self.size = size

  def get(self, key, default=None):
    if key not in self: return default
    self.move_to_end(key)
    return self[key]

  def __setitem__(self, key, value):
    super().__setitem__(key, value)
    self.move_to_end(key)
    if len(self) > self.size: self.popitem(last=False)


class IdWeakSet:
  """A set of objects held weakly and compared by identity (weakref.WeakSet compares with ==, which Tensor
  overloads elementwise)."""
  def __init__(self): self._refs: dict[int, weakref.KeyedRef] = {}
  def _gone(self, ref):
    if self._refs.get(ref.key) is ref: del self._refs[ref.key]
  def add(self, obj): self._refs[id(obj)] = weakref.KeyedRef(obj, self._gone, id(obj))
  def discard(self, obj):
    if (r := self._refs.get(id(obj))) is not None and r() is obj: del self._refs[id(obj)]
  def __contains__(self, obj): return (r := self._refs.get(id(obj))) is not None and r() is obj
  def __iter__(self): return iter([o for r in list(self._refs.values()) if (o := r()) is not None])
  def __len__(self): return len(self._refs)
