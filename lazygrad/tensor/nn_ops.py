"""Linear algebra, statistics and neural-network helpers: matmul, einsum, linear, tril/triu, var_mean/std_mean,
attention, cross_entropy."""
from __future__ import annotations
import math
from .. import dtypes
from ..dtypes import promote, float32
from ..helpers import ShapeError, prod, get_float32_matmul_precision
from ..ir.ops import MOVEMENT
from ..ir.view import view_of
from ..runtime.device import get_device
from .args import _err, _shape_str, _broadcast_shape
from .core import TensorCore
from ..ir import build as B


class NNOps:
  """Tensor's linear algebra and nn helpers (a mixin: see core)."""
  __slots__ = ()

  def matmul(self, other: "Tensor") -> "Tensor":
    """torch.matmul: 1-D, 2-D, batched and broadcast. Lowered to a DOT by the compiler."""
    return self._product("matmul", other)

  def _product(self, op: str, other, bias=None) -> "Tensor":
    """self @ other (+ bias, added to the float32 accumulator of 16-bit operands before the one rounding, as
    cuBLAS's epilogue does)."""
    a, b = self, other
    if not isinstance(b, TensorCore): b = type(self)(b, device=self.device)
    if a.ndim == 0 or b.ndim == 0:
      raise _err(ShapeError, op, f"both arguments need at least 1 dimension, got shapes {_shape_str(a.shape)} and "
                 f"{_shape_str(b.shape)}", "use * for scalars")
    a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
    b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
      raise _err(ShapeError, op, f"shapes {_shape_str(a.shape)} and {_shape_str(b.shape)} cannot be multiplied: "
                 f"inner dimensions {a2.shape[-1]} (dim -1 of the first) and {b2.shape[-2]} (dim "
                 f"{-2 if b.ndim > 1 else -1} of the second) differ", "transpose or reshape so the inner sizes match")
    if a.ndim > 2 and b.ndim == 2:   # a stack of rows times one matrix is one 2-d product (one contraction in backward)
      return a.reshape(-1, a.shape[-1])._product(op, b, bias).reshape(a.shape[:-1] + (b.shape[-1],))
    batch = _broadcast_shape(op, a2.shape[:-2], b2.shape[:-2])
    dt = promote(a.dtype, b.dtype)
    acc = float32 if dt in (dtypes.float16, dtypes.bfloat16) else dt
    m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    x = a2.cast(acc)._broadcast_to(batch + (m, k)).reshape(batch + (m, 1, k))
    if acc == float32 and b2.dtype == float32 and _k_major_pays(b2):
      b2 = b2.transpose(-1, -2).contiguous().transpose(-1, -2)
    y = b2.cast(acc)._broadcast_to(batch + (k, n)).transpose(-1, -2).reshape(batch + (1, n, k))
    out = (x * y).sum(-1)
    if a.ndim == 1: out = out.squeeze(-2)
    if b.ndim == 1: out = out.squeeze(-1)
    if bias is None: return out.cast(dt)
    return (out + bias.cast(promote(acc, bias.dtype))).cast(promote(dt, bias.dtype))
  dot = matmul

  def mm(self, other: "Tensor") -> "Tensor":
    """torch.mm: a product of two 2-D tensors."""
    self._check_ndim("mm", other, 2, 2)
    return self.matmul(other)

  def _check_ndim(self, op: str, other, a: int, b: int):
    if self.ndim != a or getattr(other, "ndim", -1) != b:
      what = f"two {a}-D tensors" if a == b else f"a {a}-D and a {b}-D tensor"
      raise _err(ShapeError, op, f"expects {what}, got shapes {_shape_str(self.shape)} and "
                 f"{_shape_str(getattr(other, 'shape', ()))}", "use matmul (@) for other shapes")

  def bmm(self, other: "Tensor") -> "Tensor":
    """torch.bmm: a batch of matrix products of two 3-D tensors."""
    self._check_ndim("bmm", other, 3, 3)
    return self.matmul(other)

  def mv(self, vec: "Tensor") -> "Tensor":
    """torch.mv: a matrix times a vector."""
    self._check_ndim("mv", vec, 2, 1)
    return self.matmul(vec)

  def vdot(self, other: "Tensor") -> "Tensor":
    """torch.vdot of two real 1-D tensors: their dot product."""
    self._check_ndim("vdot", other, 1, 1)
    return self.matmul(other)

  def inner(self, other: "Tensor") -> "Tensor":
    """torch.inner: the sum over the last dims (a product for a 0-d operand)."""
    if self.ndim == 0 or other.ndim == 0: return self * other
    return self.tensordot(other, dims=([self.ndim - 1], [other.ndim - 1]))

  def _scaled_sum(self, product: "Tensor", beta, alpha) -> "Tensor":
    """beta * self + alpha * product; with beta 0 self is ignored (its nan and inf too), as torch's add*m ops."""
    product = product if alpha == 1 else product * alpha
    if beta == 0: return product   # self only broadcasts to the product's shape
    return (self if beta == 1 else self * beta) + product

  def addmm(self, mat1: "Tensor", mat2: "Tensor", *, beta=1, alpha=1) -> "Tensor":
    """torch.addmm: beta * self + alpha * (mat1 @ mat2)."""
    mat1._check_ndim("addmm", mat2, 2, 2)
    return self._scaled_sum(mat1.matmul(mat2), beta, alpha)

  def addmv(self, mat: "Tensor", vec: "Tensor", *, beta=1, alpha=1) -> "Tensor":
    """torch.addmv: beta * self + alpha * (mat @ vec)."""
    return self._scaled_sum(mat.mv(vec), beta, alpha)

  def addr(self, vec1: "Tensor", vec2: "Tensor", *, beta=1, alpha=1) -> "Tensor":
    """torch.addr: beta * self + alpha * outer(vec1, vec2)."""
    return self._scaled_sum(vec1.outer(vec2), beta, alpha)

  def baddbmm(self, batch1: "Tensor", batch2: "Tensor", *, beta=1, alpha=1) -> "Tensor":
    """torch.baddbmm: beta * self + alpha * (batch1 @ batch2), batched."""
    return self._scaled_sum(batch1.bmm(batch2), beta, alpha)

  def addbmm(self, batch1: "Tensor", batch2: "Tensor", *, beta=1, alpha=1) -> "Tensor":
    """torch.addbmm: beta * self + alpha * the sum over the batch of batch1[i] @ batch2[i]."""
    return self._scaled_sum(batch1.bmm(batch2).sum(0), beta, alpha)

  def matrix_power(self, n: int) -> "Tensor":
    """torch.matrix_power for n >= 0: the (batched) square matrix multiplied by itself n times (by squaring)."""
    if self.ndim < 2 or self.shape[-1] != self.shape[-2]:
      raise _err(ShapeError, "matrix_power", f"needs square matrices, got shape {_shape_str(self.shape)}")
    if not isinstance(n, int) or n < 0:
      raise _err(ValueError, "matrix_power", f"n must be a non-negative int, got {n!r}",
                 "a negative power needs a matrix inverse, which lazygrad does not have")
    out, base = None, self
    while n:
      if n & 1: out = base if out is None else out.matmul(base)
      n >>= 1
      if n: base = base.matmul(base)
    if out is not None: return out
    eye = type(self).eye(self.shape[-1], dtype=self.dtype, device=self.device)
    return eye.expand(*self.shape) + self * 0   # the identity, still connected to self (zero gradient)

  def tensordot(self, other: "Tensor", dims=2) -> "Tensor":
    """torch.tensordot: the last `dims` dims of self contracted with the first of other, or the dims of two lists."""
    if isinstance(dims, int):
      a_dims, b_dims = list(range(self.ndim - dims, self.ndim)), list(range(dims))
    else: a_dims, b_dims = ([d] if isinstance(d, int) else list(d) for d in dims)
    a_dims = [d % self.ndim for d in a_dims]
    b_dims = [d % other.ndim for d in b_dims]
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    a_sub = list(letters[:self.ndim])
    b_sub = list(letters[self.ndim:self.ndim + other.ndim])
    for i, j in zip(a_dims, b_dims): b_sub[j] = a_sub[i]
    out = [c for i, c in enumerate(a_sub) if i not in a_dims] + [c for j, c in enumerate(b_sub) if j not in b_dims]
    return type(self).einsum(f"{''.join(a_sub)},{''.join(b_sub)}->{''.join(out)}", self, other)

  def kron(self, other: "Tensor") -> "Tensor":
    """torch.kron: the Kronecker product (the blocks self[i] * other), over max(ndim) dims."""
    n = max(self.ndim, other.ndim)
    a = self.reshape((1,) * (n - self.ndim) + tuple(self.shape))
    b = other.reshape((1,) * (n - other.ndim) + tuple(other.shape))
    inter = tuple(v for pair in zip(a.shape, (1,) * n) for v in pair)
    prod_ = a.reshape(inter) * b.reshape(tuple(v for pair in zip((1,) * n, b.shape) for v in pair))
    return prod_.reshape(tuple(x * y for x, y in zip(a.shape, b.shape)))

  def cross(self, other: "Tensor", dim: int = -1) -> "Tensor":
    """The cross product of 3-vectors along `dim` (torch.linalg.cross's default dim)."""
    d = dim % self.ndim
    if self.shape[d] != 3: raise _err(ShapeError, "cross", f"dim {dim} must have size 3, got shape {_shape_str(self.shape)}")
    a0, a1, a2 = self.split(1, d)
    b0, b1, b2 = other.split(1, d)
    return type(self).cat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)

  def outer(self, other: "Tensor") -> "Tensor":
    """torch.outer: out[i, j] = self[i] * other[j] of two 1-D tensors."""
    self._check_ndim("outer", other, 1, 1)
    return self.unsqueeze(1) * other.unsqueeze(0)
  ger = outer

  @classmethod
  def einsum(cls, equation, *operands) -> "Tensor":
    """torch.einsum, e.g. Tensor.einsum("bij,bjk->bik", a, b): any labels (a-z, A-Z), `...` for broadcast dims,
    an implicit output (the labels used once, sorted) without `->`, a label repeated within an operand for its
    diagonal, size-1 dims broadcast; also the sublist form einsum(a, [0, 1], b, [1, 2], [0, 2]). Operands contract
    pairwise from the left, each pair as one batched matmul (so the compiler makes it a DOT); labels an operand
    alone has are summed first."""
    if not isinstance(equation, str): equation, operands = _sublist_equation((equation,) + operands)
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)): operands = tuple(operands[0])
    terms, out_labels = _parse_einsum(equation, operands)
    sizes: dict = {}
    for t, labels in zip(operands, terms):
      for label, s in zip(labels, t.shape):
        if sizes.get(label, 1) not in (1, s) and s != 1:
          shapes = ", ".join(_shape_str(o.shape) for o in operands)
          raise _err(ShapeError, "einsum", f"{equation!r}: label {_label(label)} has sizes {sizes[label]} and {s} in "
                     f"operands of shapes {shapes}", "sizes of one label must match or be 1")
        if sizes.get(label, 1) == 1: sizes[label] = s
    ops = [_einsum_prepare(t, labels, sizes) for t, labels in zip(operands, terms)]
    for i, (t, labels) in enumerate(ops):   # labels no other operand has and the output lacks: summed first
      others = set(out_labels).union(*(l for j, (_, l) in enumerate(ops) if j != i))
      ops[i] = _einsum_sum(t, labels, others)
    acc, labels = ops[0]
    for i, (t, tl) in enumerate(ops[1:], 1):
      keep = set(out_labels).union(*(l for _, l in ops[i + 1:]))
      acc, labels = _contract(acc, labels, t, tl, keep)
    acc, labels = _einsum_sum(acc, labels, set(out_labels))
    return acc.permute([labels.index(label) for label in out_labels])

  def var_mean(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> tuple["Tensor", "Tensor"]:
    """torch.var_mean: (variance, mean) over dim, sharing the sum; correction (default 1, or unbiased) as var's."""
    if not self.dtype.is_float:
      raise _err(TypeError, "var_mean", f"needs a floating point tensor, got {self.dtype.name}", "cast with .float()")
    correction = correction if correction is not None else 1 if unbiased is None else int(unbiased)
    return self.var(dim, keepdim, correction), self.mean(dim, keepdim)

  def std_mean(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> tuple["Tensor", "Tensor"]:
    """torch.std_mean: (standard deviation, mean) over dim, as var_mean."""
    var, mean = self.var_mean(dim, unbiased, keepdim, correction=correction)
    return var.sqrt(), mean

  def linear(self, weight: "Tensor", bias: "Tensor | None" = None) -> "Tensor":
    """torch.nn.functional.linear: self @ weight.T + bias."""
    if bias is not None and not isinstance(bias, TensorCore): bias = type(self)(bias, device=self.device)
    if bias is not None and bias.ndim > 1: return self._product("linear", weight.T) + bias
    return self._product("linear", weight.T, bias)

  def _tri(self, diagonal: int, lower: bool) -> "Tensor":
    if self.ndim < 2: raise _err(ShapeError, "tril" if lower else "triu", f"needs at least 2 dims, got shape {_shape_str(self.shape)}")
    r, c = self.shape[-2:]
    rows = self.arange(r, device=self.device).reshape(r, 1)
    cols = self.arange(c, device=self.device).reshape(1, c)
    keep = (cols <= rows + diagonal) if lower else (cols >= rows + diagonal)
    return keep._where(self, self._const(0, (), self.dtype, device=self.device)).cast(self.dtype)

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
    """torch.nn.functional.cross_entropy; classes on dim 1 (or dim 0 for 1-D input). `target` holds class indices
    (an integer tensor), or class probabilities (a float tensor of the input's shape)."""
    x = self if self.ndim != 1 else self.unsqueeze(0)
    if isinstance(target, TensorCore) and target.dtype.is_float:
      return x.log_softmax(1)._probability_loss(target, weight, reduction, label_smoothing, self.ndim == 1)
    # class indices: logsumexp(x) - x[target], from the logits. Its gradient, softmax - one-hot, is elementwise;
    # through log_softmax it would also need each row's sum of the one-hot gradient (a pass over 50304-wide rows).
    shifted, lse = x._float()._log_softmax_parts(1)
    return shifted._class_loss("cross_entropy", target, weight, reduction, ignore_index, label_smoothing,
                               self.ndim == 1, lse)

  def _probability_loss(self, target: "Tensor", weight, reduction: str, label_smoothing: float, one: bool) -> "Tensor":
    """-sum_c weight[c] * p[c] * logp[c] per sample (self: log-probabilities, classes on dim 1); 'mean' divides by the
    number of samples, as torch does for probability targets."""
    op = "cross_entropy"
    if reduction not in ("mean", "sum", "none"):
      raise _err(ValueError, op, f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    tgt = target.reshape(self.shape) if one and target.shape == self.shape[1:] else target
    if tgt.shape != self.shape:
      raise _err(ShapeError, op, f"probability targets must have the input's shape "
                 f"{_shape_str(self.shape[1:] if one else self.shape)}, got {_shape_str(target.shape)}")
    c = self.shape[1]
    if weight is not None and tuple(weight.shape) != (c,):
      raise _err(ShapeError, op, f"weight must have one value per class ({c}), got shape {_shape_str(weight.shape)}")
    tgt = tgt.cast(self.dtype)
    if label_smoothing: tgt = tgt * (1 - label_smoothing) + label_smoothing / c
    terms = self * tgt
    if weight is not None: terms = terms * weight.reshape((1, c) + (1,) * (self.ndim - 2))
    loss = -terms.sum(1)
    if one: loss = loss.reshape(())
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.sum() / (self.numel() // c)

  def nll_loss(self, target: "Tensor", weight=None, reduction: str = "mean", ignore_index: int = -100) -> "Tensor":
    """torch.nn.functional.nll_loss: self holds log-probabilities, classes on dim 1 (or dim 0 for 1-D input)."""
    return (self if self.ndim != 1 else self.unsqueeze(0))._class_loss("nll_loss", target, weight, reduction,
                                                                       ignore_index, 0.0, self.ndim == 1)

  def _class_loss(self, op: str, target, weight, reduction: str, ignore_index: int, label_smoothing: float,
                  one: bool, lse: "Tensor | None" = None) -> "Tensor":
    """-weight[t] * logp[t] per sample (self: log-probabilities, classes on dim 1; or with `lse`, logits whose
    log-probabilities are self - lse), ignore_index skipped; 'mean' divides by the summed weights of the samples
    kept, as torch does."""
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
    classes_last = (0,) + tuple(range(2, self.ndim)) + (1,)
    logp = self.permute(classes_last)
    hit = tgt.unsqueeze(-1) == self.arange(c, device=self.device)
    w = hit._where(weight, 0.0).sum(-1) if weight is not None else None     # weight[target]
    base = lse.permute(classes_last).squeeze(-1) if lse is not None else None   # the log-probabilities: logp - base
    nll = -hit._where(logp, 0.0).sum(-1)
    if base is not None: nll = nll + base
    if w is not None: nll = nll * w
    if label_smoothing:
      smooth = -(logp * weight).sum(-1) / c if weight is not None else -logp.mean(-1)
      if base is not None: smooth = smooth + (base * (weight.sum() / c) if weight is not None else base)
      nll = (1 - label_smoothing) * nll + label_smoothing * smooth
    valid = tgt != ignore_index
    nll = valid._where(nll, 0.0)
    if one: nll = nll.reshape(())
    if reduction == "none": return nll
    if reduction == "sum": return nll.sum()
    return nll.sum() / (valid._where(w, 0.0) if w is not None else valid.cast(float32)).sum()


def _k_major_pays(b) -> bool:
  """Is `b`, the (.., K, N) right operand of a float32 matmul, worth a K-major copy? Where the device's tf32 tensor
  cores read K-major operands only (LoweringOptions.float32_k_major), tf32 is on, and b is large and N-major in the
  memory it views (x @ W with W stored (in, out); nn.Linear's W.T is K-major already). The copy is one pass over b."""
  if get_float32_matmul_precision() == "highest" or b.shape[-2] * b.shape[-1] < 1 << 16: return False
  if not get_device(b.device).lowering.float32_k_major: return False
  n, path = b.node, []
  while n.op in MOVEMENT: path.append((n.op, n.arg)); n = n.srcs[0]
  strides = view_of(n.shape, tuple(path)).views[-1].strides
  return strides[-1] == 1 and strides[-2] != 1


def _label(label) -> str: return "..." if isinstance(label, int) else repr(label)


def _sublist_equation(args: tuple) -> tuple[str, tuple]:
  """The equation of einsum's sublist form (operand, [labels], operand, [labels], ..., [output])."""
  ops, subs = args[0:len(args) - len(args) % 2:2], list(args[1::2])
  if len(args) % 2: subs.append(args[-1])
  def term(labels):
    out = ""
    for x in labels:
      if x is Ellipsis: out += "..."
      elif isinstance(x, int) and 0 <= x < 52: out += chr(ord("a") + x) if x < 26 else chr(ord("A") + x - 26)
      else: raise _err(ValueError, "einsum", f"sublist labels must be ints in [0, 52) or ..., got {x!r}")
    return out
  return ",".join(term(s) for s in subs[:len(ops)]) + ("->" + term(subs[-1]) if len(subs) > len(ops) else ""), ops


def _parse_einsum(equation: str, operands: tuple) -> tuple[list[list], list]:
  """Each operand's labels and the output's: letters as themselves, the dims under `...` as -k (k-th from the
  right, so they broadcast)."""
  eq = equation.replace(" ", "")
  lhs, arrow, rhs = eq.partition("->")
  terms = lhs.split(",")
  if len(terms) != len(operands):
    raise _err(ValueError, "einsum", f"{equation!r} has {len(terms)} operand(s) but {len(operands)} tensor(s) were "
               "given")

  def tokens(term: str) -> list:
    if term.count("...") > 1 or not term.replace("...", "").isalpha() and term.replace("...", ""):
      raise _err(ValueError, "einsum", f"{equation!r}: subscripts are letters and at most one '...', got {term!r}")
    head, dots, tail = term.partition("...")
    return list(head) + ([Ellipsis] if dots else []) + list(tail)

  n_ell, labels = 0, []
  for term, t in zip(terms, operands):
    if not isinstance(t, TensorCore):
      raise _err(TypeError, "einsum", f"operands must be tensors, got {type(t).__name__}")
    toks = tokens(term)
    named = [x for x in toks if x is not Ellipsis]
    if len(named) > t.ndim or (Ellipsis not in toks and len(named) != t.ndim):
      raise _err(ShapeError, "einsum", f"{equation!r}: subscripts {term!r} do not fit an operand of shape "
                 f"{_shape_str(t.shape)}", "give one letter per dim, or use '...'")
    k = t.ndim - len(named)
    n_ell = max(n_ell, k if Ellipsis in toks else 0)
    at = toks.index(Ellipsis) if Ellipsis in toks else len(toks)
    labels.append(named[:at] + list(range(-k, 0)) + named[at:])
  if arrow:
    out = tokens(rhs)
    at = out.index(Ellipsis) if Ellipsis in out else None
    out = [x for x in out if x is not Ellipsis]
    if at is not None: out[at:at] = list(range(-n_ell, 0))
    used = {x for l in labels for x in l}
    for x in out:
      if out.count(x) > 1 or x not in used:
        raise _err(ValueError, "einsum", f"{equation!r}: output label {_label(x)} " +
                   ("appears twice" if out.count(x) > 1 else "is in no operand"))
  else:
    counts = {}
    for l in labels:
      for x in l: counts[x] = counts.get(x, 0) + 1
    out = list(range(-n_ell, 0)) + sorted(x for x, c in counts.items() if c == 1 and isinstance(x, str))
  return labels, out


def _einsum_prepare(t, labels: list, sizes: dict):
  """An operand with each repeated label's diagonal taken and size-1 dims broadcast to their label's size."""
  labels = list(labels)
  while (dup := next((x for x in labels if labels.count(x) > 1), None)) is not None:
    i = labels.index(dup)
    j = labels.index(dup, i + 1)
    t = t.diagonal(0, i, j)
    labels = [x for k, x in enumerate(labels) if k not in (i, j)] + [dup]
  return t.expand(tuple(sizes[x] for x in labels)), labels


def _einsum_sum(t, labels: list, keep: set):
  """Sum the dims whose labels are not in `keep`."""
  gone = [i for i, x in enumerate(labels) if x not in keep]
  return (t.sum(tuple(gone)).cast(t.dtype) if gone else t), [x for x in labels if x in keep]


def _contract(a, la: list, b, lb: list, keep: set):
  """Two operands as one batched matmul over their shared labels that `keep` lacks (a broadcast product when
  there are none): the labels kept by both are the batch, then a's own, then b's own."""
  a, la = _einsum_sum(a, la, keep | set(lb))
  b, lb = _einsum_sum(b, lb, keep | set(la))
  batch = [x for x in la if x in lb and x in keep]
  summed = [x for x in la if x in lb and x not in keep]
  left, right = [x for x in la if x not in lb], [x for x in lb if x not in la]
  size = lambda t, ls, groups: [prod(t.shape[ls.index(x)] for x in g) for g in groups]
  a2 = a.permute([la.index(x) for x in batch + left + summed]).reshape(size(a, la, (batch, left, summed)))
  b2 = b.permute([lb.index(x) for x in batch + summed + right]).reshape(size(b, lb, (batch, summed, right)))
  out = a2 @ b2 if summed else a2 * b2
  shape = tuple(a.shape[la.index(x)] for x in batch + left) + tuple(b.shape[lb.index(x)] for x in right)
  return out.reshape(shape), batch + left + right


def _composed_attention(q, k, v, mask, dropout_p: float, is_causal: bool, scale: float):
  """Attention from primitives, the T x T scores in memory: for dropout on the probabilities, and for a float mask
  that needs its gradient."""
  L, S = q.shape[-2], k.shape[-2]
  scores = (q @ k.transpose(-2, -1)) * scale
  if is_causal: scores = (q.arange(S, device=q.device).reshape(1, S) <= q.arange(L, device=q.device).reshape(L, 1))._where(scores, -math.inf)
  if mask is not None: scores = mask._where(scores, -math.inf) if mask.dtype.is_bool else scores + mask
  keeps = scores.amax(-1, keepdim=True) > -math.inf   # a row that attends to no key gives 0, as torch's
  probs = keeps._where(scores.softmax(-1), 0.0)
  if dropout_p > 0:
    keep = type(q).rand(*probs.shape, device=q.device) >= dropout_p
    probs = keep._where(probs * (1 / (1 - dropout_p)), 0.0) if dropout_p < 1 else probs * 0
  return probs.cast(v.dtype) @ v
