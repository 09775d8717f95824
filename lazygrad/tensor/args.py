"""Argument checking shared by the Tensor modules: the error format (the op, what is wrong, the fix, the user's
line), and dims, shapes and broadcasting as the ops take them."""
from __future__ import annotations
import numpy as np
from ..helpers import user_frame, fmt_loc, ShapeError


def _err(cls, op: str, msg: str, fix: str = ""):
  where = fmt_loc(user_frame())
  return cls(f"{op}: {msg}" + (f". Fix: {fix}" if fix else "") + f" (at {where})")


def _shape_str(s) -> str: return str(tuple(s))
def _is_scalar(x) -> bool: return isinstance(x, (int, float, bool, np.number, np.bool_))


def _broadcast_shape(op: str, *shapes) -> tuple:
  nd = max(len(s) for s in shapes)
  padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
  out = []
  for d in range(nd):
    sizes = {p[d] for p in padded} - {1}
    if len(sizes) > 1:
      raise _err(ShapeError, op, f"shapes {' and '.join(_shape_str(s) for s in shapes)} cannot broadcast: dimension "
                 f"{d - nd} has sizes {' vs '.join(str(p[d]) for p in padded)}",
                 "sizes must match or be 1 in every dimension, counted from the last; reshape or unsqueeze one operand")
    out.append(sizes.pop() if sizes else 1)
  return tuple(out)


def _norm_dim(op: str, d: int, ndim: int, shape=None) -> int:
  if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
    raise _err(TypeError, op, f"dim must be an int, got {type(d).__name__} {d!r}")
  lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
  if not lo <= d <= hi:
    raise _err(IndexError, op, f"dim {d} is out of range for a tensor of shape {_shape_str(shape or ())} "
               f"(ndim {ndim})", f"use a dim in [{lo}, {hi}]")
  return int(d) % max(ndim, 1)


def _shape_arg(shape) -> tuple:
  if len(shape) == 1 and isinstance(shape[0], (tuple, list)): shape = shape[0]
  return tuple(int(s) for s in shape)
