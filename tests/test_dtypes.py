"""The integer and float dtypes beyond the common ones (int8 int16 uint16 uint32 uint64 float64): creation, promotion
as torch.promote_types, arithmetic that wraps as torch's, reductions' result dtypes, casts, and files."""
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor, dtypes
from lazygrad.nn.state import save_safetensors, load_safetensors

NAMES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "bfloat16",
         "float32", "float64"]
rng = np.random.default_rng(0)


@pytest.mark.parametrize("a", NAMES)
def test_promotion_is_torchs(a):
  for b in NAMES:
    try: want = str(torch.promote_types(getattr(torch, a), getattr(torch, b))).replace("torch.", "")
    except RuntimeError: want = None
    if want is None:
      with pytest.raises(TypeError, match="no common dtype"): dtypes.promote(dtypes.to_dtype(a), dtypes.to_dtype(b))
    else: assert dtypes.promote(dtypes.to_dtype(a), dtypes.to_dtype(b)).name == want, (a, b)


SMALL = ["int8", "int16"]
OPS = {
  "add_wraps": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul_wraps": lambda x, y: x * y,
  "floordiv": lambda x, y: x // y, "remainder": lambda x, y: x % y, "neg": lambda x, y: -x, "abs": lambda x, y: abs(x),
  "lt": lambda x, y: x < y, "eq": lambda x, y: x == y, "max": lambda x, y: x.max(), "argmax": lambda x, y: x.argmax(),
  "sum": lambda x, y: x.sum(), "sum_dim": lambda x, y: x.sum(0), "cumsum": lambda x, y: x.cumsum(0),
  "prod": lambda x, y: x[:4].prod(), "mean_float": lambda x, y: x.float().mean(), "true_div": lambda x, y: x / y,
  "and": lambda x, y: x & y, "xor": lambda x, y: x ^ y, "scalar_wraps": lambda x, y: x + 300,
  "to_float": lambda x, y: x.float(), "promote_int32": lambda x, y: x + y.int(),
  "where": lambda x, y: x.where(x > 0, y),
}


@pytest.mark.parametrize("dt", SMALL)
@pytest.mark.parametrize("op", list(OPS))
def test_small_signed_ints_match_torch(dt, op):
  info = np.iinfo(dt)
  x = rng.integers(info.min, info.max, 40, endpoint=True).astype(dt)
  y = rng.integers(1, info.max, 40).astype(dt) * rng.choice([-1, 1], 40).astype(dt)
  fn = OPS[op]
  got = fn(Tensor(x), Tensor(y))
  ref = fn(torch.tensor(x), torch.tensor(y))
  assert got.dtype.name == str(ref.dtype).replace("torch.", ""), (got.dtype, ref.dtype)
  np.testing.assert_allclose(got.numpy().astype(np.float64), ref.numpy().astype(np.float64), rtol=1e-6)


@pytest.mark.parametrize("dt", ["uint16", "uint32", "uint64"])
def test_wide_unsigned_ints_compute_as_numpy_does(dt):
  """torch keeps these as storage types with few ops; lazygrad computes with them as numpy does (wrapping), gives
  torch's result dtypes where torch has the op, and refuses to mix them with other integers as torch does."""
  info = np.iinfo(dt)
  x = np.array([0, 1, 7, info.max, info.max // 3], dt)
  y = np.array([3, 5, 2, 2, 7], dt)
  for fn in (lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a // b, lambda a, b: a % b,
             lambda a, b: a < b, lambda a, b: a.max() if isinstance(a, np.ndarray) else a.max()):
    np.testing.assert_array_equal(fn(Tensor(x), Tensor(y)).numpy(), fn(x, y))
  assert Tensor(x).sum().dtype == lazygrad.int64 and str(torch.tensor(x.astype(np.int64)).to(getattr(torch, dt))
                                                           .sum().dtype) == "torch.int64"
  np.testing.assert_array_equal(Tensor(x).float().numpy(), x.astype(np.float32))
  assert Tensor(x).dtype.name == dt and Tensor([1, 2], dtype=dt).numpy().dtype == np.dtype(dt)
  with pytest.raises(TypeError, match="no common dtype"): Tensor(x) + Tensor(np.array([1], np.int32))
  assert (Tensor(x) * 2.5).dtype == lazygrad.float32


def test_float64_is_kept_through_matmul_reductions_and_gradients():
  a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
  la, lb = Tensor(a, dtype="float64", requires_grad=True), Tensor(b, dtype="float64", requires_grad=True)
  ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
  out, ref = (la @ lb).softmax(-1).log().sum(), (ta @ tb).softmax(-1).log().sum()
  out.backward(); ref.backward()
  assert out.dtype == lazygrad.float64 and la.grad.dtype == lazygrad.float64
  np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-12)
  np.testing.assert_allclose(la.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dt", ["int8", "int16", "uint16", "uint32", "uint64", "float64"])
def test_dtypes_round_trip_through_safetensors_and_torch(dt, tmp_path):
  x = (np.arange(12) * 7 - (0 if dt.startswith("u") else 20)).astype(dt).reshape(3, 4)
  save_safetensors({"x": Tensor(x, dtype=dt)}, tmp_path / "t.safetensors")
  got, _ = load_safetensors(tmp_path / "t.safetensors")
  assert got["x"].dtype.name == dt
  np.testing.assert_array_equal(got["x"].numpy(), x)
  t = torch.tensor(x.astype(np.int64)).to(getattr(torch, dt)) if dt.startswith("u") else torch.tensor(x)
  assert Tensor.from_torch(t).dtype.name == dt and Tensor(x).dtype.name == ("float32" if dt == "float64" else dt)
  np.testing.assert_array_equal(Tensor.from_torch(t).numpy(), x)
