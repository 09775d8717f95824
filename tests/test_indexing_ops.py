"""Indexing, scatter/gather, movement features, einsum and small elementwise/reduction ops, forward and backward
against PyTorch: x[idx] with negative steps, lists and masks, x[idx] = value, gather, scatter, scatter_add,
scatter_reduce, index_select/add/copy/fill/put, masked_select, nonzero, roll, diag, diagonal, diag_embed,
repeat_interleave, meshgrid, tile, movedim, pad modes, copysign, fmod, gcd, lcm, shifts, isposinf/isneginf, var_mean,
std_mean, sum(dtype=), einsum; zero-size and 0-d inputs, int/bool dtypes, and the errors users meet."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import lazygrad
import lazygrad.nn.functional
from lazygrad import Tensor
from lazygrad.codegen.kernel import K
from lazygrad.errors import IndexOutOfBounds
from lazygrad.runtime.realize import get_schedule
from helpers import assert_same

F = torch.nn.functional
RNG = np.random.default_rng(0)


def randn(*shape, dtype=np.float32): return RNG.standard_normal(shape).astype(dtype)
def ints(lo, hi, *shape, dtype=np.int64): return RNG.integers(lo, hi, shape).astype(dtype)


def compare(fn, *inputs, th=None, grad=True, atol=1e-5, rtol=1e-4):
  """fn on lazygrad tensors and `th` (default fn) on torch tensors made from the numpy arrays among `inputs` (others
  are passed as they are); outputs must match in shape, dtype and values, then the gradients of a weighted sum of
  the float outputs with respect to every float input."""
  lz_in = [Tensor(a, requires_grad=grad and a.dtype.kind == "f") if isinstance(a, np.ndarray) else a for a in inputs]
  th_in = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") if isinstance(a, np.ndarray) else a
           for a in inputs]
  lz_out, th_out = fn(*lz_in), (th or fn)(*th_in)
  lz_out, th_out = (list(o) if isinstance(o, (tuple, list)) else [o] for o in (lz_out, th_out))
  assert len(lz_out) == len(th_out)
  for lz, t in zip(lz_out, th_out): assert_same(lz, t.detach(), atol=atol, rtol=rtol)
  diff = [o for o in th_out if o.dtype.is_floating_point and o.requires_grad]
  if not grad or not diff: return lz_out
  ws = [RNG.uniform(-1.5, 1.5, tuple(o.shape)).astype(np.float32) for o in diff]
  sum((o * torch.tensor(w)).sum() for o, w in zip(diff, ws)).backward()
  lz_diff = [lz for lz, t in zip(lz_out, th_out) if t.dtype.is_floating_point and t.requires_grad]
  sum((o * Tensor(w)).sum() for o, w in zip(lz_diff, ws)).backward()
  for lz, t in zip(lz_in, th_in):
    if isinstance(t, torch.Tensor) and t.requires_grad:
      want = t.grad if t.grad is not None else torch.zeros_like(t)
      got = lz.grad if lz.grad is not None else Tensor.zeros(*lz.shape)
      np.testing.assert_allclose(got.numpy(), want.numpy(), atol=atol * 10, rtol=rtol * 10)
  return lz_out


def kernels_with_dot(t: Tensor) -> int:
  kernels = [it.kernel for it in get_schedule([t.node]) if it.kernel is not None]
  return sum(1 for k in kernels if any(n.op is K.DOT for n in k.nodes))


# ---------------------------------------------------------------- x[idx]
def positive_steps(shape, idx) -> tuple[list, tuple]:
  """numpy's negative-step slices for torch, which refuses them: the dims to flip first, and idx with those slices
  turned around."""
  idx = list(idx) if isinstance(idx, tuple) else [idx]
  if any(i is Ellipsis for i in idx):
    e = next(k for k, i in enumerate(idx) if i is Ellipsis)
    idx[e:e + 1] = [slice(None)] * (len(shape) - sum(0 if i is None or i is Ellipsis else 1 for i in idx))
  dim, flips = 0, []
  for k, i in enumerate(idx):
    if i is None: continue
    if isinstance(i, slice) and (i.step or 1) < 0:
      n = shape[dim]
      picks = list(range(*i.indices(n)))
      idx[k] = slice(n - 1 - picks[0], n - picks[-1], -i.step) if picks else slice(0, 0)
      flips.append(dim)
    dim += 1
  return flips, tuple(idx)


def torch_index(t, idx):
  flips, idx = positive_steps(t.shape, idx)
  return (t.flip(flips) if flips else t)[idx]


def torch_setitem(t, idx, value):
  """t[idx] = value in torch with numpy's negative-step slices: written into t flipped, then flipped back."""
  flips, idx = positive_steps(t.shape, idx)
  if not flips:
    t[idx] = value
    return t
  t = t.flip(flips)
  t[idx] = value
  return t.flip(flips)


class NumpyIndex:
  """`x[idx]` for lazygrad, torch_index for torch, so one case serves both."""
  def __init__(self, t): self.t = t
  def __getitem__(self, idx): return torch_index(self.t, idx) if isinstance(self.t, torch.Tensor) else self.t[idx]


def ix(fn): return lambda t: fn(NumpyIndex(t))


GETITEM = {
  "neg_step": ix(lambda x: x[::-1]),
  "neg_step_2": ix(lambda x: x[::-2]),
  "neg_bounds": ix(lambda x: x[:, 4:0:-2]),
  "neg_last": ix(lambda x: x[..., -1:-7:-3]),
  "neg_mixed": ix(lambda x: x[3:1:-1, ::-1, 1::2]),
  "neg_chained": ix(lambda x: NumpyIndex(x[::-1])[1, ::-3]),
  "neg_empty": ix(lambda x: x[1:3:-1]),
  "odd_step": lambda x: x[:, 1::3, ::4],
  "list": lambda x: x[[0, 2]],
  "list_negative": lambda x: x[[-1, 0, -1]],
  "list_pair": lambda x: x[[0, -1], [1, 2]],
  "list_of_lists": lambda x: x[[[0, 1], [2, 3]] if isinstance(x, Tensor) else torch.tensor([[0, 1], [2, 3]])],
  "list_2d_tensor": lambda x: x[np.array([[0, 1], [2, 3]])],
  "list_dim1": lambda x: x[:, [4, 0]],
  "list_separated": lambda x: x[[1, 0], :, [0, 5]],
  "list_none_ellipsis": lambda x: x[None, [0, 1], ..., 2],
  "list_int_after": lambda x: x[[3, 1], 2],
  "list_int_between": lambda x: x[0, :, [1, 4]],
  "list_with_step": ix(lambda x: x[::-2, [1, 1, 3]]),
  "tuple_of_ints": lambda x: x[(0, 1)],
  "list_empty": lambda x: x[[]],
  "bool_list": lambda x: x[[True, False, True, False]],
  "ndarray": lambda x: x[np.array([3, 1])],
}


@pytest.mark.parametrize("case", list(GETITEM))
def test_getitem(case):
  compare(GETITEM[case], randn(4, 5, 6))


@pytest.mark.parametrize("mask_shape,index", [((4,), lambda x, m: x[m]), ((4, 5), lambda x, m: x[m]),
                                              ((4, 5, 6), lambda x, m: x[m]), ((5,), lambda x, m: x[:, m]),
                                              ((5, 6), lambda x, m: x[1, m]), ((4,), lambda x, m: x[m, 1:3, [0, 2]])])
def test_getitem_bool_mask(mask_shape, index):
  mask = np.arange(np.prod(mask_shape)).reshape(mask_shape) % 2 == 0
  x = randn(4, 5, 6)
  compare(lambda a: index(a, Tensor(mask)), x, th=lambda a: index(a, torch.tensor(mask)))


def test_getitem_int_tensor_dtypes_and_0d():
  compare(lambda x, i: x[i, 1:], randn(4, 3), ints(-4, 4, 2, 2, dtype=np.int32))
  compare(lambda x: x[()], randn())
  compare(lambda x: x[None, ..., None], randn())
  compare(ix(lambda x: x[::-1, [0]]), randn(0, 3), grad=False)
  compare(lambda x: x[[1, 0]], ints(0, 9, 2, 3))
  compare(ix(lambda x: x[::-2, [True, False, True]]), RNG.random((3, 3)) < 0.5)


def test_negative_step_slices_are_views():
  x = Tensor(np.arange(10, dtype=np.float32))
  v = x[8:1:-3]
  x += 1   # a view shows its base's current value
  np.testing.assert_array_equal(v.numpy(), np.arange(10, dtype=np.float32)[8:1:-3] + 1)
  v *= 0   # and writes through to it
  np.testing.assert_array_equal(x.numpy(), [1, 2, 0, 4, 5, 0, 7, 8, 0, 10])


def test_odd_strided_slices_and_diagonals_are_writable_views():
  ref = np.arange(35, dtype=np.float32).reshape(5, 7)
  x = Tensor(ref)
  x[::2, 1::3] = -1.0
  ref[::2, 1::3] = -1.0
  x.diagonal(1).fill_(9.0)
  ref[np.arange(5), np.arange(1, 6)] = 9.0
  np.testing.assert_array_equal(x.numpy(), ref)


@pytest.mark.parametrize("index,error,words", [
  (lambda x: x[5], IndexError, ["index 5", "dimension 0", "size 4"]),
  (lambda x: x[0, 0, 0, 0], IndexError, ["too many indices"]),
  (lambda x: x[..., ...], IndexError, ["one ellipsis"]),
  (lambda x: x[::0], ValueError, ["step cannot be zero"]),
  (lambda x: x[1.5], TypeError, ["unsupported index"]),
  (lambda x: x[Tensor([0.5])], IndexError, ["integer or bool", "float32"]),
  (lambda x: x[Tensor([True, False])], IndexError, ["mask of shape (2,)", "(4, 5, 6)"]),
])
def test_getitem_errors(index, error, words):
  with pytest.raises(error) as e: index(Tensor(randn(4, 5, 6)))
  assert all(w in str(e.value) for w in words), str(e.value)


def test_getitem_out_of_range_tensor_index_raises_when_realized():
  with pytest.raises(IndexOutOfBounds, match="index 7 is out of bounds for dimension 1 with size 5"):
    Tensor(randn(4, 5))[:, [0, 7]].numpy()


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_getitem_property(data):
  """Random mixes of ints, slices (any step), None and lists against torch (numpy's steps, torch's layout)."""
  shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
  idx, n_list = [], 0
  for s in shape:
    kind = data.draw(st.sampled_from(["int", "slice", "list", "none"]))
    if kind == "none": idx.append(None)
    if kind == "int": idx.append(data.draw(st.integers(-s, s - 1)))
    elif kind == "list" and n_list == 0:
      n_list += 1
      idx.append(data.draw(st.lists(st.integers(-s, s - 1), min_size=1, max_size=3)))
    else:
      bound = st.one_of(st.none(), st.integers(-s - 2, s + 2))
      idx.append(slice(data.draw(bound), data.draw(bound), data.draw(st.sampled_from([None, 1, 2, 3, -1, -2, -3]))))
  x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
  got, want = Tensor(x)[tuple(idx)], torch_index(torch.tensor(x), tuple(idx))
  assert got.shape == tuple(want.shape)
  np.testing.assert_array_equal(got.numpy(), want.numpy())


# ---------------------------------------------------------------- x[idx] = value
def setitem_both(idx, value, shape=(4, 5, 6), dtype=np.float32):
  """x[idx] = value on a computed tensor in lazygrad and torch; values and gradients (to the tensor's untouched part
  and to the value) compared."""
  x = randn(*shape).astype(dtype)
  def run(lib, base, v):
    y, i = base * 1, idx(lib) if callable(idx) else idx
    if lib is torch: y = torch_setitem(y, i, v)
    else: y[i] = v
    return y * 1
  if isinstance(value, np.ndarray):
    compare(lambda b, v: run(lazygrad, b, v), x, value, th=lambda b, v: run(torch, b, v))
  else:
    compare(lambda b: run(lazygrad, b, value), x, th=lambda b: run(torch, b, value))


SETITEM = {
  "int": (1, randn(5, 6)),
  "int_broadcast_row": ((1, 2), randn(6)),
  "scalar": ((slice(None), 0), 2.5),
  "slice_step": ((slice(None, None, 2), 1), randn(2, 6)),
  "odd_step": ((slice(1, None, 3), slice(None, None, 2)), randn(1, 3, 6)),
  "neg_step": ((slice(None, None, -1), 2), randn(4, 6)),
  "neg_step_broadcast": ((slice(3, 0, -2), slice(None), slice(4, None, -3)), randn(2, 1, 2)),
  "ellipsis_none": ((Ellipsis, None, 3), randn(4, 5, 1)),
  "leading_ones": (0, randn(1, 1, 5, 6)),
  "list": ([0, 2], randn(2, 5, 6)),
  "list_broadcast": ([3, 1], randn(6)),
  "list_scalar": (([1, 3], slice(None), [0, 5]), -1.0),
  "list_pair": (([0, -1], [1, 2]), randn(2, 6)),
  "list_separated": (([1, 0], slice(1, 3), [0, 5]), randn(2, 2)),
  "list_after_slice": ((slice(None), [4, 0]), randn(4, 2, 6)),
  "list_int_between": ((0, slice(None), [1, 4]), randn(5, 2)),
  "list_row_value": (([2, 0], 1), randn(1, 6)),
  "list_dup_same_value": (([1, 1, 2],), 3.0),
  "tensor_index": (lambda lib: (lib.tensor if lib is torch else Tensor)(np.array([[3], [0]])), randn(2, 1, 5, 6)),
  "mask_scalar": (lambda lib: (lib.tensor if lib is torch else Tensor)(np.arange(20).reshape(4, 5) % 3 == 0), 0.0),
  "mask_values": (lambda lib: (lib.tensor if lib is torch else Tensor)(np.arange(4) % 2 == 0), randn(2, 5, 6)),
  "mask_and_slice": (lambda lib: (slice(None), (lib.tensor if lib is torch else Tensor)(np.arange(5) > 2)), randn(6)),
}


@pytest.mark.parametrize("case", list(SETITEM))
def test_setitem(case):
  idx, value = SETITEM[case]
  setitem_both(idx, value)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_setitem_through_views_property(data):
  """Random basic indices (slices with any step, ints, None) written through a permuted view, against numpy."""
  shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
  perm = data.draw(st.permutations(range(len(shape))))
  idx = []
  for s in (shape[p] for p in perm):
    if data.draw(st.booleans()): idx.append(None)
    if data.draw(st.integers(0, 3)) == 0: idx.append(data.draw(st.integers(-s, s - 1)))
    else:
      bound = st.one_of(st.none(), st.integers(-s - 1, s + 1))
      idx.append(slice(data.draw(bound), data.draw(bound), data.draw(st.sampled_from([None, 2, 3, -1, -2, -4]))))
  x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
  want = x.copy()
  value = -1 - np.arange(want.transpose(perm)[tuple(idx)].size, dtype=np.float32)
  want.transpose(perm)[tuple(idx)] = value.reshape(want.transpose(perm)[tuple(idx)].shape)
  t = Tensor(x)
  t.permute(perm)[tuple(idx)] = Tensor(value.reshape(want.transpose(perm)[tuple(idx)].shape))
  np.testing.assert_array_equal(t.numpy(), want)


def test_setitem_repeated_indices_last_write_wins():
  x = Tensor.zeros(4, 3)
  x[Tensor([0, 2, 0, 0])] = Tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
  ref = np.zeros((4, 3), np.float32)
  ref[[0, 2, 0, 0]] = np.arange(12).reshape(4, 3)
  np.testing.assert_array_equal(x.numpy(), ref)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_setitem_int_and_bool(dtype):
  x = ints(0, 2, 4, 5).astype(dtype)
  lx, tx = Tensor(x), torch.tensor(x)
  for idx, v in [((1, slice(None, None, -2)), 1), (([0, 3], [1, 4]), 0), ((slice(None), [2]), np.ones((4, 1), dtype))]:
    lx[idx] = Tensor(v) if isinstance(v, np.ndarray) else v
    tx = torch_setitem(tx, idx, torch.tensor(v) if isinstance(v, np.ndarray) else v)
  assert_same(lx, tx)


def test_setitem_mask_with_a_number_reads_nothing_on_the_host():
  x = Tensor(randn(3, 4))
  start = lazygrad.counters.kernels
  x[x < 0] = 0.0
  assert lazygrad.counters.kernels == start
  assert (x.numpy() >= 0).all()


def test_setitem_value_and_base_gradients():
  """The value's gradient is the output's where it was written (only the winning write of a repeated index), the
  base's where it was not."""
  base, v = Tensor(randn(4, 3), requires_grad=True), Tensor(randn(3, 3), requires_grad=True)
  y = base * 2
  y[Tensor([2, 0, 2])] = v
  (y * Tensor(np.arange(12, dtype=np.float32).reshape(4, 3))).sum().backward()
  w = np.arange(12, dtype=np.float32).reshape(4, 3)
  np.testing.assert_array_equal(base.grad.numpy(), 2 * w * np.array([[0], [1], [0], [1]]))
  np.testing.assert_array_equal(v.grad.numpy(), np.stack([np.zeros(3), w[0], w[2]]))


def test_setitem_errors():
  x = Tensor.zeros(3, 4)
  with pytest.raises(lazygrad.ShapeError, match="setitem: a value of shape \\(3,\\) cannot be written into the indexed "
                                                "shape \\(4,\\)"):
    x[0] = Tensor([1.0, 2.0, 3.0])
  with pytest.raises(IndexError, match="index 3 is out of range for dimension 0 with size 3"):
    x[3] = 1.0
  leaf = Tensor.zeros(3, requires_grad=True)
  with pytest.raises(RuntimeError, match="in-place"):
    leaf[0] = 1.0
  with pytest.raises(IndexOutOfBounds):
    x[[0, 5]] = 1.0
    x.numpy()


# ---------------------------------------------------------------- gather and the scatter family
def test_gather():
  compare(lambda x, i: x.gather(1, i), randn(3, 4, 5), ints(0, 4, 3, 6, 2))
  compare(lambda x, i: x.gather(-1, i), randn(3, 4, 5), ints(0, 5, 2, 3, 7))
  compare(lambda x, i: x.gather(0, i), randn(3, 4), ints(0, 3, 5, 4, dtype=np.int32))
  compare(lambda x, i: x.T.gather(0, i), randn(3, 4), ints(0, 4, 2, 3))
  compare(lambda x, i: x.gather(0, i), randn(), np.array(0))
  compare(lambda x, i: x.gather(1, i), randn(3, 4), ints(0, 4, 3, 0))
  compare(lambda x, i: x.gather(1, i), ints(-5, 5, 3, 4), ints(0, 4, 3, 2))
  compare(lambda x, i: x.gather(1, i), RNG.random((3, 4)) < 0.5, ints(0, 4, 3, 2))
  x = randn(3, 4)
  compare(lambda x, i: x.gather(1, i), x.astype(np.float16), ints(0, 4, 3, 5), atol=1e-3)


SCATTER_INDEX = ints(0, 4, 3, 3, 5)   # along dim 1 of a (3, 4, 5) input, repeated indices included


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(reduce, include_self):
  # src in halves: ties among them for amax/amin; self in odd quarters: never tied with src (where torch's gradient
  # leaves out an element include_self=False leaves out, but still shares with it)
  src, x = np.round(randn(3, 3, 5) * 2) / 2, np.round(randn(3, 4, 5) * 2) / 2 + 0.25
  compare(lambda x, i, s: x.scatter_reduce(1, i, s, reduce, include_self=include_self), x, SCATTER_INDEX, src)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_scatter_reduce_int_and_bool(reduce, dtype):
  if dtype == np.bool_ and reduce == "mean": return   # torch refuses it too (checked below)
  x, src = ints(-6, 7, 3, 4, 5).astype(dtype), ints(-6, 7, 3, 3, 6).astype(dtype)   # src larger than the index
  if dtype == np.uint8: x, src = x % 4, src % 4
  for include_self in (True, False):
    compare(lambda a, i, s: a.scatter_reduce(1, i, s, reduce, include_self=include_self), x, SCATTER_INDEX, src)


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")   # deprecated there, kept here
def test_scatter_add_and_scatter():
  index = ints(0, 3, 4, 2)
  compare(lambda x, i, s: x.scatter_add(0, i, s), randn(3, 2), index, randn(4, 2))
  compare(lambda x, i, s: x.scatter_add(0, i, s), randn(3, 2), index, randn(5, 3), grad=False)   # torch's backward
                                                                                                  # refuses src > index
  big = randn(5, 3)
  x, s = Tensor(randn(3, 2), requires_grad=True), Tensor(big, requires_grad=True)
  x.scatter_add(0, Tensor(index), s).sum().backward()
  np.testing.assert_array_equal(s.grad.numpy(), np.pad(np.ones((4, 2), np.float32), ((0, 1), (0, 1))))
  unique = np.array([[2, 0, 1], [0, 2, 2]])
  compare(lambda x, i, s: x.scatter(0, i, s), randn(3, 3), unique, randn(2, 3))
  compare(lambda x, i, s: x.scatter(0, i, s), randn(3, 3), unique, randn(2, 4), grad=False)
  compare(lambda x, i: x.scatter(1, i, -2.0), randn(4, 3), index)
  compare(lambda x, i: x.scatter(1, i, value=7), ints(0, 5, 4, 3), index)
  for reduce in ("add", "multiply"):   # (torch has no backward for reduce=)
    compare(lambda x, i, s: x.scatter(0, i, s, reduce=reduce), randn(3, 2), index, randn(4, 2), grad=False)
  one_hot = Tensor.zeros(4, 6).scatter(1, Tensor([[5], [0], [2], [5]]), 1.0)
  np.testing.assert_array_equal(one_hot.numpy(), np.eye(6, dtype=np.float32)[[5, 0, 2, 5]])


def test_scatter_repeated_indices_last_write_wins():
  index = np.array([[0, 1], [0, 1], [2, 0]])
  src = np.arange(6, dtype=np.float32).reshape(3, 2)
  out = Tensor.zeros(3, 2).scatter(0, Tensor(index), Tensor(src))
  assert_same(out, torch.zeros(3, 2).scatter(0, torch.tensor(index), torch.tensor(src)))   # CPU torch: in order


def test_scatter_0d_and_empty():
  compare(lambda x, i, s: x.scatter_add(0, i, s), randn(), np.array(0), randn())
  compare(lambda x, i, s: x.scatter(0, i, s), randn(), np.array(0), randn())
  compare(lambda x, i: x.gather(0, i), randn(0), np.zeros(0, np.int64))
  empty = np.zeros((0, 3), np.int64)
  for reduce in ("sum", "amax", "prod", "mean"):
    compare(lambda x, i, s: x.scatter_reduce(0, i, s, reduce), randn(2, 3), empty, randn(0, 3))
  compare(lambda x, i, s: x.scatter(0, i, s), randn(2, 3), empty, randn(0, 3))


def test_scatter_in_place_forms():
  x, t = Tensor.zeros(2, 3), torch.zeros(2, 3)
  idx = np.array([[1, 0, 1]])
  x.scatter_(0, Tensor(idx), 5.0); t.scatter_(0, torch.tensor(idx), 5.0)
  x.scatter_add_(0, Tensor(idx), Tensor.ones(1, 3)); t.scatter_add_(0, torch.tensor(idx), torch.ones(1, 3))
  x.index_fill_(1, Tensor([2]), -1.0); t.index_fill_(1, torch.tensor([2]), -1.0)
  assert_same(x, t)


@pytest.mark.parametrize("call,error,words", [
  (lambda x: x.gather(1, Tensor([[0.5]])), TypeError, ["gather", "integer tensor", "float32"]),
  (lambda x: x.gather(1, Tensor([0])), lazygrad.ShapeError, ["gather", "(1,)", "as many dims", "(3, 4)"]),
  (lambda x: x.gather(2, Tensor([[0]])), IndexError, ["dim 2 is out of range"]),
  (lambda x: x.gather(1, Tensor.zeros(4, 1, dtype="int64")), lazygrad.ShapeError, ["larger than the input", "dimension 0"]),
  (lambda x: x.scatter_add(1, Tensor([[0, 1]]), Tensor([[1.0]])), lazygrad.ShapeError, ["src shape (1, 1)", "dimension 1"]),
  (lambda x: x.scatter_add(1, Tensor([[0]]), Tensor([[1]])), TypeError, ["src is int64", "input is float32"]),
  (lambda x: x.scatter_reduce(1, Tensor([[0]]), Tensor([[1.0]]), "max"), ValueError, ["'amax'", "got 'max'"]),
  (lambda x: x.scatter(1, Tensor([[0]])), TypeError, ["exactly one of src and value"]),
  (lambda x: x.scatter(1, Tensor([[0]]), Tensor([[1.0]]), reduce="max"), ValueError, ["'add' or 'multiply'"]),
  (lambda x: x.index_select(0, Tensor([[0]])), TypeError, ["1-d (or 0-d) integer tensor", "(1, 1)"]),
  (lambda x: x.index_add(0, Tensor([0]), Tensor.ones(2, 4)), lazygrad.ShapeError, ["source must have shape (1, 4)"]),
  (lambda x: x.index_fill(0, Tensor([0]), Tensor([1.0, 2.0])), lazygrad.ShapeError, ["0-d tensor"]),
  (lambda x: x.masked_select(Tensor([1, 0, 1, 0])), TypeError, ["bool tensor"]),
])
def test_scatter_family_errors(call, error, words):
  with pytest.raises(error) as e: call(Tensor(randn(3, 4)))
  assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize("call", [lambda x: x.gather(1, Tensor([[4], [0], [1]])),
                                  lambda x: x.scatter_add(1, Tensor([[-1]]), Tensor([[1.0]])),
                                  lambda x: x.scatter(0, Tensor([[3]]), 1.0),
                                  lambda x: x.scatter_reduce(1, Tensor([[9]]), Tensor([[1.0]]), "amax"),
                                  lambda x: x.index_select(1, Tensor([0, 4])),
                                  lambda x: x.index_add(0, Tensor([3]), Tensor.ones(1, 4)),
                                  lambda x: x.index_fill(0, Tensor([-1]), 0.0)])
def test_scatter_family_out_of_range_indices_raise_when_realized(call):
  with pytest.raises(IndexOutOfBounds, match="is out of bounds for dimension"): call(Tensor(randn(3, 4))).numpy()


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_scatter_reduce_property(data):
  """Random shapes, dims and indices against torch, forward and backward."""
  ndim = data.draw(st.integers(1, 3))
  shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
  dim = data.draw(st.integers(-ndim, ndim - 1))
  ishape = tuple(data.draw(st.integers(0 if k == dim % ndim else 1, s + 2 if k == dim % ndim else s))
                 for k, s in enumerate(shape))
  index = np.array(data.draw(st.lists(st.integers(0, shape[dim] - 1), min_size=int(np.prod(ishape)),
                                      max_size=int(np.prod(ishape)))), dtype=np.int64).reshape(ishape)
  reduce = data.draw(st.sampled_from(["sum", "prod", "mean", "amax", "amin"]))
  include_self = data.draw(st.booleans())
  compare(lambda x, i, s: x.scatter_reduce(dim, i, s, reduce, include_self=include_self), randn(*shape), index,
          randn(*ishape))


def test_index_select_add_copy_fill_put():
  idx = np.array([2, 0, 2])
  compare(lambda x, i: x.index_select(1, i), randn(2, 3, 4), idx)
  compare(lambda x, i: x.index_select(-1, i), randn(2, 3), np.array(1))
  compare(lambda x, i: x.index_select(0, i), randn(), np.array([0]))
  compare(lambda x, i: x.index_select(0, i), randn(3, 2), np.zeros(0, np.int64))
  compare(lambda x, i, s: x.index_add(1, i, s, alpha=2), randn(2, 3, 4), idx, randn(2, 3, 4))
  compare(lambda x, i, s: x.index_add(0, i, s), ints(0, 5, 3, 2), idx, ints(0, 5, 3, 2))
  compare(lambda x, i, s: x.index_copy(2, i, s), randn(2, 3, 4), np.array([3, 0, 1]), randn(2, 3, 3))
  compare(lambda x, i, v: x.index_fill(1, i, v), randn(2, 3, 4), idx, randn())
  compare(lambda x, i: x.index_fill(0, i, 7), ints(0, 5, 3, 2), idx)
  cols = np.array([1, 1, 1])
  # rows repeat only where values add up (where they replace, torch's gradient counts a lost write too)
  for accumulate, rows, vals in ((False, np.array([0, 2, 1]), randn(1)), (False, np.array([0, 2, 1]), randn(3)),
                                 (True, np.array([0, 2, 0]), randn(3))):
    compare(lambda x, r, c, v: x.index_put((r, c), v, accumulate=accumulate), randn(3, 4), rows, cols, vals)


# ---------------------------------------------------------------- data-dependent shapes
@pytest.mark.parametrize("x", [randn(3, 4) * (RNG.random((3, 4)) < 0.5), np.array(5.0), np.array(0),
                               np.zeros((2, 0, 3), np.float32), RNG.random((2, 3, 2)) < 0.5, ints(-1, 2, 7)])
def test_nonzero(x):
  compare(lambda t: t.nonzero(), x, grad=False)
  compare(lambda t: t.nonzero(as_tuple=True), x, grad=False)
  compare(lambda t: t.argwhere(), x, grad=False)


def test_masked_select():
  mask = RNG.random((3, 4)) < 0.5
  compare(lambda x, m: x.masked_select(m), randn(3, 4), mask)
  compare(lambda x, m: x.masked_select(m), randn(2, 3, 4), mask[:1])
  compare(lambda x, m: x.masked_select(m), randn(4), mask)
  compare(lambda x, m: x.masked_select(m), ints(0, 3, 3, 4), np.zeros((3, 4), bool))


# ---------------------------------------------------------------- movement
@pytest.mark.parametrize("fn", [lambda x: x.roll(2, 1), lambda x: x.roll(-7, -1), lambda x: x.roll((1, 3), (0, 2)),
                                lambda x: x.roll(5), lambda x: x.roll(0, 0), lambda x: x.roll((2, 2), (1, 1))])
def test_roll(fn):
  compare(fn, randn(2, 3, 4))
  compare(fn, ints(0, 9, 2, 3, 4))


def test_roll_edge_cases():
  compare(lambda x: x.roll(3), randn())
  compare(lambda x: x.roll(3, 0), randn(0, 2))
  with pytest.raises(ValueError, match="one shift per dim"): Tensor.zeros(2, 2).roll((1, 2), 0)


@pytest.mark.parametrize("fn", [lambda x: x.diagonal(), lambda x: x.diagonal(2), lambda x: x.diagonal(-1),
                                lambda x: x.diagonal(0, 1, 2), lambda x: x.diagonal(1, -1, 0), lambda x: x.diagonal(9),
                                lambda x: x.permute(2, 0, 1).diagonal(-2, 2, 0), lambda x: x[0].diag(),
                                lambda x: x[0].diag(-2), lambda x: x[0, 0].diag(), lambda x: x[0, 0].diag(3),
                                lambda x: x.diag_embed(), lambda x: x.diag_embed(1, 0, 2),
                                lambda x: x[0].diag_embed(-2, -1, 0)])
def test_diagonals(fn):
  compare(fn, randn(3, 4, 5))


def test_diag_embed_and_diagonal_dtypes():
  compare(lambda x: x.diag_embed(), ints(0, 9, 2, 3))
  compare(lambda x: x.diagonal(0, 0, 1), RNG.random((3, 3)) < 0.5)
  with pytest.raises(lazygrad.ShapeError, match="diag: needs a 1-d or 2-d tensor"): Tensor.zeros(2, 2, 2).diag()
  with pytest.raises(ValueError, match="dim1 and dim2 must differ"): Tensor.zeros(2, 2).diagonal(0, 1, -1)


@pytest.mark.parametrize("fn", [lambda x: x.repeat_interleave(2), lambda x: x.repeat_interleave(3, 1),
                                lambda x: x.repeat_interleave(0, -1),
                                lambda x: x.repeat_interleave(2, dim=0, output_size=4)])
def test_repeat_interleave(fn):
  compare(fn, randn(2, 3))


def test_repeat_interleave_tensor_counts():
  r = np.array([1, 0, 3])
  compare(lambda x, r: x.repeat_interleave(r, 1), randn(2, 3), r)
  compare(lambda x, r: x.repeat_interleave(r), randn(2, 2), np.array([2]))
  compare(lambda x, r: x.repeat_interleave(r), ints(0, 9, 3), r)
  compare(lambda x: x.repeat_interleave(2), randn())
  with pytest.raises(lazygrad.ShapeError, match="1 or 3 counts"):
    Tensor.zeros(2, 3).repeat_interleave(Tensor([1, 2]), 1)
  with pytest.raises(ValueError, match=">= 0"): Tensor.zeros(2).repeat_interleave(-1)


@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid(indexing):
  a, b, c = randn(3), randn(2), randn()
  def mesh(as_list): return lambda *t: (Tensor if isinstance(t[0], Tensor) else torch).meshgrid(
    *([list(t)] if as_list else t), indexing=indexing)
  compare(mesh(False), a, b, c)
  compare(mesh(True), a, b)
  compare(mesh(False), a)
  compare(mesh(False), randn(0), b)


def test_tile_movedim_flip_clone_neg():
  compare(lambda x: x.tile(2), randn(2, 3))
  compare(lambda x: x.tile((2, 1, 2)), randn(2, 3))
  compare(lambda x: x.tile(()), randn(2))
  compare(lambda x: x.movedim(0, -1), randn(2, 3, 4))
  compare(lambda x: x.movedim((0, 1), (2, 0)), randn(2, 3, 4))
  compare(lambda x: x.moveaxis(-1, 0), randn(2, 3, 4))
  compare(lambda x: x.flip(-1).clone().neg(), randn(2, 3))


# ---------------------------------------------------------------- pad modes
PADS = {"1d": ((1, 2), (2, 3, 5)), "2d": ((0, 3, 2, 1), (2, 4, 5)), "3d": ((1, 1, 1, 2, 2, 1), (1, 2, 3, 4, 5)),
        "crop": ((-1, 2), (1, 2, 5)), "crop_2d": ((2, -1, 0, 3), (1, 2, 4, 5)), "whole": ((4, 4), (2, 5))}


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("case", list(PADS))
def test_pad_modes(mode, case):
  pad, shape = PADS[case]
  x = randn(*shape)
  compare(lambda t: lazygrad.nn.functional.pad(t, pad, mode=mode), x, th=lambda t: F.pad(t, pad, mode=mode))


def test_pad_modes_int_and_any_rank():
  x = ints(0, 9, 4, 5)
  for mode in ("reflect", "replicate", "circular"):
    assert_same(Tensor(x).pad((1, 2, 2, 1), mode=mode), F.pad(torch.tensor(x)[None], (1, 2, 2, 1), mode=mode)[0])
  got = Tensor(np.arange(4, dtype=np.float32)).pad((2, 3), mode="reflect").numpy()   # 1-d: more than torch takes
  np.testing.assert_array_equal(got, np.pad(np.arange(4, dtype=np.float32), (2, 3), mode="reflect"))


@pytest.mark.parametrize("mode,pad,shape,words", [
  ("reflect", (3, 0), (1, 3), ["'reflect' pads dimension 1 of size 3 by (3, 0)", "less than"]),
  ("circular", (0, 4), (1, 3), ["'circular'", "at most"]),
  ("replicate", (1, 1), (2, 0), ["'replicate'", "must not be 0"]),
])
def test_pad_mode_errors(mode, pad, shape, words):
  with pytest.raises(lazygrad.ShapeError) as e: Tensor.zeros(*shape).pad(pad, mode=mode)
  assert all(w in str(e.value) for w in words), str(e.value)
  with pytest.raises(ValueError, match="mode must be one of"): Tensor.zeros(2).pad((1, 1), mode="wrap")


# ---------------------------------------------------------------- elementwise and reductions
def test_copysign():
  a, b = randn(3, 4), np.array([-1.0, -0.0, 0.0, 2.0], np.float32)
  compare(lambda x, y: x.copysign(y), a, b)
  compare(lambda x: x.copysign(-1.5), a)
  compare(lambda x, y: x.copysign(y), ints(-5, 5, 3, 4, dtype=np.int32), ints(-5, 5, 4, dtype=np.int32))
  compare(lambda x: x.copysign(-1), np.array([0.0, -0.0, 3.0], np.float32))


def test_fmod_remainder_signs():
  a, b = ints(-9, 10, 12), np.array([3, -3, 4, -4] * 3)
  compare(lambda x, y: x.fmod(y), a, b)
  compare(lambda x, y: x % y, a, b)
  compare(lambda x, y: x.fmod(y), randn(3, 4) * 5, np.array([1.5, -1.5, 2.0, -0.75], np.float32))
  compare(lambda x: x.fmod(-2), ints(-9, 10, 5, dtype=np.int32))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.int8, np.uint8])
def test_gcd_lcm(dtype):
  """Over each dtype's whole range: signs, zeros, the extremes (whose |x| wraps), consecutive Fibonacci numbers (the
  most steps Euclid's algorithm needs), and lcm's overflow, which wraps as torch's does."""
  info = np.iinfo(dtype)
  a = RNG.integers(info.min, info.max, 16, endpoint=True).astype(dtype)
  b = RNG.integers(info.min, info.max, 16, endpoint=True).astype(dtype)
  fib = [1, 2]
  while fib[-1] + fib[-2] <= info.max: fib.append(fib[-1] + fib[-2])
  a[:8] = [0, 0, 12, info.max, 1, fib[-1], info.min, 5 if info.min == 0 else -6]
  b[:8] = [0, 7, 18, info.max - 1, info.max, fib[-2], info.min, 4]
  compare(lambda x, y: x.gcd(y), a, b, grad=False)
  compare(lambda x, y: x.lcm(y), a, b, grad=False)
  compare(lambda x: x.gcd(6), a.reshape(4, 4), th=lambda x: x.gcd(torch.tensor(6, dtype=x.dtype)), grad=False)
  compare(lambda x, y: x.lcm(y), a.reshape(4, 4), b[:4], grad=False)


def test_gcd_in_place_and_errors():
  x, t = Tensor([12, -18, 0]), torch.tensor([12, -18, 0])
  x.gcd_(Tensor([8, 4, -5])); t.gcd_(torch.tensor([8, 4, -5]))
  assert_same(x, t)
  with pytest.raises(TypeError, match="gcd: needs integer tensors, got float32"): Tensor([1.5]).gcd(Tensor([2.0]))
  with pytest.raises(TypeError, match="lcm: needs integer tensors, got bool"): Tensor([True]).lcm(Tensor([False]))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
def test_shifts(dtype):
  info = np.iinfo(dtype)
  bits = 8 * np.dtype(dtype).itemsize
  a = np.array([1, 5, info.max, info.min, info.max // 3, 7, 0, 1], dtype)
  if info.min < 0: a[-1] = -7
  b = np.array([0, 1, 3, bits - 1, bits, bits + 5, 2, -1 if info.min < 0 else 4], dtype)
  compare(lambda x, y: x << y, a, b, grad=False)
  compare(lambda x, y: x >> y, a, b, grad=False)
  compare(lambda x, y: x.bitwise_left_shift(y), a, b[::-1].copy(), grad=False)
  compare(lambda x, y: x.bitwise_right_shift(y), a, b[::-1].copy(), grad=False)
  compare(lambda x: x << 3, a, grad=False)
  compare(lambda x: x >> 2, a, grad=False)
  compare(lambda x: 1 << x, b % bits, grad=False)


def test_shift_in_place_and_errors():
  x, t = Tensor([3, -8, 5]), torch.tensor([3, -8, 5])
  x <<= 2; t <<= 2
  x >>= Tensor([1, 2, 3]); t >>= torch.tensor([1, 2, 3])
  assert_same(x, t)
  with pytest.raises(TypeError, match="bitwise_left_shift: shifts need integer tensors, got float32"):
    Tensor([1.0]) << 1


def test_isposinf_isneginf():
  x = np.array([np.inf, -np.inf, np.nan, 0.0, -1.0], np.float32)
  compare(lambda t: t.isposinf(), x, grad=False)
  compare(lambda t: t.isneginf(), x, grad=False)
  compare(lambda t: t.isposinf(), ints(0, 3, 4), grad=False)
  compare(lambda t: t.isneginf(), x.astype(np.float16), grad=False)


@pytest.mark.parametrize("kw", [{}, {"dim": 1}, {"dim": (0, 2), "keepdim": True}, {"dim": -1, "correction": 0},
                                {"dim": 1, "unbiased": False}])
def test_var_mean_std_mean(kw):
  compare(lambda x: x.var_mean(**kw), randn(3, 4, 5), th=lambda x: torch.var_mean(x, **kw))
  compare(lambda x: x.std_mean(**kw), randn(3, 4, 5), th=lambda x: torch.std_mean(x, **kw))


def test_var_mean_errors_and_sum_dtype():
  with pytest.raises(TypeError, match="var_mean: needs a floating point tensor"): Tensor([1, 2]).var_mean()
  compare(lambda x: x.sum(dtype=lazygrad.float32), ints(0, 5, 3, 4), th=lambda x: x.sum(dtype=torch.float32))
  compare(lambda x: x.sum(1, dtype=lazygrad.int32), RNG.random((3, 4)) < 0.5, th=lambda x: x.sum(1, dtype=torch.int32))


# ---------------------------------------------------------------- einsum
EINSUM = [("ij,jk->ik", (3, 4), (4, 5)), ("ij,jk", (3, 4), (4, 5)), ("bij,bjk->bik", (2, 3, 4), (2, 4, 5)),
          ("ii", (4, 4)), ("ii->i", (4, 4)), ("iij->j", (3, 3, 2)), ("iji->j", (3, 2, 3)), ("ij->", (3, 4)),
          ("ijk->kji", (2, 3, 4)), ("i,j->ij", (3,), (4,)), ("i,i->", (5,), (5,)), ("i,i", (5,), (5,)),
          ("...ij,...jk->...ik", (2, 3, 4), (4, 5)), ("b...i,b...i->b...", (2, 3, 4), (2, 1, 4)),
          ("...,...", (2, 3), (3,)), ("ab,bc,cd->ad", (2, 3), (3, 4), (4, 5)), ("ij,ij,ij->i", (2, 3), (2, 3), (2, 3)),
          ("bhqd,bhkd->bhqk", (2, 2, 3, 4), (2, 2, 5, 4)), ("ij,kl->ijkl", (2, 3), (1, 2)), (",ij->ij", (), (2, 3)),
          ("i j , j k -> k i", (3, 4), (4, 2)), ("Ab,bC->CA", (2, 3), (3, 4)), ("ij,j->i", (3, 0), (0,)),
          ("ik,kj->ij", (0, 3), (3, 2)), ("ij,ij->ij", (3, 1), (1, 4))]


@pytest.mark.parametrize("case", EINSUM, ids=[c[0] for c in EINSUM])
def test_einsum(case):
  eq, *shapes = case
  compare(lambda *t: (Tensor if isinstance(t[0], Tensor) else torch).einsum(eq, *t), *[randn(*s) for s in shapes])


def test_einsum_forms_dtypes_and_dot():
  a, b = randn(3, 4), randn(4, 5)
  def einsum(*args): return (Tensor if any(isinstance(a, Tensor) for a in args) else torch).einsum(*args)
  compare(lambda x, y: einsum(x, [0, 1], y, [1, 2], [0, 2]), a, b)
  compare(lambda x, y: einsum(x, [Ellipsis, 1], y, [1, 2]), a, b)
  compare(lambda x, y: (Tensor if isinstance(x, Tensor) else torch).einsum("ij,jk", [x, y]), a, b)
  for x, y in ((ints(-3, 4, 3, 4, dtype=np.int32), ints(-3, 4, 4, 2, dtype=np.int32)),
               (a.astype(np.float16), b.astype(np.float16))):
    compare(lambda x, y: einsum("ij,jk->ik", x, y), x, y, atol=1e-2, rtol=1e-2)
  x, y = Tensor(randn(2, 3, 4)), Tensor(randn(2, 5, 4))
  assert kernels_with_dot(Tensor.einsum("bik,bjk->bij", x, y)) == 1
  assert kernels_with_dot(Tensor.einsum("abc,cd,de->abe", x, Tensor(randn(4, 6)), Tensor(randn(6, 2)))) == 2


@pytest.mark.parametrize("eq,shapes,error,words", [
  ("ij,jk->ik", [(3, 4), (5, 2)], lazygrad.ShapeError, ["label 'j' has sizes 4 and 5"]),
  ("ij->ik", [(3, 4)], ValueError, ["output label 'k' is in no operand"]),
  ("ij->ii", [(3, 3)], ValueError, ["output label 'i' appears twice"]),
  ("ijk", [(3, 4)], lazygrad.ShapeError, ["subscripts 'ijk' do not fit an operand of shape (3, 4)"]),
  ("ij,jk", [(3, 4)], ValueError, ["has 2 operand(s) but 1 tensor(s)"]),
  ("i1", [(3, 4)], ValueError, ["subscripts are letters"]),
])
def test_einsum_errors(eq, shapes, error, words):
  with pytest.raises(error) as e: Tensor.einsum(eq, *[Tensor(randn(*s)) for s in shapes])
  assert all(w in str(e.value) for w in words) and "einsum" in str(e.value), str(e.value)
