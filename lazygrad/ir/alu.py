"""Reference semantics of the ALU primitives, in numpy: used by the numpy interpreter and for constant folding.

float16/bfloat16 math is done in float32 and rounded once per op, as the GPU does; integer division and modulo
truncate toward zero, as in C, Triton and CUDA; float modulo is C's fmod; POW (floats only) is C's pow."""
from __future__ import annotations
import numpy as np
from ..dtypes import DType, bfloat16, float16
from .ops import Op

_LOW_PRECISION = (np.dtype(float16.np), np.dtype(bfloat16.np))

_UFUNCS = {
  Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply, Op.DIV: np.divide, Op.MAX: np.maximum,
  Op.CMPLT: np.less, Op.CMPEQ: np.equal, Op.CMPNE: np.not_equal, Op.NEG: np.negative, Op.SQRT: np.sqrt,
  Op.EXP: np.exp, Op.EXP2: np.exp2, Op.LOG: np.log, Op.SIN: np.sin, Op.TRUNC: np.trunc, Op.NOT: np.logical_not,
  Op.MOD: np.fmod,
}


def _idiv(a, b):
  q = np.floor_divide(a, b)
  return q + ((np.remainder(a, b) != 0) & ((np.asarray(a) < 0) != (np.asarray(b) < 0)))


def _pow(a, b, **kw):
  # in float64, rounded to float32 (then to a half type), as the Triton kernels compute it: numpy's float32 power
  # missed the correctly rounded result by an ulp for 5% of random inputs (its SIMD kernels)
  wide = np.float64 in (np.asarray(a).dtype, np.asarray(b).dtype)
  res = np.power(np.asarray(a, np.float64), np.asarray(b, np.float64), **kw)
  return res if wide or kw else res.astype(np.float32)


def _where(cond, a, b, dtype: DType, out=None):
  # as bit operations, b ^ ((a ^ b) & mask): numpy's where branches on every element and took 5x longer on a mask
  # with no pattern (the signs of random data)
  bits = np.dtype(f"i{np.dtype(dtype.np).itemsize}")
  a, b = (np.asarray(v, dtype.np).view(bits) for v in (a, b))
  mask = np.negative(np.asarray(cond, np.bool_).view(np.int8), dtype=bits)
  res = out.view(bits) if out is not None else np.empty(np.broadcast_shapes(mask.shape, a.shape, b.shape), bits)
  np.bitwise_xor(a, b, out=res)
  np.bitwise_and(res, mask, out=res)
  np.bitwise_xor(res, b, out=res)
  return out if out is not None else res.view(dtype.np)   # `out` itself: the interpreter recycles it by identity


def _bitwise(op: Op):
  logical, bitwise = {Op.AND: (np.logical_and, np.bitwise_and), Op.OR: (np.logical_or, np.bitwise_or),
                      Op.XOR: (np.logical_xor, np.bitwise_xor)}[op]
  return lambda a, b, **kw: logical(a, b, **kw) if np.asarray(a).dtype == np.bool_ else bitwise(a, b, **kw)


def exec_alu(op: Op, dtype: DType, args: list, out: np.ndarray | None = None):
  """Apply ALU primitive `op` producing `dtype`. `out`, if given, is an array of the result's dtype and shape
  that may receive the result; when it cannot (None is returned), call again without it."""
  low = any(np.asarray(a).dtype in _LOW_PRECISION for a in args)
  if out is not None:
    if op is Op.CAST: np.copyto(out, args[0], casting="unsafe"); return out
    if op is Op.WHERE: return None if any(out is a for a in args) else _where(*args, dtype, out)
    if low or op in (Op.IDIV, Op.MOD) or (op is Op.DIV and dtype.is_int): return None
  if op is Op.CAST: return np.asarray(args[0]).astype(dtype.np)
  if op is Op.WHERE: return _where(*args, dtype)
  if low: args = [np.asarray(a, np.float32) if np.asarray(a).dtype in _LOW_PRECISION else a for a in args]
  if op is Op.RECIP: fn = lambda x, **kw: np.divide(1, x, **kw)
  elif op is Op.IDIV or (op is Op.DIV and dtype.is_int): fn = _idiv
  elif op in (Op.AND, Op.OR, Op.XOR): fn = _bitwise(op)
  elif op is Op.POW: fn = _pow
  else: fn = _UFUNCS[op]
  if out is not None: return fn(*args, out=out, casting="unsafe")
  res = fn(*args)
  return res.astype(dtype.np, copy=False) if isinstance(res, np.ndarray) else dtype.np(res)
