"""lazygrad: a lazy graph compiler for deep learning. Tensor code records a graph; realizing it schedules kernels,
lowers them to block-level uops and runs them (numpy interpreter on the CPU, Triton on a GPU)."""
import os as _os
from .tensor import Tensor, ShapeError, manual_seed, realize, where, searchsorted, bucketize
from .dtypes import DType, bool_, uint8, uint16, uint32, uint64, int8, int16, int32, int64, float16, bfloat16, \
  float32, float64
from .helpers import Context, counters, settings, set_float32_matmul_precision, get_float32_matmul_precision
from .autograd import no_grad
from .amp import autocast, is_autocast_enabled
from .jit import jit
from .errors import JitError
from . import amp, dtypes, optim, runtime
# the tensor constructors and joins torch offers as functions (torch.zeros, torch.cat, torch.zeros_like, ...)
einsum, cat, stack, meshgrid = Tensor.einsum, Tensor.cat, Tensor.stack, Tensor.meshgrid
concat = concatenate = cat
arange, linspace, eye, full, zeros, ones, empty = (Tensor.arange, Tensor.linspace, Tensor.eye, Tensor.full, Tensor.zeros,
                                                   Tensor.ones, Tensor.empty)
rand, randn, randint, multinomial = Tensor.rand, Tensor.randn, Tensor.randint, Tensor.multinomial
zeros_like, ones_like, full_like, empty_like, rand_like, randn_like = (
  Tensor.zeros_like, Tensor.ones_like, Tensor.full_like, Tensor.empty_like, Tensor.rand_like, Tensor.randn_like)
from .runtime import triton_device   # noqa: F401  its error classes, without importing triton
if _os.environ.get("LAZYGRAD_DUMP"):   # every realize written to files (lazygrad.debug.dump)
  from .debug.dump import install as _install_dump
  _install_dump(_os.environ["LAZYGRAD_DUMP"])
if _os.environ.get("LAZYGRAD_REPORT"):   # an HTML report of the process, written at exit (lazygrad.debug.report)
  from .debug.report import at_exit as _report_at_exit
  _report_at_exit(_os.environ["LAZYGRAD_REPORT"])

__all__ = ["jit", "JitError", "no_grad", "autocast", "is_autocast_enabled", "Tensor", "ShapeError", "manual_seed", "realize", "where", "searchsorted", "bucketize", "multinomial", "einsum", "cat", "concat",
           "concatenate", "stack", "meshgrid", "arange", "linspace", "eye", "full", "zeros", "ones", "empty", "rand",
           "randn", "randint", "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like", "DType",
           "Context",
           "counters", "settings", "set_float32_matmul_precision", "get_float32_matmul_precision", "dtypes", "bool_",
           "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
           "float64"]
