"""Module and layers. Parameters are leaf Tensors with requires_grad; a Module finds them (and its sub-modules)
through its attributes, in definition order, as torch.nn.Module does."""
from __future__ import annotations
import contextlib, math, threading
from collections import OrderedDict
from typing import Iterator
import numpy as np
from ..tensor import Tensor, realize
from ..autograd import no_grad
from ..dtypes import to_dtype
from . import functional as F


class _Autocast(threading.local):
  dtype = None


_autocast = _Autocast()


@contextlib.contextmanager
def autocast(dtype="bfloat16"):
  """Mixed precision like torch.autocast: Linear layers multiply in `dtype` (float32 accumulation); parameters
  stay float32 (the master weights), and everything else runs in float32."""
  prev, _autocast.dtype = _autocast.dtype, (to_dtype(dtype) if dtype is not None else None)
  try: yield
  finally: _autocast.dtype = prev


def autocast_dtype(): return _autocast.dtype


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
    if (ac := autocast_dtype()) is not None:
      out = (x.cast(ac) @ self.weight.cast(ac).T).float()
    else: out = x @ self.weight.T
    return out + self.bias if self.bias is not None else out


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
