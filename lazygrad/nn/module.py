"""Module and layers. Parameters are leaf Tensors with requires_grad; a Module finds them (and its sub-modules)
through its attributes, in definition order, as torch.nn.Module does."""
from __future__ import annotations
import math
from collections import OrderedDict
from typing import Iterator
import numpy as np
from ..tensor import Tensor, realize
from ..autograd import no_grad
from ..amp import autocast, autocast_dtype   # noqa: F401  (lazygrad.nn.autocast)
from ..dtypes import int64
from ..helpers import ShapeError
from ..tensor.conv import _conv_pads
from . import functional as F, init


class Module:
  training: bool = True

  def __call__(self, *args, **kwargs): return self.forward(*args, **kwargs)
  def forward(self, *args, **kwargs): raise NotImplementedError(f"{type(self).__name__} has no forward()")

  def named_children(self) -> Iterator[tuple[str, "Module"]]:
    for name, v in vars(self).items():
      if isinstance(v, Module): yield name, v

  def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """(dotted name, parameter) pairs; a parameter shared by two modules (tied weights) is listed once."""
    seen = set()
    for name, t in self._named_tensors(prefix):
      if t.requires_grad and id(t) not in seen:
        seen.add(id(t))
        yield name, t

  def _named_tensors(self, prefix: str = ""):
    for name, v in vars(self).items():
      if isinstance(v, Tensor): yield prefix + name, v
      elif isinstance(v, Module): yield from v._named_tensors(f"{prefix}{name}.")

  def parameters(self) -> list[Tensor]: return [p for _, p in self.named_parameters()]

  def state_dict(self) -> "OrderedDict[str, Tensor]":
    """Every tensor attribute by dotted name (tied weights appear under each name, as in torch)."""
    return OrderedDict(self._named_tensors())

  def load_state_dict(self, state: dict, strict: bool = True):
    """Copy values into this module's tensors (same names and shapes); returns the missing and unexpected keys."""
    own = self.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if strict and (missing or unexpected):
      raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
    for name, t in own.items():
      if name not in state: continue
      v = state[name]
      v = v if isinstance(v, Tensor) else Tensor(np.asarray(v), device=t.device)
      if v.shape != t.shape:
        raise ValueError(f"load_state_dict: {name} has shape {t.shape} in the module but {v.shape} in the state")
      with no_grad(): t.assign(v.to(device=t.device))   # in place: whatever holds t's memory sees the new values
    realize(*own.values())
    return missing, unexpected

  def train(self, mode: bool = True) -> "Module":
    self.training = mode
    for _, m in self.named_children(): m.train(mode)
    return self

  def eval(self) -> "Module": return self.train(False)

  def to(self, device: str) -> "Module":
    for name, t in self._named_tensors():
      with no_grad(): t.node = t.detach().to(device).realize().node
    return self


class ModuleList(Module):
  def __init__(self, modules):
    for i, m in enumerate(modules): setattr(self, str(i), m)
    self._n = len(modules)
  def __iter__(self): return (getattr(self, str(i)) for i in range(self._n))
  def __len__(self): return self._n
  def __getitem__(self, i): return getattr(self, str(i % self._n))


class Linear(Module):
  """y = x @ W.T + b, W of shape (out_features, in_features), initialised like torch.nn.Linear."""
  def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None):
    bound = 1 / math.sqrt(in_features)
    self.weight = Tensor.uniform(out_features, in_features, low=-bound, high=bound, requires_grad=True, device=device)
    self.bias = Tensor.uniform(out_features, low=-bound, high=bound, requires_grad=True, device=device) if bias else None

  def forward(self, x: Tensor) -> Tensor:
    return F.linear(x, self.weight, self.bias)


class Embedding(Module):
  def __init__(self, num_embeddings: int, embedding_dim: int, device=None):
    self.weight = Tensor.randn(num_embeddings, embedding_dim, requires_grad=True, device=device)

  def forward(self, idx: Tensor) -> Tensor: return F.embedding(idx, self.weight)


class LayerNorm(Module):
  """torch.nn.LayerNorm: normalizes over the trailing dims `normalized_shape`, with a weight and bias of that shape."""
  def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
               device=None):
    self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    self.eps = eps
    affine = elementwise_affine
    self.weight = Tensor(np.ones(self.normalized_shape, np.float32), requires_grad=True, device=device) if affine else None
    self.bias = Tensor(np.zeros(self.normalized_shape, np.float32), requires_grad=True, device=device) \
      if affine and bias else None

  def forward(self, x: Tensor) -> Tensor: return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class Sequential(ModuleList):
  """Modules applied in order (torch.nn.Sequential): indexable, iterable, their parameters named 0., 1., ..."""
  def __init__(self, *modules: Module): super().__init__(modules)
  def forward(self, x):
    for m in self: x = m(x)
    return x


class _Elementwise(Module):
  """A module for a Tensor method with fixed arguments (ReLU, Tanh, ...)."""
  method, args = "", ()
  def forward(self, x: Tensor) -> Tensor: return getattr(x, self.method)(*self.args)


class ReLU(_Elementwise): method = "relu"
class Tanh(_Elementwise): method = "tanh"
class Sigmoid(_Elementwise): method = "sigmoid"
class SiLU(_Elementwise): method = "silu"
class Identity(Module):
  def forward(self, x): return x


class LeakyReLU(_Elementwise):
  method = "leaky_relu"
  def __init__(self, negative_slope: float = 0.01): self.args = (negative_slope,)


class Softmax(_Elementwise):
  method = "softmax"
  def __init__(self, dim: int = -1): self.args = (dim,)


class Flatten(Module):
  def __init__(self, start_dim: int = 1, end_dim: int = -1): self.start_dim, self.end_dim = start_dim, end_dim
  def forward(self, x: Tensor) -> Tensor: return x.flatten(self.start_dim, self.end_dim)


class MSELoss(Module):
  def __init__(self, reduction: str = "mean"): self.reduction = reduction
  def forward(self, input: Tensor, target: Tensor) -> Tensor: return F.mse_loss(input, target, self.reduction)


class CrossEntropyLoss(Module):
  def __init__(self, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean",
               label_smoothing: float = 0.0):
    self.weight, self.ignore_index, self.reduction, self.label_smoothing = weight, ignore_index, reduction, label_smoothing
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class Dropout(Module):
  def __init__(self, p: float = 0.5): self.p = p
  def forward(self, x: Tensor) -> Tensor: return F.dropout(x, self.p, self.training)


class GELU(Module):
  def __init__(self, approximate: str = "none"): self.approximate = approximate
  def forward(self, x: Tensor) -> Tensor: return x.gelu(self.approximate)


# ---------------------------------------------------------------- convolution
class _ConvNd(Module):
  """What the convolution layers share: torch's arguments, parameters (weight (out, in / groups, *kernel), or
  (in, out / groups, *kernel) when transposed) and initialisation (kaiming_uniform_ with a=sqrt(5), the bias uniform
  in +-1/sqrt(fan_in))."""
  nd, transposed = 2, False

  def _setup(self, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation, groups: int,
             bias: bool, padding_mode: str, output_padding, device):
    name = type(self).__name__
    if groups <= 0 or in_channels % groups or out_channels % groups:
      raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by "
                       f"groups ({groups})")
    if padding_mode not in ("zeros", "reflect", "replicate", "circular") or self.transposed and padding_mode != "zeros":
      raise ValueError(f"{name}: padding_mode {padding_mode!r} is not supported")
    def tup(v): return tuple(v) if isinstance(v, (tuple, list)) else (v,) * self.nd
    self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
    self.padding_mode = padding_mode
    self.kernel_size, self.stride, self.dilation = tup(kernel_size), tup(stride), tup(dilation)
    self.padding = padding if isinstance(padding, str) else tup(padding)
    self.output_padding = tup(output_padding)
    channels = (in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups)
    self.weight = Tensor.empty(*channels, *self.kernel_size, requires_grad=True, device=device)
    self.bias = Tensor.empty(out_channels, requires_grad=True, device=device) if bias else None
    self.reset_parameters()

  def reset_parameters(self):
    init.kaiming_uniform_(self.weight, a=math.sqrt(5))
    if self.bias is not None:
      fan_in = init._calculate_fan_in_and_fan_out(self.weight)[0]
      bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
      init.uniform_(self.bias, -bound, bound)


class _Conv(_ConvNd):
  def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
               bias: bool = True, padding_mode: str = "zeros", device=None):
    self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, 0,
                device)

  def forward(self, x: Tensor) -> Tensor:
    padding = self.padding
    if self.padding_mode != "zeros":   # torch pads the input in that mode, then convolves without padding
      pairs = _conv_pads(type(self).__name__, padding, self.kernel_size, self.stride, self.dilation)
      x, padding = x.pad([v for pair in reversed(pairs) for v in pair], mode=self.padding_mode), 0
    return getattr(x, f"conv{self.nd}d")(self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv1d(_Conv): nd = 1
class Conv2d(_Conv): nd = 2
class Conv3d(_Conv): nd = 3


class _ConvTranspose(_ConvNd):
  transposed = True

  def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
               groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None):
    self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                output_padding, device)

  def forward(self, x: Tensor, output_size=None) -> Tensor:
    """output_size: the spatial size wanted, of those the stride leaves ambiguous (sets output_padding)."""
    extra = self.output_padding
    if output_size is not None:
      spatial = x.shape[-self.nd:]
      least = [(n - 1) * s - 2 * p + d * (k - 1) + 1
               for n, s, p, d, k in zip(spatial, self.stride, self.padding, self.dilation, self.kernel_size)]
      extra = tuple(o - m for o, m in zip(tuple(output_size)[-self.nd:], least))
      if any(not 0 <= e < max(s, d) for e, s, d in zip(extra, self.stride, self.dilation)):
        raise ValueError(f"{type(self).__name__}: output_size {tuple(output_size)} is not reachable from input shape "
                         f"{tuple(x.shape)}: the smallest is {tuple(least)}, at most stride - 1 more")
    return getattr(x, f"conv_transpose{self.nd}d")(self.weight, self.bias, self.stride, self.padding, extra,
                                                    self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose): nd = 1
class ConvTranspose2d(_ConvTranspose): nd = 2
class ConvTranspose3d(_ConvTranspose): nd = 3


# ---------------------------------------------------------------- normalization
def _affine_params(n: int, affine: bool, device) -> tuple[Tensor | None, Tensor | None]:
  """A weight of ones and a bias of zeros (torch's initial affine parameters), or none."""
  if not affine: return None, None
  return (Tensor(np.ones(n, np.float32), requires_grad=True, device=device),
          Tensor(np.zeros(n, np.float32), requires_grad=True, device=device))


class _NormBase(Module):
  """Batch and instance normalization's state, as torch's: weight and bias (affine), running_mean, running_var and
  num_batches_tracked (track_running_stats), each a tensor of its own memory that training updates in place."""
  ndims: tuple = ()

  def __init__(self, num_features: int, eps: float, momentum, affine: bool, track_running_stats: bool, device):
    self.num_features, self.eps, self.momentum = num_features, eps, momentum
    self.affine, self.track_running_stats = affine, track_running_stats
    self.weight, self.bias = _affine_params(num_features, affine, device)
    self.running_mean = self.running_var = self.num_batches_tracked = None
    if track_running_stats:
      self.running_mean = Tensor(np.zeros(num_features, np.float32), device=device)
      self.running_var = Tensor(np.ones(num_features, np.float32), device=device)
      self.num_batches_tracked = Tensor(np.zeros((), np.int64), dtype=int64, device=device)

  def reset_running_stats(self):
    if self.track_running_stats:
      for t, v in ((self.running_mean, 0), (self.running_var, 1), (self.num_batches_tracked, 0)): init.constant_(t, v)

  def _settle(self):
    """Realize the running statistics' updates that nothing has realized since the last step: an optimizer's step
    realizes those that read a parameter it overwrites (the usual convolution before), but a count, or statistics
    of the raw input, would otherwise grow into a chain of every step's update."""
    realize(*(t for t in (self.running_mean, self.running_var, self.num_batches_tracked)
              if t is not None and not t.node.realized))

  def _check_input(self, x: Tensor, channel_dim: int):
    if x.ndim not in self.ndims or x.shape[channel_dim] != self.num_features:
      raise ShapeError(f"{type(self).__name__}: expected an input of {' or '.join(map(str, self.ndims))} dims with "
                       f"{self.num_features} channels (dim {channel_dim}), got shape {tuple(x.shape)}")


class _BatchNorm(_NormBase):
  def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
               track_running_stats: bool = True, device=None):
    super().__init__(num_features, eps, momentum, affine, track_running_stats, device)

  def forward(self, x: Tensor) -> Tensor:
    """Training: normalize with the batch's statistics and move the running ones towards them (momentum None: their
    cumulative average); eval: normalize with the running statistics."""
    self._check_input(x, 1)
    factor = self.momentum if self.momentum is not None else 0.0
    if self.training and self.track_running_stats:
      self._settle()
      with no_grad(): self.num_batches_tracked.assign(self.num_batches_tracked + 1)
      if self.momentum is None: factor = 1 / self.num_batches_tracked.float()
    use_running = not self.training or self.track_running_stats
    return F.batch_norm(x, self.running_mean if use_running else None, self.running_var if use_running else None,
                        self.weight, self.bias, self.training or self.running_mean is None, factor, self.eps)


class BatchNorm1d(_BatchNorm):
  """torch.nn.BatchNorm1d over (N, C) or (N, C, L)."""
  ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
  """torch.nn.BatchNorm2d over (N, C, H, W)."""
  ndims = (4,)


class BatchNorm3d(_BatchNorm):
  """torch.nn.BatchNorm3d over (N, C, D, H, W)."""
  ndims = (5,)


class _InstanceNorm(_NormBase):
  def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = False,
               track_running_stats: bool = False, device=None):
    super().__init__(num_features, eps, momentum, affine, track_running_stats, device)

  def forward(self, x: Tensor) -> Tensor:
    """Each sample normalized over its spatial dims; with track_running_stats, eval mode uses the running ones."""
    unbatched = x.ndim == self.ndims[0]
    self._check_input(x, 0 if unbatched else 1)
    if self.training and self.track_running_stats: self._settle()
    y = F.instance_norm(x.unsqueeze(0) if unbatched else x, self.running_mean, self.running_var, self.weight,
                        self.bias, self.training or not self.track_running_stats,
                        self.momentum if self.momentum is not None else 0.0, self.eps)
    return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm): ndims = (2, 3)
class InstanceNorm2d(_InstanceNorm): ndims = (3, 4)
class InstanceNorm3d(_InstanceNorm): ndims = (4, 5)


class GroupNorm(Module):
  """torch.nn.GroupNorm: the channels of each sample in num_groups groups, each normalized on its own."""
  def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device=None):
    if num_channels % num_groups:
      raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
    self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
    self.weight, self.bias = _affine_params(num_channels, affine, device)

  def forward(self, x: Tensor) -> Tensor: return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class RMSNorm(Module):
  """torch.nn.RMSNorm over the trailing dims normalized_shape (eps None: the input dtype's machine epsilon)."""
  def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True, device=None):
    self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    self.eps, self.elementwise_affine = eps, elementwise_affine
    self.weight = Tensor(np.ones(self.normalized_shape, np.float32), requires_grad=True, device=device) \
      if elementwise_affine else None

  def forward(self, x: Tensor) -> Tensor: return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)


# ---------------------------------------------------------------- pooling and resampling
class _MaxPool(Module):
  nd = 2
  def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
               ceil_mode: bool = False):
    self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
    self.return_indices, self.ceil_mode = return_indices, ceil_mode

  def forward(self, x: Tensor):
    return getattr(x, f"max_pool{self.nd}d")(self.kernel_size, self.stride, self.padding, self.dilation,
                                              self.ceil_mode, self.return_indices)


class MaxPool1d(_MaxPool): nd = 1
class MaxPool2d(_MaxPool): nd = 2
class MaxPool3d(_MaxPool): nd = 3


class _AvgPool(Module):
  nd = 2
  def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override=None):
    self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode
    self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

  def forward(self, x: Tensor) -> Tensor:
    return x._avg_pool(f"avg_pool{self.nd}d", self.nd, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                       self.count_include_pad, self.divisor_override)


class AvgPool1d(_AvgPool): nd = 1
class AvgPool2d(_AvgPool): nd = 2
class AvgPool3d(_AvgPool): nd = 3


class _AdaptivePool(Module):
  method = ""
  def __init__(self, output_size): self.output_size = output_size
  def forward(self, x: Tensor) -> Tensor: return getattr(x, self.method)(self.output_size)


class AdaptiveAvgPool1d(_AdaptivePool): method = "adaptive_avg_pool1d"
class AdaptiveAvgPool2d(_AdaptivePool): method = "adaptive_avg_pool2d"
class AdaptiveAvgPool3d(_AdaptivePool): method = "adaptive_avg_pool3d"


class AdaptiveMaxPool2d(Module):
  def __init__(self, output_size, return_indices: bool = False):
    self.output_size, self.return_indices = output_size, return_indices
  def forward(self, x: Tensor): return x.adaptive_max_pool2d(self.output_size, self.return_indices)


class MaxUnpool2d(Module):
  def __init__(self, kernel_size, stride=None, padding=0):
    self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
  def forward(self, x: Tensor, indices: Tensor, output_size=None) -> Tensor:
    return x.max_unpool2d(indices, self.kernel_size, self.stride, self.padding, output_size)


class Upsample(Module):
  """torch.nn.Upsample: F.interpolate with fixed arguments."""
  def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
               recompute_scale_factor=None):
    self.size, self.scale_factor, self.mode = size, scale_factor, mode
    self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor
  def forward(self, x: Tensor) -> Tensor:
    return x.interpolate(self.size, self.scale_factor, self.mode, self.align_corners, self.recompute_scale_factor)


# ---------------------------------------------------------------- recurrent cells
class LSTMCell(Module):
  """torch.nn.LSTMCell: (h, c) -> (h', c') with gates i, f, g, o from x W_ih^T + b_ih + h W_hh^T + b_hh; every
  parameter uniform in +-1/sqrt(hidden_size), as torch initialises them."""
  def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None):
    self.input_size, self.hidden_size = input_size, hidden_size
    def param(*shape): return Tensor.empty(*shape, requires_grad=True, device=device)
    self.weight_ih, self.weight_hh = param(4 * hidden_size, input_size), param(4 * hidden_size, hidden_size)
    self.bias_ih, self.bias_hh = (param(4 * hidden_size), param(4 * hidden_size)) if bias else (None, None)
    self.reset_parameters()

  def reset_parameters(self):
    bound = 1 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
    for p in self.parameters(): init.uniform_(p, -bound, bound)

  def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """input (N, input_size) or (input_size,); hx = (h, c), each (N, hidden_size) (zeros when None)."""
    if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
      raise ShapeError(f"LSTMCell: expected an input (N, {self.input_size}) or ({self.input_size},), got shape "
                       f"{tuple(input.shape)}")
    x = input.reshape(-1, self.input_size)
    if hx is None: h = c = Tensor.zeros(x.shape[0], self.hidden_size, dtype=input.dtype, device=input.device)
    else: h, c = (t.reshape(x.shape[0], self.hidden_size) for t in hx)
    i, f, g, o = (x.linear(self.weight_ih, self.bias_ih) + h.linear(self.weight_hh, self.bias_hh)).chunk(4, 1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h = o.sigmoid() * c.tanh()
    return (h.reshape(-1), c.reshape(-1)) if input.ndim == 1 else (h, c)
