"""torch.nn.init: fill a tensor in place (an `assign`, outside autograd) with numbers drawn from lazygrad's seeded
generator, with torch's fan and gain rules. Each returns the tensor."""
from __future__ import annotations
import math
import numpy as np
from ..autograd import no_grad
from ..tensor import Tensor

_GAINS = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5 / 3, "relu": math.sqrt(2.0), "selu": 3 / 4}
_CONV = {f"conv{s}{d}d" for s in ("", "_transpose") for d in (1, 2, 3)}


def calculate_gain(nonlinearity: str, param=None) -> float:
  """torch.nn.init.calculate_gain: the standard deviation scale that keeps activations' variance through a layer."""
  if nonlinearity in _GAINS or nonlinearity in _CONV: return _GAINS.get(nonlinearity, 1.0)
  if nonlinearity == "leaky_relu":
    slope = 0.01 if param is None else param
    if isinstance(slope, bool) or not isinstance(slope, (int, float)):
      raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
    return math.sqrt(2.0 / (1 + slope ** 2))
  raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
  """(fan_in, fan_out) as torch counts them: dims 1 and 0 times the receptive field (the product of dims 2..)."""
  if tensor.ndim < 2:
    raise ValueError(f"init: fan in and fan out can not be computed for a tensor of shape {tuple(tensor.shape)}: it "
                     "needs at least 2 dims")
  field = math.prod(tensor.shape[2:])
  return tensor.shape[1] * field, tensor.shape[0] * field


def _fan(tensor: Tensor, mode: str) -> int:
  if mode not in ("fan_in", "fan_out"): raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
  return _calculate_fan_in_and_fan_out(tensor)[mode == "fan_out"]


def _fill(tensor: Tensor, value) -> Tensor:
  with no_grad(): tensor.assign(value)
  return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
  return _fill(tensor, Tensor.uniform(*tensor.shape, low=a, high=b, device=tensor.device))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
  return _fill(tensor, Tensor.normal(*tensor.shape, mean=mean, std=std, device=tensor.device))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> Tensor:
  """Normal(mean, std) numbers redrawn until they fall in [a, b] (the truncated normal distribution)."""
  values = Tensor.normal(tensor.numel(), mean=mean, std=std).numpy()
  while (bad := np.flatnonzero((values < a) | (values > b))).size:
    values[bad] = Tensor.normal(bad.size, mean=mean, std=std).numpy()
  return _fill(tensor, Tensor(values.reshape(tensor.shape), device=tensor.device))


def constant_(tensor: Tensor, val) -> Tensor: return _fill(tensor, val)
def zeros_(tensor: Tensor) -> Tensor: return _fill(tensor, 0)
def ones_(tensor: Tensor) -> Tensor: return _fill(tensor, 1)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
  fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
  bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
  return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
  fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
  return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
  """Uniform in +-gain * sqrt(3 / fan): nn.Linear and the convolutions use a=sqrt(5), i.e. +-1 / sqrt(fan_in)."""
  if tensor.numel() == 0: return tensor   # as torch: nothing to fill (and a zero fan)
  bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
  return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
  if tensor.numel() == 0: return tensor
  return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))
