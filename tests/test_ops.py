"""Forward tests of lazygrad ops, with torch as the oracle."""
import numpy as np
import pytest
import torch

import lazygrad
from lazygrad import Tensor
from helpers import assert_same, check, dtype_name, make_array

F = torch.nn.functional
nan, inf = float("nan"), float("inf")
# Special float inputs for elementwise ops (0 gives log -inf, rsqrt inf; negatives give nan for log/sqrt).
SPECIAL = np.array([nan, inf, -inf, 0.0, 1.0, -1.0, 0.5, -3.0, 20.0, -20.0], dtype=np.float32)
SPECIAL_FINITE = np.array([nan, 0.0, 1.0, -1.0, 0.5, -3.0, 10.0, -10.0], dtype=np.float32)
RNG = np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _reseed():
    """Every test draws the same inputs whether it runs alone or in the full suite."""
    global RNG
    RNG = np.random.default_rng(1234)


def nonzero(shape, dtype=np.float32, low=0.5, high=2.0):
    """Random values with |v| in [low, high) and random sign: safe divisors."""
    mag = make_array(shape, dtype, low, high, RNG)
    return (mag * RNG.choice(np.array([-1, 1], dtype=mag.dtype), size=shape)).astype(dtype)


# ---------------------------------------------------------------- elementwise unary

UNARY = {  # name: (lazygrad fn, torch fn or None when the same lambda works for both)
    "neg": (lambda x: -x, None),
    "abs": (lambda x: x.abs(), None),
    "exp": (lambda x: x.exp(), None),
    "exp2": (lambda x: x.exp2(), None),
    "log": (lambda x: x.log(), None),
    "log2": (lambda x: x.log2(), None),
    "sqrt": (lambda x: x.sqrt(), None),
    "rsqrt": (lambda x: x.rsqrt(), None),
    "sin": (lambda x: x.sin(), None),
    "cos": (lambda x: x.cos(), None),
    "tanh": (lambda x: x.tanh(), None),
    "sigmoid": (lambda x: x.sigmoid(), None),
    "relu": (lambda x: x.relu(), None),
    "gelu": (lambda x: x.gelu(), lambda x: F.gelu(x)),
    "gelu_none": (lambda x: x.gelu(approximate="none"), lambda x: F.gelu(x, approximate="none")),
    "gelu_tanh": (lambda x: x.gelu(approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")),
    "silu": (lambda x: x.silu(), lambda x: F.silu(x)),
}
ACTIVATIONS = {"gelu", "gelu_none", "gelu_tanh", "silu"}  # no ±inf (torch gives nan) and no integer inputs

UNARY_CASES = {  # case: (wrap applied before the op, input)
    "2d": (lambda x: x, (3, 4)),
    "3d": (lambda x: x, (2, 3, 4)),
    "0d": (lambda x: x, ()),
    "empty": (lambda x: x, (0, 3)),
    "transposed": (lambda x: x.T, (3, 4)),
    "permuted": (lambda x: x.permute(2, 0, 1), (2, 3, 4)),
    "strided": (lambda x: x[::2], (6, 4)),
    "expanded": (lambda x: x.expand(3, 4), (3, 1)),
    "special": (lambda x: x, SPECIAL),
}


@pytest.mark.parametrize("case", list(UNARY_CASES))
@pytest.mark.parametrize("op", list(UNARY))
def test_unary(op, case):
    fn, tfn = UNARY[op]
    wrap, inp = UNARY_CASES[case]
    if case == "special" and op in ACTIVATIONS:
        inp = SPECIAL_FINITE
    check(lambda x: fn(wrap(x)), lambda x: (tfn or fn)(wrap(x)), inp)


@pytest.mark.parametrize("dtype", [np.float16, "bfloat16", np.int32, np.int64])
@pytest.mark.parametrize("op", list(UNARY))
def test_unary_dtypes(op, dtype):
    """float16/bfloat16 stay half; integer inputs stay int for abs/neg/relu and become float32 otherwise."""
    if op in ACTIVATIONS and np.dtype(dtype if dtype != "bfloat16" else np.float32).kind == "i":
        pytest.skip("torch has no integer gelu/silu")
    fn, tfn = UNARY[op]
    check(fn, tfn or fn, (3, 4), dtype=dtype, low=-3, high=3)


# ---------------------------------------------------------------- elementwise binary

BINARY = {  # name: (fn, input domain) - the same lambda works for torch and lazygrad
    "add": (lambda a, b: a + b, "any"),
    "sub": (lambda a, b: a - b, "any"),
    "mul": (lambda a, b: a * b, "any"),
    "truediv": (lambda a, b: a / b, "nonzero_rhs"),
    "floordiv": (lambda a, b: a // b, "nonzero_rhs"),
    "mod": (lambda a, b: a % b, "nonzero_rhs"),
    "pow": (lambda a, b: a ** b, "pow"),
    "maximum": (lambda a, b: a.maximum(b), "any"),
    "minimum": (lambda a, b: a.minimum(b), "any"),
    "lt": (lambda a, b: a < b, "any"),
    "le": (lambda a, b: a <= b, "any"),
    "gt": (lambda a, b: a > b, "any"),
    "ge": (lambda a, b: a >= b, "any"),
    "eq": (lambda a, b: a == b, "any"),
    "ne": (lambda a, b: a != b, "any"),
}

BINARY_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 1)),
    ((2, 1, 4), (3, 1)),
    ((), (3, 4)),
    ((3, 4), ()),
    ((), ()),
    ((0, 3), (3,)),
    ((0, 3), (1, 3)),
    ((2, 0, 3), (2, 1, 3)),
]


def binary_inputs(domain, sa, sb, dtype=np.float32):
    if np.dtype(dtype).kind in "iu":
        if domain == "pow":  # integers to negative powers are an error in torch
            return make_array(sa, dtype, -3, 4, RNG), make_array(sb, dtype, 0, 4, RNG)
        a = make_array(sa, dtype, -6, 7, RNG)
        b = nonzero(sb, dtype, 1, 4) if domain == "nonzero_rhs" else make_array(sb, dtype, -6, 7, RNG)
        return a, b
    if domain == "pow":  # positive base: a negative base to a fractional power is nan
        return make_array(sa, dtype, 0.5, 2, RNG), make_array(sb, dtype, -2, 2, RNG)
    a = make_array(sa, dtype, -3, 3, RNG)
    b = nonzero(sb, dtype) if domain == "nonzero_rhs" else make_array(sb, dtype, -3, 3, RNG)
    return a, b


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_broadcast(op, shapes):
    fn, domain = BINARY[op]
    check(fn, fn, *binary_inputs(domain, *shapes))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16])
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_dtypes(op, dtype):
    fn, domain = BINARY[op]
    check(fn, fn, *binary_inputs(domain, (3, 4), (4,), dtype))


NONCONTIG = {  # (a, b) -> (a', b') applied before the op
    "aT": (lambda a, b: (a.T, b), (4, 3), (3, 4)),
    "bT": (lambda a, b: (a, b.T), (3, 4), (4, 3)),
    "both_permuted": (lambda a, b: (a.permute(1, 0, 2), b.permute(2, 1, 0)), (3, 2, 4), (4, 3, 2)),
    "strided": (lambda a, b: (a[::2], b[:, 1::2]), (6, 4), (3, 8)),
    "expanded": (lambda a, b: (a.expand(3, 4), b), (1, 4), (3, 4)),
    "flipped": (lambda a, b: (a.flip((0,)), b), (3, 4), (3, 4)),
}


@pytest.mark.parametrize("case", list(NONCONTIG))
@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "maximum", "lt", "eq"])
def test_binary_noncontiguous(op, case):
    fn, domain = BINARY[op]
    wrap, sa, sb = NONCONTIG[case]
    check(lambda a, b: fn(*wrap(a, b)), lambda a, b: fn(*wrap(a, b)), *binary_inputs(domain, sa, sb))


def all_pairs(a, b):
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return np.repeat(a, len(b)), np.tile(b, len(a))


SPECIAL_BINARY = {  # every pairing of special values; for // % ** only the IEEE-meaningful ones
    "floordiv": all_pairs([nan, 0, 1, -1, 0.5, -3, 20, -20], [1, -1, 0.5, -3, 20, -20]),
    "mod": all_pairs([nan, 0, 1, -1, 0.5, -3, 20, -20], [1, -1, 0.5, -3, 20, -20]),
    "pow": all_pairs([nan, inf, -inf, 0, 0.5, 1, 20, -3, -1], [2, 3, 0.5, -1, 20, -20, 1]),
}


@pytest.mark.parametrize("op", list(BINARY))
def test_binary_special_values(op):
    fn, _ = BINARY[op]
    check(fn, fn, *SPECIAL_BINARY.get(op, all_pairs(SPECIAL, SPECIAL)))


SCALAR_OPS = {  # the same lambda for torch and lazygrad; python scalars on both sides
    "x+2": lambda x: x + 2,
    "2+x": lambda x: 2 + x,
    "x+1.5": lambda x: x + 1.5,
    "x-1": lambda x: x - 1,
    "2-x": lambda x: 2 - x,
    "2.5-x": lambda x: 2.5 - x,
    "x*3": lambda x: x * 3,
    "0.5*x": lambda x: 0.5 * x,
    "x/4": lambda x: x / 4,
    "2/x": lambda x: 2 / x,
    "x/0.5": lambda x: x / 0.5,
    "x//2": lambda x: x // 2,
    "7//x": lambda x: 7 // x,
    "x%3": lambda x: x % 3,
    "x%-3": lambda x: x % -3,
    "5%x": lambda x: 5 % x,
    "x**2": lambda x: x ** 2,
    "x**3": lambda x: x ** 3,
    "x**0.5": lambda x: x ** 0.5,
    "x**-1": lambda x: x ** -1,
    "x**0": lambda x: x ** 0,
    "2**x": lambda x: 2 ** x,
    "2.5**x": lambda x: 2.5 ** x,
    "x<1": lambda x: x < 1,
    "1<x": lambda x: 1 < x,
    "x==1": lambda x: x == 1,
    "x>=0.5": lambda x: x >= 0.5,
}


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
@pytest.mark.parametrize("op", list(SCALAR_OPS))
def test_scalar_ops(op, dtype):
    if dtype == np.int32 and op == "x**-1":
        pytest.skip("torch: integers to negative integer powers are an error")
    fn = SCALAR_OPS[op]
    x = nonzero((3, 4), dtype, 1, 4) if dtype == np.int32 else nonzero((3, 4))
    if op == "2**x" and dtype == np.int32:
        x = np.abs(x)  # torch: integers to negative integer powers are an error
    check(fn, fn, x)


# ---------------------------------------------------------------- type promotion

def arr(dtype, shape=(3, 4)):
    """Positive values (1..3) so that /, //, % and ** are all defined."""
    if dtype == np.bool_:
        return RNG.random(shape) < 0.5
    return RNG.integers(1, 4, shape).astype(dtype)


PROMOTION = {  # id: (lazy fn, torch fn or None, input arrays)
    "int32+float32": (lambda a, b: a + b, None, [arr(np.int32), arr(np.float32)]),
    "float32*int32": (lambda a, b: a * b, None, [arr(np.float32), arr(np.int32)]),
    "int32+int64": (lambda a, b: a + b, None, [arr(np.int32), arr(np.int64)]),
    "int64+pyfloat": (lambda a: a + 1.5, None, [arr(np.int64)]),
    "pyfloat*int32": (lambda a: 0.5 * a, None, [arr(np.int32)]),
    "int32+pyint": (lambda a: a + 2, None, [arr(np.int32)]),
    "float16+pyfloat": (lambda a: a + 1.5, None, [arr(np.float16)]),
    "float16*pyint": (lambda a: a * 3, None, [arr(np.float16)]),
    "bool+int32": (lambda a, b: a + b, None, [arr(np.bool_), arr(np.int32)]),
    "bool+pyint": (lambda a: a + 1, None, [arr(np.bool_)]),
    "bool*pyfloat": (lambda a: a * 1.5, None, [arr(np.bool_)]),
    "bool*float16": (lambda a, b: a * b, None, [arr(np.bool_), arr(np.float16)]),
    "uint8+int32": (lambda a, b: a + b, None, [arr(np.uint8), arr(np.int32)]),
    "uint8+int64": (lambda a, b: a + b, None, [arr(np.uint8), arr(np.int64)]),
    "uint8+pyint": (lambda a: a + 3, None, [arr(np.uint8)]),
    "uint8*float32": (lambda a, b: a * b, None, [arr(np.uint8), arr(np.float32)]),
    "float16+float32": (lambda a, b: a + b, None, [arr(np.float16), arr(np.float32)]),
    "bfloat16+float16": (lambda a, b: a.cast(lazygrad.bfloat16) + b, lambda a, b: a.bfloat16() + b,
                         [arr(np.float32), arr(np.float16)]),
    "bfloat16+float32": (lambda a, b: a.cast(lazygrad.bfloat16) * b, lambda a, b: a.bfloat16() * b,
                         [arr(np.float32), arr(np.float32)]),
    "bfloat16+pyfloat": (lambda a: a.cast(lazygrad.bfloat16) + 0.5, lambda a: a.bfloat16() + 0.5, [arr(np.float32)]),
    "int32/int32": (lambda a, b: a / b, None, [arr(np.int32), arr(np.int32)]),
    "int64/pyint": (lambda a: a / 2, None, [arr(np.int64)]),
    "pyint/int64": (lambda a: 3 / a, None, [arr(np.int64)]),
    "uint8/uint8": (lambda a, b: a / b, None, [arr(np.uint8), arr(np.uint8)]),
    "bool/int32": (lambda a, b: a / b, None, [arr(np.bool_), arr(np.int32)]),
    "int32//int32": (lambda a, b: a // b, None, [arr(np.int32), arr(np.int32)]),
    "int32%int64": (lambda a, b: a % b, None, [arr(np.int32), arr(np.int64)]),
    "float32**int32": (lambda a, b: a ** b, None, [arr(np.float32), arr(np.int32)]),
    "int32**pyfloat": (lambda a: a ** 0.5, None, [arr(np.int32)]),
    "int32<float32": (lambda a, b: a < b, None, [arr(np.int32), arr(np.float32) - 0.5]),
    "int32>pyfloat": (lambda a: a > 1.5, None, [arr(np.int32)]),
    "maximum_int32_float32": (lambda a, b: a.maximum(b), None, [arr(np.int32), arr(np.float32)]),
    "0d_int64+int32": (lambda a, b: a + b, None, [np.array(5, np.int64), arr(np.int32)]),
    "int32+0d_int64": (lambda a, b: a + b, None, [arr(np.int32), np.array(5, np.int64)]),
    "float16+0d_float32": (lambda a, b: a + b, None, [arr(np.float16), np.array(2.5, np.float32)]),
    "int32+0d_float32": (lambda a, b: a + b, None, [arr(np.int32), np.array(2.5, np.float32)]),
    "uint8+0d_int32": (lambda a, b: a + b, None, [arr(np.uint8), np.array(7, np.int32)]),
    "where_int32_float32": (lambda c, a, b: lazygrad.where(c, a, b), lambda c, a, b: torch.where(c, a, b),
                            [arr(np.bool_), arr(np.int32), arr(np.float32)]),
}


@pytest.mark.parametrize("case", list(PROMOTION))
def test_type_promotion(case):
    fn, tfn, inputs = PROMOTION[case]
    check(fn, tfn or fn, *inputs)


# ---------------------------------------------------------------- logical / bitwise

LOGICAL = {
    "logical_and": (lambda a, b: a.logical_and(b), 2),
    "logical_or": (lambda a, b: a.logical_or(b), 2),
    "logical_not": (lambda a: a.logical_not(), 1),
    "and": (lambda a, b: a & b, 2),
    "or": (lambda a, b: a | b, 2),
    "xor": (lambda a, b: a ^ b, 2),
    "invert": (lambda a: ~a, 1),
    "and_pyscalar": (lambda a: a & 3, 1),
    "or_pyscalar": (lambda a: 5 | a, 1),
    "xor_pyscalar": (lambda a: a ^ 6, 1),
}
BITWISE_DTYPES = [np.bool_, np.int32, np.int64, np.uint8]


@pytest.mark.parametrize("dtype", BITWISE_DTYPES + [np.float32])
@pytest.mark.parametrize("op", list(LOGICAL))
def test_logical_bitwise(op, dtype):
    fn, nargs = LOGICAL[op]
    if dtype == np.float32 and not op.startswith("logical"):
        pytest.skip("bitwise ops are not defined on floats (see test_errors.py)")
    if dtype == np.bool_ and op.endswith("pyscalar"):
        fn = {"and_pyscalar": lambda a: a & True, "or_pyscalar": lambda a: False | a,
              "xor_pyscalar": lambda a: a ^ True}[op]
    shapes = [(3, 4), (4,)][:nargs]  # binary ones broadcast
    check(fn, fn, *shapes, dtype=dtype, low=0 if dtype == np.uint8 else -8, high=8)


@pytest.mark.parametrize("op", ["logical_and", "and", "xor", "logical_not", "invert"])
def test_logical_noncontiguous_and_empty(op):
    fn, nargs = LOGICAL[op]
    check(lambda *a: fn(*(t.T for t in a)), lambda *a: fn(*(t.T for t in a)), *[(4, 3)] * nargs, dtype=np.bool_)
    check(fn, fn, *[(0, 3)] * nargs, dtype=np.bool_)
    check(fn, fn, *[()] * nargs, dtype=np.int32, low=0, high=8)


# ---------------------------------------------------------------- clamp / where / masked_fill / tril / triu

CLAMP = {
    "min": dict(min=-0.5),
    "max": dict(max=0.5),
    "both": dict(min=-0.5, max=0.5),
    "min_gt_max": dict(min=1.0, max=-1.0),  # torch: everything becomes max
}


@pytest.mark.parametrize("inp", ["rand", "special", "transposed", "0d", "empty"])
@pytest.mark.parametrize("kw", list(CLAMP))
def test_clamp(kw, inp):
    kwargs = CLAMP[kw]
    if inp == "transposed":
        fn = lambda x: x.T.clamp(**kwargs)
    else:
        fn = lambda x: x.clamp(**kwargs)
    check(fn, fn, {"rand": (3, 4), "special": SPECIAL, "transposed": (3, 4), "0d": (), "empty": (0, 3)}[inp])


def test_clamp_int():
    fn = lambda x: x.clamp(min=-2, max=3)
    check(fn, fn, (3, 4), dtype=np.int32, low=-8, high=8)


WHERE = {  # id: (cond, x, y) inputs; x.where(cond, y) and where(cond, x, y), as torch
    "same_shape": ((3, 4), (3, 4), (3, 4)),
    "broadcast": ((3, 1), (1, 4), ()),
    "broadcast_cond": ((4,), (2, 3, 4), (3, 4)),
    "0d": ((), (), ()),
    "empty": ((0, 3), (0, 3), (3,)),
}



@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_pairs(op):
  """torch's three forms: of everything a tensor, along one dim a (values, indices) pair (the first extreme, NaN
  winning), with a tensor the elementwise extreme; several dims at once are amax/amin's."""
  x = np.array([[1.0, 3.0, 3.0, -2.0], [np.nan, 0.5, 7.0, 7.0], [-1.0, -1.0, -4.0, 2.0]], np.float32)
  y = np.flip(x, 1).copy()
  lx, tx = Tensor(x), torch.tensor(x)
  np.testing.assert_array_equal(getattr(lx, op)().numpy(), getattr(tx, op)().numpy())
  for dim, keepdim in ((1, False), (0, True), (-1, True)):
    got, ref = getattr(lx, op)(dim, keepdim=keepdim), getattr(tx, op)(dim, keepdim=keepdim)
    values, indices = got
    np.testing.assert_array_equal(values.numpy(), ref.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), ref.indices.numpy())
    assert got.indices.dtype == lazygrad.int64
  np.testing.assert_array_equal(getattr(lx, op)(Tensor(y)).numpy(), getattr(tx, op)(torch.tensor(y)).numpy())
  with pytest.raises(TypeError, match=f"{op}: dim must be an int.*amax or amin"): getattr(lx, op)((0, 1))

@pytest.mark.parametrize("case", list(WHERE))
def test_where(case):
    c, x, y = WHERE[case]
    cond = make_array(c, np.bool_, rng=RNG)
    check(lambda c, x, y: x.where(c, y), torch.where, cond, make_array(x, rng=RNG), make_array(y, rng=RNG))
    check(lambda c, x, y: lazygrad.where(c, x, y), torch.where, cond, make_array(x, rng=RNG), make_array(y, rng=RNG))


WHERE_VARIANTS = {
    "scalar_y": (lambda c, x: x.where(c, 0.0), lambda c, x: x.where(c, 0.0)),
    "scalar_x": (lambda c, x: lazygrad.where(c, -1.5, x), lambda c, x: torch.where(c, -1.5, x)),
    "scalar_both": (lambda c, x: lazygrad.where(c, 1.0, 0.0), lambda c, x: torch.where(c, 1.0, 0.0)),
    "transposed": (lambda c, x: x.T.where(c.T, -x.T), lambda c, x: x.T.where(c.T, -x.T)),
    "cond_from_compare": (lambda c, x: x.where(x > 0, x * 2), lambda c, x: x.where(x > 0, x * 2)),
    "nan": (lambda c, x: x.where(c, float("nan")), lambda c, x: x.where(c, float("nan"))),
}


@pytest.mark.parametrize("case", list(WHERE_VARIANTS))
def test_where_variants(case):
    fn, tfn = WHERE_VARIANTS[case]
    check(fn, tfn, make_array((3, 4), np.bool_, rng=RNG), (3, 4))


MASKED_FILL = {  # id: (x shape, x dtype, mask shape, value)
    "same_shape": ((3, 4), np.float32, (3, 4), 0.0),
    "broadcast_row": ((3, 4), np.float32, (4,), -inf),
    "broadcast_col": ((2, 3, 4), np.float32, (3, 1), 2.5),
    "int_tensor": ((3, 4), np.int32, (3, 1), 7),
    "0d": ((), np.float32, (), 1.0),
    "empty": ((0, 4), np.float32, (4,), 1.0),
}


@pytest.mark.parametrize("case", list(MASKED_FILL))
def test_masked_fill(case):
    xs, dt, ms, v = MASKED_FILL[case]
    fn = lambda x, m: x.masked_fill(m, v)
    check(fn, fn, make_array(xs, dt, -5, 5, RNG), make_array(ms, np.bool_, rng=RNG))


def test_masked_fill_noncontiguous():
    fn = lambda x, m: x.T.masked_fill(m, -1.0)
    check(fn, fn, (4, 3), make_array((3, 4), np.bool_, rng=RNG))


@pytest.mark.parametrize("shape", [(3, 4), (4, 3), (2, 3, 4), (4, 4)], ids=str)
@pytest.mark.parametrize("diagonal", [0, 1, -1, 2, -5])
@pytest.mark.parametrize("op", ["tril", "triu"])
def test_tril_triu(op, diagonal, shape):
    fn = lambda x: getattr(x, op)(diagonal=diagonal)
    check(fn, fn, shape)


@pytest.mark.parametrize("op", ["tril", "triu"])
def test_tril_triu_default_and_noncontiguous(op):
    check(lambda x: getattr(x, op)(), lambda x: getattr(x, op)(), (3, 4), dtype=np.int32, low=1, high=9)
    check(lambda x: getattr(x.T, op)(1), lambda x: getattr(x.T, op)(1), (3, 4))


# ---------------------------------------------------------------- casts

CASTS = {  # id: (lazy fn, torch fn, input dtype, low, high)
    "float": (lambda x: x.float(), lambda x: x.float(), np.int32, -5, 5),
    "half": (lambda x: x.half(), lambda x: x.half(), np.float32, -3, 3),
    "int_truncates": (lambda x: x.int(), lambda x: x.int(), np.float32, -3, 3),
    "long": (lambda x: x.long(), lambda x: x.long(), np.float32, -3, 3),
    "bool_from_float": (lambda x: x.bool(), lambda x: x.bool(), np.float32, -1, 1),
    "bool_from_int": (lambda x: x.bool(), lambda x: x.bool(), np.int32, -2, 2),
    "float_from_bool": (lambda x: x.float(), lambda x: x.float(), np.bool_, 0, 2),
    "int_from_bool": (lambda x: x.int(), lambda x: x.int(), np.bool_, 0, 2),
    "cast_dtype_obj": (lambda x: x.cast(lazygrad.float16), lambda x: x.to(torch.float16), np.int64, -100, 100),
    "cast_string": (lambda x: x.cast("int32"), lambda x: x.to(torch.int32), np.float32, -9, 9),
    "cast_numpy_dtype": (lambda x: x.cast(np.int64), lambda x: x.to(torch.int64), np.float32, -9, 9),
    "cast_uint8": (lambda x: x.cast(lazygrad.uint8), lambda x: x.to(torch.uint8), np.float32, 0, 250),
    "cast_bfloat16": (lambda x: x.cast(lazygrad.bfloat16), lambda x: x.bfloat16(), np.float32, -3, 3),
    "bfloat16_to_float": (lambda x: x.cast(lazygrad.bfloat16).float(), lambda x: x.bfloat16().float(), np.float32, -3, 3),
    "int32_to_uint8": (lambda x: x.cast(lazygrad.uint8), lambda x: x.to(torch.uint8), np.int32, 0, 255),
    "uint8_to_int32": (lambda x: x.cast(lazygrad.int32), lambda x: x.to(torch.int32), np.uint8, 0, 255),
    "half_to_float": (lambda x: x.float(), lambda x: x.float(), np.float16, -3, 3),
    "transposed": (lambda x: x.T.int(), lambda x: x.T.int(), np.float32, -9, 9),
    "special_to_half": (lambda x: x.half(), lambda x: x.half(), None, 0, 0),
}


@pytest.mark.parametrize("case", list(CASTS))
def test_cast(case):
    fn, tfn, dt, lo, hi = CASTS[case]
    check(fn, tfn, SPECIAL if dt is None else (3, 4), dtype=dt or np.float32, low=lo, high=hi)


@pytest.mark.parametrize("shape", [(), (0, 3)], ids=str)
@pytest.mark.parametrize("case", ["float", "int_truncates", "bool_from_float", "cast_string"])
def test_cast_0d_empty(case, shape):
    fn, tfn, dt, lo, hi = CASTS[case]
    check(fn, tfn, shape, dtype=dt, low=lo, high=hi)


# ---------------------------------------------------------------- reductions

def all_dims(fn):
    """torch reduction that takes dim=None as "all dims" (amax / logsumexp need them spelled out)."""
    return lambda x, dim=None, **kw: fn(x, dim=tuple(range(x.ndim)) if dim is None else dim, **kw)


REDUCE = {  # name: (lazy fn(x, **kw), torch fn(x, **kw)); max/min as amax/amin (max(dim) pairs: test_max_min_pairs)
    "sum": (lambda x, **kw: x.sum(**kw), lambda x, **kw: x.sum(**kw)),
    "mean": (lambda x, **kw: x.mean(**kw), lambda x, **kw: x.mean(**kw)),
    "max": (lambda x, **kw: x.amax(**kw), all_dims(torch.amax)),
    "min": (lambda x, **kw: x.amin(**kw), all_dims(torch.amin)),
    "argmax": (lambda x, **kw: x.argmax(**kw), lambda x, **kw: x.argmax(**kw)),
    "argmin": (lambda x, **kw: x.argmin(**kw), lambda x, **kw: x.argmin(**kw)),
    "var": (lambda x, **kw: x.var(**kw), lambda x, **kw: x.var(**kw)),
    "std": (lambda x, **kw: x.std(**kw), lambda x, **kw: x.std(**kw)),
    "logsumexp": (lambda x, **kw: x.logsumexp(**kw), all_dims(torch.logsumexp)),
}
INT_DIMS = [None, 0, 1, -1, 2]
TUPLE_DIMS = [(0, 2), (-1, 0), (0, 1, 2)]


def reduce_cases():
    for op in REDUCE:
        for dim in INT_DIMS + ([] if op.startswith("arg") else TUPLE_DIMS):
            for keepdim in (False, True):
                yield pytest.param(op, dim, keepdim, id=f"{op}-dim={dim}-keepdim={keepdim}")


@pytest.mark.parametrize("op,dim,keepdim", list(reduce_cases()))
def test_reduce(op, dim, keepdim):
    fn, tfn = REDUCE[op]
    check(lambda x: fn(x, dim=dim, keepdim=keepdim), lambda x: tfn(x, dim=dim, keepdim=keepdim), (2, 3, 4))


@pytest.mark.parametrize("op", list(REDUCE))
def test_reduce_no_args(op):
    """x.sum(), x.max(), ... reduce everything to a 0-d tensor."""
    fn, tfn = REDUCE[op]
    check(lambda x: fn(x), lambda x: tfn(x), (3, 4))


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "argmax", "var", "std", "logsumexp"])
def test_reduce_axis_alias(op):
    fn, tfn = REDUCE[op]
    check(lambda x: fn(x, axis=1), lambda x: tfn(x, dim=1), (2, 3, 4))
    check(lambda x: fn(x, axis=-1, keepdim=True), lambda x: tfn(x, dim=-1, keepdim=True), (2, 3, 4))


def test_reduce_axis_alias_tuple():
    check(lambda x: x.sum(axis=(0, 2)), lambda x: x.sum(dim=(0, 2)), (2, 3, 4))


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_correction(op, correction):
    fn = lambda x: getattr(x, op)(dim=1, correction=correction)
    check(fn, fn, (3, 5))
    fn_all = lambda x: getattr(x, op)(correction=correction)
    check(fn_all, fn_all, (3, 5))


REDUCE_NONCONTIG = {  # id: (op, view applied first, kwargs)
    "sum_permuted": ("sum", lambda x: x.permute(2, 0, 1), dict(dim=1)),
    "max_transposed": ("max", lambda x: x.transpose(0, 2), dict(dim=0)),
    "mean_strided": ("mean", lambda x: x[:, ::2], {}),
    "var_transposed": ("var", lambda x: x.transpose(0, 1), dict(dim=0)),
    "argmax_permuted": ("argmax", lambda x: x.permute(1, 2, 0), dict(dim=1)),
    "logsumexp_flipped": ("logsumexp", lambda x: x.flip((2,)), dict(dim=2)),
    "sum_expanded": ("sum", lambda x: x[:, :, :1].expand(2, 3, 5), dict(dim=2)),
    "min_expanded": ("min", lambda x: x[:1].expand(4, 3, 4), dict(dim=(0, 1))),
    "std_transposed": ("std", lambda x: x.reshape(6, 4).T, dict(dim=-1, keepdim=True)),
}


@pytest.mark.parametrize("case", list(REDUCE_NONCONTIG))
def test_reduce_noncontiguous(case):
    op, view, kw = REDUCE_NONCONTIG[case]
    fn, tfn = REDUCE[op]
    check(lambda x: fn(view(x), **kw), lambda x: tfn(view(x), **kw), (2, 3, 4))


REDUCE_DTYPES = {  # torch promotes integer/bool sums to int64
    "sum_int32": ("sum", np.int32),
    "sum_int64": ("sum", np.int64),
    "sum_uint8": ("sum", np.uint8),
    "sum_bool": ("sum", np.bool_),
    "sum_float16": ("sum", np.float16),
    "sum_bfloat16": ("sum", "bfloat16"),
    "mean_float16": ("mean", np.float16),
    "max_int32": ("max", np.int32),
    "min_uint8": ("min", np.uint8),
    "argmax_int32": ("argmax", np.int32),
    "argmin_float16": ("argmin", np.float16),
    "max_float16": ("max", np.float16),
}


@pytest.mark.parametrize("dim", [None, 1])
@pytest.mark.parametrize("case", list(REDUCE_DTYPES))
def test_reduce_dtypes(case, dim):
    op, dt = REDUCE_DTYPES[case]
    fn, tfn = REDUCE[op]
    x = (3, 4)
    if op.startswith("arg"):  # distinct values: ties are tested separately
        x = make_array(RNG.permutation(12).reshape(3, 4) - 4).astype(dt)
    lo, hi = (0, 50) if dt in (np.uint8, np.int32, np.int64) else (-2, 2)
    check(lambda x: fn(x, dim=dim), lambda x: tfn(x, dim=dim), x, dtype=dt, low=lo, high=hi, rtol=1e-2)


def test_argmax_ties_take_first():
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, -1, 0, -1]], dtype=np.float32)
    for op in ("argmax", "argmin"):
        fn = lambda t: getattr(t, op)(dim=1)
        check(fn, fn, x)
        check(lambda t: getattr(t, op)(), lambda t: getattr(t, op)(), x)


REDUCE_SPECIAL = np.array([
    [1, nan, 2, 3],
    [inf, 1, 2, 3],
    [-inf, 1, 2, 3],
    [inf, -inf, 0, 1],
    [-inf, -inf, -inf, -inf],
    [inf, inf, 1, 1],
    [1e30, 1e30, -1e30, 5],
], dtype=np.float32)
SOFTMAX_SPECIAL = np.array([  # -inf masking is meaningful; a fully masked row is nan in torch
    [0, -inf, 1, -inf],
    [-inf, -inf, -inf, 2],
    [1, nan, 2, 3],
    [-inf, -inf, -inf, -inf],
    [100, 200, 300, -300],
], dtype=np.float32)


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "argmax", "argmin", "logsumexp", "var"])
def test_reduce_special_values(op):
    fn, tfn = REDUCE[op]
    check(lambda x: fn(x, dim=1), lambda x: tfn(x, dim=1), REDUCE_SPECIAL)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_special_values(op):
    fn = lambda x: getattr(x, op)(dim=-1)
    check(fn, fn, SOFTMAX_SPECIAL)


@pytest.mark.parametrize("case", [
    ("sum", dict(dim=0)), ("sum", dict(dim=1)), ("sum", {}), ("sum", dict(dim=0, keepdim=True)),
    ("mean", dict(dim=1)), ("mean", dict(dim=0)), ("max", dict(dim=1)), ("min", dict(dim=1)),
    ("argmax", dict(dim=1)), ("logsumexp", dict(dim=0)), ("logsumexp", dict(dim=1)), ("var", dict(dim=1)),
    ("std", dict(dim=1)),
], ids=str)
@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
def test_reduce_empty(case):
    op, kw = case
    fn, tfn = REDUCE[op]
    check(lambda x: fn(x, **kw), lambda x: tfn(x, **kw), (0, 3))


@pytest.mark.parametrize("case", [
    ("sum", {}), ("mean", {}), ("max", {}), ("min", {}), ("argmax", {}), ("argmin", {}),
    ("sum", dict(dim=0)), ("mean", dict(dim=-1, keepdim=True)), ("logsumexp", dict(dim=0)), ("var", dict(correction=0)),
], ids=str)
def test_reduce_0d(case):
    op, kw = case
    fn, tfn = REDUCE[op]
    check(lambda x: fn(x, **kw), lambda x: tfn(x, **kw), ())


@pytest.mark.parametrize("shape,dim", [((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((5,), 0),
                                       ((), 0), ((0, 3), 1), ((0, 3), 0)], ids=str)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax(op, shape, dim):
    fn = lambda x: getattr(x, op)(dim=dim)
    check(fn, fn, shape)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_large_and_noncontiguous(op):
    fn = lambda x: getattr(x.T, op)(dim=-1)
    check(fn, fn, (4, 3))
    fn = lambda x: getattr(x, op)(dim=1)
    check(fn, fn, (3, 5), low=-500, high=500)  # must be numerically stable
    check(fn, fn, (3, 5), dtype=np.float16)


# ---------------------------------------------------------------- movement

MOVEMENT = {  # id: (lazy fn, torch fn or None, input shape)
    "reshape": (lambda x: x.reshape(6, 4), None, (2, 3, 4)),
    "reshape_tuple": (lambda x: x.reshape((4, 6)), None, (2, 3, 4)),
    "reshape_infer": (lambda x: x.reshape(2, -1, 2), None, (2, 3, 4)),
    "reshape_flat": (lambda x: x.reshape(-1), None, (2, 3, 4)),
    "reshape_0d_to_1x1": (lambda x: x.reshape(1, 1), None, ()),
    "reshape_1_to_0d": (lambda x: x.reshape(()), None, (1,)),
    "reshape_empty": (lambda x: x.reshape(3, 0), None, (0, 3)),
    "reshape_empty_infer": (lambda x: x.reshape(-1, 3), None, (3, 0)),
    "reshape_transposed": (lambda x: x.T.reshape(12), None, (3, 4)),
    "reshape_strided": (lambda x: x[:, ::2].reshape(-1), None, (3, 8)),
    "view": (lambda x: x.view(6, 4), None, (2, 3, 4)),
    "view_infer": (lambda x: x.view(-1, 12), None, (2, 3, 4)),
    "permute": (lambda x: x.permute(2, 0, 1), None, (2, 3, 4)),
    "permute_tuple": (lambda x: x.permute((1, 0, 2)), None, (2, 3, 4)),
    "permute_negative": (lambda x: x.permute(-1, 0, 1), None, (2, 3, 4)),
    "permute_twice": (lambda x: x.permute(2, 0, 1).permute(0, 2, 1), None, (2, 3, 4)),
    "transpose": (lambda x: x.transpose(0, 2), None, (2, 3, 4)),
    "transpose_negative": (lambda x: x.transpose(-1, -2), None, (2, 3, 4)),
    "T": (lambda x: x.T, None, (3, 4)),
    "T_of_T": (lambda x: x.T.T, None, (3, 4)),
    "expand": (lambda x: x.expand(3, 4), None, (3, 1)),
    "expand_new_dims": (lambda x: x.expand(2, 3, 4), None, (4,)),
    "expand_minus_one": (lambda x: x.expand(-1, 5), None, (3, 1)),
    "expand_0d": (lambda x: x.expand(2, 3), None, ()),
    "expand_to_zero": (lambda x: x.expand(0, 4), None, (1, 4)),
    "squeeze_all": (lambda x: x.squeeze(), None, (1, 3, 1, 4)),
    "squeeze_dim": (lambda x: x.squeeze(2), None, (1, 3, 1, 4)),
    "squeeze_negative": (lambda x: x.squeeze(-1), None, (3, 1)),
    "squeeze_noop": (lambda x: x.squeeze(1), None, (3, 4)),
    "squeeze_0d": (lambda x: x.squeeze(), None, ()),
    "unsqueeze_0": (lambda x: x.unsqueeze(0), None, (3, 4)),
    "unsqueeze_1": (lambda x: x.unsqueeze(1), None, (3, 4)),
    "unsqueeze_last": (lambda x: x.unsqueeze(-1), None, (3, 4)),
    "unsqueeze_0d": (lambda x: x.unsqueeze(0), None, ()),
    "flatten": (lambda x: x.flatten(), None, (2, 3, 4)),
    "flatten_start": (lambda x: x.flatten(1), None, (2, 3, 4)),
    "flatten_range": (lambda x: x.flatten(0, 1), None, (2, 3, 4)),
    "flatten_kw": (lambda x: x.flatten(start_dim=1, end_dim=-1), None, (2, 3, 4)),
    "flatten_0d": (lambda x: x.flatten(), None, ()),
    "flatten_transposed": (lambda x: x.T.flatten(), None, (3, 4)),
    "pad_last": (lambda x: x.pad((1, 2)), lambda x: F.pad(x, (1, 2)), (2, 3, 4)),
    "pad_two_dims": (lambda x: x.pad((1, 1, 2, 0), value=1.5), lambda x: F.pad(x, (1, 1, 2, 0), value=1.5), (2, 3, 4)),
    "pad_three_dims": (lambda x: x.pad((0, 1, 1, 0, 2, 1)), lambda x: F.pad(x, (0, 1, 1, 0, 2, 1)), (2, 3, 4)),
    "pad_negative_crops": (lambda x: x.pad((-1, 1)), lambda x: F.pad(x, (-1, 1)), (3, 4)),
    "pad_list_value": (lambda x: x.pad([2, 0], value=-inf), lambda x: F.pad(x, [2, 0], value=-inf), (3, 4)),
    "pad_empty": (lambda x: x.pad((1, 1)), lambda x: F.pad(x, (1, 1)), (0, 3)),
    "pad_transposed": (lambda x: x.T.pad((1, 0, 0, 1)), lambda x: F.pad(x.T, (1, 0, 0, 1)), (3, 4)),
    "contiguous": (lambda x: x.T.contiguous(), None, (3, 4)),
    "flip_0": (lambda x: x.flip((0,)), None, (2, 3, 4)),
    "flip_many": (lambda x: x.flip((0, 2)), None, (2, 3, 4)),
    "flip_negative": (lambda x: x.flip((-1,)), None, (2, 3, 4)),
    "flip_list": (lambda x: x.flip([1]), None, (2, 3, 4)),
    "flip_transposed": (lambda x: x.T.flip((0,)), None, (3, 4)),
    "repeat": (lambda x: x.repeat(2, 3), None, (3, 4)),
    "repeat_ones": (lambda x: x.repeat(1, 1, 2), None, (2, 3, 4)),
    "repeat_new_dims": (lambda x: x.repeat(2, 1, 1), None, (3, 4)),
    "repeat_tuple": (lambda x: x.repeat((2, 2)), None, (3, 4)),
    "repeat_0d": (lambda x: x.repeat(3), None, ()),
    "repeat_transposed": (lambda x: x.T.repeat(2, 1), None, (3, 4)),
    "chain": (lambda x: x.permute(1, 0, 2).reshape(3, 8)[:, 2:6].flip((1,)).T, None, (2, 3, 4)),
}


@pytest.mark.parametrize("case", list(MOVEMENT))
def test_movement(case):
    fn, tfn, shape = MOVEMENT[case]
    check(fn, tfn or fn, shape)


@pytest.mark.parametrize("case", ["reshape", "permute", "expand", "pad_last", "flip_many", "repeat"])
def test_movement_int_and_bool(case):
    fn, tfn, shape = MOVEMENT[case]
    check(fn, tfn or fn, shape, dtype=np.int32, low=-9, high=9)
    check(fn, tfn or fn, shape, dtype=np.bool_)


JOIN = {  # id: (lazy fn, torch fn, input shapes)
    "cat_dim0": (lambda a, b: Tensor.cat([a, b], dim=0), lambda a, b: torch.cat([a, b], dim=0), [(2, 3), (4, 3)]),
    "cat_default_dim": (lambda a, b: Tensor.cat([a, b]), lambda a, b: torch.cat([a, b]), [(2, 3), (1, 3)]),
    "cat_dim1": (lambda a, b: Tensor.cat((a, b), dim=1), lambda a, b: torch.cat((a, b), dim=1), [(2, 3), (2, 5)]),
    "cat_negative": (lambda a, b, c: Tensor.cat([a, b, c], dim=-1), lambda a, b, c: torch.cat([a, b, c], dim=-1),
                     [(2, 3, 1), (2, 3, 2), (2, 3, 4)]),
    "cat_single": (lambda a: Tensor.cat([a], dim=0), lambda a: torch.cat([a], dim=0), [(2, 3)]),
    "cat_empty": (lambda a, b: Tensor.cat([a, b], dim=0), lambda a, b: torch.cat([a, b], dim=0), [(0, 3), (2, 3)]),
    "cat_transposed": (lambda a, b: Tensor.cat([a.T, b], dim=0), lambda a, b: torch.cat([a.T, b], dim=0),
                       [(3, 2), (4, 3)]),
    "stack_dim0": (lambda a, b: Tensor.stack([a, b], dim=0), lambda a, b: torch.stack([a, b], dim=0), [(3, 4)] * 2),
    "stack_default_dim": (lambda a, b: Tensor.stack([a, b]), lambda a, b: torch.stack([a, b]), [(3, 4)] * 2),
    "stack_dim1": (lambda a, b, c: Tensor.stack((a, b, c), dim=1), lambda a, b, c: torch.stack((a, b, c), dim=1),
                   [(3, 4)] * 3),
    "stack_last": (lambda a, b: Tensor.stack([a, b], dim=-1), lambda a, b: torch.stack([a, b], dim=-1), [(3, 4)] * 2),
    "stack_0d": (lambda a, b, c: Tensor.stack([a, b, c]), lambda a, b, c: torch.stack([a, b, c]), [()] * 3),
    "stack_empty": (lambda a, b: Tensor.stack([a, b], dim=1), lambda a, b: torch.stack([a, b], dim=1), [(0, 3)] * 2),
    "split_int": (lambda x: x.split(2, dim=0), lambda x: x.split(2, dim=0), [(5, 3)]),
    "split_int_default_dim": (lambda x: x.split(2), lambda x: x.split(2), [(4, 3)]),
    "split_sections": (lambda x: x.split([1, 3], dim=1), lambda x: x.split([1, 3], dim=1), [(3, 4)]),
    "split_sections_zero": (lambda x: x.split([2, 0, 2], dim=-1), lambda x: x.split([2, 0, 2], dim=-1), [(3, 4)]),
    "split_last": (lambda x: x.split(3, dim=-1), lambda x: x.split(3, dim=-1), [(2, 3, 4)]),
    "split_bigger_than_dim": (lambda x: x.split(10, dim=0), lambda x: x.split(10, dim=0), [(3, 4)]),
    "chunk": (lambda x: x.chunk(3, dim=0), lambda x: x.chunk(3, dim=0), [(6, 3)]),
    "chunk_uneven": (lambda x: x.chunk(3, dim=0), lambda x: x.chunk(3, dim=0), [(5, 3)]),
    "chunk_fewer": (lambda x: x.chunk(4, dim=0), lambda x: x.chunk(4, dim=0), [(6, 2)]),  # torch gives 3 chunks
    "chunk_default_dim": (lambda x: x.chunk(2), lambda x: x.chunk(2), [(4, 3)]),
    "chunk_dim1": (lambda x: x.chunk(2, dim=1), lambda x: x.chunk(2, dim=1), [(3, 4)]),
    "chunk_more_than_size": (lambda x: x.chunk(5, dim=1), lambda x: x.chunk(5, dim=1), [(3, 2)]),
}


@pytest.mark.parametrize("case", list(JOIN))
def test_join_split(case):
    fn, tfn, shapes = JOIN[case]
    check(fn, tfn, *shapes)


def test_cat_stack_promote():
    check(lambda a, b: Tensor.cat([a, b], dim=0), lambda a, b: torch.cat([a, b], dim=0), arr(np.int32), arr(np.float32))
    check(lambda a, b: Tensor.stack([a, b], dim=0), lambda a, b: torch.stack([a, b], dim=0), arr(np.float16),
          arr(np.float32))


# ---------------------------------------------------------------- indexing

IDX = lambda *v: np.array(v, dtype=np.int64)
INDEXING = {  # id: (index fn, extra arrays)
    "int": (lambda x: x[1], []),
    "negative_int": (lambda x: x[-1], []),
    "all_ints": (lambda x: x[0, 2, 3], []),
    "all_negative": (lambda x: x[-1, -3, -2], []),
    "slice": (lambda x: x[1:3], []),
    "slice_open": (lambda x: x[-2:], []),
    "slice_step": (lambda x: x[:, ::2], []),
    "slice_offset_step": (lambda x: x[:, :, 1::3], []),
    "slice_neg_bounds": (lambda x: x[:, -3:-1], []),
    "slice_out_of_range": (lambda x: x[1:100, -100:2], []),
    "slice_empty": (lambda x: x[:, 2:1], []),
    "int_and_slice": (lambda x: x[1, ::2, 1:], []),
    "second_dim_int": (lambda x: x[:, 1], []),
    "ellipsis": (lambda x: x[..., 1], []),
    "ellipsis_middle": (lambda x: x[1, ..., 2], []),
    "ellipsis_slice": (lambda x: x[..., ::3], []),
    "none": (lambda x: x[None], []),
    "none_middle": (lambda x: x[:, None], []),
    "none_ellipsis": (lambda x: x[1, ..., None], []),
    "none_many": (lambda x: x[None, 0, None, :, None], []),
    "full_slice": (lambda x: x[:], []),
    "chained": (lambda x: x[1:][0][::2], []),
    "transposed": (lambda x: x.permute(2, 1, 0)[1:, 0], []),
    "tensor_idx": (lambda x, i: x[i], [IDX(1, 0, 1)]),
    "tensor_idx_negative": (lambda x, i: x[i], [IDX(-1, 0, -2)]),
    "tensor_idx_2d": (lambda x, i: x[i], [IDX(0, 1, 1, 0).reshape(2, 2)]),
    "tensor_idx_dim1": (lambda x, i: x[:, i], [IDX(2, 0, 2, 1)]),
    "tensor_idx_last": (lambda x, i: x[..., i], [IDX(3, 0)]),
    "tensor_idx_pair": (lambda x, i, j: x[i, j], [IDX(0, 1, 1), IDX(2, 0, -1)]),
    "tensor_idx_broadcast_pair": (lambda x, i, j: x[i, j], [IDX(0, 1).reshape(2, 1), IDX(0, 1, 2)]),
    "tensor_idx_triple": (lambda x, i, j, k: x[i, j, k], [IDX(0, 1), IDX(2, 0), IDX(3, 1)]),
    "tensor_idx_separated": (lambda x, i, j: x[i, :, j], [IDX(0, 1), IDX(2, 0)]),  # advanced dims go first
    "tensor_idx_and_slice": (lambda x, i: x[i, 1:3], [IDX(1, 1, 0)]),
    "tensor_idx_and_int": (lambda x, i: x[1, i], [IDX(2, 0)]),
    "tensor_idx_0d": (lambda x, i: x[i], [np.array(1, dtype=np.int64)]),
    "tensor_idx_empty": (lambda x, i: x[i], [np.zeros((0,), dtype=np.int64)]),
    "tensor_idx_int32": (lambda x, i: x[:, i], [np.array([2, 1], dtype=np.int32)]),
    "tensor_idx_permuted_input": (lambda x, i: x.permute(2, 1, 0)[i], [IDX(3, 0)]),
}


@pytest.mark.parametrize("case", list(INDEXING))
def test_indexing(case):
    fn, extra = INDEXING[case]
    check(fn, fn, (2, 3, 4), *extra)


@pytest.mark.parametrize("case", ["int", "slice_step", "ellipsis", "none", "tensor_idx", "tensor_idx_pair"])
def test_indexing_int_dtype(case):
    fn, extra = INDEXING[case]
    check(fn, fn, make_array((2, 3, 4), np.int32, -9, 9, RNG), *extra)


def test_indexing_0d_and_empty():
    check(lambda x: x[None], lambda x: x[None], ())
    check(lambda x: x[...], lambda x: x[...], ())
    check(lambda x: x[:, 1], lambda x: x[:, 1], (0, 3))
    check(lambda x: x[1:], lambda x: x[1:], (0, 3))


GATHER = {  # id: (dim, input shape, index)
    "dim1": (1, (3, 4), IDX(0, 3, 1, 1, 2, 2).reshape(3, 2)),
    "dim0": (0, (3, 4), IDX(2, 0, 1, 1, 0, 2, 2, 0).reshape(2, 4)),
    "smaller_index": (1, (3, 4), IDX(3, 0, 1, 2).reshape(2, 2)),
    "negative_dim": (-1, (2, 3, 4), np.random.default_rng(3).integers(0, 4, (2, 3, 5))),
    "3d_dim1": (1, (2, 3, 4), np.random.default_rng(4).integers(0, 3, (2, 2, 4))),
    "empty_index": (1, (3, 4), np.zeros((3, 0), dtype=np.int64)),
}


@pytest.mark.parametrize("case", list(GATHER))
def test_gather(case):
    dim, shape, index = GATHER[case]
    check(lambda x, i: x.gather(dim, i), lambda x, i: x.gather(dim, i), shape, index)


def test_gather_noncontiguous():
    index = IDX(0, 2, 1, 0, 2, 2, 1, 1).reshape(4, 2)
    check(lambda x, i: x.T.gather(1, i), lambda x, i: x.T.gather(1, i), (3, 4), index)


# ---------------------------------------------------------------- matmul

MATMUL = [
    ((4,), (4,)),
    ((4,), (4, 3)),
    ((3, 4), (4,)),
    ((3, 4), (4, 5)),
    ((1, 1), (1, 1)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((0, 3), (3, 4)),
    ((3, 0), (0, 4)),
    ((2, 0, 3), (3, 2)),
    ((33, 64), (64, 17)),
]


@pytest.mark.parametrize("shapes", MATMUL, ids=str)
def test_matmul(shapes):
    check(lambda a, b: a @ b, lambda a, b: a @ b, *shapes, atol=1e-5)
    check(lambda a, b: a.matmul(b), lambda a, b: a.matmul(b), *shapes, atol=1e-5)


MATMUL_NONCONTIG = {
    "aT": (lambda a, b: a.T @ b, (4, 3), (4, 5)),
    "bT": (lambda a, b: a @ b.T, (3, 4), (5, 4)),
    "both_T": (lambda a, b: a.T @ b.T, (4, 3), (5, 4)),
    "batch_transposed": (lambda a, b: a.transpose(-1, -2) @ b, (2, 4, 3), (2, 4, 5)),
    "strided": (lambda a, b: a[:, ::2] @ b, (3, 8), (4, 2)),
    "expanded": (lambda a, b: a.expand(2, 3, 4) @ b, (3, 4), (2, 4, 5)),
}


@pytest.mark.parametrize("case", list(MATMUL_NONCONTIG))
def test_matmul_noncontiguous(case):
    fn, sa, sb = MATMUL_NONCONTIG[case]
    check(fn, fn, sa, sb, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, "bfloat16"])
def test_matmul_dtypes(dtype):
    lo, hi = (-5, 5) if dtype in (np.int32, np.int64) else (-2, 2)
    check(lambda a, b: a @ b, lambda a, b: a @ b, (3, 4), (4, 5), dtype=dtype, low=lo, high=hi, atol=1e-2, rtol=1e-2)


# ---------------------------------------------------------------- one_hot / cross_entropy

ONE_HOT = {
    "1d": (IDX(0, 2, 1, 4), 5),
    "2d": (IDX(0, 1, 2, 2, 1, 0).reshape(2, 3), 3),
    "0d": (np.array(2, dtype=np.int64), 4),
    "empty": (np.zeros((0,), dtype=np.int64), 3),
}


@pytest.mark.parametrize("case", list(ONE_HOT))
def test_one_hot(case):
    idx, n = ONE_HOT[case]
    check(lambda t: t.one_hot(n), lambda t: F.one_hot(t, n), idx)


CROSS_ENTROPY = {  # id: (logits shape, target, kwargs)
    "mean": ((4, 5), IDX(0, 4, 2, 1), {}),
    "sum": ((4, 5), IDX(0, 4, 2, 1), dict(reduction="sum")),
    "none": ((4, 5), IDX(0, 4, 2, 1), dict(reduction="none")),
    "ignore_default": ((4, 5), IDX(0, -100, 2, 1), {}),
    "ignore_index": ((4, 5), IDX(0, 2, 2, 1), dict(ignore_index=2)),
    "ignore_index_sum": ((4, 5), IDX(0, 2, 2, 1), dict(ignore_index=2, reduction="sum")),
    "ignore_index_none": ((4, 5), IDX(0, 2, 2, 1), dict(ignore_index=2, reduction="none")),
    "label_smoothing": ((4, 5), IDX(0, 4, 2, 1), dict(label_smoothing=0.1)),
    "label_smoothing_none": ((4, 5), IDX(0, 4, 2, 1), dict(label_smoothing=0.25, reduction="none")),
    "label_smoothing_ignore": ((4, 5), IDX(0, 3, 3, 1), dict(label_smoothing=0.2, ignore_index=3)),
    "label_smoothing_ignore_sum": ((4, 5), IDX(0, 3, 3, 1), dict(label_smoothing=0.2, ignore_index=3,
                                                                 reduction="sum")),
    "single_row": ((1, 3), IDX(2), {}),
    "spatial": ((2, 5, 3), np.random.default_rng(5).integers(0, 5, (2, 3)), {}),
    "spatial_none": ((2, 5, 3), np.random.default_rng(6).integers(0, 5, (2, 3)), dict(reduction="none")),
}


@pytest.mark.parametrize("case", list(CROSS_ENTROPY))
def test_cross_entropy(case):
    shape, target, kw = CROSS_ENTROPY[case]
    check(lambda x, t: x.cross_entropy(t, **kw), lambda x, t: F.cross_entropy(x, t, **kw), shape, target, atol=1e-5)


def test_cross_entropy_large_logits_and_noncontiguous():
    target = IDX(0, 4, 2, 1)
    check(lambda x, t: x.cross_entropy(t), lambda x, t: F.cross_entropy(x, t), (4, 5), target, low=-300, high=300,
          atol=1e-3)
    check(lambda x, t: x.T.cross_entropy(t), lambda x, t: F.cross_entropy(x.T, t), (5, 4), target, atol=1e-5)


# ---------------------------------------------------------------- creation

CREATION = {  # id: (lazy fn, torch fn); compared in shape, dtype and value
    "zeros": (lambda: Tensor.zeros(2, 3), lambda: torch.zeros(2, 3)),
    "zeros_tuple": (lambda: Tensor.zeros((2, 3)), lambda: torch.zeros((2, 3))),
    "zeros_int32": (lambda: Tensor.zeros(2, 3, dtype=lazygrad.int32), lambda: torch.zeros(2, 3, dtype=torch.int32)),
    "zeros_empty": (lambda: Tensor.zeros(0, 3), lambda: torch.zeros(0, 3)),
    "zeros_0d": (lambda: Tensor.zeros(()), lambda: torch.zeros(())),
    "ones": (lambda: Tensor.ones(4), lambda: torch.ones(4)),
    "ones_bool": (lambda: Tensor.ones(2, 2, dtype=lazygrad.bool_), lambda: torch.ones(2, 2, dtype=torch.bool)),
    "ones_str_dtype": (lambda: Tensor.ones(2, dtype="float16"), lambda: torch.ones(2, dtype=torch.float16)),
    "ones_np_dtype": (lambda: Tensor.ones(2, dtype=np.int64), lambda: torch.ones(2, dtype=torch.int64)),
    "full_float": (lambda: Tensor.full((2, 3), 1.5), lambda: torch.full((2, 3), 1.5)),
    "full_int": (lambda: Tensor.full((2, 3), 7), lambda: torch.full((2, 3), 7)),
    "full_bool": (lambda: Tensor.full((2,), True), lambda: torch.full((2,), True)),
    "full_dtype": (lambda: Tensor.full((2, 3), 2, dtype=lazygrad.float16),
                   lambda: torch.full((2, 3), 2, dtype=torch.float16)),
    "full_inf": (lambda: Tensor.full((3,), -inf), lambda: torch.full((3,), -inf)),
    "full_0d": (lambda: Tensor.full((), 3.0), lambda: torch.full((), 3.0)),
    "arange_end": (lambda: Tensor.arange(5), lambda: torch.arange(5)),
    "arange_start_end": (lambda: Tensor.arange(1, 5), lambda: torch.arange(1, 5)),
    "arange_step": (lambda: Tensor.arange(2, 11, 3), lambda: torch.arange(2, 11, 3)),
    "arange_float_step": (lambda: Tensor.arange(0, 1, 0.25), lambda: torch.arange(0, 1, 0.25)),
    "arange_float_start": (lambda: Tensor.arange(1.0, 4.0), lambda: torch.arange(1.0, 4.0)),
    "arange_negative_step": (lambda: Tensor.arange(10, 0, -3), lambda: torch.arange(10, 0, -3)),
    "arange_empty": (lambda: Tensor.arange(0), lambda: torch.arange(0)),
    "arange_dtype": (lambda: Tensor.arange(5, dtype=lazygrad.float32), lambda: torch.arange(5, dtype=torch.float32)),
    "linspace": (lambda: Tensor.linspace(0, 1, 5), lambda: torch.linspace(0, 1, 5)),
    "linspace_one": (lambda: Tensor.linspace(-1, 1, 1), lambda: torch.linspace(-1, 1, 1)),
    "linspace_zero": (lambda: Tensor.linspace(2, 3, 0), lambda: torch.linspace(2, 3, 0)),
    "linspace_descending": (lambda: Tensor.linspace(3, -2, 11), lambda: torch.linspace(3, -2, 11)),
    "eye": (lambda: Tensor.eye(3), lambda: torch.eye(3)),
    "eye_rect": (lambda: Tensor.eye(2, 4), lambda: torch.eye(2, 4)),
    "eye_tall": (lambda: Tensor.eye(4, 2), lambda: torch.eye(4, 2)),
    "eye_kw": (lambda: Tensor.eye(3, m=2), lambda: torch.eye(3, m=2)),
    "eye_dtype": (lambda: Tensor.eye(3, dtype=lazygrad.int32), lambda: torch.eye(3, dtype=torch.int32)),
}


@pytest.mark.parametrize("case", list(CREATION))
def test_creation(case):
    fn, tfn = CREATION[case]
    assert_same(fn(), tfn())


LIKE = {  # id: (name, extra args, input dtype)
    "zeros_like": ("zeros_like", (), np.int32),
    "ones_like": ("ones_like", (), np.float16),
    "ones_like_bool": ("ones_like", (), np.bool_),
    "full_like": ("full_like", (3,), np.int32),
    "full_like_float": ("full_like", (2.5,), np.float32),
    "empty_like": ("empty_like", (), np.int64),
    "rand_like": ("rand_like", (), np.float32),
    "randn_like": ("randn_like", (), np.float16),
}


@pytest.mark.parametrize("case", list(LIKE))
def test_like(case):
    name, args, dt = LIKE[case]
    a = make_array((2, 3), dt, 0, 5, RNG)
    random = name in ("empty_like", "rand_like", "randn_like")
    assert_same(getattr(Tensor, name)(Tensor(a), *args), getattr(torch, name)(torch.tensor(a), *args), values=not random)


CONSTRUCTOR = {  # id: (data, kwargs) - Tensor(data, **kw) vs torch.tensor(data, **kw)
    "float_list": ([1.0, 2.5], {}),
    "int_list": ([1, 2, 3], {}),
    "bool_list": ([True, False], {}),
    "nested": ([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], {}),
    "mixed_int_float": ([1, 2.5], {}),
    "empty_list": ([], {}),
    "float_scalar": (3.5, {}),
    "int_scalar": (3, {}),
    "bool_scalar": (True, {}),
    "np_float64": (np.array([[1.5, 2.0]]), {}),
    "np_float32": (np.array([1.5, 2.0], dtype=np.float32), {}),
    "np_float16": (np.array([1.5, 2.0], dtype=np.float16), {}),
    "np_int32": (np.array([1, -2], dtype=np.int32), {}),
    "np_int64": (np.array([1, -2], dtype=np.int64), {}),
    "np_uint8": (np.array([1, 255], dtype=np.uint8), {}),
    "np_bool": (np.array([True, False]), {}),
    "np_0d": (np.array(2.5, dtype=np.float32), {}),
    "np_noncontiguous": (np.arange(12, dtype=np.float32).reshape(3, 4).T, {}),
    "np_negative_strides": (np.arange(6, dtype=np.int32)[::-1], {}),
    "dtype_str": ([1, 2], dict(dtype="float32")),
    "dtype_str_half": ([1, 2], dict(dtype="float16")),
    "dtype_np": ([1.7, -1.7], dict(dtype=np.int32)),
    "dtype_bool": ([0, 3], dict(dtype="bool")),
}
TORCH_DTYPE = {"float32": torch.float32, "float16": torch.float16, "int32": torch.int32, "bool": torch.bool}


@pytest.mark.parametrize("case", list(CONSTRUCTOR))
def test_constructor(case):
    data, kw = CONSTRUCTOR[case]
    tkw = {"dtype": TORCH_DTYPE[dtype_name(kw["dtype"])]} if kw else {}
    want = torch.tensor(data.astype(np.float32) if isinstance(data, np.ndarray) and data.dtype == np.float64
                        else data.copy() if isinstance(data, np.ndarray) else data, **tkw)
    assert_same(Tensor(data, **kw), want)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int32", "int64", "uint8", "bool"])
def test_dtype_objects(dtype):
    attr = "bool_" if dtype == "bool" else dtype
    dt = getattr(lazygrad, attr)
    assert dtype_name(dt) == dtype
    data = [[0, 1, 2], [3, 4, 5]]
    want = torch.tensor(data, dtype=getattr(torch, dtype))
    assert_same(Tensor(data, dtype=dt), want)
    assert_same(Tensor(data, dtype=dtype), want)
    assert Tensor(data, dtype=dt).dtype == dt


def test_dtypes_namespace():
    assert lazygrad.dtypes.bool == lazygrad.bool_
    assert Tensor([1, 0], dtype=lazygrad.dtypes.bool).dtype == lazygrad.bool_


def test_requires_grad_flag():
    t = Tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad is True
    np.testing.assert_array_equal(t.numpy(), np.array([1.0, 2.0], dtype=np.float32))


# ---------------------------------------------------------------- random

RANDOM = {  # id: (fn, shape, dtype name)
    "rand": (lambda: Tensor.rand(2, 3), (2, 3), "float32"),
    "rand_tuple": (lambda: Tensor.rand((4,)), (4,), "float32"),
    "randn": (lambda: Tensor.randn(3, 4), (3, 4), "float32"),
    "rand_half": (lambda: Tensor.rand(3, dtype=lazygrad.float16), (3,), "float16"),
    "randint": (lambda: Tensor.randint(0, 10, (2, 5)), (2, 5), "int64"),
    "empty": (lambda: Tensor.empty(2, 3), (2, 3), "float32"),
    "empty_int": (lambda: Tensor.empty(4, dtype=lazygrad.int32), (4,), "int32"),
    "rand_empty": (lambda: Tensor.rand(0, 3), (0, 3), "float32"),
}


@pytest.mark.parametrize("case", list(RANDOM))
def test_random_shape_dtype(case):
    fn, shape, dt = RANDOM[case]
    t = fn()
    assert t.shape == shape and dtype_name(t.dtype) == dt
    assert np.asarray(t.numpy()).shape == shape


@pytest.mark.parametrize("name", ["rand", "randn"])
def test_manual_seed_reproducible(name):
    lazygrad.manual_seed(42)
    a = getattr(Tensor, name)(64).numpy()
    lazygrad.manual_seed(42)
    b = getattr(Tensor, name)(64).numpy()
    c = getattr(Tensor, name)(64).numpy()
    lazygrad.manual_seed(43)
    d = getattr(Tensor, name)(64).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c), "consecutive draws must differ"
    assert not np.array_equal(a, d), "different seeds must differ"


@pytest.mark.parametrize("name", ["rand", "randn", "normal", "uniform", "randint"])
def test_large_draws_depend_on_the_seed_only(name, monkeypatch):
  """A draw larger than one chunk is filled by parallel streams: the same values whatever the number of threads,
  independent chunks, and the distribution asked for."""
  from concurrent.futures import ThreadPoolExecutor
  from lazygrad.tensor import creation
  monkeypatch.setattr(creation, "_CHUNK", 1000)
  draw = {"rand": lambda: Tensor.rand(3, 1501), "randn": lambda: Tensor.randn(4501),
          "normal": lambda: Tensor.normal(4501, mean=2.0, std=0.5),
          "uniform": lambda: Tensor.uniform(4501, low=-3, high=1),
          "randint": lambda: Tensor.randint(-2, 9, (4501,))}[name]
  runs = []
  for threads in (1, 3):
    monkeypatch.setattr(creation, "_pool", ThreadPoolExecutor(threads))
    lazygrad.manual_seed(7)
    runs.append(draw().numpy().reshape(-1))
  np.testing.assert_array_equal(runs[0], runs[1])
  x = runs[0].astype(np.float64)
  assert not np.array_equal(x[:1000], x[1000:2000]), "chunks are independent streams"
  mean, std = {"rand": (0.5, 12 ** -0.5), "randn": (0.0, 1.0), "normal": (2.0, 0.5), "uniform": (-1.0, 4 / 12 ** 0.5),
               "randint": (3.0, (120 / 12) ** 0.5)}[name]
  assert abs(x.mean() - mean) < 4 * std / len(x) ** 0.5 and abs(x.std() / std - 1) < 0.05


def test_random_values_are_fixed_when_made_and_drawn_when_used(monkeypatch):
  """The values of a random tensor depend on the seed and the order tensors are made in, not on when they are used;
  one that is never used is never drawn."""
  from lazygrad.tensor import creation
  lazygrad.manual_seed(3)
  a, b = Tensor.randn(5), Tensor.rand(4)
  b_first = b.numpy().copy(); a_then = a.numpy().copy()
  lazygrad.manual_seed(3)
  a, b = Tensor.randn(5), Tensor.rand(4)
  np.testing.assert_array_equal(a.numpy(), a_then)
  np.testing.assert_array_equal(b.numpy(), b_first)
  drawn = []
  real = creation._draw
  monkeypatch.setattr(creation, "_draw", lambda *a: drawn.append(a[1]) or real(*a))
  unused = Tensor.randn(1000, 10)
  used = Tensor.randn(7).numpy()
  assert drawn == [(7,)] and unused.shape == (1000, 10) and used.shape == (7,)


def test_randint_seed_and_range():
    lazygrad.manual_seed(0)
    a = Tensor.randint(-3, 4, (10000,)).numpy()
    lazygrad.manual_seed(0)
    np.testing.assert_array_equal(a, Tensor.randint(-3, 4, (10000,)).numpy())
    assert a.min() >= -3 and a.max() < 4
    assert set(np.unique(a).tolist()) == set(range(-3, 4))


def test_rand_statistics():
    lazygrad.manual_seed(1)
    x = Tensor.rand(10000).numpy()
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() < 1.0
    assert abs(x.mean() - 0.5) < 0.02 and abs(x.std() - 12 ** -0.5) < 0.02
    assert 0.2 < (x < 0.25).mean() < 0.3


def test_randn_statistics():
    lazygrad.manual_seed(2)
    x = Tensor.randn(10000).numpy()
    assert x.dtype == np.float32 and np.isfinite(x).all()
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1.0) < 0.05
    assert 0.62 < (np.abs(x) < 1).mean() < 0.745  # ~0.683 within one sigma


def test_like_random_statistics():
    lazygrad.manual_seed(3)
    base = Tensor.zeros(100, 100)
    r = Tensor.rand_like(base).numpy()
    n = Tensor.randn_like(base).numpy()
    assert r.shape == n.shape == (100, 100)
    assert r.min() >= 0 and r.max() < 1 and abs(r.mean() - 0.5) < 0.02
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05


# ---------------------------------------------------------------- data access and properties

def test_properties():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = Tensor(a)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.ndim == 3 and t.numel() == 24
    assert t.device == lazygrad.runtime.device.default_device_name()
    assert t.dtype == lazygrad.float32
    assert (t + 1).shape == (2, 3, 4) and (t.sum(1)).shape == (2, 4)
    z = Tensor(2.0)
    assert z.shape == () and z.ndim == 0 and z.numel() == 1
    e = Tensor(np.zeros((0, 3), np.float32))
    assert e.shape == (0, 3) and e.numel() == 0


def test_numpy_tolist_item():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = Tensor(a) * 2
    out = t.numpy()
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, a * 2)
    assert t.tolist() == (a * 2).tolist() == torch.tensor(a * 2).tolist()
    assert Tensor([[True, False]]).tolist() == [[True, False]]
    assert Tensor([1, 2]).tolist() == [1, 2] and isinstance(Tensor([1, 2]).tolist()[0], int)
    assert Tensor(3.5).tolist() == 3.5


@pytest.mark.parametrize("data,expected", [(2.5, 2.5), (7, 7), (True, True), ([4.0], 4.0), ([[3]], 3)], ids=str)
def test_item(data, expected):
    t = Tensor(data)
    v = (t + 0).item() if not isinstance(expected, bool) else t.item()
    assert v == expected and type(v) is type(torch.tensor(data).item())


def test_item_of_reduction():
    assert Tensor([1.0, 2.0, 3.5]).sum().item() == 6.5
    assert Tensor([[1, 5], [7, 2]]).argmax().item() == 2


def test_realize_returns_tensor():
    t = Tensor([1.0, 2.0]) + 1
    r = t.realize()
    assert isinstance(r, Tensor)
    np.testing.assert_array_equal(r.numpy(), np.array([2.0, 3.0], dtype=np.float32))
    np.testing.assert_array_equal(t.numpy(), np.array([2.0, 3.0], dtype=np.float32))


# ---------------------------------------------------------------- laziness

def test_laziness_counters():
    a = Tensor(np.arange(12, dtype=np.float32).reshape(3, 4)).realize()
    b = Tensor(np.ones((3, 4), dtype=np.float32)).realize()
    start = lazygrad.counters.kernels
    assert isinstance(start, int)
    c = a + b
    d = ((c * 2).exp().sum(1) / 3).reshape(3, 1)
    assert lazygrad.counters.kernels == start, "building ops must not run kernels"
    c.realize()
    after_c = lazygrad.counters.kernels
    assert after_c > start, "realize() must run at least one kernel"
    c.realize()
    assert lazygrad.counters.kernels == after_c, "realizing a realized tensor must run no kernels"
    d.realize()
    after_d = lazygrad.counters.kernels
    assert after_d > after_c
    d.realize()
    assert lazygrad.counters.kernels == after_d
    np.testing.assert_allclose(d.numpy()[:, 0], np.exp((np.arange(12).reshape(3, 4) + 1) * 2).sum(1) / 3, rtol=1e-5)
