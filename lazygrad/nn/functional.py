"""Functional forms of the layers, composed from Tensor ops (and so from the compiler's primitives)."""
from __future__ import annotations
import math
import ml_dtypes
from .. import amp
from ..autograd import no_grad
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
  return keep._where(x * (1 / (1 - p)), 0.0)


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
  """torch.nn.functional.pad: (before, after) pairs from the last dim; mode 'constant' (value, default 0),
  'reflect', 'replicate' or 'circular'."""
  return input.pad(pad, 0.0 if value is None else value, mode)


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
  return _reduced("smooth_l1_loss", (a < beta)._where(0.5 * d * d / beta, a - 0.5 * beta), reduction)


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
  loss = t.exp() * (t - input) if log_target else (t > 0)._where(t * (t > 0)._where(t, 1.0).log(), 0.0) - t * input
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
def softmin(x: Tensor, dim: int = -1) -> Tensor: return x.softmin(dim)
def relu6(x: Tensor) -> Tensor: return x.relu6()
def hardshrink(x: Tensor, lambd: float = 0.5) -> Tensor: return x.hardshrink(lambd)
def softshrink(x: Tensor, lambd: float = 0.5) -> Tensor: return x.softshrink(lambd)
def tanhshrink(x: Tensor) -> Tensor: return x.tanhshrink()
def hardsigmoid(x: Tensor) -> Tensor: return x.hardsigmoid()
def hardswish(x: Tensor) -> Tensor: return x.hardswish()
def celu(x: Tensor, alpha: float = 1.0) -> Tensor: return x.celu(alpha)
def selu(x: Tensor) -> Tensor: return x.selu()
def softsign(x: Tensor) -> Tensor: return x.softsign()
def mish(x: Tensor) -> Tensor: return x.mish()
def logsigmoid(x: Tensor) -> Tensor: return x.logsigmoid()
def sigmoid(x: Tensor) -> Tensor: return x.sigmoid()
def tanh(x: Tensor) -> Tensor: return x.tanh()
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor: return x.linear(weight, bias)


def glu(x: Tensor, dim: int = -1) -> Tensor:
  """The first half of `dim` gated by the sigmoid of the second (torch.nn.functional.glu)."""
  if x.shape[dim] % 2: raise ShapeError(f"glu: dim {dim} of shape {tuple(x.shape)} must have an even size")
  a, b = x.chunk(2, dim)
  return a * b.sigmoid()


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
  """x1·x2 / (max(||x1||, eps) · max(||x2||, eps)) along `dim`, broadcasting (torch's)."""
  n1 = (x1 * x1).sum(dim).sqrt().maximum(eps)
  n2 = (x2 * x2).sum(dim).sqrt().maximum(eps)
  return (x1 * x2).sum(dim) / (n1 * n2)


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
  """x / max(||x||_p over dim, eps), as torch.nn.functional.normalize."""
  norm = (x.abs() ** p).sum(dim, keepdim=True) ** (1 / p) if p != 2 else (x * x).sum(dim, keepdim=True).sqrt()
  return x / norm.maximum(eps)


def gelu(x: Tensor, approximate: str = "none") -> Tensor: return x.gelu(approximate)


# ---------------------------------------------------------------- convolution, pooling, resampling (tensor/conv.py)
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups=1):
  return input.conv1d(weight, bias, stride, padding, dilation, groups)
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups=1):
  return input.conv2d(weight, bias, stride, padding, dilation, groups)
def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups=1):
  return input.conv3d(weight, bias, stride, padding, dilation, groups)
def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
  return input.conv_transpose1d(weight, bias, stride, padding, output_padding, groups, dilation)
def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
  return input.conv_transpose2d(weight, bias, stride, padding, output_padding, groups, dilation)
def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
  return input.conv_transpose3d(weight, bias, stride, padding, output_padding, groups, dilation)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
  """torch.nn.functional.unfold (im2col): (N, C, H, W) -> (N, C * kh * kw, blocks)."""
  return input._im2col(kernel_size, dilation, padding, stride)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
  return input.max_pool1d(kernel_size, stride, padding, dilation, ceil_mode, return_indices)
def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
  return input.max_pool2d(kernel_size, stride, padding, dilation, ceil_mode, return_indices)
def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
  return input.max_pool3d(kernel_size, stride, padding, dilation, ceil_mode, return_indices)
def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
  return input.avg_pool1d(kernel_size, stride, padding, ceil_mode, count_include_pad)
def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
  return input.avg_pool2d(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
  return input.avg_pool3d(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor: return input.adaptive_avg_pool1d(output_size)
def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor: return input.adaptive_avg_pool2d(output_size)
def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor: return input.adaptive_avg_pool3d(output_size)
def adaptive_max_pool1d(input: Tensor, output_size, return_indices=False):
  return input.adaptive_max_pool1d(output_size, return_indices)
def adaptive_max_pool2d(input: Tensor, output_size, return_indices=False):
  return input.adaptive_max_pool2d(output_size, return_indices)
def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
  return input.max_unpool1d(indices, kernel_size, stride, padding, output_size)
def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
  return input.max_unpool2d(indices, kernel_size, stride, padding, output_size)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
  """torch.nn.functional.interpolate (see Tensor.interpolate); no antialias."""
  if antialias: raise ValueError("interpolate: antialias=True is not supported. Fix: pass antialias=False")
  return input.interpolate(size, scale_factor, mode, align_corners, recompute_scale_factor)


# ---------------------------------------------------------------- normalization over channels and groups
def _standardized(x: Tensor, dims: tuple, eps: float) -> tuple[Tensor, Tensor, Tensor]:
  """(x - mean) / sqrt(var + eps) over `dims` in float32, with the mean and the summed squared deviations."""
  x = x.float()
  mean = x.mean(dims, keepdim=True)
  squares = ((x - mean) * (x - mean)).sum(dims, keepdim=True)
  n = math.prod(x.shape[d] for d in dims)
  return (x - mean) * (squares / n + eps).rsqrt(), mean, squares


def _update_running(running: Tensor | None, stat: Tensor, momentum):
  """running = (1 - momentum) running + momentum stat, in place (torch's running statistics)."""
  if running is None: return
  with no_grad(): running.assign(stat.detach() * momentum + running * (1 - momentum))


def _per_channel(x: Tensor, out: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
  """out * weight + bias with one value per channel (dim 1), cast to x's dtype."""
  shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
  if weight is not None: out = out * weight.reshape(shape)
  if bias is not None: out = out + bias.reshape(shape)
  return out.cast(x.dtype)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum=0.1, eps: float = 1e-5) -> Tensor:
  """torch.nn.functional.batch_norm over the channels (dim 1) of (N, C, *). Training: the batch's statistics, and
  running_mean / running_var (when given) updated in place with the batch mean and unbiased variance, as torch's;
  else the running statistics. Computed in float32 whatever the input's dtype."""
  if input.ndim < 2: raise ShapeError(f"batch_norm: expected an input (N, C, *) with at least 2 dims, got shape "
                                      f"{tuple(input.shape)}")
  dims = (0,) + tuple(range(2, input.ndim))
  shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
  if training:
    n = math.prod(input.shape[d] for d in dims)
    if n <= 1:
      raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input of shape "
                       f"{tuple(input.shape)}. Fix: use a larger batch, or eval() mode")
    out, mean, squares = _standardized(input, dims, eps)
    _update_running(running_mean, mean.reshape(-1), momentum)
    _update_running(running_var, squares.reshape(-1) / (n - 1), momentum)
  else:
    if running_mean is None or running_var is None:
      raise ValueError("batch_norm: running_mean and running_var are needed when not training. Fix: pass them, or "
                       "training=True")
    out = (input.float() - running_mean.reshape(shape)) * (running_var.reshape(shape) + eps).rsqrt()
  return _per_channel(input, out, weight, bias)


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum=0.1, eps: float = 1e-5) -> Tensor:
  """torch.nn.functional.instance_norm: each sample's channels normalized over their spatial dims; running
  statistics (when given) move towards the batch's average of them, and are used when not use_input_stats."""
  if input.ndim < 3: raise ShapeError(f"instance_norm: expected an input (N, C, *spatial), got shape "
                                      f"{tuple(input.shape)}")
  dims = tuple(range(2, input.ndim))
  if not use_input_stats:
    return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
  n = math.prod(input.shape[d] for d in dims)
  if n <= 1:
    raise ValueError(f"instance_norm: expected more than 1 spatial element per channel, got input of shape "
                     f"{tuple(input.shape)}")
  out, mean, squares = _standardized(input, dims, eps)
  _update_running(running_mean, mean.mean(0).reshape(-1), momentum)
  _update_running(running_var, (squares / (n - 1)).mean(0).reshape(-1), momentum)
  return _per_channel(input, out, weight, bias)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
  """torch.nn.functional.group_norm: the channels of each sample in num_groups groups, each normalized over its
  channels and spatial dims; then a per-channel weight and bias."""
  if input.ndim < 2 or input.shape[1] % num_groups:
    raise ShapeError(f"group_norm: the channels (dim 1) of the input of shape {tuple(input.shape)} must divide into "
                     f"num_groups={num_groups} groups")
  grouped = input.reshape(input.shape[0], num_groups, input.shape[1] // num_groups * math.prod(input.shape[2:]))
  out = _standardized(grouped, (2,), eps)[0].reshape(input.shape)
  return _per_channel(input, out, weight, bias)


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
  """torch.nn.functional.rms_norm: x / sqrt(mean(x^2) + eps) over the trailing dims `normalized_shape` (eps default:
  the dtype's machine epsilon), times weight; computed in float32."""
  shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
  if not shape or tuple(input.shape[input.ndim - len(shape):]) != shape:
    raise ShapeError(f"rms_norm: normalized_shape {shape} must be the trailing dims of the input of shape "
                     f"{tuple(input.shape)}")
  eps = float(ml_dtypes.finfo(input.dtype.np).eps) if eps is None else eps
  x = input.float()
  out = x * ((x * x).mean(tuple(range(input.ndim - len(shape), input.ndim)), keepdim=True) + eps).rsqrt()
  return (out * weight if weight is not None else out).cast(input.dtype)


amp.install(globals())   # the functions torch.autocast changes (lazygrad.amp)
