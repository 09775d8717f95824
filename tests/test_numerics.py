"""Numerical edge cases against PyTorch, forward and backward: exact integer powers, float pow at zeros, infinities
and NaNs, integer min/max at the limits of the dtype, exact float remainder, half-precision arithmetic with Python
numbers, integer scalars outside a dtype's range, sigmoid/tanh over the whole float32 range, softmax with
infinities. Each was a silent wrong answer once."""
import math
import numpy as np
import pytest
import torch

import lazygrad
from lazygrad import Tensor
from lazygrad.runtime.device import get_device
from helpers import assert_same

F = torch.nn.functional
nan, inf = float("nan"), float("inf")
I32, I64 = np.iinfo(np.int32), np.iinfo(np.int64)


# CUDA's math library, which the GPU renders fmod, exp... with, flushes float32 subnormal results to (signed) zero
FLUSHES_SUBNORMALS = get_device().name == "triton"


def flushed(x):
  """x as the GPU's math library sees it: float32 subnormals as (signed) zeros; elsewhere x itself."""
  x = np.asarray(x)
  if not FLUSHES_SUBNORMALS or x.dtype != np.float32: return x
  return np.where(np.abs(x) < np.finfo(np.float32).tiny, x * 0, x)


def same_values(got, want):
  """Bit-exact values (NaN equal to NaN; -0.0 and 0.0 alike; subnormals as zero where the GPU flushes them)."""
  np.testing.assert_array_equal(np.asarray(got), flushed(want))


def close(got, want, rtol=1e-6, atol=0.0):
  """Values within rtol (about 8 float32 ulps by default), infinities and NaNs in the same places."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="NaNs differ")
  np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


def grads(fn, *arrays):
  """fn's output and the gradients of its sum w.r.t. every input, from lazygrad and from torch."""
  lz = [Tensor(a, requires_grad=True) for a in arrays]
  th = [torch.tensor(a, requires_grad=True) for a in arrays]
  lo, to = fn(*lz), fn(*th)
  lo.sum().backward()
  to.sum().backward()
  return lo.numpy(), [t.grad.numpy() for t in lz], to.detach().numpy(), [t.grad.numpy() for t in th]


def check_grads(fn, *arrays, rtol=1e-6, atol=0.0):
  lo, lg, to, tg = grads(fn, *arrays)
  close(lo, to, rtol, atol)
  for k, (a, b) in enumerate(zip(lg, tg)):
    try: close(a, b, rtol, atol)
    except AssertionError as e: raise AssertionError(f"gradient of input {k}: {e}") from None


def pairs(a, b):
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  return np.repeat(a, len(b)), np.tile(b, len(a))


# ---------------------------------------------------------------- 1. integer ** integer is exact

INT_BASES = [999, 11, -7, 0, 1, -1, 3, -2, 2**20]


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("e", [0, 1, 2, 3, 7, 13, 45, 64])
def test_int_pow_python_exponent_is_exact(dtype, e):
  x = torch.tensor(INT_BASES, dtype=dtype)   # 999**3 went through float32: 997003072
  assert_same(Tensor.from_torch(x) ** e, x ** e)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64])
def test_int_pow_tensor_exponent_is_exact(dtype):
  rng = np.random.default_rng(0)
  lo = 0 if dtype == torch.uint8 else -5
  base = torch.tensor(rng.integers(lo, 6, 40)).to(dtype)
  exp = torch.tensor(rng.integers(lo, 70, 40)).to(dtype)   # negative exponents too: torch gives 0, 1 or -1
  if dtype != torch.uint8:
    base[:6] = torch.tensor([1, -1, -1, 2, 0, 1], dtype=dtype)
    exp[:6] = torch.tensor([-3, -3, -4, -1, -1, 2**30], dtype=dtype)
  assert_same(Tensor.from_torch(base) ** Tensor.from_torch(exp), base ** exp)
  assert_same(2 ** Tensor.from_torch(exp), 2 ** exp)


def test_int_pow_wraps_like_torch():
  base, exp = torch.tensor([3, 3, 7, -3]), torch.tensor([45, 2**62 + 1, 40, 41])
  assert_same(Tensor.from_torch(base) ** Tensor.from_torch(exp), base ** exp)
  x = torch.tensor([3, 200], dtype=torch.uint8)
  assert_same(Tensor.from_torch(x) ** 7, x ** 7)


def test_int_pow_negative_python_exponent_raises():
  with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
    Tensor([2, 3]) ** -1


@pytest.mark.parametrize("e", [2.0, 1.0, 0.5, -1.0, -0.5, 3.0, -2.0, 1.5, 0.0])
def test_float_exponent_makes_an_integer_tensor_float(e):
  x = torch.tensor([1, 2, 3, 4], dtype=torch.int32)   # int ** 2.0 stayed int32
  assert_same(Tensor.from_torch(x) ** e, x ** e)
  if e >= 0 and e == int(e): assert_same(Tensor.from_torch(x) ** int(e), x ** int(e))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("e", [2, 3, 0.5, -1, -0.5, 1, 0])
def test_fast_paths_keep_half_dtypes(dtype, e):
  x = torch.tensor([0.5, 1.5, 3.0, 7.25]).to(dtype)
  assert_same(Tensor.from_torch(x) ** e, x ** e)


# ---------------------------------------------------------------- 3. the POW primitive: values and both gradients

BASES = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, inf, -inf, nan, 1e-30, 3.0]
EXPONENTS = [0.0, -0.0, 1.0, -1.0, 2.0, 3.0, 0.5, -0.5, 2.5, -2.5, inf, -inf, nan, 1e-3, -3.0]


def test_pow_tensor_tensor_values_and_gradients():
  check_grads(lambda a, b: a ** b, *pairs(BASES, EXPONENTS))


@pytest.mark.parametrize("e", [0, 1, 2, 3, -1, -2, 0.5, -0.5, 2.5, -1.5, 1e-3, 7])
def test_pow_python_exponent_values_and_gradient(e):
  bases = BASES
  if e == -0.5:
    # x ** -0.5 is rsqrt, as in torch; its gradient comes from rsqrt's, which differs from pow's formula at -0.0
    # (the other infinity) and -inf (NaN, not -0)
    bases = [b for b in BASES if not np.signbit(b) or b not in (0, -inf)]
  check_grads(lambda x: x ** e, np.array(bases, np.float32))


@pytest.mark.parametrize("base", [2, 0, -2, 0.5, 1, 2.5, -1])
def test_reverse_pow_values_and_gradient(base):
  check_grads(lambda x: base ** x, np.array(EXPONENTS, np.float32))


def test_pow_random_values_match_torch():
  rng = np.random.default_rng(1)
  a = (rng.uniform(0, 4, 2000)).astype(np.float32)
  b = rng.uniform(-30, 30, 2000).astype(np.float32)
  b[::4] = np.round(b[::4])
  a[1::4] *= -1   # negative bases with integer exponents
  check_grads(lambda a, b: a ** b, a, b, rtol=2e-6)


# ---------------------------------------------------------------- 4. integer min/max at the limits

@pytest.mark.parametrize("dtype, values", [
  (torch.int32, [[0, I32.min, 5], [I32.max, -1, I32.min]]),
  (torch.int64, [[-2**63, 0, 3], [I64.max, I64.min, -1]]),
  (torch.uint8, [[0, 255, 7], [255, 1, 0]])])
def test_integer_min_at_the_dtype_limits(dtype, values):
  x = torch.tensor(values, dtype=dtype)
  lx = Tensor.from_torch(x)
  assert_same(lx.min(), x.min())
  assert_same(lx.min(1).values, x.amin(1))
  assert_same(lx.argmin(1), x.argmin(1))
  assert_same(lx.max(0).values, x.amax(0))
  y = x.flip(1)
  assert_same(lx.minimum(Tensor.from_torch(y)), torch.minimum(x, y))
  assert_same(lx.maximum(Tensor.from_torch(y)), torch.maximum(x, y))
  lo, hi = int(x.min()), int(x.max())
  for kw in (dict(max=lo), dict(max=hi - 1), dict(min=lo + 1), dict(min=lo, max=hi)):
    assert_same(lx.clamp(**kw), x.clamp(**kw))


# ---------------------------------------------------------------- 5. remainder / fmod / floor_divide from fmod

REM_A = [1e10, -1e10, 1e30, 7.0, -7.0, 0.0, -0.0, 5.5, -5.5, 1.0, inf, -inf, nan, 2.0**-140]
REM_B = [3.0, -3.0, 1e-3, 0.1, -0.1, 2.5, inf, -inf, nan, 0.0]


@pytest.mark.parametrize("op", ["remainder", "fmod", "floor_divide"])
def test_float_remainder_fmod_floor_divide_values(op):
  # Tensor([1e10]) % 3 gave 0, 1 // 0.1 gave 10. On the GPU the math library's fmod flushes a subnormal operand
  # while plain division keeps it, so // of one is neither torch's value nor its value at zero: left to the CPU
  a, b = pairs([x for x in REM_A if not (FLUSHES_SUBNORMALS and op == "floor_divide" and 0 < abs(x) < 1e-38)], REM_B)
  with np.errstate(all="ignore"):
    want = getattr(torch, op)(torch.tensor(flushed(a)), torch.tensor(flushed(b))).numpy()
    same_values(getattr(Tensor(a), op)(Tensor(b)).numpy(), want)


def test_remainder_with_a_huge_quotient_is_exact():
  # torch's vectorized CPU fmod gives NaN where a / b overflows (its CUDA one and C's fmod do not)
  a, b = np.float32(3e38), np.float32(1e-3)
  want = math.fmod(float(a), float(b))
  assert Tensor([a]).fmod(float(b)).item() == want and (Tensor([a]) % float(b)).item() == want
  assert (Tensor([-a]) % float(b)).item() == np.float32(float(b) - want)


def test_python_scalar_remainder():
  x = np.array([1e10, -1e10, 1.0, -1.0, 7.5], np.float32)
  for s in (3, -3, 0.1, 2.5):
    same_values((Tensor(x) % s).numpy(), (torch.tensor(x) % s).numpy())
    same_values((Tensor(x) // s).numpy(), (torch.tensor(x) // s).numpy())
    same_values(Tensor(x).fmod(s).numpy(), torch.fmod(torch.tensor(x), s).numpy())


@pytest.mark.parametrize("op", ["remainder", "fmod"])
def test_remainder_and_fmod_gradients(op):
  rng = np.random.default_rng(2)
  a = rng.uniform(-20, 20, 64).astype(np.float32)
  b = (rng.uniform(0.7, 3, 64) * rng.choice([-1, 1], 64)).astype(np.float32)
  check_grads(lambda a, b: getattr(a, op)(b) if isinstance(a, Tensor) else getattr(torch, op)(a, b), a, b)


# ---------------------------------------------------------------- 6. half precision with a Python number

HALF = [torch.float16, torch.bfloat16]


def half_input(dtype):
  return (torch.randn(4000, generator=torch.Generator().manual_seed(0)) * 4).to(dtype)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("op", ["x*s", "x/s", "x//s", "s-x", "x+s", "x-s"])
def test_half_arithmetic_with_a_python_float_is_float32_math(dtype, op):
  """PyTorch's CUDA kernels compute it in float32 and round once (its CPU kernels round s first for + and -)."""
  fn = {"x*s": lambda x, s: x * s, "x/s": lambda x, s: x / s, "x//s": lambda x, s: x // s, "s-x": lambda x, s: s - x,
        "x+s": lambda x, s: x + s, "x-s": lambda x, s: x - s}[op]
  x = half_input(dtype)
  for s in (0.1, 1 / 3, 3001):
    got = fn(Tensor.from_torch(x), s)
    assert_same(got, fn(x.float(), s).to(dtype), values=False)
    same_values(got.float().numpy(), fn(x.float(), s).to(dtype).float().numpy())


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("op", ["s/x", "x**s", "s**x", "x%s", "x<s", "x==s", "x*exact"])
def test_half_ops_that_torch_rounds_match_torch(dtype, op):
  """As PyTorch on CPU and CUDA: s / x is (1 / x) * s; pow, % and comparisons take s rounded to the half type."""
  fn = {"s/x": lambda x: 0.1 / x, "x**s": lambda x: x.abs() ** 0.1, "s**x": lambda x: 0.1 ** x,
        "x%s": lambda x: x % 0.1, "x<s": lambda x: x < 0.1, "x==s": lambda x: x == 0.1,
        "x*exact": lambda x: x * 0.5}[op]
  x = half_input(dtype)
  got, want = fn(Tensor.from_torch(x)), fn(x)
  assert_same(got, want, values=False)
  same_values(got.numpy().astype(np.float32), want.float().numpy() if want.dtype.is_floating_point else want.numpy())


# ---------------------------------------------------------------- 7. integer scalars outside the dtype's range

@pytest.mark.parametrize("dtype, op", [
  ("uint8", lambda x: x / -4), ("int32", lambda x: x + 2**33), ("uint8", lambda x: x + -4),
  ("uint8", lambda x: x + 300), ("uint8", lambda x: x * 300), ("uint8", lambda x: x - 300),
  ("uint8", lambda x: 300 - x), ("uint8", lambda x: x < 300),
  ("int32", lambda x: x == 2**33 + 1), ("uint8", lambda x: x // -4), ("uint8", lambda x: x % -4),
  ("int32", lambda x: x * -2**40), ("int64", lambda x: x + (2**63 - 1)), ("int32", lambda x: -2**33 / x)])
def test_integer_scalars_wrap_like_torch(dtype, op):
  x = torch.tensor([1, 5, 200], dtype=getattr(torch, dtype))
  assert_same(op(Tensor.from_torch(x)), op(x))


def test_integer_scalars_that_cannot_wrap_are_errors():
  with pytest.raises(OverflowError, match="does not fit in int64"):
    Tensor([1], dtype=lazygrad.int32) + 2**70
  u8 = Tensor(np.array([5], np.uint8))
  with pytest.raises(OverflowError, match="clamp: value 300 cannot be converted to uint8"):
    u8.clamp(max=300)
  with pytest.raises(OverflowError, match="where: value 300 cannot be converted to uint8"):
    u8.where(u8 > 1, 300)


# ---------------------------------------------------------------- 8. sigmoid and tanh over the whole range

# Measured on the numpy device against torch float32 on CPU (x = ±logspace(-10, log10(20), 20001) and 0), in float32
# ulps: sigmoid within 3.0 of torch and 3.0 of the exact value (torch: 1.95), its gradient within 3.6 of exact;
# tanh within 2.0 of torch and 1.6 of exact (torch: 0.5), its gradient within 5.2 of exact. torch's own gradients
# (from 1 - y and 1 - y*y) lose everything where y rounds to 1; lazygrad's differ from them by at most 8.7e-8
# (sigmoid) and 3.0e-7 (tanh). Before: tanh(1e-8) was 0, tanh(1e-6) 7% off, sigmoid's gradient NaN below -88.
def ulps(got, want):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)


GRID = np.concatenate([-np.logspace(-10, np.log10(20), 1501)[::-1], [0.0], np.logspace(-10, np.log10(20), 1501)])
GRID = GRID.astype(np.float32)
EXTREMES = np.array([-inf, -1e30, -1e4, -104, -100, -89, -88, -50, -20, 20, 50, 88, 89, 100, 1e4, 1e30, inf, nan,
                     -0.0, 0.0, 1e-45, -1e-45], np.float32)


@pytest.mark.parametrize("op, max_ulp", [("sigmoid", 3.5), ("tanh", 2.5)])
def test_sigmoid_tanh_values_within_a_few_ulps(op, max_ulp):
  got = getattr(Tensor(GRID), op)().numpy()
  want = getattr(torch, op)(torch.tensor(GRID)).numpy()
  assert ulps(got, want).max() <= max_ulp
  got, want = getattr(Tensor(EXTREMES), op)().numpy(), getattr(torch, op)(torch.tensor(EXTREMES)).numpy()
  close(got, want, atol=1e-38)   # below -88 torch's sigmoid is 0, lazygrad's the (subnormal) exact value


@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
def test_sigmoid_tanh_float64_within_a_few_ulps(op):
  x = np.concatenate([GRID, EXTREMES]).astype(np.float64)
  got, want = getattr(Tensor(x, dtype=lazygrad.float64), op)().numpy(), getattr(torch, op)(torch.tensor(x)).numpy()
  fine = np.isfinite(want) & (np.abs(want) > 1e-300)   # float64 ulps here: the float32 coefficients were not enough
  assert (np.abs(got - want)[fine] / np.spacing(np.abs(want[fine]))).max() <= 6
  close(got, want, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("op, atol", [("sigmoid", 1e-7), ("tanh", 3e-7), ("silu", 3e-7)])
def test_sigmoid_tanh_gradients_finite_and_match_torch(op, atol):
  fn = {"sigmoid": lambda x: x.sigmoid(), "tanh": lambda x: x.tanh(),
        "silu": lambda x: x.silu() if isinstance(x, Tensor) else F.silu(x)}[op]
  x = np.concatenate([GRID, EXTREMES[np.isfinite(EXTREMES)]])
  lo, (lg,), to, (tg,) = grads(fn, x)
  assert np.isfinite(lg).all()
  close(lo, to, rtol=5e-7, atol=1e-35)   # torch's sigmoid underflows to 0 below -88: silu(-104) is -4e-43 * 104
  close(lg, tg, rtol=1e-5, atol=atol)


def test_gelu_tanh_gradient_is_finite_far_out():
  x = np.array([-1e4, -1e3, -100, -20, -10, -5, -1, 0, 1, 5, 10, 20, 100, 1e3, 1e4], np.float32)
  # the gradient was NaN below about -10; near -5 both sides round 1 + tanh(...) to a float32 ulp or two
  check_grads(lambda x: x.gelu(approximate="tanh") if isinstance(x, Tensor) else F.gelu(x, approximate="tanh"), x,
              rtol=1e-5, atol=5e-7)


def test_log_of_sigmoid_matches_logsigmoid():
  x = np.linspace(-85, 30, 500).astype(np.float32)
  check_grads(lambda x: x.sigmoid().log() if isinstance(x, Tensor) else F.logsigmoid(x), x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("op", ["sigmoid", "tanh", "silu"])
def test_half_activations_round_once(dtype, op):
  x = half_input(dtype)
  fn = {"sigmoid": lambda x: x.sigmoid(), "tanh": lambda x: x.tanh(),
        "silu": lambda x: x.silu() if isinstance(x, Tensor) else F.silu(x)}[op]
  got, want = fn(Tensor.from_torch(x)), fn(x)
  assert_same(got, want, values=False)
  # computed in float32 and rounded once, as torch: rarely a float32 ulp tips a tie to the other half value
  g, w = got.numpy().astype(np.float32), want.float().numpy()
  np.testing.assert_allclose(g, w, rtol=2.0 ** (-10 if dtype == torch.float16 else -7), atol=1e-6)
  assert (g == w).mean() > 0.99


# ---------------------------------------------------------------- 9. softmax family with infinities and NaNs

ROWS = np.array([[inf, 0, 1], [-inf, -inf, -inf], [-inf, 0, 1], [nan, 0, 1], [inf, inf, 0], [inf, -inf, 0],
                 [1, 2, 3], [-inf, 5, -inf]], np.float32)


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_with_infinities_matches_torch(op):
  with np.errstate(all="ignore"):
    close(getattr(Tensor(ROWS), op)(1).numpy(), getattr(torch, op)(torch.tensor(ROWS), 1).numpy())


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_gradients_with_masked_entries(op):
  rows = np.array([[-inf, 0, 1], [-inf, 5, -inf], [1, 2, 3], [-1e4, 0, 1e4]], np.float32)
  w = np.random.default_rng(3).uniform(-1, 1, (4, 3) if op != "logsumexp" else (4,)).astype(np.float32)
  lx, tx = Tensor(rows, requires_grad=True), torch.tensor(rows, requires_grad=True)
  (getattr(lx, op)(1) * Tensor(w)).sum().backward()
  (getattr(torch, op)(tx, 1) * torch.tensor(w)).sum().backward()
  close(lx.grad.numpy(), tx.grad.numpy(), atol=1e-7)


def test_signed_zero_constants_and_abs():
  x = Tensor([1.0, 2.0])
  keep = x * 0.0   # an equal-comparing 0.0 constant of the same shape, alive: -0.0 must not become it
  assert np.signbit((x * -0.0).numpy()).all() and not np.signbit(keep.numpy()).any()
  assert (1 / (x * -0.0)).numpy().tolist() == [-inf, -inf]
  assert not np.signbit(Tensor([-0.0, -1.0, 0.0]).abs().numpy()).any()
  v = Tensor([-0.0, 0.0, -2.0], requires_grad=True)
  v.abs().sum().backward()
  assert v.grad.numpy().tolist() == [0.0, 0.0, -1.0]
