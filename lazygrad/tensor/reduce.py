"""Reductions: sum, mean, max, min, argmax, argmin, var, std, logsumexp, softmax, log_softmax."""
from __future__ import annotations
import math
from .. import dtypes
from ..dtypes import to_dtype, float32, int64
from ..helpers import prod
from ..ir.ops import Op
from ..ir import build as B
from .args import _err, _shape_str, _norm_dim


class Reductions:
  """Tensor's reductions (a mixin: see core)."""
  __slots__ = ()

  def _reduce_dims(self, op: str, dim) -> tuple:
    if dim is None: return tuple(range(self.ndim))
    dims = tuple(sorted({_norm_dim(op, d, self.ndim, self.shape) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}))
    return dims if self.ndim else ()   # a 0-d tensor accepts dim 0 / -1 and has nothing to reduce

  def _reduce(self, prim: Op, dims: tuple, keepdim: bool) -> "Tensor":
    out = self._result(B.reduce(prim, self.node, dims), (self,)) if dims and self.ndim else self
    return out if keepdim else out.reshape(tuple(s for i, s in enumerate(self.shape) if i not in dims))

  def sum(self, dim=None, keepdim=False, dtype=None, axis=None) -> "Tensor":
    dims = self._reduce_dims("sum", axis if dim is None else dim)
    out_dt = to_dtype(dtype) if dtype is not None else int64 if (self.dtype.is_int or self.dtype.is_bool) else self.dtype
    acc_dt = float32 if out_dt in (dtypes.float16, dtypes.bfloat16) else out_dt
    return self.cast(acc_dt)._reduce(Op.REDUCE_SUM, dims, keepdim).cast(out_dt)

  def mean(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    if not self.dtype.is_float:
      raise _err(TypeError, "mean", f"needs a floating point tensor, got {self.dtype.name}", "cast with .float() first")
    dims = self._reduce_dims("mean", axis if dim is None else dim)
    n = prod(self.shape[d] for d in dims)
    s = self.sum(dims, keepdim)
    return (s * (1 / n) if n else s / 0.0).cast(self.dtype)

  def max(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    dims = self._reduce_dims("max", axis if dim is None else dim)
    self._check_nonempty("max", dims)
    return self._reduce(Op.REDUCE_MAX, dims, keepdim)

  def min(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    dims = self._reduce_dims("min", axis if dim is None else dim)
    self._check_nonempty("min", dims)
    if self.dtype.is_float: return -((-self)._reduce(Op.REDUCE_MAX, dims, keepdim))
    return ~(~self)._reduce(Op.REDUCE_MAX, dims, keepdim)   # ~x = -x-1 reverses the order and cannot overflow
  amax, amin = max, min

  def _check_nonempty(self, op, dims):
    if any(self.shape[d] == 0 for d in dims):
      raise _err(IndexError, op, f"cannot reduce over a zero-size dimension of shape {_shape_str(self.shape)}",
                 "reduce over non-empty dims")

  def _arg_reduce(self, op: str, dim, keepdim: bool, largest: bool) -> "Tensor":
    if dim is None: return self.flatten()._arg_reduce(op, 0, False, largest).reshape((1,) * self.ndim if keepdim else ())
    d = _norm_dim(op, dim, self.ndim, self.shape)
    self._check_nonempty(op, (d,))
    x = self if largest else -self if self.dtype.is_float else ~self   # ~x: -x overflows at the integer minimum
    m = x.max(d, keepdim=True)
    hit = (x == m).logical_or(x.isnan()) if x.dtype.is_float else (x == m)
    n = self.shape[d]
    rev = self.arange(n, 0, -1, dtype=int64, device=self.device).reshape(tuple(n if i == d else 1 for i in range(self.ndim)))
    first = hit.where(rev, 0).max(d, keepdim=keepdim)   # largest n-i is the first hit
    return n - first

  def argmax(self, dim=None, keepdim=False, axis=None): return self._arg_reduce("argmax", axis if dim is None else dim, keepdim, True)
  def argmin(self, dim=None, keepdim=False, axis=None): return self._arg_reduce("argmin", axis if dim is None else dim, keepdim, False)

  def var(self, dim=None, keepdim=False, correction=1, unbiased=None, axis=None) -> "Tensor":
    if unbiased is not None: correction = int(unbiased)
    dims = self._reduce_dims("var", axis if dim is None else dim)
    n = prod(self.shape[d] for d in dims)
    x = self._float()
    diff = x - x.mean(dims, keepdim=True)
    return (diff * diff).sum(dims, keepdim) / max(0, n - correction)

  def std(self, dim=None, keepdim=False, correction=1, unbiased=None, axis=None) -> "Tensor":
    return self.var(dim, keepdim, correction, unbiased, axis).sqrt()

  def logsumexp(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    dims = self._reduce_dims("logsumexp", axis if dim is None else dim)
    x = self._float()
    if any(self.shape[d] == 0 for d in dims): return x.sum(dims, keepdim) - math.inf
    m = x.max(dims, keepdim=True).detach()   # the result does not depend on m: no gradient through the max
    m = m.isinf().where(0.0, m)   # as torch: an infinite max is not subtracted (logsumexp([inf, 0]) is inf)
    out = (x - m).exp().sum(dims, keepdim=True).log() + m
    return out if keepdim else out.squeeze(dims)

  def softmin(self, dim=-1, dtype=None) -> "Tensor": return (-self).softmax(dim, dtype)

  def softmax(self, dim=-1, dtype=None, axis=None) -> "Tensor":
    x = self._float() if dtype is None else self.cast(dtype)
    d = _norm_dim("softmax", axis if axis is not None else dim, self.ndim, self.shape) if self.ndim else ()
    if x.numel() == 0: return x
    e = (x - x.max(d, keepdim=True).detach()).exp()   # shifting by the max changes nothing but the rounding
    return e / e.sum(d, keepdim=True)

  def log_softmax(self, dim=-1, dtype=None, axis=None) -> "Tensor":
    x = self._float() if dtype is None else self.cast(dtype)
    d = _norm_dim("log_softmax", axis if axis is not None else dim, self.ndim, self.shape) if self.ndim else ()
    if x.numel() == 0: return x
    shifted = x - x.max(d, keepdim=True).detach()   # as torch: an infinite max gives NaN rows (log_softmax([inf, 0]))
    return shifted - shifted.exp().sum(d, keepdim=True).log()
