"""Convolution, pooling and resampling, composed from views, reductions and contractions. A sliding window is a view
(`_windows`: an expand and reshapes that lay overlapping windows out one after another), so pooling is a reduction
over the window's axes, and a convolution copies the windows into columns (im2col) and multiplies them by the
weight in one contraction: a DOT forward and in both gradients. Resampling picks rows with the GATHER primitive."""
from __future__ import annotations
import math
import numpy as np
from ..dtypes import bfloat16, float16, float32, int64
from ..helpers import prod, ShapeError
from .args import _err, _shape_str, _norm_dim

_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _ints(op: str, name: str, value, n: int, least: int = 0) -> tuple:
  """`value` (an int, or n ints, each at least `least`) as n ints, as torch's conv and pooling arguments take them."""
  vals = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
  if len(vals) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
    raise _err(TypeError, op, f"{name} must be an int or a sequence of {n} ints, got {value!r}")
  if min(vals, default=least) < least: raise _err(ValueError, op, f"{name} must be at least {least}, got {value!r}")
  return tuple(int(v) for v in vals)


def _conv_pads(op: str, padding, kernel: tuple, stride: tuple, dilation: tuple) -> list:
  """A convolution's padding as (before, after) pairs: ints, 'valid' (none) or 'same' (stride 1: the output keeps
  the input's size; an odd total puts the extra element after, as torch does)."""
  if padding == "valid": return [(0, 0)] * len(kernel)
  if padding == "same":
    if any(s != 1 for s in stride):
      raise _err(ValueError, op, f"padding='same' needs stride 1, got stride {stride}", "pad explicitly instead")
    return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
  if isinstance(padding, str): raise _err(ValueError, op, f"padding must be 'valid', 'same' or ints, got {padding!r}")
  return [(p, p) for p in _ints(op, "padding", padding, len(kernel))]


def _pick_max(cand: "Tensor") -> tuple["Tensor", "Tensor"]:
  """The first largest element along the last dim (NaN counts as largest) and a one-hot mask of where it is. The
  max is a select, so its gradient goes to that one element, as torch's max pooling sends it."""
  hit = cand.argmax(-1).unsqueeze(-1) == cand.arange(cand.shape[-1], device=cand.device)
  return hit._where(cand, 0).sum(-1).cast(cand.dtype), hit


def _lowest(dtype):
  """What max pooling pads with: no element of `dtype` is smaller."""
  return -math.inf if dtype.is_float else int(np.iinfo(dtype.np).min)


class ConvOps:
  """Tensor's convolutions, pooling and resampling (a mixin: see core)."""
  __slots__ = ()

  # ---------------------------------------------------------------- sliding windows
  def _windows(self, kernel: tuple, stride: tuple, dilation: tuple) -> "Tensor":
    """A view of shape (..., *out, *kernel) over the last len(kernel) dims:
    w[..., o, j] = self[..., o * stride + j * dilation] per dim, with out = (n - dilation * (kernel - 1) - 1) // stride
    + 1 (no padding: pad first)."""
    nd = len(kernel)
    lead, size = self.shape[:-nd], self.shape[-nd:]
    out = tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(size, kernel, stride, dilation))
    keep = [None] * len(lead)
    def axes(*groups): return lead + tuple(v for g in zip(*groups) for v in g)
    if all(k == 1 or (d == 1 and k <= s) for k, s, d in zip(kernel, stride, dilation)):
      # windows that do not overlap: a strided view (pad or crop to out * stride, split, keep the first k)
      x = self._pad_shrink([(0, 0)] * len(lead) + [(0, o * s - n) for o, s, n in zip(out, stride, size)])
      x = x.reshape(axes(out, stride)).shrink(tuple(keep + [r for o, k in zip(out, kernel) for r in ((0, o), (0, k))]))
      return x.permute(tuple(range(len(lead))) + tuple(len(lead) + 2 * i + b for b in (0, 1) for i in range(nd)))
    # Overlapping windows: repeat each dim r times end to end and read that as rows of length m, with m = d (mod n):
    # row j then starts at element j * d, and its elements o * s are the window taps j of every output o.
    rows = tuple(d + n * max(0, -(-(o * s - d) // n)) for n, o, s, d in zip(size, out, stride, dilation))
    reps = tuple(-(-k * m // n) for k, m, n in zip(kernel, rows, size))
    x = self.reshape(axes((1,) * nd, size)).expand(axes(reps, size)).reshape(lead + tuple(map(prod, zip(reps, size))))
    x = x.shrink(tuple(keep + [(0, k * m) for k, m in zip(kernel, rows)])).reshape(axes(kernel, rows))
    x = x.shrink(tuple(keep + [r for k, o, s in zip(kernel, out, stride) for r in ((0, k), (0, o * s))]))
    x = x.reshape(lead + tuple(v for k, o, s in zip(kernel, out, stride) for v in (k, o, s)))
    x = x.shrink(tuple(keep + [r for k, o in zip(kernel, out) for r in ((0, k), (0, o), (0, 1))]))
    x = x.reshape(axes(kernel, out))
    return x.permute(tuple(range(len(lead))) + tuple(len(lead) + 2 * i + b for b in (1, 0) for i in range(nd)))

  def _windowed(self, op: str, kernel: tuple, stride: tuple, dilation: tuple) -> "Tensor":
    """`_windows` of a padded input, which must hold at least one window."""
    spatial = self.shape[-len(kernel):]
    if any(n < d * (k - 1) + 1 for n, k, d in zip(spatial, kernel, dilation)):
      dilated = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
      raise _err(ShapeError, op, f"the padded input {_shape_str(spatial)} is smaller than the dilated kernel "
                 f"{_shape_str(dilated)}", "pad more or use a smaller kernel")
    return self._windows(kernel, stride, dilation)

  def unfold(self, dimension: int, size: int, step: int) -> "Tensor":
    """torch.Tensor.unfold: the slices of length `size`, `step` apart, along `dimension` (a view; the slices' own
    dim goes last)."""
    d = _norm_dim("unfold", dimension, self.ndim, self.shape)
    if step <= 0: raise _err(ValueError, "unfold", f"step must be positive, got {step}")
    if not 0 <= size <= self.shape[d]:
      raise _err(ShapeError, "unfold", f"size {size} does not fit dimension {d} of shape {_shape_str(self.shape)}",
                 f"use a size in [0, {self.shape[d]}]")
    order = [i for i in range(self.ndim) if i != d] + [d]
    w = self.permute(order)._windows((size,), (step,), (1,))
    return w.permute(list(range(d)) + [self.ndim - 1] + list(range(d, self.ndim - 1)) + [self.ndim])

  def _batched(self, op: str, nd: int) -> "Tensor":
    """Self with a batch dim: (N, C, *spatial) as given, or (C, *spatial) with N = 1 (torch's unbatched form)."""
    if self.ndim not in (nd + 1, nd + 2):
      raise _err(ShapeError, op, f"expected a {nd + 1}-d (unbatched) or {nd + 2}-d (batched) input, got shape "
                 f"{_shape_str(self.shape)}", f"pass (N, C, *spatial) with {nd} spatial dims")
    return self.unsqueeze(0) if self.ndim == nd + 1 else self

  def _pad_spatial(self, pads, value=0.0) -> "Tensor":
    """Self with its trailing dims padded by (before, after) pairs, first spatial dim first."""
    return self.pad([v for pair in reversed(pads) for v in pair], value) if any(a or b for a, b in pads) else self

  # ---------------------------------------------------------------- convolution
  def _conv(self, op: str, nd: int, weight, bias, stride, padding, dilation, groups: int) -> "Tensor":
    x = self._batched(op, nd)
    if weight.ndim != nd + 2:
      raise _err(ShapeError, op, f"weight must be (out_channels, in_channels / groups, *kernel) with {nd} kernel "
                 f"dims, got shape {_shape_str(weight.shape)}")
    if not x.dtype.is_float or x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
      raise _err(TypeError, op, f"input ({x.dtype.name}), weight ({weight.dtype.name})"
                 f"{f' and bias ({bias.dtype.name})' if bias is not None else ''} must share one float dtype",
                 "cast them to one dtype")
    c, o, k = x.shape[1], weight.shape[0], weight.shape[2:]
    if groups <= 0 or c % groups or o % groups or weight.shape[1] * groups != c:
      raise _err(ShapeError, op, f"input of shape {_shape_str(self.shape)} ({c} channels), weight of shape "
                 f"{_shape_str(weight.shape)} and groups={groups} do not fit: need channels = weight.shape[1] * "
                 "groups, with groups dividing both channel counts", "check in_channels, out_channels and groups")
    if bias is not None and tuple(bias.shape) != (o,):
      raise _err(ShapeError, op, f"bias must have one value per output channel ({o}), got shape "
                 f"{_shape_str(bias.shape)}")
    stride, dilation = _ints(op, "stride", stride, nd, 1), _ints(op, "dilation", dilation, nd, 1)
    pads = _conv_pads(op, padding, k, stride, dilation)
    win = x._pad_spatial(pads)._windowed(op, k, stride, dilation)   # (N, C, *out, *k)
    n, out, g = x.shape[0], win.shape[2:2 + nd], groups
    # columns (N, groups, C / groups * taps, positions), a copy laid out so that both it and the contraction's result
    # run along the positions, as the input and the (N, O, *out) output do: no transposes, loads and stores coalesced
    cols = win.reshape((n, g, c // g) + out + k)
    cols = cols.permute((0, 1, 2) + tuple(range(3 + nd, 3 + 2 * nd)) + tuple(range(3, 3 + nd))).contiguous()
    taps, L = c // g * prod(k), prod(out)
    # The contraction written out, with the summed taps between the output channels and the positions, so that the
    # columns' gradient comes out laid out as the columns (along the positions: its col2im sum reads it coalesced).
    # The weight is broadcast over images, then positions: its gradient sums positions in a contraction per image,
    # then images (one reduce axis each, as a DOT takes them).
    acc = float32 if x.dtype in (float16, bfloat16) else x.dtype
    wk = weight.reshape(1, g, o // g, taps, 1).cast(acc).expand(n, g, o // g, taps, 1).expand(n, g, o // g, taps, L)
    y = (wk * cols.reshape(n, g, 1, taps, L).cast(acc)).sum(-2).cast(x.dtype).reshape((n, o) + out)
    if bias is not None: y = y + bias.reshape((o,) + (1,) * nd)
    return y if self.ndim == nd + 2 else y.squeeze(0)

  def conv1d(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> "Tensor":
    """torch.nn.functional.conv1d with self as the input (N, C, L) or (C, L); padding also 'same' or 'valid'."""
    return self._conv("conv1d", 1, weight, bias, stride, padding, dilation, groups)

  def conv2d(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> "Tensor":
    """torch.nn.functional.conv2d with self as the input (N, C, H, W) or (C, H, W); padding also 'same' or 'valid'."""
    return self._conv("conv2d", 2, weight, bias, stride, padding, dilation, groups)

  def conv3d(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> "Tensor":
    """torch.nn.functional.conv3d with self as the input (N, C, D, H, W) or (C, D, H, W)."""
    return self._conv("conv3d", 3, weight, bias, stride, padding, dilation, groups)

  def _conv_transpose(self, op: str, nd: int, weight, bias, stride, padding, output_padding, groups: int,
                      dilation) -> "Tensor":
    """The gradient of a convolution with respect to its input, as a convolution: zeros between the input's elements
    (stride), padded by dilation * (kernel - 1) - padding, with the kernel flipped and its channel dims swapped."""
    x = self._batched(op, nd)
    if weight.ndim != nd + 2:
      raise _err(ShapeError, op, f"weight must be (in_channels, out_channels / groups, *kernel) with {nd} kernel "
                 f"dims, got shape {_shape_str(weight.shape)}")
    c, k = weight.shape[0], weight.shape[2:]
    if groups <= 0 or x.shape[1] != c or c % groups:
      raise _err(ShapeError, op, f"input of shape {_shape_str(self.shape)} needs {c} channels (weight.shape[0]) "
                 f"divisible by groups={groups}, weight shape {_shape_str(weight.shape)}")
    stride, dilation = _ints(op, "stride", stride, nd, 1), _ints(op, "dilation", dilation, nd, 1)
    padding, extra = _ints(op, "padding", padding, nd), _ints(op, "output_padding", output_padding, nd)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
      raise _err(ValueError, op, f"output_padding {extra} must be smaller than stride {stride} or dilation {dilation}")
    size = x.shape[2:]
    if any((n - 1) * s - 2 * p + d * (kk - 1) + e + 1 <= 0
           for n, s, p, d, kk, e in zip(size, stride, padding, dilation, k, extra)):
      raise _err(ShapeError, op, f"input of shape {_shape_str(self.shape)} with padding {padding} gives an empty "
                 "output", "use less padding")
    up = x.reshape(x.shape[:2] + tuple(v for n in size for v in (n, 1)))   # each element followed by stride - 1 zeros
    up = up._pad_shrink([(0, 0)] * 2 + [r for s in stride for r in ((0, 0), (0, s - 1))])
    up = up.reshape(x.shape[:2] + tuple(n * s for n, s in zip(size, stride)))
    edge = [d * (kk - 1) - p for d, kk, p in zip(dilation, k, padding)]
    up = up._pad_shrink([(0, 0)] * 2 + [(q, q + e - s + 1) for q, e, s in zip(edge, extra, stride)])
    g = groups
    w = weight.reshape((g, c // g) + weight.shape[1:]).transpose(1, 2).reshape((g * weight.shape[1], c // g) + k)
    y = up._conv(op, nd, w.flip(tuple(range(2, 2 + nd))), bias, 1, 0, dilation, groups)
    return y if self.ndim == nd + 2 else y.squeeze(0)

  def conv_transpose1d(self, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose1d; weight (in_channels, out_channels / groups, k)."""
    return self._conv_transpose("conv_transpose1d", 1, weight, bias, stride, padding, output_padding, groups, dilation)

  def conv_transpose2d(self, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d; weight (in_channels, out_channels / groups, kh, kw)."""
    return self._conv_transpose("conv_transpose2d", 2, weight, bias, stride, padding, output_padding, groups, dilation)

  def conv_transpose3d(self, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose3d; weight (in_channels, out_channels / groups, kd, kh, kw)."""
    return self._conv_transpose("conv_transpose3d", 3, weight, bias, stride, padding, output_padding, groups, dilation)

  def _im2col(self, kernel_size, dilation=1, padding=0, stride=1) -> "Tensor":
    """torch.nn.functional.unfold: (N, C, H, W) -> (N, C * kh * kw, L), the sliding blocks as columns."""
    x = self._batched("unfold", 2)
    k, d = _ints("unfold", "kernel_size", kernel_size, 2, 1), _ints("unfold", "dilation", dilation, 2, 1)
    p, s = _ints("unfold", "padding", padding, 2), _ints("unfold", "stride", stride, 2, 1)
    win = x._pad_spatial([(pp, pp) for pp in p])._windowed("unfold", k, s, d)   # (N, C, oh, ow, kh, kw)
    cols = win.permute(0, 1, 4, 5, 2, 3)
    cols = cols.reshape(cols.shape[0], prod(cols.shape[1:4]), prod(cols.shape[4:]))
    return cols if self.ndim == 4 else cols.squeeze(0)

  # ---------------------------------------------------------------- pooling
  def _pool_geometry(self, op: str, nd: int, kernel_size, stride, padding, dilation, ceil_mode: bool):
    """The batched input, kernel, stride, dilation, the (before, after) pads (the after pad grows in ceil mode) and
    the output size of a pooling."""
    x = self._batched(op, nd)
    k = _ints(op, "kernel_size", kernel_size, nd, 1)
    s = k if stride is None or stride == [] or stride == () else _ints(op, "stride", stride, nd, 1)   # torch's default
    p, d = _ints(op, "padding", padding, nd), _ints(op, "dilation", dilation, nd, 1)
    if any(pp > kk // 2 for pp, kk in zip(p, k)):
      raise _err(ValueError, op, f"padding {p} must be at most half of kernel_size {k}", "use less padding")
    eff = tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d))
    size, out = x.shape[2:], []
    for n, e, ss, pp in zip(size, eff, s, p):
      o = (n + 2 * pp - e + ((ss - 1) if ceil_mode else 0)) // ss + 1
      if ceil_mode and (o - 1) * ss >= n + pp: o -= 1   # the last window starts inside the input or its left pad
      out.append(o)
    if any(o <= 0 for o in out):
      raise _err(ShapeError, op, f"input of shape {_shape_str(self.shape)} is too small for kernel_size {k} (dilation "
                 f"{d}, padding {p}): the output would have size {_shape_str(out)}", "use a smaller kernel or pad")
    pads = [(pp, max(pp, (o - 1) * ss + e - n - pp)) for n, e, ss, pp, o in zip(size, eff, s, p, out)]
    return x, k, s, d, pads, tuple(out)

  def _max_pool(self, op: str, nd: int, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, k, s, d, pads, out = self._pool_geometry(op, nd, kernel_size, stride, padding, dilation, ceil_mode)
    win = x._pad_spatial(pads, _lowest(x.dtype))._windows(k, s, d)
    value, hit = _pick_max(win.reshape(win.shape[:2 + nd] + (prod(k),)))
    if not return_indices: return value if self.ndim == nd + 2 else value.squeeze(0)
    # flat index into the input's spatial dims: the window's first tap plus the tap's offset, both known on the host
    strides = [prod(x.shape[3 + i:]) for i in range(nd)]
    first = sum(np.arange(o).reshape([-1 if j == i else 1 for j in range(nd)]) * ss * st - pp * st
                for i, (o, ss, (pp, _), st) in enumerate(zip(out, s, pads, strides)))
    taps = sum(np.arange(kk).reshape([-1 if j == i else 1 for j in range(nd)]) * dd * st
               for i, (kk, dd, st) in enumerate(zip(k, d, strides))).reshape(-1)
    index = hit._where(type(self)(taps, device=x.device), 0).sum(-1) + type(self)(first, device=x.device)
    return (value, index) if self.ndim == nd + 2 else (value.squeeze(0), index.squeeze(0))

  def max_pool1d(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """torch.nn.functional.max_pool1d (input (N, C, L) or (C, L)); return_indices: also the flat input positions."""
    return self._max_pool("max_pool1d", 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices)

  def max_pool2d(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """torch.nn.functional.max_pool2d: stride defaults to kernel_size, padding pads with -inf; the gradient goes to
    the first largest element of each window; return_indices: also its position in the flattened (H, W) input."""
    return self._max_pool("max_pool2d", 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices)

  def max_pool3d(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """torch.nn.functional.max_pool3d (input (N, C, D, H, W) or (C, D, H, W))."""
    return self._max_pool("max_pool3d", 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices)

  def _avg_pool(self, op: str, nd: int, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x, k, s, _, pads, out = self._pool_geometry(op, nd, kernel_size, stride, padding, 1, ceil_mode)
    if not x.dtype.is_float:
      raise _err(TypeError, op, f"needs a float tensor, got {x.dtype.name}", "cast with .float()")
    total = x._pad_spatial(pads)._windows(k, s, (1,) * nd).sum(tuple(range(-nd, 0)), dtype=float32)
    if divisor_override: divisor = float(divisor_override)
    else:
      counts = []   # per dim, the taps of each window that count: those in the padded input, or in the input
      for n, kk, ss, (pp, _), o in zip(x.shape[2:], k, s, pads, out):
        lo = np.arange(o) * ss - pp
        hi = np.minimum(lo + kk, n + pp)
        counts.append(hi - lo if count_include_pad else np.minimum(hi, n) - np.maximum(lo, 0))
      divisor = type(self)(math.prod(np.ix_(*counts)).astype(np.float32), device=x.device)
    y = (total / divisor).cast(x.dtype)
    return y if self.ndim == nd + 2 else y.squeeze(0)

  def avg_pool1d(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """torch.nn.functional.avg_pool1d (input (N, C, L) or (C, L))."""
    return self._avg_pool("avg_pool1d", 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None)

  def avg_pool2d(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
    """torch.nn.functional.avg_pool2d: the mean of each window; count_include_pad counts the zero padding in the
    divisor (never the extra taps ceil_mode adds past it), divisor_override replaces the divisor."""
    return self._avg_pool("avg_pool2d", 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)

  def avg_pool3d(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
    """torch.nn.functional.avg_pool3d (input (N, C, D, H, W) or (C, D, H, W))."""
    return self._avg_pool("avg_pool3d", 3, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)

  def _adaptive(self, op: str, nd: int, output_size, is_max: bool, return_indices: bool = False):
    """Adaptive pooling: output i of a dim of size n pools elements floor(i n / out) .. ceil((i + 1) n / out) - 1.
    Separable: one dim at a time, last first, each as a masked contraction (average) or a masked first-max pick over
    (out, n), so the windows may differ in size; sizes that divide evenly are plain pooling."""
    x = self._batched(op, nd)
    given = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    if len(given) != nd:
      raise _err(TypeError, op, f"output_size must be an int or {nd} ints (or None), got {output_size!r}")
    out = tuple(n if o is None else _ints(op, "output_size", o, 1)[0] for o, n in zip(given, x.shape[2:]))
    if any(o <= 0 for o in out) or 0 in x.shape[2:]:
      raise _err(ShapeError, op, f"output_size {out} and the spatial sizes of input {_shape_str(self.shape)} must be "
                 "positive")
    if all(n % o == 0 for n, o in zip(x.shape[2:], out)):
      k = tuple(n // o for n, o in zip(x.shape[2:], out))
      y = x._max_pool(op, nd, k, k, 0, 1, False, return_indices) if is_max else \
        x._avg_pool(op, nd, k, k, 0, False, True, None)
    else: y = x._adaptive_max(out, return_indices) if is_max else x._adaptive_avg(out)
    if self.ndim == nd + 2: return y
    return tuple(t.squeeze(0) for t in y) if isinstance(y, tuple) else y.squeeze(0)

  def _adaptive_avg(self, out: tuple) -> "Tensor":
    nd, y, count = len(out), self.cast(float32), 1
    for i in range(nd - 1, -1, -1):
      mask = _adaptive_mask(self.shape[2 + i], out[i])
      y = (y.transpose(2 + i, -1) @ type(self)(mask.T.astype(np.float32), device=self.device)).transpose(2 + i, -1)
      count = count * mask.sum(1).reshape([-1 if j == i else 1 for j in range(nd)])
    return (y / type(self)(count.astype(np.float32), device=self.device)).cast(self.dtype)

  def _adaptive_max(self, out: tuple, return_indices: bool):
    nd, y, index = len(out), self, None
    for i in range(nd - 1, -1, -1):
      n, d = self.shape[2 + i], 2 + i
      mask = type(self)(_adaptive_mask(n, out[i]), device=self.device)           # (out, n)
      cand = mask._where(y.transpose(d, -1).unsqueeze(-2), _lowest(y.dtype))       # (..., out, n)
      value, hit = _pick_max(cand)
      if return_indices:   # the flat position within dims i.. of the element each output picked
        here = self.arange(n, device=self.device) * prod(self.shape[3 + i:])
        if index is not None: here = here + index.transpose(d, -1).unsqueeze(-2)
        index = hit._where(here, 0).sum(-1).transpose(d, -1)
      y = value.transpose(d, -1)
    return (y, index) if return_indices else y

  def adaptive_avg_pool1d(self, output_size) -> "Tensor":
    """torch.nn.functional.adaptive_avg_pool1d."""
    return self._adaptive("adaptive_avg_pool1d", 1, output_size, False)

  def adaptive_avg_pool2d(self, output_size) -> "Tensor":
    """torch.nn.functional.adaptive_avg_pool2d: output_size an int or (h, w), None keeping the input's size."""
    return self._adaptive("adaptive_avg_pool2d", 2, output_size, False)

  def adaptive_avg_pool3d(self, output_size) -> "Tensor":
    """torch.nn.functional.adaptive_avg_pool3d."""
    return self._adaptive("adaptive_avg_pool3d", 3, output_size, False)

  def adaptive_max_pool1d(self, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool1d."""
    return self._adaptive("adaptive_max_pool1d", 1, output_size, True, return_indices)

  def adaptive_max_pool2d(self, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool2d; return_indices: also the flat (H, W) positions of the maxima."""
    return self._adaptive("adaptive_max_pool2d", 2, output_size, True, return_indices)

  def _max_unpool(self, op: str, nd: int, indices, kernel_size, stride, padding, output_size) -> "Tensor":
    """Each value written at its flat spatial position in a zero tensor (the SCATTER_ADD primitive). A position
    that several values name (overlapping pooling windows) gets their mean, where torch keeps one of them."""
    x = self._batched(op, nd)
    idx = indices if indices.ndim == x.ndim else indices.unsqueeze(0)
    if idx.shape != x.shape or not idx.dtype.is_int:
      raise _err(ShapeError, op, f"indices ({idx.dtype.name}, shape {_shape_str(indices.shape)}) must be integers of "
                 f"the input's shape {_shape_str(self.shape)}", "pass the indices max_pool returned with the values")
    k = _ints(op, "kernel_size", kernel_size, nd, 1)
    s = k if stride is None else _ints(op, "stride", stride, nd, 1)
    p = _ints(op, "padding", padding, nd)
    size = tuple((n - 1) * ss - 2 * pp + kk for n, ss, pp, kk in zip(x.shape[2:], s, p, k))
    if output_size is not None:
      size = tuple(output_size)[-nd:]
      if len(size) != nd: raise _err(ValueError, op, f"output_size {output_size} needs {nd} spatial sizes")
    positions, rows = prod(size), prod(x.shape[:2])
    idx = idx.cast(int64)
    idx = idx._checked(idx, (idx >= 0).logical_and(idx < positions),
                       f"{op}: index {{}} is out of range for an output of spatial size {_shape_str(size)}")
    base = self.arange(rows, device=x.device).reshape(x.shape[:2] + (1,) * nd) * positions
    where = (idx + base).reshape(-1)
    total = x._added(where, x.reshape(-1).cast(float32), rows * positions)
    count = x._added(where, x.ones_like(dtype=float32).reshape(-1), rows * positions)
    # a position several windows picked gets the mean of their values (the one value, when they unpool what the
    # pooling gave) and each of them its whole gradient, as torch's backward sends it
    shared = total.detach() / count.clamp(min=1) + (total - total.detach())
    y = (count > 1)._where(shared, total).cast(x.dtype).reshape(x.shape[:2] + size)
    return y if self.ndim == nd + 2 else y.squeeze(0)

  def max_unpool1d(self, indices, kernel_size, stride=None, padding=0, output_size=None) -> "Tensor":
    """torch.nn.functional.max_unpool1d."""
    return self._max_unpool("max_unpool1d", 1, indices, kernel_size, stride, padding, output_size)

  def max_unpool2d(self, indices, kernel_size, stride=None, padding=0, output_size=None) -> "Tensor":
    """torch.nn.functional.max_unpool2d: the inverse of max_pool2d with return_indices, zeros elsewhere."""
    return self._max_unpool("max_unpool2d", 2, indices, kernel_size, stride, padding, output_size)

  # ---------------------------------------------------------------- resampling
  def interpolate(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                  recompute_scale_factor=None) -> "Tensor":
    """torch.nn.functional.interpolate of an (N, C, *spatial) input: modes 'nearest', 'nearest-exact', 'linear',
    'bilinear', 'trilinear' (align_corners) and 'area' (adaptive average pooling). Each dim picks rows (the GATHER
    primitive, or a view for a whole-number nearest upsampling) with torch's source indices, in float32 as torch's
    CPU kernels compute them."""
    op, nd = "interpolate", self.ndim - 2
    modes = ("nearest", "nearest-exact", "area", *_LINEAR_MODES)
    if mode not in modes: raise _err(ValueError, op, f"mode must be one of {modes}, got {mode!r}")
    if nd < 1 or _LINEAR_MODES.get(mode, nd) != nd:
      raise _err(ShapeError, op, f"mode {mode!r} needs a {_LINEAR_MODES.get(mode, 1) + 2}-d input (N, C, *spatial), "
                 f"got shape {_shape_str(self.shape)}")
    if align_corners is not None and mode not in _LINEAR_MODES:
      raise _err(ValueError, op, "align_corners can only be set with the interpolating modes linear, bilinear and "
                 "trilinear")
    if (size is None) == (scale_factor is None): raise _err(ValueError, op, "give exactly one of size and scale_factor")
    in_size = self.shape[2:]
    if size is not None:
      out = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
      scales = (None,) * nd
    else:
      scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nd
      out = tuple(math.floor(n * float(sc)) for n, sc in zip(in_size, scales))
      if recompute_scale_factor: scales = (None,) * nd
    if len(out) != nd or len(scales) != nd or any(o <= 0 for o in out):
      raise _err(ValueError, op, f"size {size} / scale_factor {scale_factor} must give {nd} positive output sizes")
    if mode == "area": return self._adaptive(op, nd, out, False)
    x = self.cast(float32) if mode in _LINEAR_MODES else self
    for i in range(nd - 1, -1, -1):   # the last dim first, as torch nests the weights
      n, o, d = in_size[i], out[i], 2 + i
      if mode in _LINEAR_MODES:
        i0, i1, w1 = _linear_sources(n, o, scales[i], bool(align_corners))
        w1 = type(self)(w1.reshape((o,) + (1,) * (nd - 1 - i)), device=self.device)
        x = x._take(d, i0) * (1 - w1) + x._take(d, i1) * w1
      else: x = x._take(d, _nearest_sources(n, o, scales[i], mode == "nearest-exact"))
    return x.cast(self.dtype)

  def _take(self, dim: int, index: np.ndarray) -> "Tensor":
    """self's slices index[0], index[1], ... along `dim`: a view when each slice repeats a whole number of times in
    order (nearest upsampling), else the GATHER primitive."""
    n = self.shape[dim]
    if len(index) % n == 0 and np.array_equal(index, np.repeat(np.arange(n), len(index) // n)):
      r = len(index) // n
      x = self.unsqueeze(dim + 1)
      return x.expand(x.shape[:dim + 1] + (r,) + x.shape[dim + 2:]).flatten(dim, dim + 1)
    return self[(slice(None),) * dim + (type(self)(index, device=self.device),)]


def _adaptive_mask(n: int, out: int) -> np.ndarray:
  """(out, n) bools: the input elements each output of adaptive pooling covers."""
  i, j = np.arange(out)[:, None], np.arange(n)
  return (j >= i * n // out) & (j < -(-(i + 1) * n // out))


def _source_scale(n: int, out: int, scale, align_corners: bool) -> np.float32:
  """torch's area_pixel_compute_scale: input elements per output element, in float32."""
  if align_corners: return np.float32((n - 1) / (out - 1) if out > 1 else 0)
  return np.float32(1 / float(scale)) if scale is not None and scale > 0 else np.float32(n) / np.float32(out)


def _nearest_sources(n: int, out: int, scale, exact: bool) -> np.ndarray:
  """The input element each output element copies (torch's nearest_idx, with its cases for the same and twice the
  size, and nearest_exact_idx)."""
  if not exact and out in (n, 2 * n): return np.arange(out) * n // out
  dst = np.arange(out, dtype=np.float32)
  src = (dst + np.float32(0.5) if exact else dst) * _source_scale(n, out, scale, False)
  return np.minimum(np.floor(src).astype(np.int64), n - 1)


def _linear_sources(n: int, out: int, scale, align_corners: bool):
  """The two input elements each output element mixes and the second's weight (torch's linear interpolation)."""
  dst, sc = np.arange(out, dtype=np.float32), _source_scale(n, out, scale, align_corners)
  src = dst * sc if align_corners else np.maximum((dst + np.float32(0.5)) * sc - np.float32(0.5), np.float32(0))
  i0 = np.minimum(src.astype(np.int64), n - 1)
  return i0, np.minimum(i0 + 1, n - 1), np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
