"""Automatic mixed precision, as torch.autocast does it on CUDA: inside `autocast(bfloat16)` the ops of torch's
lower-precision list (matmuls, linear, convolutions, attention) cast their float inputs to bfloat16 and return
bfloat16 (float32 accumulation inside), and the ops of its float32 list (softmax, norms, losses, exp/log/pow, sum)
cast 16-bit float inputs to float32. Every other op runs in the dtypes of its inputs.

An op is autocast where the user calls it (user code, or a layer of `lazygrad.nn` standing in for the user); the
pieces lazygrad composes an op from run as they are, as torch's native kernels are not autocast inside."""
from __future__ import annotations
import contextlib, functools, inspect, sys, threading
import numpy as np
from .dtypes import to_dtype, float16, bfloat16, float32
from .helpers import WRAPPER_CODES

# torch's CUDA autocast lists, restricted to the ops lazygrad has (the names of Tensor methods and of
# lazygrad.nn.functional functions)
LOWER_PRECISION = ("matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "mv", "addmm", "addmv", "addr", "baddbmm",
                   "addbmm", "linear", "einsum", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                   "conv_transpose3d", "scaled_dot_product_attention", "prelu")
FLOAT32 = ("acos", "asin", "cosh", "sinh", "tan", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
           "reciprocal", "rsqrt", "pow", "__pow__", "__rpow__", "__rtruediv__", "softplus", "softmax", "log_softmax",
           "softmin", "sum", "prod", "cumsum", "cumprod", "logsumexp", "norm", "dist", "cdist", "renorm",
           "layer_norm", "group_norm", "cosine_similarity", "normalize", "cross_entropy", "nll_loss", "mse_loss",
           "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "binary_cross_entropy_with_logits",
           "margin_ranking_loss", "soft_margin_loss", "hinge_embedding_loss", "poisson_nll_loss",
           "cosine_embedding_loss", "triplet_margin_loss", "multi_margin_loss", "multilabel_margin_loss")


class _State(threading.local):
  dtype = None   # the lower precision while autocast is on


_state = _State()


_UNSET = object()
_DEVICE_TYPES = ("cuda", "cpu", "triton", "triton-interp", "numpy")


@contextlib.contextmanager
def autocast(device_type=_UNSET, dtype=None, enabled: bool = True, cache_enabled=None):
  """Mixed precision like torch.autocast: matmuls, linear layers, convolutions and attention run in a 16-bit float
  (float32 accumulation) and return it; softmax, norms and losses run in float32. Parameters stay float32 (the
  master weights) and get float32 gradients. `autocast("bfloat16")` (lazygrad's form, bfloat16 by default) or
  torch's `autocast("cuda", dtype=torch.bfloat16)` (float16 by default on a GPU device, as torch's);
  `enabled=False` or `autocast(None)` turns it off inside. `cache_enabled` is accepted for torch's signature (a lazy
  graph casts a weight once per use; nothing is cached)."""
  if device_type is None: enabled = False
  elif device_type is not _UNSET and dtype is None and _names_dtype(device_type): dtype = device_type
  elif device_type is not _UNSET and device_type not in _DEVICE_TYPES:
    raise ValueError(f"autocast: {device_type!r} is neither a dtype nor a device type ({', '.join(_DEVICE_TYPES)})")
  elif dtype is None and device_type in ("cuda", "triton"): dtype = float16
  on = to_dtype(dtype if dtype is not None else bfloat16) if enabled else None
  if on is not None and on not in (float16, bfloat16):
    raise TypeError(f"autocast: dtype must be float16 or bfloat16, got {on.name}")
  prev, _state.dtype = _state.dtype, on
  try: yield
  finally: _state.dtype = prev


def _names_dtype(x) -> bool:
  try: to_dtype(x)
  except TypeError: return False
  return True


def autocast_dtype():
  """The lower precision of the innermost autocast, None outside one."""
  return _state.dtype


def is_autocast_enabled() -> bool:
  """torch.is_autocast_enabled: inside an enabled autocast?"""
  return _state.dtype is not None


def _user_call(frame) -> bool:
  """Whether the op was called by the user (or by a layer of lazygrad.nn, which calls what the user would)."""
  name = frame.f_globals.get("__name__", "")
  return not name.startswith("lazygrad.") or name == "lazygrad.nn.module"


def _cast(a, to, eligible, like):
  """`a` cast to `to` if it is a tensor of an eligible dtype; a float32 numpy operand (`array @ tensor`) becomes a
  tensor on the device of `like` first."""
  if isinstance(a, (list, tuple)): return type(a)(_cast(x, to, eligible, like) for x in a)
  if isinstance(a, np.ndarray) and a.dtype in (np.float16, np.float32) and like is not None:
    a = type(like)(a, device=like.device)
  if hasattr(a, "node") and a.dtype in eligible and a.dtype != to: return a.cast(to)
  return a


def _wrapped(fn, lower: bool):
  @functools.wraps(fn)
  def op(*args, **kwargs):
    ac = _state.dtype
    if ac is None or not _user_call(sys._getframe(1)): return fn(*args, **kwargs)
    to, eligible = (ac, (float16, bfloat16, float32)) if lower else (float32, (float16, bfloat16))
    like = next((a for a in args if hasattr(a, "node")), None)
    return fn(*_cast(args, to, eligible, like), **{k: _cast(v, to, eligible, like) for k, v in kwargs.items()})
  op.__autocast__ = "lower" if lower else "float32"
  WRAPPER_CODES.add(op.__code__)   # the user called fn, not this wrapper: user_frame names fn
  return op


def install(namespace):
  """Makes the listed ops of a class (Tensor) or a module's globals (lazygrad.nn.functional) autocast. float64
  inputs are never cast, as in torch."""
  for names, lower in ((LOWER_PRECISION, True), (FLOAT32, False)):
    for name in names:
      if isinstance(namespace, dict):
        if callable(fn := namespace.get(name)) and not hasattr(fn, "__autocast__"): namespace[name] = _wrapped(fn, lower)
        continue
      fn = inspect.getattr_static(namespace, name, None)
      if fn is None or hasattr(getattr(fn, "__func__", fn), "__autocast__"): continue
      if isinstance(fn, (classmethod, staticmethod)): setattr(namespace, name, type(fn)(_wrapped(fn.__func__, lower)))
      else: setattr(namespace, name, _wrapped(fn, lower))
