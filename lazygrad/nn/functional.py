"""Functional forms of the layers, composed from Tensor ops (and so from the compiler's primitives)."""
from __future__ import annotations
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


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
  """torch.nn.functional.scaled_dot_product_attention (see Tensor.scaled_dot_product_attention): one fused kernel,
  flash-attention style, forward and backward."""
  return query.scaled_dot_product_attention(key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)


def cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
  return logits.cross_entropy(target, reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing)


def gelu(x: Tensor, approximate: str = "none") -> Tensor: return x.gelu(approximate)
