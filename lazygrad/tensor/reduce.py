"""Reductions: sum, mean, prod, max, min, argmax, argmin, all, any, var, std, logsumexp, softmax, log_softmax; scans:
cumsum, cumprod, cummax, cummin, logcumsumexp; sorting and selection: sort, argsort, msort, topk, kthvalue, median."""
from __future__ import annotations
import math
from typing import NamedTuple, TYPE_CHECKING
import numpy as np
from .. import dtypes
from ..dtypes import to_dtype, float32, int64, uint8
from ..helpers import prod
from ..ir.ops import Op
from ..ir import build as B
from ..runtime.device import get_device
from .args import _err, _shape_str, _norm_dim
from .core import TensorCore
if TYPE_CHECKING: from . import Tensor


class ValuesIndices(NamedTuple):
  """The (values, indices) pair of sort, topk, cummax, cummin, kthvalue and median (as torch.return_types')."""
  values: "Tensor"
  indices: "Tensor"


class MinMax(NamedTuple):
  """aminmax's (min, max) pair (as torch.return_types.aminmax)."""
  min: "Tensor"
  max: "Tensor"


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

  def _sum_dtype(self, dtype):
    """The result dtype of sum, prod, cumsum, cumprod: `dtype` if given, else int64 for an integer or bool tensor."""
    return to_dtype(dtype) if dtype is not None else int64 if (self.dtype.is_int or self.dtype.is_bool) else self.dtype

  def _accumulate(self, prim: Op, dims: tuple, keepdim: bool, dtype) -> "Tensor":
    """A sum or product in its result dtype (`_sum_dtype`), half precision accumulated in float32."""
    out_dt = self._sum_dtype(dtype)
    acc_dt = float32 if out_dt in (dtypes.float16, dtypes.bfloat16) else out_dt
    return self.cast(acc_dt)._reduce(prim, dims, keepdim).cast(out_dt)

  def sum(self, dim=None, keepdim=False, dtype=None, axis=None) -> "Tensor":
    return self._accumulate(Op.REDUCE_SUM, self._reduce_dims("sum", axis if dim is None else dim), keepdim, dtype)

  def mean(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    if not self.dtype.is_float:
      raise _err(TypeError, "mean", f"needs a floating point tensor, got {self.dtype.name}", "cast with .float() first")
    dims = self._reduce_dims("mean", axis if dim is None else dim)
    n = prod(self.shape[d] for d in dims)
    s = self.sum(dims, keepdim)
    return (s * (1 / n) if n else s / 0.0).cast(self.dtype)

  def amax(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    """The largest element over `dim` (an int, a tuple, or None: every element); NaN wins, as in torch."""
    dims = self._reduce_dims("amax", axis if dim is None else dim)
    self._check_nonempty("amax", dims)
    return self._reduce(Op.REDUCE_MAX, dims, keepdim)

  def amin(self, dim=None, keepdim=False, axis=None) -> "Tensor":
    dims = self._reduce_dims("amin", axis if dim is None else dim)
    self._check_nonempty("amin", dims)
    if self.dtype.is_float: return -((-self)._reduce(Op.REDUCE_MAX, dims, keepdim))
    return ~(~self)._reduce(Op.REDUCE_MAX, dims, keepdim)   # ~x = -x-1 reverses the order and cannot overflow

  def max(self, dim=None, keepdim=False) -> "Tensor | ValuesIndices":
    """torch.max: of every element (a tensor); along an int `dim`, the (values, indices) pair (the first largest);
    with a tensor, the elementwise maximum."""
    return self._extreme("max", dim, keepdim, True)

  def min(self, dim=None, keepdim=False) -> "Tensor | ValuesIndices":
    """torch.min: of every element, (values, indices) along an int `dim`, or the elementwise minimum."""
    return self._extreme("min", dim, keepdim, False)

  def _extreme(self, op: str, dim, keepdim: bool, largest: bool):
    if isinstance(dim, TensorCore): return self.maximum(dim) if largest else self.minimum(dim)
    if dim is None: return self.amax() if largest else self.amin()
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
      raise _err(TypeError, op, f"dim must be an int (torch.{op} gives values and indices along one dim), got "
                 f"{dim!r}", "use amax or amin to reduce several dims at once")
    values = self.amax(dim, keepdim) if largest else self.amin(dim, keepdim)
    return ValuesIndices(values, self._arg_reduce(f"arg{op}", dim, keepdim, largest))

  def norm(self, p="fro", dim=None, keepdim=False) -> "Tensor":
    """torch.norm of the elements over `dim` (all if None) as one vector: p = 2 ('fro'), 1, inf, -inf, 0 (nonzero
    count) or any other number ((sum |x|^p)^(1/p))."""
    x = self._float().abs()
    if p in ("fro", 2): return (x * x).sum(dim, keepdim).sqrt()
    if p == 1: return x.sum(dim, keepdim)
    if p == math.inf: return x.amax(dim, keepdim)
    if p == -math.inf: return x.amin(dim, keepdim)
    if p == 0: return (x != 0).sum(dim, keepdim).cast(x.dtype)
    if not isinstance(p, (int, float)): raise _err(ValueError, "norm", f"p must be a number or 'fro', got {p!r}")
    return (x ** p).sum(dim, keepdim) ** (1 / p)

  def nansum(self, dim=None, keepdim=False, dtype=None) -> "Tensor":
    """The sum with NaN counted as 0 (torch.nansum)."""
    return (self.isnan()._where(0, self) if self.dtype.is_float else self).sum(dim, keepdim, dtype)

  def nanmean(self, dim=None, keepdim=False) -> "Tensor":
    """The mean of the elements that are not NaN (torch.nanmean; NaN where there are none)."""
    kept = self.isnan().logical_not()
    return self.nansum(dim, keepdim) / kept.sum(dim, keepdim).cast(self.dtype)

  def aminmax(self, dim=None, keepdim=False):
    """(min, max) over `dim` (every element if None), as torch.aminmax."""
    return MinMax(self.amin(dim, keepdim), self.amax(dim, keepdim))

  def trace(self) -> "Tensor":
    """The sum of the main diagonal of a 2-D tensor (torch.trace)."""
    if self.ndim != 2: raise _err(ValueError, "trace", f"expects a 2-D tensor, got shape {_shape_str(self.shape)}")
    return self.diagonal().sum()

  def count_nonzero(self, dim=None) -> "Tensor":
    """The number of nonzero elements over `dim` (all if None), int64."""
    return (self != 0).sum(dim)

  def prod(self, dim=None, keepdim=False, dtype=None) -> "Tensor":
    """The product over `dim` (every element if None); integer and bool tensors multiply in int64, as torch's."""
    return self._accumulate(Op.REDUCE_PROD, self._reduce_dims("prod", dim), keepdim, dtype)

  def any(self, dim=None, keepdim=False) -> "Tensor":
    """Is any element along `dim` nonzero (NaN counts)? bool (uint8 for a uint8 tensor, as torch's); False if empty."""
    return self._any("any", dim, keepdim, False)

  def all(self, dim=None, keepdim=False) -> "Tensor":
    """Is every element along `dim` nonzero (NaN counts)? bool (uint8 for a uint8 tensor, as torch's); True if empty."""
    return self._any("all", dim, keepdim, True)

  def _any(self, op: str, dim, keepdim: bool, negated: bool) -> "Tensor":
    dims = self._reduce_dims(op, dim)
    hit = self if self.dtype.is_bool else self != 0
    if negated: hit = hit.logical_not()   # all: no element is zero
    out = hit.cast(uint8)._reduce(Op.REDUCE_MAX, dims, keepdim).cast(dtypes.bool_)   # an empty max is a padded 0
    if negated: out = out.logical_not()
    return out.cast(uint8) if self.dtype == uint8 else out

  # ---------------------------------------------------------------- scans
  def _scan(self, op: str, dim) -> "Tensor":
    d = _norm_dim(op, dim, self.ndim, self.shape)
    return self._result(B.scan(_SCAN_OPS[op], self.node, d) if self.ndim else self.node, (self,))

  def cumsum(self, dim, dtype=None) -> "Tensor":
    """Running sums along `dim`; integer and bool tensors sum in int64, as torch's."""
    return self.cast(self._sum_dtype(dtype))._scan("cumsum", dim)

  def cumprod(self, dim, dtype=None) -> "Tensor":
    """Running products along `dim`; integer and bool tensors multiply in int64, as torch's."""
    return self.cast(self._sum_dtype(dtype))._scan("cumprod", dim)

  def logcumsumexp(self, dim) -> "Tensor":
    """log(cumsum(exp(x))) along `dim`, without overflow."""
    if not self.dtype.is_float:
      raise _err(TypeError, "logcumsumexp", f"needs a floating point tensor, got {self.dtype.name}",
                 "cast with .float() first")
    return self._scan("logcumsumexp", dim)

  def cummax(self, dim) -> ValuesIndices:
    """Running maxima along `dim` and where each is (the last of equal ones; NaN propagates), as torch.cummax."""
    return self._cum_extreme("cummax", dim, True)

  def cummin(self, dim) -> ValuesIndices:
    """Running minima along `dim` and where each is (the last of equal ones; NaN propagates), as torch.cummin."""
    return self._cum_extreme("cummin", dim, False)

  def _cum_extreme(self, op: str, dim, largest: bool) -> ValuesIndices:
    d = _norm_dim(op, dim, self.ndim, self.shape)
    x = self.cast(uint8) if self.dtype.is_bool else self
    if not largest: x = -x if x.dtype.is_float else ~x   # ~x = -x-1 reverses the order and cannot overflow
    if not self.ndim: values, indices = x._result(x.node, (x,)), self.zeros((), dtype=int64, device=self.device)
    else:
      values = x._scan("cummax", d)
      indices = x._result(B.scan_argmax(x.node, values.node, d), (x,))
    if not largest: values = -values if values.dtype.is_float else ~values
    return ValuesIndices(values.cast(self.dtype), indices)

  # ---------------------------------------------------------------- sorting and selection
  def sort(self, dim=-1, descending=False, stable=False) -> ValuesIndices:
    """Values sorted along `dim` and where each was; always stable (equal elements keep their order), NaN above every
    number, as torch.sort(stable=True). A row longer than the device sorts in one program is refused."""
    d = _norm_dim("sort", dim, self.ndim, self.shape)
    if not self.ndim: return ValuesIndices(self._result(self.node, (self,)), self.zeros((), dtype=int64,
                                                                                          device=self.device))
    limit = get_device(self.device).lowering.max_sort
    if limit is not None and self.shape[d] > limit:
      raise _err(ValueError, "sort", f"dim {d} of shape {_shape_str(self.shape)} is longer than the {limit} elements "
                 f"the {self.device} device sorts in one program", "sort on the numpy device, or shorter rows")
    x = self.cast(uint8) if self.dtype.is_bool else self
    values, indices = (x._result(B.sort(x.node, d, descending, part), (x,)) for part in ("values", "indices"))
    return ValuesIndices(values.cast(self.dtype), indices)

  def argsort(self, dim=-1, descending=False, stable=False) -> "Tensor":
    """Where the sorted values along `dim` were (see sort)."""
    return self.sort(dim, descending, stable).indices

  def msort(self) -> "Tensor":
    """The values sorted along dim 0."""
    return self.sort(0).values

  def topk(self, k: int, dim=-1, largest=True, sorted=True) -> ValuesIndices:
    """The k largest (smallest) values along `dim`, largest (smallest) first, and where each was; NaN counts as the
    largest. Equal values come in their order along `dim`."""
    d, n = self._select_dim("topk", k, dim, 0)
    out = self.sort(d, descending=largest)
    window = tuple((0, k) if i == d else None for i in range(self.ndim))
    return ValuesIndices(*(t.shrink(window) if self.ndim else t for t in out))

  def quantile(self, q, dim=None, keepdim=False, *, interpolation: str = "linear") -> "Tensor":
    """torch.quantile: the q-th quantiles (q a float, a list or a 1-D tensor in [0, 1]; a 1-D q puts its own dim
    first) along `dim` (every element if None), between the two nearest order statistics by `interpolation`
    ('linear', 'lower', 'higher', 'midpoint', 'nearest'); NaN where a row holds a NaN."""
    return self._quantile("quantile", q, dim, keepdim, interpolation, skip_nan=False)

  def nanquantile(self, q, dim=None, keepdim=False, *, interpolation: str = "linear") -> "Tensor":
    """torch.nanquantile: quantile over each row's numbers, ignoring NaN (NaN where a row has none)."""
    return self._quantile("nanquantile", q, dim, keepdim, interpolation, skip_nan=True)

  def _quantile(self, op: str, q, dim, keepdim: bool, interpolation: str, skip_nan: bool) -> "Tensor":
    if not self.dtype.is_float:
      raise _err(TypeError, op, f"needs a float tensor, got {self.dtype.name}", "cast with .float() first")
    modes = ("linear", "lower", "higher", "midpoint", "nearest")
    if interpolation not in modes: raise _err(ValueError, op, f"interpolation must be one of {modes}, got {interpolation!r}")
    one = not isinstance(q, (TensorCore, list, tuple))
    qt = q.cast(self.dtype).reshape(-1) if isinstance(q, TensorCore) else \
      type(self)(np.array(q, dtype=np.float64).reshape(-1), dtype=self.dtype, device=self.device)
    if not isinstance(q, TensorCore) and not np.all((np.asarray(q) >= 0) & (np.asarray(q) <= 1)):
      raise _err(ValueError, op, f"q must be in [0, 1], got {q!r}")
    x, d = (self.reshape(-1), 0) if dim is None else (self, _norm_dim(op, dim, self.ndim, self.shape))
    if x.ndim == 0: x, d = x.reshape(1), 0
    n = x.shape[d]
    if n == 0: raise _err(IndexError, op, f"cannot take a quantile of an empty dim of shape {_shape_str(self.shape)}")
    rows = x.movedim(d, -1).sort(-1).values   # NaN sorts last
    nans = x.isnan().sum(d).cast(self.dtype)   # per row
    count = (n - nans) if skip_nan else x._const(float(n), (), self.dtype, device=self.device)
    k = qt.shape[0]
    lead = (k,) + (1,) * (rows.ndim - 1)
    pos = qt.reshape(lead) * (count - 1).clamp(min=0).unsqueeze(0)   # (k, *rows) fractional ranks
    lo, hi = pos.floor(), pos.ceil()
    if interpolation == "nearest": lo = hi = pos.round()
    def at(rank):
      idx = rank.cast(int64).unsqueeze(-1).expand(k, *rows.shape[:-1], 1)
      return rows.unsqueeze(0).expand(k, *rows.shape).gather(-1, idx).squeeze(-1)
    v_lo, v_hi = at(lo), at(hi)
    out = {"linear": v_lo + (v_hi - v_lo) * (pos - lo), "lower": v_lo, "higher": v_hi,
           "midpoint": (v_lo + v_hi) * 0.5, "nearest": v_lo}[interpolation]
    out = ((count == 0) if skip_nan else (nans > 0)).unsqueeze(0)._where(math.nan, out)
    if keepdim:
      out = out.reshape((k,) + (1,) * self.ndim) if dim is None else out.unsqueeze(d + 1)
    return out.squeeze(0) if one else out

  def kthvalue(self, k: int, dim=-1, keepdim=False) -> ValuesIndices:
    """The k-th smallest value along `dim` (k from 1; NaN counts as the largest) and where it was."""
    d, n = self._select_dim("kthvalue", k, dim, 1)
    return self._pick_sorted(d, self._const(k - 1, (), int64, device=self.device), keepdim)

  def median(self, dim=None, keepdim=False) -> "Tensor | ValuesIndices":
    """The lower median along `dim` and where it was, NaN (the first) where a row holds one, as torch.median; without
    `dim`, the median of every element (values only)."""
    if dim is None:
      if self.numel() == 0: return self._const(math.nan, (), self.dtype, device=self.device)
      return self.flatten().median(0).values
    d, n = self._select_dim("median", None, dim, 1)
    if n == 0:
      raise _err(IndexError, "median", f"cannot take the median of an empty dim {d} of shape {_shape_str(self.shape)}",
                 "use a non-empty dim")
    pos = self._const((n - 1) // 2, (), int64, device=self.device)
    if self.dtype.is_float:   # a row with NaN: its first NaN, which sorts after the numbers
      nans = self.isnan().sum(d, keepdim=True) if self.ndim else self.isnan().cast(int64)
      pos = (nans > 0)._where(n - nans, pos)
    return self._pick_sorted(d, pos, keepdim)

  def _select_dim(self, op: str, k: int | None, dim, lo: int) -> tuple[int, int]:
    """dim, normalized, and its size; refuses a k (if given) outside [lo, size], and a bool tensor where k counts
    from 1."""
    if lo and self.dtype.is_bool:
      raise _err(TypeError, op, "is not defined for a bool tensor", "cast with .int() first")
    d = _norm_dim(op, dim, self.ndim, self.shape)
    n = self.shape[d] if self.ndim else 1
    if k is not None and (not isinstance(k, int) or not lo <= k <= n):
      raise _err(RuntimeError, op, f"k={k!r} is out of range for dim {d} of size {n} (shape {_shape_str(self.shape)})",
                 f"use an int k in [{lo}, {n}]")
    return d, n

  def mode(self, dim=-1, keepdim=False) -> ValuesIndices:
    """torch.mode: the most frequent value along `dim` (the smallest of equally frequent ones; each NaN counts once,
    sorting after every number) and where it last occurs. From the sort: each element's count within its run of equal values, then the first
    position where that count is largest (the end of the smallest most frequent run; the sort keeps equal values in
    order, so it is the last occurrence)."""
    d, n = self._select_dim("mode", None, dim, 0)
    if n == 0:
      raise _err(IndexError, "mode", f"cannot take the mode of an empty dim {d} of shape {_shape_str(self.shape)}",
                 "use a non-empty dim")
    if not self.ndim: return self.sort()
    s = self.sort(d).values
    i = self.arange(n, device=self.device).reshape(tuple(n if k == d else 1 for k in range(self.ndim)))
    starts = (i == 0).logical_or(s != s.roll(1, d))._where(i, 0)
    pos = (i - starts.cummax(d).values).argmax(d, keepdim=True)
    return self._pick_sorted(d, pos, keepdim)

  def _pick_sorted(self, d: int, pos: "Tensor", keepdim: bool) -> ValuesIndices:
    """The ascending sort's element at `pos` along `d` (a tensor broadcast along d)."""
    s = self.sort(d)
    if not self.ndim: return s
    n = self.shape[d]
    hit = self.arange(n, device=self.device).reshape(tuple(n if i == d else 1 for i in range(self.ndim))) == pos
    values = hit._where(s.values, self._const(0, (), self.dtype, device=self.device)).sum(d, keepdim, self.dtype)
    return ValuesIndices(values, hit._where(s.indices, 0).sum(d, keepdim))

  def _check_nonempty(self, op, dims):
    if any(self.shape[d] == 0 for d in dims):
      raise _err(IndexError, op, f"cannot reduce over a zero-size dimension of shape {_shape_str(self.shape)}",
                 "reduce over non-empty dims")

  def _arg_reduce(self, op: str, dim, keepdim: bool, largest: bool) -> "Tensor":
    if dim is None: return self.flatten()._arg_reduce(op, 0, False, largest).reshape((1,) * self.ndim if keepdim else ())
    d = _norm_dim(op, dim, self.ndim, self.shape)
    self._check_nonempty(op, (d,))
    x = self if largest else -self if self.dtype.is_float else ~self   # ~x: -x overflows at the integer minimum
    m = x.amax(d, keepdim=True)
    hit = (x == m).logical_or(x.isnan()) if x.dtype.is_float else (x == m)
    n = self.shape[d]
    rev = self.arange(n, 0, -1, dtype=int64, device=self.device).reshape(tuple(n if i == d else 1 for i in range(self.ndim)))
    first = hit._where(rev, 0).amax(d, keepdim=keepdim)   # largest n-i is the first hit
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
    m = x.amax(dims, keepdim=True).detach()   # the result does not depend on m: no gradient through the max
    m = m.isinf()._where(0.0, m)   # as torch: an infinite max is not subtracted (logsumexp([inf, 0]) is inf)
    out = (x - m).exp().sum(dims, keepdim=True).log() + m
    return out if keepdim else out.squeeze(dims)

  def softmin(self, dim=-1, dtype=None) -> "Tensor": return (-self).softmax(dim, dtype)

  def softmax(self, dim=-1, dtype=None, axis=None) -> "Tensor":
    x = self._float() if dtype is None else self.cast(dtype)
    d = _norm_dim("softmax", axis if axis is not None else dim, self.ndim, self.shape) if self.ndim else ()
    if x.numel() == 0: return x
    e = (x - x.amax(d, keepdim=True).detach()).exp()   # shifting by the max changes nothing but the rounding
    return e / e.sum(d, keepdim=True)

  def log_softmax(self, dim=-1, dtype=None, axis=None) -> "Tensor":
    x = self._float() if dtype is None else self.cast(dtype)
    d = _norm_dim("log_softmax", axis if axis is not None else dim, self.ndim, self.shape) if self.ndim else ()
    if x.numel() == 0: return x
    shifted, lse = x._log_softmax_parts(d)
    return shifted - lse

  def _log_softmax_parts(self, d) -> tuple["Tensor", "Tensor"]:
    """(self minus its max along d, the log of the sum of exp of that): log_softmax is their difference."""
    shifted = self - self.amax(d, keepdim=True).detach()   # as torch: an infinite max gives NaN rows (log_softmax([inf, 0]))
    return shifted, shifted.exp().sum(d, keepdim=True).log()


_SCAN_OPS = {"cumsum": "sum", "cumprod": "prod", "cummax": "max", "logcumsumexp": "logaddexp"}
