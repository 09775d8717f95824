"""Elementwise ops: arithmetic (with PyTorch's type promotion and broadcasting), comparisons, bitwise and logical
ops, where, unary math, activations, casts and `to`, and the in-place forms (`x += y`, `x.add_(y)`)."""
from __future__ import annotations
import functools, math
import ml_dtypes
import numpy as np
from .. import dtypes
from ..dtypes import to_dtype, promote, promote_scalar, float32, int32, int64, bool_
from ..helpers import ShapeError, DivisionByZero
from ..ir.ops import Op
from ..ir import build as B
from ..runtime.device import canonical_name, is_device_name
from .args import _err, _shape_str, _is_scalar, _broadcast_shape
from .core import TensorCore

_HALF = (dtypes.float16, dtypes.bfloat16)
_HALF_PI_HI = float(np.float32(math.pi / 2))
_HALF_PI_LO = math.pi / 2 - _HALF_PI_HI


def _opmath(fn):
  """Half-precision + - * / // with a Python number compute in float32 and round once, as PyTorch's CUDA kernels
  do ("opmath": x_half * 0.1 is half(float(x) * 0.1f), not x * half(0.1)). PyTorch's CPU kernels round the scalar
  of + and - to the half type first; lazygrad follows the GPU on every device. A number the half type holds exactly
  gives the same result either way and skips the detour. Both devices round the number to the half type for **, %
  and comparisons, and so does lazygrad (there, no decorator)."""
  @functools.wraps(fn)
  def op(self, other, *args, **kwargs):
    if self.dtype in _HALF and _is_scalar(other) and not isinstance(other, (bool, np.bool_)):
      with np.errstate(over="ignore"): exact = float(np.asarray(other, self.dtype.np)) == other
      if not exact: return fn(self.float(), other, *args, **kwargs).cast(self.dtype)
    return fn(self, other, *args, **kwargs)
  # a node's origin names the method the user called, read from the code object (helpers.user_frame)
  op.__code__ = op.__code__.replace(co_name=fn.__name__, co_qualname=fn.__qualname__)
  return op


# tanh(x) = x + x^3 * P(x^2) for |x| < cut: (cut, P's coefficients from the constant term up). float32: a minimax
# fit, under 0.8 ulp (the exp formula above 0.6 stays under 2); float64: Taylor's, exact to an ulp below 0.05.
_TANH_POLY = {"float32": (0.6, (-0.33333295583724976, 0.13331879675388336, -0.053780388087034225, 0.02078511007130146,
                                -0.005883185192942619)),
              "float64": (0.05, (-1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925))}



def _frac_from_nearest(x):
  """x minus its nearest integer, exactly: sin(pi x) and tan(pi x) of it keep their precision far from 0 (they have
  period 1 and pi up to sign)."""
  return x - x.round()

class Elementwise:
  """Tensor's elementwise ops (a mixin: see core)."""
  __slots__ = ()

  # ---------------------------------------------------------------- operands
  def cast(self, dtype) -> "Tensor":
    dt = to_dtype(dtype)
    return self if dt == self.dtype else self._alu(Op.CAST, dtype=dt)

  def _operands(self, op: str, other, reverse=False, dtype_fn=promote, wrap=True) -> tuple["Tensor", "Tensor"]:
    """Both operands as tensors of one dtype and one (broadcast) shape. An integer scalar out of an integer dtype's
    range wraps into it (`wrap`, as torch's arithmetic does) or is an error."""
    if isinstance(other, TensorCore):
      dt = dtype_fn(self.dtype, other.dtype)
      if (self.ndim == 0) != (other.ndim == 0):   # a 0-d tensor only promotes to a higher kind, like a scalar
        dim_t, zero_t = (other, self) if self.ndim == 0 else (self, other)
        dt = zero_t.dtype if dtypes.kind_order(zero_t.dtype) > dtypes.kind_order(dim_t.dtype) else dim_t.dtype
      shape = _broadcast_shape(op, self.shape, other.shape)
      a, b = self.cast(dt)._broadcast_to(shape), other.cast(dt)._broadcast_to(shape)
    elif _is_scalar(other):
      dt = promote_scalar(self.dtype, other)
      if dt.is_int and wrap:   # uint8 + 300 adds 44, as in torch
        if not -2**63 <= other < 2**63:
          raise _err(OverflowError, op, f"the integer {other} does not fit in int64", "use a smaller number")
        other = dtypes.wrap_int(int(other), dt)
      a, b = self.cast(dt), self._const(other, self.shape, dt, op, self.device)
    else:
      raise _err(TypeError, op, f"unsupported operand type {type(other).__name__}; use a Tensor or a Python number")
    return (b, a) if reverse else (a, b)

  # ---------------------------------------------------------------- elementwise arithmetic
  @_opmath
  def add(self, other, reverse=False, alpha=1):
    """self + alpha * other (torch.add)."""
    if alpha != 1: other = other * alpha
    a, b = self._operands("add", other, reverse)
    return a._alu(Op.OR if a.dtype.is_bool else Op.ADD, b)

  @_opmath
  def sub(self, other, reverse=False, alpha=1):
    """self - alpha * other (torch.sub)."""
    if alpha != 1: other = other * alpha
    a, b = self._operands("sub", other, reverse)
    if a.dtype.is_bool: raise _err(TypeError, "sub", "subtraction of bool tensors is not supported", "use logical_xor or cast to int")
    return a._alu(Op.SUB, b)

  @_opmath
  def mul(self, other, reverse=False):
    a, b = self._operands("mul", other, reverse)
    return a._alu(Op.AND if a.dtype.is_bool else Op.MUL, b)

  def multiply(self, other): return self * other
  def divide(self, other, rounding_mode=None): return self.div(other, rounding_mode=rounding_mode)
  def subtract(self, other, alpha=1): return self.sub(other, alpha=alpha)
  def true_divide(self, other): return self / other

  @_opmath
  def div(self, other, rounding_mode=None):
    """True division (integers become float32); rounding_mode 'floor' or 'trunc' as in torch.div."""
    if rounding_mode not in (None, "floor", "trunc"):
      raise _err(ValueError, "div", f"rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    if rounding_mode == "floor": return self.floor_divide(other)
    if rounding_mode is None and not (self.dtype.is_float or isinstance(other, TensorCore) and other.dtype.is_float):
      # float32 before the operands meet, so an integer scalar is not wrapped into the tensor's dtype (uint8 / -4)
      self, other = self.float(), other.float() if isinstance(other, TensorCore) else other
    a, b = self._operands("div", other)
    if rounding_mode == "trunc": return a._alu(Op.IDIV, _nonzero("div", b)) if a.dtype.is_int else a._alu(Op.DIV, b).trunc()
    return a._alu(Op.DIV, b)

  @_opmath
  def floor_divide(self, other, reverse=False):
    a, b = self._operands("floor_divide", other, reverse)
    if a.dtype.is_bool: raise _err(TypeError, "floor_divide", "not supported on bool tensors", "cast to int first")
    if a.dtype.is_float: return a._floor_divide_float(b)
    b = _nonzero("floor_divide", b)
    q = a._alu(Op.IDIV, b)   # truncates: step down where the signs differ and it was not exact
    fix = (a._alu(Op.MOD, b) != 0).logical_and((a < 0) != (b < 0))
    return fix._where(q - 1, q)

  def _floor_divide_float(self, other: "Tensor") -> "Tensor":
    """PyTorch's float floor division: from fmod, so that a/b rounding up to an integer does not count (1 // 0.1 is
    9, as in Python, not floor(10.0)); half types in float32, rounded once. Piecewise constant: no gradient."""
    a, b = self.detach()._f32(), other.detach()._f32()
    mod = a._alu(Op.MOD, b)
    div = (a - mod) / b
    div = ((mod != 0).logical_and((b < 0) != (mod < 0)))._where(div - 1, div)
    fl = div.floor()
    fl = (div - fl > 0.5)._where(fl + 1, fl)
    q = a / b
    return self._rounded((b == 0)._where(q, (div == 0)._where(q * 0, fl)))   # q * 0: a zero with the quotient's sign

  def remainder(self, other, reverse=False):
    """Python/torch modulo: the result has the sign of the divisor. From fmod, which is exact."""
    a, b = self._operands("remainder", other, reverse)
    r = a.fmod(b)
    return ((r != 0).logical_and((r < 0) != (b < 0)))._where(r + b, r)

  def fmod(self, other):
    """C's fmod, as torch.fmod: the result has the sign of the dividend."""
    a, b = self._operands("fmod", other)
    if a.dtype.is_bool: raise _err(TypeError, "fmod", "not supported on bool tensors", "cast to int first")
    return a._alu(Op.MOD, _nonzero("remainder", b) if a.dtype.is_int else b)

  def gcd(self, other):
    """torch.gcd: the greatest common divisor of integers, never negative (gcd(x, 0) = |x|). Euclid's steps, as many
    as the dtype's widest inputs can need (Lamé: fewer than 1.45 per bit, +2), unrolled: one elementwise kernel."""
    a, b = self._integer_operands("gcd", other)
    a, b = a.abs(), b.abs()
    for _ in range(int(1.45 * 8 * a.dtype.itemsize) + 2):   # a step with b = 0 changes nothing
      more = b != 0
      a, b = more._where(b, a), more._where(a._alu(Op.MOD, more._where(b, 1)), b)
    return a

  def lcm(self, other):
    """torch.lcm: the least common multiple of integers, never negative (0 where either is 0). On overflow it wraps
    as torch's does: |a / gcd * b| in int32 for narrower types (C's integer promotion), then cast back."""
    a, b = self._integer_operands("lcm", other)
    g = a.gcd(b)
    zero, wide = g == 0, int32 if a.dtype.itemsize < 4 else a.dtype
    multiple = (a._alu(Op.IDIV, zero._where(1, g)).cast(wide) * b.cast(wide)).abs().cast(a.dtype)
    return zero._where(0, multiple)

  def _integer_operands(self, op: str, other, reverse: bool = False, need: str = "needs") -> tuple["Tensor", "Tensor"]:
    """`_operands`, refused unless they are integers: `need` says who needs them ("shifts need")."""
    a, b = self._operands(op, other, reverse)
    if not a.dtype.is_int:
      raise _err(TypeError, op, f"{need} integer tensors, got {a.dtype.name}", "cast to an integer dtype first")
    return a, b

  def pow(self, other, reverse=False):
    """torch.pow. Integer ** integer is exact (wrapping on overflow, as torch's integer math does); a float base or
    exponent makes the result float (int_tensor ** 2.0 is float32). A Python number as the exponent takes PyTorch's
    fast paths, which give its results exactly: x*x, x*x*x, sqrt, rsqrt, 1/x."""
    if not reverse and _is_scalar(other) and not isinstance(other, (bool, np.bool_)):
      x = self.cast(promote_scalar(self.dtype, other))
      if x.dtype.is_int:
        if other < 0:
          raise _err(RuntimeError, "pow", f"Integers to negative integer powers are not allowed ({x.dtype.name} "
                     f"tensor of shape {_shape_str(x.shape)} ** {other})", "cast the tensor to float first")
        return x._ipow(int(other))
      # torch's -2 fast path, 1 / (x*x), is not taken: built from primitives its gradient at 0 would be NaN
      fast = {2: lambda: x * x, 3: lambda: x * x * x, 0.5: x.sqrt, -0.5: x.rsqrt, -1: x.reciprocal}
      if other in fast: return fast[other]()
    a, b = self._operands("pow", other, reverse)
    if a.dtype.is_bool: raise _err(TypeError, "pow", "not supported on two bool tensors", "cast one to int or float")
    return a._alu(Op.POW, b) if a.dtype.is_float else a._ipow_tensor(b)

  def _ipow(self, e: int) -> "Tensor":
    """self ** e for an integer tensor and a Python int e >= 0: square-and-multiply, unrolled."""
    out, base = self._const(1, self.shape, self.dtype, device=self.device), self
    while e:
      if e & 1: out = out * base
      e >>= 1
      if e: base = base * base
    return out

  def _ipow_tensor(self, e: "Tensor") -> "Tensor":
    """self ** e for integer tensors, as torch's powi: square-and-multiply over every bit of e (a fixed loop of
    selects); for e < 0, 1 ** e is 1, (-1) ** e is -1 or 1 and anything else gives 0."""
    out, base = self._const(1, self.shape, self.dtype, device=self.device), self
    bits = 8 * self.dtype.itemsize - (self.dtype.kind == 'i')
    for i in range(bits):
      out = ((e & (1 << i)) != 0)._where(out * base, out)
      if i + 1 < bits: base = base * base
    if self.dtype.kind == 'u': return out
    negative_power = (self == 1).logical_or(self == -1)._where(((e & 1) != 0)._where(self, 1), 0)
    return (e < 0)._where(negative_power, out)

  def neg(self):
    if self.dtype.is_bool: raise _err(TypeError, "neg", "negation of a bool tensor is not supported", "use logical_not()")
    return self._alu(Op.NEG)
  __neg__ = negative = neg

  __add__ = add
  def __radd__(self, o): return self.add(o, True)
  __sub__ = sub
  def __rsub__(self, o): return self.sub(o, True)
  __mul__ = mul
  def __rmul__(self, o): return self.mul(o, True)
  __truediv__ = div
  def __rtruediv__(self, o): return self.reciprocal() * o   # as in torch: 2 / x is (1 / x) * 2
  __floordiv__ = floor_divide
  def __rfloordiv__(self, o): return self.floor_divide(o, True)
  __mod__ = remainder
  def __rmod__(self, o): return self.remainder(o, True)
  __pow__ = pow
  def __rpow__(self, o): return self.pow(o, True)
  def __matmul__(self, o): return self.matmul(o)
  def __rmatmul__(self, o):
    return type(self)(o, device=self.device).matmul(self) if not isinstance(o, TensorCore) else o.matmul(self)


  def __iadd__(self, o): return self._inplace("add_", self + o)
  def __isub__(self, o): return self._inplace("sub_", self - o)
  def __imul__(self, o): return self._inplace("mul_", self * o)
  def __itruediv__(self, o): return self._inplace("div_", self / o)
  def __ifloordiv__(self, o): return self._inplace("floor_divide_", self // o)
  def __imod__(self, o): return self._inplace("remainder_", self % o)
  def __ipow__(self, o): return self._inplace("pow_", self ** o)
  def __iand__(self, o): return self._inplace("bitwise_and_", self & o)
  def __ior__(self, o): return self._inplace("bitwise_or_", self | o)
  def __ixor__(self, o): return self._inplace("bitwise_xor_", self ^ o)

  # comparisons and logic
  def _cmp(self, op: str, prim: Op, other, reverse=False) -> "Tensor":
    a, b = self._operands(op, other, reverse)
    return a._new(prim, (a, b), bool_, a.shape)

  def __lt__(self, o): return self._cmp("lt", Op.CMPLT, o)
  def __gt__(self, o): return self._cmp("gt", Op.CMPLT, o, reverse=True)
  def __le__(self, o): return (self < o).logical_or(self == o)
  def __ge__(self, o): return (self > o).logical_or(self == o)
  def __eq__(self, o): return self._cmp("eq", Op.CMPEQ, o)   # type: ignore[override]
  def __ne__(self, o): return self._cmp("ne", Op.CMPNE, o)   # type: ignore[override]
  __hash__ = object.__hash__
  lt, gt, le, ge, eq, ne = __lt__, __gt__, __le__, __ge__, __eq__, __ne__
  less, greater, less_equal, greater_equal, not_equal = lt, gt, le, ge, ne   # torch's long names

  def _bitwise(self, op: str, prim: Op, other, reverse=False) -> "Tensor":
    a, b = self._operands(op, other, reverse)
    if a.dtype.is_float:
      raise _err(TypeError, op, f"bitwise ops need bool or integer tensors, got {a.dtype.name}", "compare first, or cast to int")
    return a._alu(prim, b)

  def __and__(self, o): return self._bitwise("bitwise_and", Op.AND, o)
  def __or__(self, o): return self._bitwise("bitwise_or", Op.OR, o)
  def __xor__(self, o): return self._bitwise("bitwise_xor", Op.XOR, o)
  def __rand__(self, o): return self._bitwise("bitwise_and", Op.AND, o, True)
  def __ror__(self, o): return self._bitwise("bitwise_or", Op.OR, o, True)
  def __rxor__(self, o): return self._bitwise("bitwise_xor", Op.XOR, o, True)
  bitwise_and, bitwise_or, bitwise_xor = __and__, __or__, __xor__
  def bitwise_not(self): return ~self
  def bitwise_left_shift(self, other, reverse=False):
    """torch.bitwise_left_shift (`<<`) on integer tensors, wrapping; a shift below 0 or of the width or more
    gives 0 (as PyTorch's)."""
    a, b = self._integer_operands("bitwise_left_shift", other, reverse, "shifts need")
    fits = (b >= 0).logical_and(b < 8 * a.dtype.itemsize)
    return fits._where(a * _pow2(fits._where(b, 0)).cast(a.dtype), 0)

  def bitwise_right_shift(self, other, reverse=False):
    """torch.bitwise_right_shift (`>>`) on integer tensors: arithmetic (the sign fills in); a shift below 0 or of
    the width or more gives the sign fill, -1 or 0 (as PyTorch's)."""
    a, b = self._integer_operands("bitwise_right_shift", other, reverse, "shifts need")
    fits = (b >= 0).logical_and(b < min(8 * a.dtype.itemsize, 63))   # 2 ** 63 is no int64: its shift is a sign fill
    x, p = a.cast(int64), _pow2(fits._where(b, 0))
    q = x._alu(Op.IDIV, p)   # truncates: step down where an inexact quotient is negative
    q = (x._alu(Op.MOD, p) != 0).logical_and(x < 0)._where(q - 1, q)
    return fits._where(q, (a < 0)._where(-1, 0)).cast(a.dtype)

  __lshift__ = bitwise_left_shift
  __rshift__ = bitwise_right_shift
  def __rlshift__(self, o): return self.bitwise_left_shift(o, True)
  def __rrshift__(self, o): return self.bitwise_right_shift(o, True)
  def __ilshift__(self, o): return self._inplace("bitwise_left_shift_", self << o)
  def __irshift__(self, o): return self._inplace("bitwise_right_shift_", self >> o)

  def __invert__(self):
    if self.dtype.is_float: raise _err(TypeError, "bitwise_not", f"needs a bool or integer tensor, got {self.dtype.name}")
    if self.dtype.is_bool: return self._alu(Op.NOT)
    ones = np.iinfo(self.dtype.np).max if self.dtype.kind == 'u' else -1
    return self._alu(Op.XOR, self._const(ones, self.shape, self.dtype, device=self.device))
  def logical_not(self): return self.cast(bool_)._alu(Op.NOT)
  def _logical(self, op: str, prim: Op, other) -> "Tensor":
    a, b = self.cast(bool_)._operands(op, other.cast(bool_) if isinstance(other, TensorCore) else bool(other))
    return a._alu(prim, b)
  def logical_and(self, o): return self._logical("logical_and", Op.AND, o)
  def logical_or(self, o): return self._logical("logical_or", Op.OR, o)
  def logical_xor(self, o): return self._logical("logical_xor", Op.XOR, o)

  def where(self, condition: "Tensor", other) -> "Tensor":
    """torch.Tensor.where: this tensor where `condition` (a bool tensor) is true, else `other` (a tensor or a number).
    `lazygrad.where(condition, input, other)` is torch.where's order."""
    return where(condition, self, other)

  def _where(self, x, y) -> "Tensor":
    """`cond._where(x, y)`: x where self is true, else y (self is cast to bool)."""
    cond = self
    xs, ys = [v if isinstance(v, TensorCore) else None for v in (x, y)]
    if xs is None and ys is None: dt = max((promote_scalar(bool_, v) for v in (x, y)), key=dtypes.kind_order)
    elif xs is None: dt = promote_scalar(ys.dtype, x)
    elif ys is None: dt = promote_scalar(xs.dtype, y)
    else: dt = promote(xs.dtype, ys.dtype)
    shape = _broadcast_shape("where", cond.shape, *(v.shape for v in (xs, ys) if v is not None))
    def prep(v):
      if isinstance(v, TensorCore): return v.cast(dt)._broadcast_to(shape)
      return self._const(v, shape, dt, "where", cond.device)
    c = cond.cast(bool_)._broadcast_to(shape)
    return c._new(Op.WHERE, (c, prep(x), prep(y)), dt, shape)

  def masked_fill(self, mask: "Tensor", value) -> "Tensor":
    if isinstance(mask, TensorCore) and not mask.dtype.is_bool:
      raise _err(TypeError, "masked_fill", f"mask must be a bool tensor, got {mask.dtype.name}", "compare to build a mask")
    if _broadcast_shape("masked_fill", self.shape, mask.shape) != self.shape:
      raise _err(ShapeError, "masked_fill", f"mask shape {_shape_str(mask.shape)} does not broadcast to the input "
                 f"shape {_shape_str(self.shape)}", "the mask may only have size-1 dims where the input is larger")
    return mask._where(value, self).cast(self.dtype)

  # The MAX primitive gives a tie's gradient to its first operand; each op below orders its operands (or averages
  # both orders) to get PyTorch's gradient at ties: maximum splits it, clamp passes it to the input, relu drops it.
  def maximum(self, other):
    a, b = self._operands("maximum", other)
    if a.dtype.is_bool: return a._alu(Op.OR, b)
    return (a._alu(Op.MAX, b) + b._alu(Op.MAX, a)) * 0.5 if a.dtype.is_float else a._alu(Op.MAX, b)

  def minimum(self, other):
    a, b = self._operands("minimum", other)
    if a.dtype.is_bool: return a._alu(Op.AND, b)
    if a.dtype.is_float: return -((-a).maximum(-b))
    return ~(~a)._alu(Op.MAX, ~b)   # ~x = -x-1 reverses the order and cannot overflow

  def clamp(self, min=None, max=None):
    if min is None and max is None: raise _err(ValueError, "clamp", "at least one of min and max must be given")
    out = self
    if min is not None:
      a, b = out._operands("clamp", min, wrap=False)
      out = a._alu(Op.MAX, b)
    if max is not None:
      a, b = out._operands("clamp", max, wrap=False)
      out = -((-a)._alu(Op.MAX, -b)) if a.dtype.is_float else (a > b)._where(b, a)
    return out
  clip = clamp

  # ---------------------------------------------------------------- unary math
  def _float(self) -> "Tensor": return self if self.dtype.is_float else self.cast(float32)
  def exp(self): return self._float()._alu(Op.EXP)
  def log(self): return self._float()._alu(Op.LOG)
  def exp2(self): return (self._float() * math.log(2)).exp()
  def log2(self): return self.log() * (1 / math.log(2))
  def sqrt(self): return self._float()._alu(Op.SQRT)
  def rsqrt(self): return self.sqrt().reciprocal()
  def reciprocal(self): return self._float()._alu(Op.RECIP)
  def sin(self): return self._float()._alu(Op.SIN)
  def cos(self):
    """sin(pi/2 - |x|), with pi/2 in two parts (float32's nearest, then the rest): exact near ±pi/2, where cos is
    small (pi/2 - x itself would round there)."""
    return ((_HALF_PI_HI - self._float().abs()) + _HALF_PI_LO).sin()
  def tan(self):
    x = self._f32()
    return self._rounded(x.sin() / x.cos())
  def log10(self): return self.log() * (1 / math.log(10))
  def sinh(self):
    """(expm1(x) - expm1(-x)) / 2: no cancellation near 0."""
    x = self._f32()
    return self._rounded((x.expm1() - (-x).expm1()) * 0.5)
  def cosh(self):
    """1 + 2 sinh(x/2)^2: its gradient, sinh(x), stays accurate near 0."""
    s = (self._f32() * 0.5).sinh()
    return self._rounded(1 + 2 * s * s)
  def asinh(self):
    """sign(x) log1p(|x| + x^2 / (1 + sqrt(1 + x^2))); log(2|x|) past 1e10, where x^2 would overflow."""
    x = self._f32()
    a = x.abs()
    huge = a > 1e10
    s = huge._where(0.0, a)
    small = (s + s * s / (1 + (1 + s * s).sqrt())).log1p()
    return self._rounded(x.sign() * huge._where(huge._where(a, 1.0).log() + math.log(2), small) +
                         (x == 0)._where(x, 0.0))   # asinh(±0) = ±0, with gradient 1
  def acosh(self):
    """log1p((x - 1) + sqrt((x - 1)(x + 1))): accurate near 1; log(x) + log 2 past 1e10."""
    x = self._f32()
    huge = x > 1e10
    s = huge._where(2.0, x)
    t = s - 1   # sqrt(t) sqrt(s + 1), not sqrt(t (s + 1)): at x = 1 the gradient is inf, as torch's, not inf * 0
    return self._rounded(huge._where(huge._where(x, 1.0).log() + math.log(2), (t + t.sqrt() * (s + 1).sqrt()).log1p()))
  def atanh(self):
    """(log1p(x) - log1p(-x)) / 2: exact inputs to both logs, near 0 and near 1."""
    x = self._f32()
    return self._rounded(0.5 * (x.log1p() - (-x).log1p()))
  def atan(self):
    """Cephes' atanf: reduced to |x| <= tan(pi/8) (pi/2 - atan(1/x), pi/4 + atan((x-1)/(x+1))), then a degree-9 odd
    polynomial. Each branch sees finite stand-ins where another is taken."""
    x = self._f32()
    a = x.abs()
    big, mid = a > 2.414213562373095, a > 0.4142135623730950
    r = big._where(-1 / big._where(a, 1.0), mid._where((a - 1) / (a + 1), a))
    base = big._where(math.pi / 2, mid._where(math.pi / 4, 0.0))
    z = r * r
    p = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * r + r
    return self._rounded(x.sign() * (base + p) + (x == 0)._where(x, 0.0))
  def asin(self):
    x = self._f32()
    return self._rounded((x / ((1 - x) * (1 + x)).sqrt()).atan())
  def acos(self):
    """2 atan(sqrt((1 - x) / (1 + x))): accurate near 1, where pi/2 - asin(x) cancels."""
    x = self._f32()
    return self._rounded(2 * ((1 - x) / (1 + x)).sqrt().atan())
  def atan2(self, other):
    """The angle of (other, self), as torch.atan2: sign(y) pi/2 - atan(x/y) where |y| > |x|, else atan(y/x) (plus
    or minus pi for x < 0): no division by 0, so gradients stay finite off the origin."""
    y, x = self._operands("atan2", other)
    y, x = y._f32(), x._f32()
    steep = y.abs() > x.abs()
    negx = (x < 0).logical_or((x == 0).logical_and(1 / x < 0))   # -0.0 counts as negative, as in C's atan2
    negy = (y < 0).logical_or((y == 0).logical_and(1 / y < 0))
    flat = (y / steep._where(1.0, (x == 0)._where(1.0, x))).atan() + negx._where(negy._where(-math.pi, math.pi), 0.0)
    return steep._where(negy._where(-math.pi / 2, math.pi / 2) - (x / steep._where(y, 1.0)).atan(), flat)
  def trunc(self): return self._alu(Op.TRUNC) if self.dtype.is_float else self
  fix = trunc
  arcsin, arccos, arctan, arctan2, arcsinh, arccosh, arctanh = asin, acos, atan, atan2, asinh, acosh, atanh
  def floor(self):
    if not self.dtype.is_float: return self
    t = self.trunc()
    return (self < t)._where(t - 1, t)
  def ceil(self):
    if not self.dtype.is_float: return self
    t = self.trunc()
    return (self > t)._where(t + 1, t)
  def round(self, decimals: int = 0):
    """Round half to even, like torch.round; `decimals` digits after the point (before it if negative)."""
    if not self.dtype.is_float: return self
    if decimals: return (self * 10.0 ** decimals).round() / 10.0 ** decimals
    f = self.floor()
    diff = self - f
    even = (f % 2) == 0
    return (diff > 0.5).logical_or((diff == 0.5).logical_and(even.logical_not()))._where(f + 1, f)
  def abs(self):
    if self.dtype.is_bool or self.dtype.kind == "u": return self
    out = self * self.sign()   # gradient sign(x): 0 at 0, as in torch
    return out + 0.0 if self.dtype.is_float else out   # -0.0 * 0 is -0.0; abs(-0.0) is 0.0
  __abs__ = absolute = abs   # abs(t), as torch
  def sign(self):
    s = (self > 0).cast(self.dtype) - (self < 0).cast(self.dtype)
    # a value of self with gradient 0 (as torch's sign has), not a constant cut off from it
    return self._const(False, self.shape, bool_, device=self.device)._where(self, s) if self.requires_grad else s
  def frac(self): return self - self.trunc()
  def fmax(self, other):
    """The elementwise maximum, NaN only where both are NaN (torch.fmax)."""
    a, b = self._operands("fmax", other)
    return a.isnan()._where(b, b.isnan()._where(a, a.maximum(b)))
  def fmin(self, other):
    a, b = self._operands("fmin", other)
    return a.isnan()._where(b, b.isnan()._where(a, a.minimum(b)))
  def hypot(self, other):
    """sqrt(self² + other²) without overflow or underflow on the way (torch.hypot)."""
    a, b = (t.abs() for t in self._operands("hypot", other))
    big, small = a.maximum(b), a.minimum(b)
    ratio = (big == 0)._where(0.0, small / big._where(big, 1.0))
    return (big == math.inf)._where(math.inf, big * (1 + ratio * ratio).sqrt())   # hypot(inf, nan) is inf, as C's
  def nan_to_num(self, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None):
    """NaN, +inf and -inf replaced by `nan`, `posinf` and `neginf` (default: the dtype's largest and lowest)."""
    if not self.dtype.is_float: return self
    info = ml_dtypes.finfo(self.dtype.np)
    out = self.isnan()._where(nan, self)
    out = (out == math.inf)._where(info.max if posinf is None else posinf, out)
    return (out == -math.inf)._where(info.min if neginf is None else neginf, out).cast(self.dtype)
  def type_as(self, other): return self.cast(other.dtype)
  def positive(self): return self
  def sgn(self): return self.sign()
  def signbit(self):
    """Whether the sign bit is set: true for negative numbers and -0.0 (torch.signbit)."""
    if not self.dtype.is_float: return self < 0
    return (self < 0).logical_or((self == 0).logical_and(1 / self < 0))
  def deg2rad(self): return self._float() * (math.pi / 180)
  def rad2deg(self): return self._float() * (180 / math.pi)
  def xlogy(self, other):
    """self * log(other), 0 where self is 0 (and other is not NaN), as torch.xlogy."""
    x, y = (t._float() for t in self._operands("xlogy", other))
    return (x == 0).logical_and(y == y)._where(0.0, x * y.log())
  def float_power(self, exponent):
    """self ** exponent in float64 (torch.float_power)."""
    e = exponent.double() if isinstance(exponent, TensorCore) else exponent
    return self.double() ** e
  def heaviside(self, values):
    """0 where self < 0, `values` where self == 0, 1 where self > 0 (torch.heaviside)."""
    return (self == 0)._where(values, (self > 0).cast(self.dtype))
  def clamp_min(self, min): return self.clamp(min=min)
  def clamp_max(self, max): return self.clamp(max=max)
  def addcmul(self, tensor1, tensor2, *, value=1):
    """self + value * tensor1 * tensor2 (torch.addcmul)."""
    return self + value * (tensor1 * tensor2)
  def addcdiv(self, tensor1, tensor2, *, value=1):
    """self + value * tensor1 / tensor2 (torch.addcdiv)."""
    return self + value * (tensor1 / tensor2)
  def normal_(self, mean: float = 0.0, std: float = 1.0):
    """Fill with numbers drawn from N(mean, std²), in place (torch.Tensor.normal_)."""
    drawn = type(self).normal(*self.shape, mean=mean, std=std, dtype=self.dtype, device=self.device)
    return self._inplace("normal_", drawn)
  def uniform_(self, a: float = 0.0, b: float = 1.0):
    """Fill with numbers drawn from U(a, b), in place (torch.Tensor.uniform_)."""
    return self._inplace("uniform_", type(self).uniform(*self.shape, low=a, high=b, dtype=self.dtype, device=self.device))
  def bernoulli(self, p: float | None = None):
    """torch.bernoulli: 1 with probability p (or self's elements as probabilities), else 0, in self's dtype."""
    prob = self._float() if p is None else p
    return (self.rand_like(dtype=float32) < prob).cast(self.dtype if self.dtype.is_float else float32)
  def bernoulli_(self, p: float = 0.5):
    """Fill with 1s drawn with probability p (a float or a tensor), else 0s, in place."""
    return self._inplace("bernoulli_", (self.rand_like(dtype=float32) < p).cast(self.dtype))
  def multinomial(self, num_samples: int, replacement: bool = False):
    """torch.multinomial: `num_samples` category indices (int64) drawn from each row of non-negative weights (1-D or
    2-D). Without replacement (the default) they are the num_samples largest of w / E, E exponential draws (an
    exponential race: the first to finish is a draw by weight, the next a draw from the rest); with it, the number
    of running sums of the weights at or below a uniform draw on [0, total). A row with a negative, infinite or NaN
    weight, summing to 0, or (without replacement) with fewer non-zero weights than samples raises when realized."""
    op = "multinomial"
    if self.ndim not in (1, 2):
      raise _err(ShapeError, op, f"needs a 1-D or 2-D tensor of weights, got shape {_shape_str(self.shape)}")
    if not self.dtype.is_float: raise _err(TypeError, op, f"weights must be floats, got {self.dtype.name}")
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
      raise _err(ValueError, op, f"num_samples must be a positive int, got {num_samples!r}")
    w = (self if self.ndim == 2 else self.unsqueeze(0))._float()
    rows, n = w.shape
    if not replacement and num_samples > n:
      raise _err(RuntimeError, op, f"cannot draw {num_samples} samples without replacement from {n} categories",
                 "pass replacement=True, or draw fewer")
    bad = (w < 0).logical_or(w.isinf()).logical_or(w.isnan()).any(-1).logical_or(w.sum(-1) == 0)
    if not replacement: bad = bad.logical_or((w > 0).sum(-1) < num_samples)
    if replacement:
      cdf = w.cumsum(-1)
      u = self.rand(rows, num_samples, device=self.device) * cdf[:, n - 1:]
      idx = (cdf.unsqueeze(1) <= u.unsqueeze(-1)).sum(-1).clamp(max=n - 1)
    else:
      race = w / -self.rand(rows, n, device=self.device).log()
      idx = race.topk(num_samples, -1).indices
    rows_ = self.arange(rows, device=self.device)
    idx = idx._checked(rows_, bad.logical_not(), f"{op}: row {{}} of the weights has a negative, infinite or NaN "
                       "weight, sums to 0, or has fewer non-zero weights than samples drawn without replacement",
                       "InvalidValue")
    return idx if self.ndim == 2 else idx.squeeze(0)
  def logit(self, eps: float | None = None):
    """log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is given (torch.logit)."""
    p = self._float() if eps is None else self._float().clamp(eps, 1 - eps)
    return (p / (1 - p)).log()
  def isin(self, elements, invert: bool = False):
    """Whether each element is one of `elements` (a tensor or a list), bool (torch.isin)."""
    elements = elements if isinstance(elements, TensorCore) else type(self)(elements, device=self.device)
    hit = (self.unsqueeze(-1) == elements.reshape(-1)).any(-1) if elements.numel() else self != self.zeros_like()
    return hit.logical_not() if invert else hit
  def allclose(self, other, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    """torch.allclose: a Python bool (reads the result on the host)."""
    return bool(self.isclose(other, rtol, atol, equal_nan).all())
  def equal(self, other) -> bool:
    """torch.equal: the same shape and the same values, a Python bool."""
    return tuple(self.shape) == tuple(other.shape) and bool((self == other).all())
  def isnan(self): return self != self
  def isinf(self): return (self == math.inf).logical_or(self == -math.inf)
  def isposinf(self): return self.isinf().logical_and(self > 0)
  def isneginf(self): return self.isinf().logical_and(self < 0)
  def copysign(self, other):
    """torch.copysign: |self| with the sign of other (-0.0 counts as negative; a NaN's sign is not read); integers
    become float32. Its gradient is sign(self) * sign(other), 0 at self == 0, as PyTorch's."""
    a, b = self._operands("copysign", other)
    a = a._float()
    negative = (b < 0).logical_or((b == 0).logical_and(1 / b < 0)) if b.dtype.is_float else b < 0
    magnitude = a.abs()
    return negative._where(-magnitude, magnitude)
  def isfinite(self): return (self == self).logical_and(self.isinf().logical_not()) if self.dtype.is_float else \
    self._const(True, self.shape, bool_, device=self.device)
  def isclose(self, other, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False):
    """|self - other| <= atol + rtol * |other|, as torch.isclose (infinities close only to themselves)."""
    a, b = self._operands("isclose", other)
    close = (a == b).logical_or((a - b).abs() <= atol + rtol * b.abs())
    if equal_nan: close = close.logical_or(a.isnan().logical_and(b.isnan()))
    return close
  def logaddexp2(self, other):
    """log2(2**self + 2**other), as torch.logaddexp2."""
    a, b = self._operands("logaddexp2", other)
    return (a._f32() * math.log(2)).logaddexp(b._f32() * math.log(2)) * (1 / math.log(2))
  def ldexp(self, other):
    """self * 2**other, as torch.ldexp (a float result)."""
    a, b = self._operands("ldexp", other)
    return a._float() * (2.0 ** b._float())
  def sinc(self):
    """sin(pi x) / (pi x), 1 at 0 (gradient 0 there), as torch.sinc."""
    x = self._f32()
    zero = x == 0
    px = zero._where(1.0, x) * math.pi
    return self._rounded(zero._where(1.0, px.sin() / px))
  def hardshrink(self, lambd: float = 0.5):
    """x where |x| > lambd, else 0, as torch.nn.functional.hardshrink."""
    return (self.abs() > lambd)._where(self, 0.0)
  def softshrink(self, lambd: float = 0.5):
    """x moved toward 0 by lambd, 0 within lambd of it, as torch.nn.functional.softshrink."""
    return (self > lambd)._where(self - lambd, (self < -lambd)._where(self + lambd, 0.0))
  def tanhshrink(self): return self - self.tanh()
  def angle(self):
    """The argument of a real number: 0 for x >= 0, pi for x < 0, nan for nan (gradient 0), as torch.angle."""
    x = self._float()
    return (x != x)._where(x.detach(), (x < 0)._where(math.pi, 0.0))
  def isreal(self):
    """True everywhere: lazygrad's dtypes are real."""
    return self.zeros_like(dtype=bool_).logical_not()
  def logaddexp(self, other):
    """log(exp(self) + exp(other)) without overflow: max + log1p(exp(-|self - other|))."""
    a, b = self._operands("logaddexp", other)
    a, b = a._f32(), b._f32()
    same = a == b   # equal infinities: their difference is nan; so equal values take their own branch
    x, y = same._where(0.0, a), same._where(0.0, b)   # and the other branch sees finite stand-ins (no nan gradient)
    m = x.maximum(y).detach()   # one of the two exps is exactly 1: log1p of the other
    out = same._where((a + b) * 0.5 + math.log(2), m + ((x - m).exp() + (y - m).exp() - 1).log1p())
    return self._rounded(out) if self.dtype.is_float else out
  def lerp(self, end, weight):
    """self + weight * (end - self), as torch.lerp."""
    return self + weight * (end - self)
  def log1p(self):
    """log(1 + x), accurate near 0 (log(u) * x / (u - 1) with u = 1 + x rounded: the rounding error cancels)."""
    x = self._f32()
    u = 1 + x
    exact = (u == 1).logical_or(u == math.inf)
    return self._rounded(exact._where((u == 1)._where(x, u), u.log() * x / exact._where(1.0, u - 1)))
  def expm1(self):
    """exp(x) - 1, accurate near 0 ((u - 1) * x / log(u) with u = exp(x) rounded, for |x| < 1; plain exp(x) - 1
    beyond, where it loses nothing). Each branch sees finite stand-ins where the other is taken (no nan gradient)."""
    x = self._f32()
    small = x.abs() < 1
    xs = small._where(x, 0.5)
    u = xs.exp()
    exact = u == 1
    near_zero = exact._where(xs, (u - 1) * xs / exact._where(1.0, u.log()))
    return self._rounded(small._where(near_zero, small._where(0.0, x).exp() - 1))
  def _f32(self) -> "Tensor":
    """Self in float32 if it is an integer or half tensor: activations compute there, as PyTorch's do."""
    return self if self.dtype in (float32, dtypes.float64) else self.cast(float32)
  def _rounded(self, out: "Tensor") -> "Tensor":
    """`out`, computed from self._f32(), rounded once to self's dtype if that is a half type."""
    return out.cast(self.dtype) if self.dtype in _HALF else out

  # sigmoid and tanh from exp(-|x|), which never overflows: exact to a few float32 ulps over the whole range (see
  # tests/test_numerics.py), with gradients that stay finite (no 0 * inf) for any input
  def sigmoid(self):
    x = self._f32()
    neg = x < 0
    z = neg._where(x, -x).exp()
    # z / (1 + z) as z * (1 / (1 + z)): the gradient through a reciprocal is products of it, with no division of
    # its own (GELU's backward in a matmul's epilogue had three)
    r = (1 + z).reciprocal()
    return self._rounded(neg._where(z * r, r))
  def tanh(self):
    x = self._f32()
    neg = x < 0
    a = neg._where(-x, x)
    w = (a * -2).exp()
    big = (1 - w) / (1 + w)
    # near 0, 1 - w cancels: an odd polynomial there, fed only small inputs so that its unused branch cannot make an
    # inf * 0 gradient
    cut, coefficients = _TANH_POLY[x.dtype.name]
    small = a < cut
    s = small._where(x, 0.0)
    s2 = s * s
    p = functools.reduce(lambda acc, c: c + s2 * acc, reversed(coefficients[:-1]), coefficients[-1])
    return self._rounded(small._where(s + s * (s2 * p), neg._where(-big, big)))
  def relu(self):
    x, zero = self._operands("relu", 0)
    return zero._alu(Op.MAX, x)   # zero first: at 0 the gradient goes to the constant, as torch's relu does
  def silu(self):
    x = self._f32()
    return self._rounded(x * x.sigmoid())

  # activations with torch's formulas, gradients and half-precision rounding (computed in float32, rounded once)
  def hardtanh(self, min_val: float = -1.0, max_val: float = 1.0):
    """x clamped to [min_val, max_val]; the gradient is 1 strictly inside, 0 outside and on the bounds (as torch's)."""
    x = self._f32()
    inside = (x > min_val).logical_and(x < max_val)
    return self._rounded(inside._where(x, (x <= min_val)._where(min_val, (x >= max_val)._where(max_val, x))))
  def relu6(self): return self.hardtanh(0.0, 6.0)
  def hardsigmoid(self): return self._rounded((self._f32() + 3).hardtanh(0.0, 6.0) / 6)
  def hardswish(self):
    x = self._f32()
    return self._rounded(x * (x + 3).hardtanh(0.0, 6.0) / 6)
  def leaky_relu(self, negative_slope: float = 0.01):
    x = self._f32()
    return self._rounded((x > 0)._where(x, x * negative_slope))
  def elu(self, alpha: float = 1.0):
    x = self._f32()
    return self._rounded((x > 0)._where(x, alpha * (x > 0)._where(0.0, x).expm1()))
  def celu(self, alpha: float = 1.0):
    x = self._f32()
    return self._rounded((x > 0)._where(x, alpha * ((x > 0)._where(0.0, x) / alpha).expm1()))
  def selu(self):
    return self._rounded(1.0507009873554804934193349852946 * self._f32().elu(1.6732632423543772848170429916717))
  def softplus(self, beta: float = 1.0, threshold: float = 20.0):
    """log(1 + exp(beta x)) / beta; x itself where beta x > threshold (as torch's)."""
    x = self._f32()
    linear = x * beta > threshold
    return self._rounded(linear._where(x, linear._where(0.0, x * beta).exp().log1p() / beta))
  def softsign(self):
    x = self._f32()
    return self._rounded(x / (1 + x.abs()))
  def mish(self):
    x = self._f32()
    return self._rounded(x * x.softplus().tanh())
  def logsigmoid(self):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): no overflow, no log of 0 (exp(-|x|) built from both sides,
    so the gradient at 0 is 1/2)."""
    x = self._f32()
    neg = x < 0
    return self._rounded(neg._where(x, 0.0) - neg._where(x, -x).exp().log1p())
  def quick_gelu(self):
    x = self._f32()
    return self._rounded(x * (1.702 * x).sigmoid())
  def erf(self):
    """Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), composed from primitives."""
    x = self._float()
    t = (1 + 0.3275911 * x.abs()).reciprocal()
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    y = 1 - poly * (-(x * x)).exp()
    return (x < 0)._where(-y, y)
  def erfc(self):
    """1 - erf(x) to full float32 relative precision in the tails (a Chebyshev fit in t = 1 / (1 + |x| / 2), fractional
    error below 1.2e-7: Numerical Recipes' erfcc); 2 - erfc(|x|) for x < 0."""
    x = self._f32()
    z = (x < 0)._where(-x, x)   # |x|, with erfc's slope at 0 (abs has none there)
    t = 1 / (1 + 0.5 * z)
    poly = 0.17087277
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368,
              -1.26551223):
      poly = c + t * poly
    r = t * (poly - z * z).exp()
    return self._rounded((x < 0)._where(2 - r, r))
  def lgamma(self):
    """log |Gamma(x)|, by Lanczos' approximation (g = 7, 9 terms) for x >= 1/2 and the reflection
    log(pi / |sin(pi x)|) - lgamma(1 - x) below; +inf at 0 and the negative integers."""
    x = self._f32()
    left = x < 0.5
    y = left._where(1 - x, x) - 1   # Lanczos in y + 1 >= 1/2
    series = 0.99999999999980993
    for i, c in enumerate((676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61503916999185,
                           12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7)):
      series = series + c / (y + (i + 1))
    t = y + 7.5
    right = 0.5 * math.log(2 * math.pi) + (y + 0.5) * t.log() - t + series.log()
    pole = left.logical_and(x == x.floor())
    sin = (math.pi * _frac_from_nearest(left._where(x, 0.5))).sin().abs()   # sin(pi x) up to sign, exact argument
    out = left._where(math.log(math.pi) - pole._where(1.0, sin).log() - right, right)
    return self._rounded(pole._where(math.inf, out))
  def digamma(self):
    """d/dx lgamma(x): the recurrence psi(x) = psi(x + 6) - sum 1/(x + k) up to where the asymptotic series holds,
    and the reflection psi(1 - x) - pi / tan(pi x) for x < 1/2; -inf at 0 and nan at the negative integers, as
    torch."""
    x = self._f32()
    left = x < 0.5
    y = left._where(1 - x, x)
    shift = sum(1 / (y + k) for k in range(6))
    z = y + 6
    inv2 = 1 / (z * z)
    psi = z.log() - 0.5 / z - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    right = psi - shift
    pole = left.logical_and(x == x.floor())
    reflected = left.logical_and(pole.logical_not())._where(x, 0.5)   # finite where unused: no nan gradient
    out = left._where(right - math.pi / (math.pi * _frac_from_nearest(reflected)).tan(), right)
    return self._rounded(pole._where((x == 0)._where(-math.inf, math.nan), out))
  def erfinv(self):
    """The inverse of erf on (-1, 1) (±inf at ±1, nan outside), by M. Giles' single-precision approximation
    ("Approximating the erfinv function", 2010): a polynomial in w = -log(1 - x²), another in sqrt(w) in the tails."""
    x = self._f32()
    w = -((1 - x) * (1 + x)).log()
    central, tail = w - 2.5, (w < 5)._where(5.0, w).sqrt() - 3   # a finite stand-in where unused: no nan gradient
    p = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503, -0.00417768164,
              0.246640727, 1.50140941):
      p = c + p * central
    q = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
              1.00167406, 2.83297682):
      q = c + q * tail
    out = (w < 5)._where(p, q) * x
    out = (x.abs() == 1)._where((x > 0)._where(math.inf, -math.inf), out)
    return self._rounded((x.abs() > 1)._where(math.nan, out))
  def gelu(self, approximate: str = "none"):
    x = self._f32()
    if approximate == "tanh":   # 0.5 (1 + tanh(u)) is sigmoid(2u): one exp and one division, and no cancellation
      return self._rounded(x * (math.sqrt(8 / math.pi) * (x + 0.044715 * x * x * x)).sigmoid())
    if approximate != "none": raise _err(ValueError, "gelu", f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return self._rounded(0.5 * x * (1 + (x * (1 / math.sqrt(2))).erf()))
  def square(self): return self * self

  def float(self): return self.cast(float32)
  def half(self): return self.cast(dtypes.float16)
  def bfloat16(self): return self.cast(dtypes.bfloat16)
  def int(self): return self.cast(dtypes.int32)
  def long(self): return self.cast(int64)
  def bool(self): return self.cast(bool_)
  def double(self): return self.cast(dtypes.float64)
  def short(self): return self.cast(dtypes.int16)
  def char(self): return self.cast(dtypes.int8)
  def byte(self): return self.cast(dtypes.uint8)
  def cpu(self): return self.to("cpu")
  def cuda(self, device=None): return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

  def to(self, *args, dtype=None, device=None):
    """`to(dtype)`, `to(device)`, `to(device, dtype)` or `to(other)` (other's device and dtype), as in torch. A move
    to another device is lazy (a COPY in the graph) and gradients flow back through it."""
    for a in args:
      if isinstance(a, TensorCore): device, dtype = a.device, a.dtype
      elif isinstance(a, str) and is_device_name(a): device = a
      else: dtype = a
    out = self.cast(dtype) if dtype is not None else self
    if device is not None and (device := canonical_name(device)) != out.device:
      out = out._result(B.copy(out.node, device), (out,))
    return out
  def type(self, dtype): return self.cast(dtype)


def _nonzero(op: str, divisor: "Tensor") -> "Tensor":
  """An integer divisor, checked: division by zero raises (as in torch), at once for a constant, else when computed."""
  if divisor.node.op is Op.CONST and divisor.node.arg == 0:
    raise _err(DivisionByZero, op, "integer division by zero", "divide by a nonzero number, or in floating point")
  return divisor._checked(divisor, divisor != 0, f"{op}: integer division by zero (divisor {{}})", "DivisionByZero")


def _pow2(e: "Tensor") -> "Tensor":
  """2 ** e as int64 for an integer tensor e in [0, 64) (2 ** 63 wraps to the int64 minimum): one select per bit."""
  e = e.cast(int64)
  full = lambda v: e._const(v, e.shape, int64, device=e.device)
  p = full(1)
  for k in range(6):
    bit = e._alu(Op.IDIV, full(1 << k))._alu(Op.MOD, full(2))
    p = (bit != 0)._where(p * (1 << (1 << k)), p)
  return p


def _inplace_form(name: str):
  def method(self, *args, **kwargs): return self._inplace(name + "_", getattr(self, name)(*args, **kwargs))
  method.__name__, method.__doc__ = name + "_", f"In-place {name}: the result is written into this tensor."
  return method


for _name in ("add", "sub", "mul", "div", "pow", "floor_divide", "remainder", "fmod", "clamp", "clip", "neg", "abs",
              "exp", "log", "sqrt", "rsqrt", "reciprocal", "sigmoid", "tanh", "relu", "floor", "ceil", "round", "trunc",
              "masked_fill", "square", "sin", "cos", "logical_not", "copysign", "bitwise_left_shift",
              "bitwise_right_shift", "clamp_min", "clamp_max", "addcmul", "addcdiv", "lerp", "gcd", "lcm"):
  setattr(Elementwise, _name + "_", _inplace_form(_name))


def searchsorted(sorted_sequence, input, *, out_int32: bool = False, right: bool = False, side: str | None = None,
                 sorter=None):
  """torch.searchsorted: for each value of `input`, the index where it would go in the innermost dim of
  `sorted_sequence` (1-D, or with `input`'s leading dims) to keep it sorted: the count of elements below it (at or
  below it with right=True or side='right'); NaN goes last. int64 (int32 with out_int32)."""
  op = "searchsorted"
  if sorter is not None: raise _err(NotImplementedError, op, "sorter is not supported", "sort the sequence first")
  if side is not None:
    if side not in ("left", "right"): raise _err(ValueError, op, f"side must be 'left' or 'right', got {side!r}")
    if right and side == "left": raise _err(ValueError, op, "side='left' contradicts right=True")
    right = side == "right"
  seq = sorted_sequence
  if not isinstance(input, TensorCore): input = type(seq)(input, device=seq.device)
  if seq.ndim == 0: raise _err(ShapeError, op, "the sorted sequence needs at least 1 dimension")
  if seq.ndim > 1 and tuple(seq.shape[:-1]) != tuple(input.shape[:-1]):
    raise _err(ShapeError, op, f"the sorted sequence's leading dims {_shape_str(seq.shape[:-1])} must be the input's "
               f"{_shape_str(input.shape[:-1])}", "use a 1-D sequence, or match the leading dims")
  n = seq.shape[-1]
  s = seq.reshape((1,) * input.ndim + (n,)) if seq.ndim == 1 else seq.unsqueeze(-2)
  v = input.unsqueeze(-1)
  count = ((s <= v) if right else (s < v)).sum(-1)
  if input.dtype.is_float: count = input.isnan()._where(n, count)
  return count.cast(int32 if out_int32 else int64)


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False):
  """torch.bucketize: the bucket of each element of `input` among the 1-D sorted `boundaries`: i with
  boundaries[i-1] < x <= boundaries[i] (boundaries[i-1] <= x < boundaries[i] with right=True)."""
  if boundaries.ndim != 1:
    raise _err(ShapeError, "bucketize", f"boundaries must be 1-D, got shape {_shape_str(boundaries.shape)}")
  return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def where(condition, input, other):
  """torch.where: `input` where `condition` (a bool tensor) is true, else `other` (tensors or numbers)."""
  if not isinstance(condition, TensorCore) or not condition.dtype.is_bool:
    got = condition.dtype.name if isinstance(condition, TensorCore) else type(condition).__name__
    raise _err(TypeError, "where", f"the condition must be a bool tensor, got {got}", "x.where(condition, other) and "
               "where(condition, x, other) are PyTorch's: x where condition holds, else other (compare to get one)")
  return condition._where(input, other)
