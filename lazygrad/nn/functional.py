"""Functional forms of the layers, composed from Tensor ops (and so from the compiler's primitives)."""
from __future__ import annotations
import math
from ..helpers import ShapeError
from ..tensor import Tensor


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
  """torch.nn.functional.layer_norm: normalize over the trailing dims `normalized_shape`; computed in float32
  whatever x's dtype."""
  shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
  if not shape or tuple(x.shape[len(x.shape) - len(shape):]) != shape:
    raise ShapeError(f"layer_norm: normalized_shape {shape} must be the trailing dims of the input of shape "
                     f"{tuple(x.shape)}")
  dims = tuple(range(x.ndim - len(shape), x.ndim))
  xf = x.float()
  mu = xf.mean(dims, keepdim=True)
  out = (xf - mu) * (xf.var(dims, keepdim=True, correction=0) + eps).rsqrt()
  if weight is not None: out = out * weight
  if bias is not None: out = out + bias
  return out.cast(x.dtype)


def embedding(idx: Tensor, weight: Tensor) -> Tensor:
  """Rows of `weight` picked by the integer tensor `idx` (torch.nn.functional.embedding); idx must be in [0, rows)."""
  if not idx.dtype.is_int: raise TypeError(f"embedding: indices must be an integer tensor, got {idx.dtype.name}")
  n = weight.shape[0]
  idx = idx._checked(idx, (idx >= 0).logical_and(idx < n), f"embedding: index {{}} is out of range for {n} embeddings")
  return weight._gather0(idx)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
  if not training or p == 0: return x
  if p >= 1: return x * 0
  keep = Tensor.rand(*x.shape, device=x.device) >= p
  return keep.where(x * (1 / (1 - p)), 0.0)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None,
                                 is_causal: bool = False, scale: float | None = None) -> Tensor:
  """softmax(q @ k^T * scale + mask) @ v over the last two dims, as torch's; attn_mask is a bool (True = keep) or
  an additive float mask. Composed from primitives: the scores are materialized (no flash attention yet)."""
  L, S = q.shape[-2], k.shape[-2]
  scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
  scores = (q @ k.transpose(-2, -1)) * scale
  if is_causal:
    scores = _causal(L, S, q.device).where(scores, -math.inf)
  if attn_mask is not None:
    scores = attn_mask.where(scores, -math.inf) if attn_mask.dtype.is_bool else scores + attn_mask
  return scores.softmax(-1).cast(v.dtype) @ v


def _causal(L: int, S: int, device) -> Tensor:
  """Query i sees keys 0..i (top-left aligned, as torch's is_causal)."""
  rows = Tensor.arange(L, device=device).reshape(L, 1)
  cols = Tensor.arange(S, device=device).reshape(1, S)
  return cols <= rows


def cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
  return logits.cross_entropy(target, reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing)


def gelu(x: Tensor, approximate: str = "none") -> Tensor: return x.gelu(approximate)
