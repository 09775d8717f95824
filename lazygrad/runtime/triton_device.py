"""Triton devices: buffers are flat torch tensors; kernels are rendered to Triton source, written to a file (Triton
compiles from source files) and launched.

- `triton`: CUDA GPU.
- `triton-interp`: the same source under Triton's CPU interpreter (TRITON_INTERPRET=1) on torch CPU tensors; this
  is how the renderer is tested on machines without a GPU.

Rendered sources live in a disk cache keyed by the kernel AST and lowering options, so a second process running
the same program neither lowers nor renders again; Triton keeps its own disk cache of compiled binaries. Each file
ends with a checksum of its source: a file cut short or altered is rendered again rather than imported."""
from __future__ import annotations
import contextlib, functools, hashlib, importlib.util, json, os, subprocess, sys, tempfile, threading, time, warnings
from pathlib import Path
import numpy as np
from ..dtypes import DType, to_dtype
from ..helpers import counters, settings, timed, observers, tell, OutOfDeviceMemory
from ..codegen.kernel import ALIGNED_BYTES
from ..codegen.linearize import LoweringOptions, Tiling, linearize
from ..codegen.renderer import get_renderer
from ..codegen import triton as _triton_renderer   # noqa: F401  registers the Triton renderers
from . import disk_cache

CACHE_DIR = disk_cache.ROOT / "triton"
# the disk cache is keyed by the code that writes kernels too: a changed compiler never reuses stale sources
CODE_VERSION = disk_cache.version("codegen")

# Triton's interpreter keeps the program id in one global builder and patches triton.language while a kernel runs,
# so two interpreted launches at once read each other's program ids or find the language unpatched ("Did you forget
# to add @triton.jit"): they take turns. Launches on the GPU need no lock.
_INTERPRETER_LOCK = threading.Lock()


class DeviceUnavailable(RuntimeError):
  """The device cannot run here (no GPU, Triton or torch missing); the numpy device keeps working."""


class CompileError(RuntimeError):
  """Triton could not compile a generated kernel; the message holds the kernel, its source and the failing line."""


def _torch():
  try:
    import torch
    return torch
  except ImportError as e:
    raise DeviceUnavailable("the triton devices need torch: pip install 'lazygrad[triton]'") from e


def _torch_dtype(dt: DType):
  return getattr(_torch(), dt.name)   # lazygrad's dtype names are torch's


def _host_tensor(arr: np.ndarray, copy: bool = True):
  """A flat CPU torch tensor with arr's values: a copy, or (copy=False, for a caller that copies it on) arr's own
  memory where it is writable."""
  torch = _torch()
  flat = np.ascontiguousarray(arr).reshape(-1)
  if flat.dtype.name == "bfloat16": flat = flat.view(np.int16)   # torch cannot take ml_dtypes arrays: move the bits
  t = torch.from_numpy(flat.copy() if copy or not flat.flags.writeable else flat)
  return t.view(torch.bfloat16) if arr.dtype.name == "bfloat16" else t


class TritonKernel:
  """A compiled kernel and its launch grid."""
  def __init__(self, fn, grid: int, source: str, kernel, lowering: LoweringOptions, tiling: Tiling, precision: str,
               interpret: bool, path: Path, rendered: bool):
    self.fn, self.grid, self.source, self.kernel, self.path = fn, grid, source, kernel, path
    self.rendered = rendered   # rendered by this process (a disk-cache miss): Triton has most likely never seen it
    self.lowering, self.tiling, self.precision = lowering, tiling, precision
    self.launch_lock = _INTERPRETER_LOCK if interpret else contextlib.nullcontext()
    self.compiled = interpret   # on a GPU, Triton compiles the source at its first launch
    self.scratch = "tl.make_tensor_descriptor" in source   # a descriptor made on the device lives in scratch memory

  @property
  def prog(self):
    """The uops (for DEBUG=4); lowered again on demand, since a disk-cache hit skips lowering."""
    return linearize(self.kernel, self.lowering, self.tiling)

  def __call__(self, bufs, scalars=()):
    args = [b.ensure().data for b in bufs]
    if self.scratch: _scratch_allocator(args[0].device)
    for i in self.kernel.scattered: args[i].zero_()   # scatter-adds accumulate from zero (a memset in a CUDA graph)
    try:
      # the interpreter computes masked-off lanes too (x/0 there is harmless)
      with self.launch_lock, np.errstate(all="ignore"), \
           (contextlib.nullcontext() if self.compiled else timed("triton compile")):
        self.fn[(self.grid,)](*args, *map(float, scalars), num_warps=self.tiling.num_warps,
                              num_stages=self.tiling.num_stages)
      self.compiled = True
    except Exception as e:   # a compile error in generated code: report the kernel, not a bare Triton traceback
      raise _compile_error(self.kernel, self.source, e) from None


def _scratch_allocator(device):
  """Give Triton an allocator for the scratch memory of tensor descriptors made on the device (torch's: in a CUDA
  graph capture, from the graph's pool), unless this thread has one already (the caller's own)."""
  import triton
  from triton.runtime import _allocation
  if isinstance(_allocation._allocator.get(), _allocation.NullAllocator):
    triton.set_allocator(lambda size, align, stream: _torch().empty(size, dtype=_torch().int8, device=device))


def _gib(nbytes: int) -> str: return f"{nbytes / 2**30:.2f} GiB"


def _compile_error(kernel, source: str, e: Exception) -> CompileError:
  numbered = "\n".join(f"{i + 1:4d} | {line}" for i, line in enumerate(source.splitlines()))
  return CompileError(f"Triton failed on kernel {kernel.name}: {type(e).__name__}: {e}\n"
                      f"--- source ---\n{numbered}\n--- kernel AST ---\n{kernel.text}")


class TritonDevice:
  """Compiles and launches rendered Triton kernels on CUDA, or on the CPU under Triton's interpreter."""

  def __init__(self, interpret: bool):
    self.interpret = interpret
    self.name = "triton-interp" if interpret else "triton"
    self.renderer = get_renderer(self.name)
    torch = _torch()
    if importlib.util.find_spec("triton") is None:
      raise DeviceUnavailable("the triton devices need triton: pip install 'lazygrad[triton]'")
    if not interpret and not torch.cuda.is_available():
      raise DeviceUnavailable("device 'triton' needs a CUDA GPU and none is visible; use 'numpy' or 'triton-interp'")
    interpreting = os.environ.get("TRITON_INTERPRET") == "1"
    if interpret and not interpreting:
      # Triton decides at import time whether its own library functions run interpreted
      if "triton" in sys.modules:
        raise DeviceUnavailable("device 'triton-interp' needs TRITON_INTERPRET=1 before triton is imported; "
                                "set it in the environment")
      os.environ["TRITON_INTERPRET"] = "1"
    if not interpret and interpreting:
      raise DeviceUnavailable("TRITON_INTERPRET=1 is set, so Triton would run on the CPU: use device 'triton-interp', "
                              "or unset TRITON_INTERPRET for the GPU")
    import triton  # noqa: F401
    self.torch_device = "cpu" if interpret else "cuda"
    hopper = not interpret and torch.cuda.get_device_capability()[0] >= 9
    self.lowering = LoweringOptions(whole=False, max_tile=4096 if not interpret else 1024,
                                    max_reduce_block=1024 if not interpret else 256,
                                    max_whole_row=8192 if not interpret else 4096, dot_float64=False,
                                    float32_k_major=hopper, persistent_programs=torch.cuda.get_device_properties(
                                      torch.cuda.current_device()).multi_processor_count if hopper else None,
                                    epilogue_columns=128 if hopper else None, tensor_descriptors=hopper)

  # buffers
  def alloc(self, dtype: DType, size: int):
    torch = _torch()
    try: return torch.empty(size, dtype=_torch_dtype(dtype), device=self.torch_device)
    except torch.OutOfMemoryError:
      free, total = torch.cuda.mem_get_info() if not self.interpret else (0, 0)
      raise OutOfDeviceMemory(f"{self.name}: cannot allocate {_gib(size * dtype.itemsize)} ({dtype.name}[{size}]); "
                              f"free {_gib(free)} of {_gib(total)}, torch holds {_gib(torch.cuda.memory_reserved())}"
                              ) from None

  def view(self, arena, offset: int, dtype: DType, size: int):
    """`size` elements of `dtype` at byte `offset` of a uint8 arena (offsets are aligned for every dtype)."""
    return arena[offset:offset + size * dtype.itemsize].view(_torch_dtype(dtype))

  def from_numpy(self, arr: np.ndarray):
    return _host_tensor(arr, copy=self.interpret).to(self.torch_device)   # to a GPU copies anyway
  def from_torch(self, t, dtype: DType):
    """A torch tensor's memory, shared: copied only where it is on another device, not contiguous, or does not
    start 16-byte aligned (as every buffer a kernel is passed does: `kernel.rebased`)."""
    t = t.detach().to(self.torch_device).contiguous().view(-1)
    return t if t.data_ptr() % ALIGNED_BYTES == 0 else t.clone()
  def write(self, buf, arr: np.ndarray): buf.data.copy_(_host_tensor(arr, copy=False))
  def copy(self, dst, src): dst.copy_(src)

  def to_numpy(self, buf) -> np.ndarray:
    t = buf.data.detach().to("cpu")
    if buf.dtype.name == "bfloat16": return t.view(_torch().int16).numpy().view(buf.dtype.np)
    return t.numpy()

  def synchronize(self):
    if not self.interpret: _torch().cuda.synchronize()

  @property
  def can_capture(self) -> bool: return not self.interpret

  @property
  def can_precompile(self) -> bool: return not self.interpret
  @property
  def can_time(self) -> bool: return not self.interpret   # the interpreter's times say nothing of a GPU's

  @functools.cached_property
  def model(self) -> str:
    """The GPU's name (part of a tuned choice's key), or 'interpreter'."""
    return "interpreter" if self.interpret else _torch().cuda.get_device_name()

  def time(self, fn, reps: int) -> float:
    """Milliseconds per run of `fn()`: `reps` runs back to back between two CUDA events, after one untimed run. Not
    one run between its own events: the GPU then idles while the host launches it (tens of microseconds, as long as
    a small matmul), and that wait is timed with the kernel."""
    torch = _torch()
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps): fn()
    end.record(); end.synchronize()
    return start.elapsed_time(end) / reps

  def capture(self, launch):
    """A CUDA graph of the kernels `launch()` enqueues (capturing runs none of them), as the function that replays
    it; None if the capture fails (with a warning), so the caller launches them itself."""
    torch = _torch()
    graph = torch.cuda.CUDAGraph()
    try:
      with torch.cuda.graph(graph): launch()
    except Exception as e:   # e.g. a kernel compiled anew while capturing: replay without a graph
      warnings.warn(f"lazygrad: could not capture a CUDA graph ({type(e).__name__}: {e}); replaying the launches "
                    "from Python", RuntimeWarning, stacklevel=2)
      return None
    return graph.replay

  # kernels
  def compile(self, kernel, tiling: Tiling, precision: str) -> TritonKernel:
    """`kernel` lowered with `tiling` and rendered with float32 contractions in `precision` ('ieee' or 'tf32')."""
    key = hashlib.sha256(f"{CODE_VERSION}\n{self.name}\n{self.lowering}\n{tiling}\n{precision}\n{kernel.text}"
                         .encode()).hexdigest()[:24]
    path, rendered = CACHE_DIR / f"{kernel.name}_{key}.py", False
    try:
      with timed("load"): source, mod = _load(path, kernel.name)
      if observers: tell("cache", "disk", kernel.name, True, f"source read from {path}", key)
    except Exception as e:   # missing, cut short, corrupted: render it again (the new file replaces a bad one)
      if observers:
        why = "no file" if isinstance(e, FileNotFoundError) else f"unusable file ({type(e).__name__}: {e})"
        tell("cache", "disk", kernel.name, False, f"{why} at {path}: lowered and rendered", key)
      counters.lowerings += 1
      rendered = True
      with timed("lower"): prog = linearize(kernel, self.lowering, tiling)
      with timed("render"): source = self.renderer.render(prog, precision)
      disk_cache.write(path, source.encode())   # atomic: a concurrent reader never sees half a file
      try:
        with timed("load"): _, mod = _load(path, kernel.name)
      except Exception as e: raise _compile_error(kernel, source, e) from None   # the renderer wrote bad Python
    return TritonKernel(getattr(mod, kernel.name), mod.GRID, source, kernel, self.lowering, tiling, precision,
                        self.interpret, path, rendered)

  def precompile(self, programs: list[TritonKernel]):
    """Compile the programs that were never launched, in parallel, each CPU core a worker process: Triton compiles
    a kernel at its first launch, one at a time, which is most of a cold start. The workers fill Triton's disk cache,
    from which the first launches here then load. They share one queue, the largest kernels first (a worker claims a
    kernel by creating a file named after it), so no worker is left with the slow ones. A worker that fails changes
    nothing: that kernel compiles here, at its first launch, and reports its error there. DEBUG=2 prints the
    slowest."""
    # each program once (kernels repeat in a schedule); a source from the disk cache is most likely a Triton cache hit
    todo = list({id(p): p for p in programs if not p.compiled and p.rendered}.values())
    if len(todo) < 8: return
    todo.sort(key=lambda p: -len(p.source) * (4 if "tl.dot" in p.source else 1))   # a rough cost: largest first
    jobs = [{"path": str(p.path), "name": p.kernel.name, "dtypes": [b.dtype.name for b in p.kernel.bufs],
             "scalars": len(p.kernel.scalars), "num_warps": p.tiling.num_warps, "num_stages": p.tiling.num_stages}
            for p in todo]
    # a worker per core, but each makes a CUDA context on the GPU (contexts are created one at a time): at most 16,
    # and the host's cores shared among the processes torchrun started on it
    cores = (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    workers = max(1, min(len(jobs) // 2, cores, 16))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    with timed("triton compile"), tempfile.TemporaryDirectory() as claims:
      request = json.dumps({"jobs": jobs, "claims": claims})
      procs = [subprocess.Popen([sys.executable, "-c", "import json, sys\nfrom lazygrad.runtime.triton_device import "
                                 "warm\nwarm(**json.load(sys.stdin))"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, text=True) for _ in range(workers)]
      for proc in procs:
        proc.stdin.write(request)
        proc.stdin.close()
      took = [line.split(" ", 1) for proc in procs for line in proc.stdout.read().splitlines()]
      for proc in procs: proc.wait()
    if settings.DEBUG >= 2:
      slowest = sorted(((float(t), name) for t, name in took), reverse=True)[:5]
      print(f"precompile: {len(took)} of {len(jobs)} kernels in {workers} worker processes; slowest: " +
            ", ".join(f"{name} {t:.1f} s" for t, name in slowest))


def warm(jobs: list[dict], claims: str):
  """In a worker process (TritonDevice.precompile): compile the jobs no other worker has claimed, each for its
  argument types, into Triton's disk cache, launching nothing; prints each one's seconds and name."""
  torch = _torch()
  for i, job in enumerate(jobs):
    try: os.close(os.open(os.path.join(claims, str(i)), os.O_CREAT | os.O_EXCL))
    except FileExistsError: continue   # another worker has it
    t0 = time.perf_counter()
    try:
      _, mod = _load(Path(job["path"]), job["name"])
      args = [torch.empty(1, dtype=_torch_dtype(to_dtype(d)), device="cuda") for d in job["dtypes"]]
      compiled = getattr(mod, job["name"]).warmup(*args, *[0.5] * job["scalars"], grid=(1,),
                                                  num_warps=job["num_warps"], num_stages=job["num_stages"])
      # loading it builds its launcher, a C extension per argument signature compiled once into Triton's cache: else
      # the first launch here would build it, one at a time (a second or so each)
      getattr(compiled, "_init_handles", lambda: None)()
      print(f"{time.perf_counter() - t0:.3f} {job['name']}", flush=True)
    except Exception: pass   # compiled at its first launch instead, which reports the error


def _load(path: Path, name: str):
  """(source, module) of a cache file; raises if it is missing, does not end with its source's checksum, or does
  not define the kernel and its launch parameters."""
  source = disk_cache.read(path).decode()
  spec = importlib.util.spec_from_file_location(f"lazygrad_kernels.{path.stem}", path)
  mod = importlib.util.module_from_spec(spec)
  exec(compile(source, str(path), "exec"), mod.__dict__)   # the text just checked (and no .pyc of it left behind)
  for attr in (name, "GRID", "NUM_WARPS", "NUM_STAGES"): getattr(mod, attr)
  sys.modules[spec.name] = mod
  return source, mod
