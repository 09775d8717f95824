"""Linear algebra and neural-network helpers: matmul, linear, tril/triu, cross_entropy."""
from __future__ import annotations
import math
from .. import dtypes
from ..dtypes import promote, float32
from ..helpers import ShapeError
from .args import _err, _shape_str, _broadcast_shape
from .core import TensorCore
from ..ir import build as B


class NNOps:
  """Tensor's linear algebra and nn helpers (a mixin: see core)."""
  __slots__ = ()

  def matmul(self, other: "Tensor") -> "Tensor":
    """torch.matmul: 1-D, 2-D, batched and broadcast. Lowered to a DOT by the compiler."""
    a, b = self, other
    if not isinstance(b, TensorCore): b = type(self)(b, device=self.device)
    if a.ndim == 0 or b.ndim == 0:
      raise _err(ShapeError, "matmul", f"both arguments need at least 1 dimension, got shapes {_shape_str(a.shape)} and "
                 f"{_shape_str(b.shape)}", "use * for scalars")
    a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
    b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
      raise _err(ShapeError, "matmul", f"shapes {_shape_str(a.shape)} and {_shape_str(b.shape)} cannot be multiplied: "
                 f"inner dimensions {a2.shape[-1]} (dim -1 of the first) and {b2.shape[-2]} (dim "
                 f"{-2 if b.ndim > 1 else -1} of the second) differ", "transpose or reshape so the inner sizes match")
    if a.ndim > 2 and b.ndim == 2:   # a stack of rows times one matrix is one 2-d product (one contraction in backward)
      return a.reshape(-1, a.shape[-1]).matmul(b).reshape(a.shape[:-1] + (b.shape[-1],))
    batch = _broadcast_shape("matmul", a2.shape[:-2], b2.shape[:-2])
    dt = promote(a.dtype, b.dtype)
    acc = float32 if dt in (dtypes.float16, dtypes.bfloat16) else dt
    m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    x = a2.cast(acc)._broadcast_to(batch + (m, k)).reshape(batch + (m, 1, k))
    y = b2.cast(acc)._broadcast_to(batch + (k, n)).transpose(-1, -2).reshape(batch + (1, n, k))
    out = (x * y).sum(-1).cast(dt)
    if a.ndim == 1: out = out.squeeze(-2)
    if b.ndim == 1: out = out.squeeze(-1)
    return out
  dot = matmul

  def linear(self, weight: "Tensor", bias: "Tensor | None" = None) -> "Tensor":
    out = self.matmul(weight.T)
    return out if bias is None else out + bias

  def _tri(self, diagonal: int, lower: bool) -> "Tensor":
    if self.ndim < 2: raise _err(ShapeError, "tril" if lower else "triu", f"needs at least 2 dims, got shape {_shape_str(self.shape)}")
    r, c = self.shape[-2:]
    rows = self.arange(r, device=self.device).reshape(r, 1)
    cols = self.arange(c, device=self.device).reshape(1, c)
    keep = (cols <= rows + diagonal) if lower else (cols >= rows + diagonal)
    return keep.where(self, self._const(0, (), self.dtype, device=self.device)).cast(self.dtype)

  def tril(self, diagonal: int = 0): return self._tri(diagonal, True)
  def triu(self, diagonal: int = 0): return self._tri(diagonal, False)

  def scaled_dot_product_attention(self, key: "Tensor", value: "Tensor", attn_mask: "Tensor | None" = None,
                                   dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                   enable_gqa: bool = False) -> "Tensor":
    """torch.nn.functional.scaled_dot_product_attention with self as the query: softmax(q k^T scale + mask) v over
    the last two dims, batch dims broadcast. attn_mask is bool (True = attend) or float (added to the scores); a
    row that attends to no key gives 0, as torch's. One fused kernel (the ATTENTION primitive: no T x T matrix in
    memory) unless it needs dropout or a mask's gradient, which the composed form gives."""
    q, k, v, op = self, key, value, "scaled_dot_product_attention"
    for name, t in (("query", q), ("key", k), ("value", v)):
      if t.ndim < 2: raise _err(ShapeError, op, f"{name} needs at least 2 dims (..., L, E), got shape {_shape_str(t.shape)}")
    if not (q.dtype.is_float and q.dtype == k.dtype == v.dtype):
      raise _err(TypeError, op, f"query, key and value must share one float dtype, got {q.dtype.name}, "
                 f"{k.dtype.name} and {v.dtype.name}", "cast them to one dtype")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
      raise _err(ShapeError, op, f"query {_shape_str(q.shape)}, key {_shape_str(k.shape)} and value "
                 f"{_shape_str(v.shape)} do not fit: need (..., L, E), (..., S, E), (..., S, Ev)")
    if is_causal and attn_mask is not None:
      raise _err(ValueError, op, "attn_mask and is_causal cannot both be given", "fold the causal mask into attn_mask")
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:   # query head h reads key/value head h // group
      if q.shape[-3] % k.shape[-3] or k.shape[-3] != v.shape[-3]:
        raise _err(ShapeError, op, f"enable_gqa needs the query heads ({q.shape[-3]}) to be a multiple of the key and "
                   f"value heads ({k.shape[-3]}, {v.shape[-3]})")
      group = q.shape[-3] // k.shape[-3]
      k, v = (t.unsqueeze(-3).expand(*t.shape[:-2], group, *t.shape[-2:]).reshape(*t.shape[:-3], q.shape[-3], *t.shape[-2:])
              for t in (k, v))
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    lead = _broadcast_shape(op, q.shape[:-2], k.shape[:-2], v.shape[:-2],
                            *([attn_mask.shape[:-2]] if attn_mask is not None and attn_mask.ndim > 2 else []))
    if attn_mask is not None:
      if not isinstance(attn_mask, TensorCore): attn_mask = type(self)(attn_mask, device=q.device)
      if not (attn_mask.dtype.is_bool or attn_mask.dtype.is_float):
        raise _err(TypeError, op, f"attn_mask must be bool or float, got {attn_mask.dtype.name}")
      attn_mask = attn_mask._broadcast_to(lead + (L, S))
      if attn_mask.dtype.is_float: attn_mask = attn_mask.cast(q.dtype)
    if dropout_p > 0 or (attn_mask is not None and attn_mask.requires_grad) or 0 in lead + (L, S):
      return _composed_attention(q, k, v, attn_mask, dropout_p, is_causal, scale)
    q, k, v = (t._broadcast_to(lead + t.shape[-2:]) for t in (q, k, v))
    srcs = (q, k, v) + ((attn_mask,) if attn_mask is not None else ())
    node = B.attention("out", q.node, k.node, v.node, scale, is_causal, attn_mask.node if attn_mask is not None else None)
    for t in srcs[1:]:
      if t.device != q.device: q._check_device(op, t)
    return q._result(node, srcs)

  def cross_entropy(self, target: "Tensor", weight=None, reduction: str = "mean", ignore_index: int = -100,
                    label_smoothing: float = 0.0) -> "Tensor":
    """torch.nn.functional.cross_entropy with class-index targets; classes on dim 1 (or dim 0 for 1-D input)."""
    return (self if self.ndim != 1 else self.unsqueeze(0)).log_softmax(1)._class_loss(
      "cross_entropy", target, weight, reduction, ignore_index, label_smoothing, self.ndim == 1)

  def nll_loss(self, target: "Tensor", weight=None, reduction: str = "mean", ignore_index: int = -100) -> "Tensor":
    """torch.nn.functional.nll_loss: self holds log-probabilities, classes on dim 1 (or dim 0 for 1-D input)."""
    return (self if self.ndim != 1 else self.unsqueeze(0))._class_loss("nll_loss", target, weight, reduction,
                                                                       ignore_index, 0.0, self.ndim == 1)

  def _class_loss(self, op: str, target, weight, reduction: str, ignore_index: int, label_smoothing: float,
                  one: bool) -> "Tensor":
    """-weight[t] * logp[t] per sample (self: log-probabilities, classes on dim 1), ignore_index skipped; 'mean'
    divides by the summed weights of the samples kept, as torch does."""
    if reduction not in ("mean", "sum", "none"):
      raise _err(ValueError, op, f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    tgt = target.reshape(1) if one else target
    if not tgt.dtype.is_int: raise _err(TypeError, op, f"target must hold class indices (an integer tensor), got {tgt.dtype.name}")
    expect = (self.shape[0],) + self.shape[2:]
    if tgt.shape != expect:
      raise _err(ShapeError, op, f"input shape {_shape_str(self.shape[1:] if one else self.shape)} needs target "
                 f"shape {_shape_str(expect[1:] if one else expect)}, got {_shape_str(target.shape)}")
    c = self.shape[1]
    if weight is not None and tuple(weight.shape) != (c,):
      raise _err(ShapeError, op, f"weight must have one value per class ({c}), got shape {_shape_str(weight.shape)}")
    tgt = tgt._checked(tgt, ((tgt >= 0).logical_and(tgt < c)).logical_or(tgt == ignore_index),
                       f"{op}: target {{}} is out of bounds for {c} classes")
    logp = self.permute((0,) + tuple(range(2, self.ndim)) + (1,))           # classes last
    hit = tgt.unsqueeze(-1) == self.arange(c, device=self.device)
    w = hit.where(weight, 0.0).sum(-1) if weight is not None else None     # weight[target]
    nll = -hit.where(logp, 0.0).sum(-1)
    if w is not None: nll = nll * w
    if label_smoothing:
      smooth = -(logp * weight).sum(-1) / c if weight is not None else -logp.mean(-1)
      nll = (1 - label_smoothing) * nll + label_smoothing * smooth
    valid = tgt != ignore_index
    nll = valid.where(nll, 0.0)
    if one: nll = nll.reshape(())
    if reduction == "none": return nll
    if reduction == "sum": return nll.sum()
    return nll.sum() / (valid.where(w, 0.0) if w is not None else valid.cast(float32)).sum()


def _composed_attention(q, k, v, mask, dropout_p: float, is_causal: bool, scale: float):
  """Attention from primitives, the T x T scores in memory: for dropout on the probabilities, and for a float mask
  that needs its gradient."""
  L, S = q.shape[-2], k.shape[-2]
  scores = (q @ k.transpose(-2, -1)) * scale
  if is_causal: scores = (q.arange(S, device=q.device).reshape(1, S) <= q.arange(L, device=q.device).reshape(L, 1)).where(scores, -math.inf)
  if mask is not None: scores = mask.where(scores, -math.inf) if mask.dtype.is_bool else scores + mask
  keeps = scores.max(-1, keepdim=True) > -math.inf   # a row that attends to no key gives 0, as torch's
  probs = keeps.where(scores.softmax(-1), 0.0)
  if dropout_p > 0:
    keep = type(q).rand(*probs.shape, device=q.device) >= dropout_p
    probs = keep.where(probs * (1 / (1 - dropout_p)), 0.0) if dropout_p < 1 else probs * 0
  return probs.cast(v.dtype) @ v
