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


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
  return input.cross_entropy(target, weight, reduction, ignore_index, label_smoothing)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
  return input.nll_loss(target, weight, reduction, ignore_index)


def _reduced(op: str, loss: Tensor, reduction: str) -> Tensor:
  if reduction == "mean": return loss.mean()
  if reduction == "sum": return loss.sum()
  if reduction == "none": return loss
  raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _pair(op: str, input: Tensor, target: Tensor) -> Tensor:
  """target as a tensor of input's shape (torch broadcasts, and warns when the shapes differ)."""
  target = target if isinstance(target, Tensor) else Tensor(target, device=input.device)
  if tuple(target.shape) != tuple(input.shape):
    raise ShapeError(f"{op}: target shape {tuple(target.shape)} differs from input shape {tuple(input.shape)}; "
                     "Fix: reshape one of them (torch would broadcast them, usually by mistake)")
  return target


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
  return _reduced("mse_loss", (input - _pair("mse_loss", input, target)).square(), reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
  return _reduced("l1_loss", (input - _pair("l1_loss", input, target)).abs(), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
  """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (beta 0: the l1 loss)."""
  d = input - _pair("smooth_l1_loss", input, target)
  if beta == 0: return _reduced("smooth_l1_loss", d.abs(), reduction)
  a = d.abs()
  return _reduced("smooth_l1_loss", (a < beta).where(0.5 * d * d / beta, a - 0.5 * beta), reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
  """-(y log x + (1 - y) log(1 - x)), each log clamped at -100 as torch clamps it (no infinite loss)."""
  y = _pair("binary_cross_entropy", input, target)
  loss = -(y * input.log().maximum(-100.0) + (1 - y) * (1 - input).log().maximum(-100.0))
  return _reduced("binary_cross_entropy", loss * weight if weight is not None else loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
  """binary_cross_entropy(sigmoid(x), y), computed stably: (1 - y) x + (1 + (pos_weight - 1) y) log(1 + exp(-x))."""
  y = _pair("binary_cross_entropy_with_logits", input, target)
  x = input
  softplus_neg = -x.logsigmoid()   # log(1 + exp(-x)), without overflow
  loss = (1 - y) * x + (softplus_neg if pos_weight is None else (1 + (pos_weight - 1) * y) * softplus_neg)
  return _reduced("binary_cross_entropy_with_logits", loss * weight if weight is not None else loss, reduction)


def kl_div(input: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False) -> Tensor:
  """target * (log target - input) (input: log-probabilities; 0 where target is 0); 'batchmean' divides the sum by
  the batch size, the mathematically right KL divergence."""
  t = _pair("kl_div", input, target)
  loss = t.exp() * (t - input) if log_target else (t > 0).where(t * (t > 0).where(t, 1.0).log(), 0.0) - t * input
  if reduction == "batchmean": return loss.sum() / (input.shape[0] if input.ndim else 1)
  return _reduced("kl_div", loss, reduction)


def relu(x: Tensor) -> Tensor: return x.relu()
def silu(x: Tensor) -> Tensor: return x.silu()
def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor: return x.leaky_relu(negative_slope)
def elu(x: Tensor, alpha: float = 1.0) -> Tensor: return x.elu(alpha)
def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor: return x.softplus(beta, threshold)
def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor: return x.hardtanh(min_val, max_val)
def softmax(x: Tensor, dim: int = -1) -> Tensor: return x.softmax(dim)
def log_softmax(x: Tensor, dim: int = -1) -> Tensor: return x.log_softmax(dim)


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
  """x / max(||x||_p over dim, eps), as torch.nn.functional.normalize."""
  norm = (x.abs() ** p).sum(dim, keepdim=True) ** (1 / p) if p != 2 else (x * x).sum(dim, keepdim=True).sqrt()
  return x / norm.maximum(eps)


def gelu(x: Tensor, approximate: str = "none") -> Tensor: return x.gelu(approximate)
