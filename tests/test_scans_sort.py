"""Scans, products, logical reductions, sorting and selection, forward and backward, with torch as the oracle: along
several dims, on 0-d, zero-size and odd-sized inputs, rows longer than a block (a scan's loop with its carry), ties,
NaN and infinities, integer and bool inputs; and how they are scheduled and lowered."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import lazygrad
from lazygrad import Tensor, counters
from lazygrad.codegen.linearize import LoweringOptions
from lazygrad.codegen.uops import U
from lazygrad.runtime.device import get_device, canonical_name
from lazygrad.runtime.realize import compile_kernel, get_schedule
from helpers import assert_same

nan, inf = float("nan"), float("inf")
# (shape, dim): odd sizes, every dim of a 3-d tensor, a row longer than a Triton interpreter block (256), a size-1
# axis, zero-size tensors and a 0-d one
SHAPES = [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((2, 3, 4), 0), ((2, 300), 1),
          ((4, 1), 1), ((0, 4), 1), ((3, 0), 1), ((), 0)]


def rand(shape, low=-2.0, high=2.0, seed=0):
  return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def compare(lz_fn, th_fn, *arrays, grad=True, atol=1e-5, rtol=1e-4):
  """Run lz_fn on lazygrad tensors and th_fn on torch ones and compare every output (values and int64 indices);
  with `grad`, also the inputs' gradients under one random cotangent for every float output."""
  wide = lambda a: lazygrad.float64 if a.dtype == np.float64 else None   # (numpy's float64 is float32 by default)
  lz_in = [Tensor(a, dtype=wide(a), requires_grad=grad and a.dtype.kind == "f") for a in arrays]
  th_in = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
  lz_out, th_out = lz_fn(*lz_in), th_fn(*th_in)
  lz_out, th_out = (lz_out,) if isinstance(lz_out, Tensor) else tuple(lz_out), \
    (th_out,) if isinstance(th_out, torch.Tensor) else tuple(th_out)
  assert len(lz_out) == len(th_out)
  for lz, th in zip(lz_out, th_out): assert_same(lz, th.detach(), atol, rtol)
  if not grad or not any(t.requires_grad for t in th_in): return
  rng = np.random.default_rng(7)
  pairs = [(lz, th) for lz, th in zip(lz_out, th_out) if th.dtype.is_floating_point and th.requires_grad]
  cot = [rng.standard_normal(th.shape).astype(np.float32) for _, th in pairs]
  sum(((lz * Tensor(c)).sum() for (lz, _), c in zip(pairs, cot)), Tensor(0.0)).backward()
  sum(((th * torch.tensor(c)).sum() for (_, th), c in zip(pairs, cot)), torch.tensor(0.0)).backward()
  for lz, th in zip(lz_in, th_in):
    if th.requires_grad:
      want = th.grad if th.grad is not None else torch.zeros_like(th)
      np.testing.assert_allclose(lz.grad.numpy(), want.numpy(), atol=atol * 10, rtol=rtol * 10)


# ---------------------------------------------------------------------------------------------------------- scans
SCANS = {
  "cumsum": (lambda t, d: t.cumsum(d), lambda t, d: t.cumsum(d)),
  "cumprod": (lambda t, d: t.cumprod(d), lambda t, d: t.cumprod(d)),
  "logcumsumexp": (lambda t, d: t.logcumsumexp(d), lambda t, d: t.logcumsumexp(d)),
  "cummax": (lambda t, d: t.cummax(d), lambda t, d: torch.cummax(t, d)),
  "cummin": (lambda t, d: t.cummin(d), lambda t, d: torch.cummin(t, d)),
}


@pytest.mark.parametrize("op", list(SCANS))
@pytest.mark.parametrize("shape, dim", SHAPES, ids=str)
def test_scan(op, shape, dim):
  lz, th = SCANS[op]
  x = rand(shape, 0.8, 1.25) if op == "cumprod" else rand(shape)   # a product of 300 stays finite
  compare(lambda t: lz(t, dim), lambda t: th(t, dim), x)


@pytest.mark.parametrize("op", list(SCANS))
def test_long_scan_in_chunks(op, monkeypatch):
  """A long scan of few rows runs as scans of chunks, combined with the totals of the chunks before them."""
  from lazygrad.ir import build
  monkeypatch.setattr(build, "SCAN_SPLIT_MIN_LENGTH", 64)
  monkeypatch.setattr(build, "SCAN_CHUNK", 16)   # 19 chunks, the last one padded
  lz, th = SCANS[op]
  x = rand((2, 300), 0.8, 1.25) if op == "cumprod" else rand((2, 300))
  compare(lambda t: lz(t, 1), lambda t: th(t, 1), x)
  ties = np.random.default_rng(2).integers(0, 3, (2, 300)).astype(np.float32)   # maxima that tie across chunks
  compare(lambda t: lz(t, -1), lambda t: th(t, -1), ties)
  out = lz(Tensor(x), 1)
  node = (out.values if op in ("cummax", "cummin") else out).node
  assert sum("a scan" in " ".join(it.reasons) for it in get_schedule([node])) >= 2   # the chunks' and their totals'


def test_scan_ties_take_the_last_index():
  x = np.array([[2, 2, 1, 2, 3, 3, 0], [0, 0, 0, 0, 0, 0, 0]], dtype=np.float32)
  for name in ("cummax", "cummin"):
    lz, th = SCANS[name]
    compare(lambda t: lz(t, 1), lambda t: th(t, 1), x)
    compare(lambda t: lz(t, 1), lambda t: th(t, 1), x.astype(np.int32), grad=False)


@pytest.mark.parametrize("op", list(SCANS))
def test_scan_special_values(op):
  x = np.array([[1.0, nan, 2.0, -1.0, nan], [-inf, -inf, 0.0, inf, inf], [inf, 1.0, -inf, -0.0, 0.0],
                [-inf, -inf, -inf, 3.0, -inf]], dtype=np.float32)
  lz, th = SCANS[op]
  compare(lambda t: lz(t, 1), lambda t: th(t, 1), x, grad=False)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_scan_int_and_bool(dtype):
  x = np.random.default_rng(3).integers(0, 4, (3, 9)).astype(dtype)
  for op in ("cumsum", "cumprod", "cummax", "cummin"):
    lz, th = SCANS[op]
    compare(lambda t: lz(t, 1), lambda t: th(t, 1), x, grad=False)
  compare(lambda t: t.cumsum(0, dtype=lazygrad.float32), lambda t: t.cumsum(0, dtype=torch.float32), x, grad=False)


def test_scan_dtype_and_half_precision():
  x = rand((4, 37))
  compare(lambda t: t.cumsum(1, dtype=lazygrad.float64), lambda t: t.cumsum(1, dtype=torch.float64), x)
  for dt, tdt in ((lazygrad.bfloat16, torch.bfloat16), (lazygrad.float16, torch.float16)):
    for op in SCANS:
      lz, th = SCANS[op]
      want = th(torch.tensor(x).to(tdt), 1)
      got = lz(Tensor(x).cast(dt), 1)
      for g, w in zip(*(((o,) if isinstance(o, (Tensor, torch.Tensor)) else tuple(o)) for o in (got, want))):
        assert_same(g, w, atol=2e-2, rtol=2e-2)


def test_cumprod_gradient_with_zeros():
  x = np.array([[2.0, 0.0, 3.0, 0.5, 4.0], [0.0, 2.0, 0.0, 3.0, 1.5], [1.5, 2.0, 3.0, 0.5, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0], [1.5, -2.0, 0.5, 3.0, -1.0]], dtype=np.float32)
  compare(lambda t: t.cumprod(1), lambda t: t.cumprod(1), x)
  compare(lambda t: t.cumprod(0), lambda t: t.cumprod(0), x)


def test_scan_errors():
  with pytest.raises(TypeError, match="logcumsumexp: needs a floating point tensor, got int64.*Fix"):
    Tensor([1, 2]).logcumsumexp(0)
  with pytest.raises(IndexError, match=r"cumsum: dim 2 is out of range for a tensor of shape \(3, 4\)"):
    Tensor(rand((3, 4))).cumsum(2)
  with pytest.raises(TypeError, match="cummax: dim must be an int"):
    Tensor(rand((3, 4))).cummax(None)


# --------------------------------------------------------------------------------------------- products, all, any
@pytest.mark.parametrize("shape, dim", SHAPES + [((3, 4), None)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_prod(shape, dim, keepdim):
  x = rand(shape, 0.5, 1.5)
  if dim is None:
    compare(lambda t: t.prod(), lambda t: t.prod(), x)
    return
  compare(lambda t: t.prod(dim, keepdim), lambda t: t.prod(dim, keepdim), x)


def test_prod_gradient_with_zeros():
  x = np.array([[2.0, 0.0, 3.0, 0.5], [0.0, 2.0, 0.0, 3.0], [1.5, 2.0, 3.0, 0.5], [0.0, 0.0, 0.0, 0.0]],
               dtype=np.float32)
  for dim in (0, 1):
    compare(lambda t: t.prod(dim), lambda t: t.prod(dim), x)
  compare(lambda t: t.prod(), lambda t: t.prod(), x[2:3])
  compare(lambda t: t.prod(), lambda t: t.prod(), x[:1])


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_, np.float16])
def test_prod_dtypes(dtype):
  x = np.random.default_rng(5).integers(0, 3, (3, 5)).astype(dtype)
  compare(lambda t: t.prod(1), lambda t: t.prod(1), x, grad=False)
  compare(lambda t: t.prod(), lambda t: t.prod(), x, grad=False)
  compare(lambda t: t.prod(0, dtype=lazygrad.float32), lambda t: t.prod(0, dtype=torch.float32), x, grad=False)


@pytest.mark.parametrize("op", ["all", "any"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8, np.bool_])
def test_all_any(op, dtype):
  x = np.array([[0, 1, 2], [0, 0, 0], [3, 1, 2], [0, 0, 5]]).astype(dtype)
  compare(lambda t: getattr(t, op)(), lambda t: getattr(torch, op)(t), x, grad=False)
  for dim in (0, 1, -1):
    for keepdim in (False, True):
      compare(lambda t: getattr(t, op)(dim, keepdim), lambda t: getattr(torch, op)(t, dim, keepdim), x, grad=False)


@pytest.mark.parametrize("op", ["all", "any"])
def test_all_any_special(op):
  for x in (np.array([nan, 0.0], np.float32), np.array([-0.0, inf], np.float32), np.zeros((0, 3), np.float32),
            np.zeros((), np.float32), np.ones((), np.bool_)):
    compare(lambda t: getattr(t, op)(), lambda t: getattr(torch, op)(t), x, grad=False)
  x = np.zeros((2, 0), np.uint8)
  compare(lambda t: getattr(t, op)(1), lambda t: getattr(torch, op)(t, 1), x, grad=False)
  assert not Tensor(rand((3,))).any().requires_grad


# ------------------------------------------------------------------------------------------- sorting and selection
@pytest.mark.parametrize("shape, dim", SHAPES, ids=str)
@pytest.mark.parametrize("descending", [False, True])
def test_sort(shape, dim, descending):
  compare(lambda t: t.sort(dim, descending), lambda t: torch.sort(t, dim=dim, descending=descending, stable=True),
          rand(shape))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_, np.float32])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_ties_are_stable(dtype, descending):
  x = np.random.default_rng(11).integers(0, 3, (4, 37)).astype(dtype)
  compare(lambda t: t.sort(1, descending), lambda t: torch.sort(t, dim=1, descending=descending, stable=True), x,
          grad=False)
  compare(lambda t: t.argsort(0, descending), lambda t: torch.argsort(t, dim=0, descending=descending, stable=True), x,
          grad=False)


def test_sort_extreme_integers():
  info = np.iinfo(np.int64)
  x = np.array([[info.max, info.min, 0, -1, info.max, info.min]], np.int64)
  for descending in (False, True):
    compare(lambda t: t.sort(1, descending), lambda t: torch.sort(t, dim=1, descending=descending, stable=True), x,
            grad=False)
  x = np.array([[np.iinfo(np.int32).min, 5, np.iinfo(np.int32).max, np.iinfo(np.int32).min]], np.int32)
  compare(lambda t: t.sort(1, True), lambda t: torch.sort(t, dim=1, descending=True, stable=True), x, grad=False)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_special_values(descending):
  x = np.array([[0.0, -0.0, nan, 1.0, -1.0, inf, -inf, nan, -0.0, 0.0]], np.float32)
  for a in (x, x.astype(np.float64)):
    compare(lambda t: t.sort(1, descending), lambda t: torch.sort(t, dim=1, descending=descending, stable=True), a,
            grad=False)
  half = Tensor(x).cast(lazygrad.bfloat16).sort(1, descending)
  want = torch.sort(torch.tensor(x).bfloat16(), dim=1, descending=descending, stable=True)
  assert_same(half.values, want.values)
  assert_same(half.indices, want.indices)


def test_sort_values_keep_the_sign_of_zero():
  v = Tensor(np.array([0.0, -0.0, 1.0, -0.0], np.float32)).sort().values.numpy()
  np.testing.assert_array_equal(np.signbit(v), [False, True, True, False])   # 0.0, -0.0, -0.0, 1.0


def test_argsort_msort():
  x = rand((5, 6))
  compare(lambda t: t.argsort(), lambda t: torch.argsort(t, stable=True), x, grad=False)
  compare(lambda t: t.argsort(0, descending=True), lambda t: torch.argsort(t, dim=0, descending=True, stable=True), x,
          grad=False)
  compare(lambda t: t.msort(), lambda t: torch.msort(t), x)


@pytest.mark.parametrize("shape, dim", [s for s in SHAPES if s[0] and all(s[0])], ids=str)
@pytest.mark.parametrize("largest", [True, False])
def test_topk(shape, dim, largest):
  n = shape[dim] if shape else 1
  for k in sorted({1, min(3, n), n}):
    compare(lambda t: t.topk(k, dim, largest), lambda t: torch.topk(t, k, dim, largest), rand(shape))


def test_topk_ties_and_nan():
  x = np.array([[1.0, 3.0, 3.0, 2.0, nan, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
  for largest in (True, False):
    got, want = Tensor(x).topk(4, 1, largest), torch.topk(torch.tensor(x), 4, 1, largest)
    assert_same(got.values, want.values)
    picked = np.take_along_axis(x, got.indices.numpy(), 1)   # torch leaves the order of ties open: the same values
    np.testing.assert_array_equal(picked, want.values.numpy())
  assert Tensor(x).topk(0, 1).values.shape == (2, 0)


@pytest.mark.parametrize("shape, dim", [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 3, 4), 1), ((2, 300), 1), ((), 0)],
                         ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_kthvalue_median(shape, dim, keepdim):
  x = rand(shape)
  n = shape[dim] if shape else 1
  for k in sorted({1, (n + 1) // 2, n}):
    compare(lambda t: t.kthvalue(k, dim, keepdim), lambda t: torch.kthvalue(t, k, dim, keepdim), x)
  compare(lambda t: t.median(dim, keepdim), lambda t: torch.median(t, dim, keepdim), x)
  compare(lambda t: t.median(), lambda t: t.median(), x)


def test_median_nan_and_ties():
  x = np.array([[1.0, nan, 2.0, nan], [3.0, 1.0, 2.0, 2.0], [nan, 0.0, 0.0, 1.0]], np.float32)
  compare(lambda t: t.median(1), lambda t: torch.median(t, 1), x, grad=False)
  compare(lambda t: t.median(), lambda t: t.median(), x, grad=False)
  compare(lambda t: t.kthvalue(4, 1), lambda t: torch.kthvalue(t, 4, 1), x, grad=False)
  compare(lambda t: t.median(0), lambda t: torch.median(t, 0), np.array([[3, 1], [1, 1], [2, 5]], np.int32),
          grad=False)
  assert np.isnan(Tensor(np.zeros(0, np.float32)).median().item())


def test_selection_errors():
  x = Tensor(rand((3, 4)))
  with pytest.raises(RuntimeError, match=r"topk: k=5 is out of range for dim 1 of size 4 \(shape \(3, 4\)\).*Fix"):
    x.topk(5)
  with pytest.raises(RuntimeError, match="kthvalue: k=0 is out of range"): x.kthvalue(0)
  with pytest.raises(IndexError, match="sort: dim -3 is out of range"): x.sort(-3)
  with pytest.raises(IndexError, match="median: cannot take the median of an empty dim 1"):
    Tensor(np.zeros((2, 0), np.float32)).median(1)
  with pytest.raises(TypeError, match="kthvalue: is not defined for a bool tensor"):
    Tensor(np.zeros(3, np.bool_)).kthvalue(1)


def test_sort_longer_than_a_program_is_refused(monkeypatch):
  dev = get_device("numpy")
  monkeypatch.setattr(dev, "lowering", LoweringOptions(whole=False, max_sort=8))
  x = Tensor(rand((2, 9)), device="numpy")
  with pytest.raises(ValueError, match=r"sort: dim 1 of shape \(2, 9\) is longer than the 8 elements the numpy "
                     r"device sorts in one program.*Fix"):
    x.sort()
  assert x[:, :8].sort().values.shape == (2, 8)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.integers(0, 2), st.booleans(),
       st.sampled_from(["float32", "int32"]), st.integers(0, 2**31))
def test_random_scans_and_sorts_match_torch(shape, dim, descending, dtype, seed):
  dim = dim % len(shape)
  rng = np.random.default_rng(seed)
  x = rng.integers(-3, 4, shape).astype(dtype) if dtype == "int32" else rng.standard_normal(shape).astype(dtype)
  t, tt = Tensor(x), torch.tensor(x)
  assert_same(t.cumsum(dim), tt.cumsum(dim))
  for got, want in zip(t.cummax(dim), torch.cummax(tt, dim)): assert_same(got, want)
  for got, want in zip(t.sort(dim, descending), torch.sort(tt, dim=dim, descending=descending, stable=True)):
    assert_same(got, want)


# --------------------------------------------------------------------------------------------- schedule, lowering
def test_sort_values_and_indices_are_one_kernel():
  x = Tensor(rand((6, 10)))
  v, i = x.sort(1)
  before = counters.kernels
  lazygrad.realize(v, i)
  assert counters.kernels - before == 1


def test_scan_fuses_its_input_and_is_stored():
  x = Tensor(rand((6, 10)))
  out = (x * 2 + 1).exp().cumsum(1) + 1
  (item, _) = get_schedule([out.node])
  assert "a scan" in " ".join(item.reasons) and item.kernel.n_reduce == 1
  assert [n.op.name for n in item.kernel.nodes].count("LOAD") == 1   # x * 2 + 1, exp fused into the scan's kernel
  np.testing.assert_allclose(out.numpy(), np.cumsum(np.exp(x.numpy() * 2 + 1), 1) + 1, rtol=1e-5)


# blocks of 4 lanes along the scanned axis and a few rows per program: scans loop and carry, sorts pad and mask
SMALL = LoweringOptions(whole=False, max_tile=8, max_reduce_block=4)


@pytest.mark.parametrize("op", list(SCANS) + ["sort", "prod"])
def test_small_blocks_match_torch(op, monkeypatch):
  monkeypatch.setattr(get_device(canonical_name(None)), "lowering", SMALL)   # the device under test
  x = rand((5, 11))
  if op == "sort": compare(lambda t: t.sort(1, True), lambda t: torch.sort(t, dim=1, descending=True, stable=True), x)
  elif op == "prod": compare(lambda t: t.prod(1), lambda t: t.prod(1), x)
  else:
    lz, th = SCANS[op]
    compare(lambda t: lz(t, 0), lambda t: th(t, 0), x)


def test_looped_scan_carries_its_total(monkeypatch):
  monkeypatch.setattr(get_device("numpy"), "lowering", SMALL)
  t = Tensor(rand((5, 11)), device="numpy").cumsum(1)
  (item,) = get_schedule([t.node])
  prog = compile_kernel(item.kernel, get_device("numpy")).prog
  ops = [u.op for u in prog.uops]
  assert ops.count(U.RANGE) == 1 and ops.count(U.SCAN) == 1 and ops.count(U.ACC_UPDATE) == 1
  scan = next(u for u in prog.uops if u.op is U.SCAN)
  assert scan.srcs[1].op is U.ACC   # the blocks before it, combined in


def test_debug_text_and_dump(tmp_path):
  from lazygrad.debug import dump
  x = Tensor(np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::-1].copy())
  with dump(tmp_path):
    v, i = x.sort(1)
    lazygrad.realize(v, i, x.cumsum(0))
  (run,) = tmp_path.iterdir()
  texts = {k.name: (k / "ast.txt").read_text() + (k / "uops.txt").read_text() for k in run.iterdir() if k.is_dir()}
  assert any("SORT float32 %0 (1, False, 'values')" in t and "SORT int64" in t for t in texts.values())
  assert any("SCAN float32 %0 ('sum', 1)" in t for t in texts.values())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 40), st.integers(0, 6), st.booleans(), st.booleans())
def test_mode_matches_torch(rows, n, values, keepdim, floats):
  """Values drawn from a few integers (many ties): the most frequent value (the smallest of equally frequent ones),
  along either dim, as torch's; the index is its last occurrence (torch's CPU kernel gives some occurrence: its
  docs promise none in particular)."""
  rng = np.random.default_rng(rows * 100 + n)
  x = rng.integers(0, values + 1, (rows, n))
  x = x.astype(np.float32) if floats else x
  for d in (0, 1, -1):
    got, want = Tensor(x).mode(d, keepdim), torch.mode(torch.tensor(x), d, keepdim)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    idx = got.indices.numpy() if keepdim else np.expand_dims(got.indices.numpy(), d)
    picked = np.take_along_axis(x, idx, d)
    np.testing.assert_array_equal(picked, np.expand_dims(want.values.numpy(), d) if not keepdim else want.values.numpy())
    last = x.shape[d] - 1 - np.argmax(np.flip(x, d) == picked, axis=d)   # the last occurrence of the mode
    np.testing.assert_array_equal(idx.squeeze(d), last)


def test_mode_gradient_goes_to_the_last_occurrence():
  x = Tensor([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 0.0]], requires_grad=True)
  tx = torch.tensor(x.numpy(), requires_grad=True)
  (x.mode(1).values * Tensor([2.0, 3.0])).sum().backward()
  (torch.mode(tx, 1).values * torch.tensor([2.0, 3.0])).sum().backward()
  np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
  with pytest.raises(IndexError, match="cannot take the mode of an empty dim"): Tensor(np.zeros((2, 0), np.float32)).mode(1)
