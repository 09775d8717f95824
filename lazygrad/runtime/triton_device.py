"""Triton devices: buffers are flat torch tensors; kernels are rendered to Triton source, written to a file (Triton
compiles from source files) and launched.

- `triton`: CUDA GPU.
- `triton-interp`: the same source under Triton's CPU interpreter (TRITON_INTERPRET=1) on torch CPU tensors; this
  is how the renderer is tested on machines without a GPU.

Rendered sources live in a disk cache keyed by the kernel AST and lowering options, so a second process running
the same program neither lowers nor renders again; Triton keeps its own disk cache of compiled binaries."""
from __future__ import annotations
import hashlib, importlib.util, os, sys
from pathlib import Path
import numpy as np
from ..dtypes import DType
from ..helpers import counters
from ..codegen.linearize import LoweringOptions, linearize
from ..codegen.schedule import ScheduleOptions
from ..codegen.triton import render

CACHE_DIR = Path(os.environ.get("LAZYGRAD_CACHE", Path.home() / ".cache" / "lazygrad")) / "triton"
# the disk cache is keyed by the code that writes kernels too: a changed compiler never reuses stale sources
_CODEGEN = Path(__file__).parents[1] / "codegen"
CODE_VERSION = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(_CODEGEN.glob("*.py")))).hexdigest()[:16]


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
  torch = _torch()
  return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64,
          "int32": torch.int32, "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool}[dt.name]


class TritonKernel:
  """A compiled kernel and its launch grid."""
  def __init__(self, fn, grid: int, num_warps: int, num_stages: int, source: str, kernel, lowering: LoweringOptions):
    self.fn, self.grid, self.num_warps, self.source, self.kernel = fn, grid, num_warps, source, kernel
    self.num_stages = num_stages
    self.lowering = lowering

  @property
  def prog(self):
    """The uops (for DEBUG=4); lowered again on demand, since a disk-cache hit skips lowering."""
    return linearize(self.kernel, self.lowering)

  def __call__(self, bufs):
    args = [b.ensure().data for b in bufs]
    try:
      with np.errstate(all="ignore"):   # the interpreter computes masked-off lanes too (x/0 there is harmless)
        self.fn[(self.grid,)](*args, num_warps=self.num_warps, num_stages=self.num_stages)
    except Exception as e:   # a compile error in generated code: report the kernel, not a bare Triton traceback
      raise CompileError(f"Triton failed on kernel {self.kernel.name}: {type(e).__name__}: {e}\n"
                         f"--- source ---\n{_numbered(self.source)}\n--- kernel AST ---\n{self.kernel.text}") from None


def _numbered(src: str) -> str:
  return "\n".join(f"{i + 1:4d} | {line}" for i, line in enumerate(src.splitlines()))


class TritonDevice:
  """Compiles and launches rendered Triton kernels on CUDA, or on the CPU under Triton's interpreter."""

  def __init__(self, interpret: bool):
    self.interpret = interpret
    self.name = "triton-interp" if interpret else "triton"
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
    # whole-row reductions that broadcast back must fit one tile; bigger rows take the looped path
    self.schedule_options = ScheduleOptions(max_fused_row=8192 if not interpret else 4096)
    self.lowering = LoweringOptions(whole=False, max_tile=4096 if not interpret else 1024,
                                    max_reduce_block=1024 if not interpret else 256, dot_float64=False)
    self.fp32_precision = os.environ.get("LAZYGRAD_FP32_PRECISION", "tf32" if not interpret else "ieee")

  # buffers
  def alloc(self, dtype: DType, size: int):
    return _torch().empty(size, dtype=_torch_dtype(dtype), device=self.torch_device)

  def from_numpy(self, arr: np.ndarray):
    torch = _torch()
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.dtype.name == "bfloat16":   # torch cannot take ml_dtypes arrays: move the bits
      return torch.from_numpy(flat.view(np.int16).copy()).view(torch.bfloat16).to(self.torch_device)
    return torch.from_numpy(flat.copy()).to(self.torch_device)

  def to_numpy(self, buf) -> np.ndarray:
    t = buf.data.detach().to("cpu")
    if buf.dtype.name == "bfloat16": return t.view(_torch().int16).numpy().view(buf.dtype.np)
    return t.numpy()

  def synchronize(self):
    if not self.interpret: _torch().cuda.synchronize()

  # kernels
  def compile(self, kernel) -> TritonKernel:
    key = hashlib.sha256(f"{CODE_VERSION}\n{self.name}\n{self.lowering}\n{self.fp32_precision}\n{kernel.text}"
                         .encode()).hexdigest()[:24]
    path = CACHE_DIR / f"{kernel.name}_{key}.py"
    if not path.exists():
      counters.lowerings += 1
      source = render(linearize(kernel, self.lowering), self.fp32_precision, self.interpret)
      path.parent.mkdir(parents=True, exist_ok=True)
      tmp = path.with_suffix(f".{os.getpid()}.tmp")
      tmp.write_text(source)
      os.replace(tmp, path)   # atomic: a concurrent process never reads half a file
    source = path.read_text()
    mod = self._import(path)
    return TritonKernel(getattr(mod, kernel.name), mod.GRID, mod.NUM_WARPS, mod.NUM_STAGES, source, kernel, self.lowering)

  @staticmethod
  def _import(path: Path):
    spec = importlib.util.spec_from_file_location(f"lazygrad_kernels.{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[spec.name] = mod
    return mod
