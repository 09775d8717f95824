"""Bad input must raise when the op is built (not at realize), with a useful message and traceback."""
import os
import traceback

import numpy as np
import pytest

from lazygrad import Tensor

ERRORS = (ValueError, IndexError, TypeError, RuntimeError)


def ones(*shape, dtype=np.float32):
    return Tensor(np.ones(shape, dtype=dtype))


BAD = {  # id: (build fn - never realized, acceptable op names, substrings that must be in the message)
    "broadcast": (lambda: ones(2, 3) + ones(4), ("add", "+"), ["(2, 3)", "(4,)"]),
    "broadcast_mul_3d": (lambda: ones(2, 3, 4) * ones(2, 4), ("mul", "*"), ["(2, 3, 4)", "(2, 4)"]),
    "matmul": (lambda: ones(2, 3) @ ones(4, 5), ("matmul", "@"), ["(2, 3)", "(4, 5)"]),
    "matmul_batched": (lambda: ones(2, 3, 4) @ ones(3, 5), ("matmul", "@"), ["(2, 3, 4)", "(3, 5)"]),
    "reshape": (lambda: ones(2, 3).reshape(4, 2), ("reshape",), ["(2, 3)", "(4, 2)"]),
    "cat": (lambda: Tensor.cat([ones(2, 3), ones(2, 4)], dim=0), ("cat",), ["(2, 3)", "(2, 4)"]),
    "stack": (lambda: Tensor.stack([ones(2, 3), ones(3, 2)]), ("stack",), ["(2, 3)", "(3, 2)"]),
    "expand": (lambda: ones(3, 4).expand(2, 4), ("expand",), ["(3, 4)", "(2, 4)"]),
    "sum_dim": (lambda: ones(2, 3).sum(5), ("sum",), ["(2, 3)"]),
    "max_dim": (lambda: ones(2, 3).max(dim=-3), ("max",), ["(2, 3)"]),
    "index": (lambda: ones(3, 4)[10], ("index", "getitem"), ["(3, 4)"]),
    "bitwise_and_float": (lambda: ones(2, 3) & ones(2, 3), ("and", "&", "bitwise"), ["float32"]),
    "cat_0d": (lambda: Tensor.cat([Tensor(1.0), Tensor(2.0)]), ("cat",), ["zero-dimensional", "position 0"]),
    "div_rounding_mode": (lambda: ones(2).div(2, rounding_mode="typo"), ("div",), ["'typo'", "'floor'"]),
    "flip_repeated_dim": (lambda: ones(2, 3).flip((0, 0)), ("flip",), ["(0, 0)", "(2, 3)"]),
    "full_negative": (lambda: Tensor.full((-3,), 2.0), ("full",), ["(-3,)"]),
    "zeros_negative": (lambda: Tensor.zeros(2, -1), ("full",), ["(2, -1)"]),
    "unknown_dtype": (lambda: Tensor([1, 2], dtype="complex64"), ("dtype",), ["complex64", "float32"]),
    "inplace_float_into_int": (lambda: ones(2, dtype=np.int64).__iadd__(0.5), ("add_",), ["float32", "int64"]),
    "write_expanded_view": (lambda: ones(1).expand(3).__iadd__(1), ("assign",), ["(3,)", "clone"]),
}


def test_tensors_on_two_devices_are_an_error_at_build_time():
    from conftest import HAS_GPU
    other = "triton" if HAS_GPU else "triton-interp"   # without a GPU, conftest sets TRITON_INTERPRET
    a, b = Tensor([1.0, 2.0], device="numpy"), Tensor([1.0, 2.0], device=other)
    for build in (lambda: a + b, lambda: b * a, lambda: Tensor.cat([a, b]), lambda: a.where(a > 0, b), lambda: a @ b):
        with pytest.raises(RuntimeError, match=f"numpy.*{other}|{other}.*numpy"):
            build()
    assert a.to(other).device == other and (a.to(other) + b).numpy().tolist() == [2, 4]
    assert a.to(b).device == other and a.to("numpy", "int32").dtype.name == "int32"


@pytest.mark.parametrize("make", [
    lambda p: __import__("lazygrad").optim.SGD(p, lr=-1), lambda p: __import__("lazygrad").optim.SGD(p, momentum=-0.5),
    lambda p: __import__("lazygrad").optim.Adam(p, betas=(1.0, 0.999)), lambda p: __import__("lazygrad").optim.AdamW(p, eps=-1),
    lambda p: __import__("lazygrad").optim.AdamW(p, weight_decay=float("nan")), lambda p: __import__("lazygrad").optim.Adam(p, lr=float("inf"))])
def test_optimizer_hyperparameters_are_checked(make):
    with pytest.raises(ValueError, match="invalid"):
        make([Tensor([1.0], requires_grad=True)])


@pytest.mark.parametrize("case", list(BAD))
def test_error_at_build_time(case):
    build, names, parts = BAD[case]
    with pytest.raises(ERRORS) as excinfo:
        build()
    msg = str(excinfo.value)
    assert any(n in msg.lower() for n in names), f"op name ({' or '.join(names)}) missing from: {msg!r}"
    for part in parts:
        assert part in msg, f"{part!r} missing from: {msg!r}"
    # The traceback must reach the line that built the bad op (the lambda in BAD, in this file).
    frames = traceback.extract_tb(excinfo.tb)
    here = [f for f in frames if os.path.exists(f.filename) and os.path.samefile(f.filename, __file__)]
    assert any(f.name == "<lambda>" for f in here), [f"{f.filename}:{f.lineno} {f.name}" for f in frames]


def test_long_chain_no_recursion_error():
    """100,000 chained lazy ops must realize without RecursionError (runs in CI, keep it quick)."""
    x = Tensor([0.0])
    for _ in range(100_000):
        x = x + 1
    x.realize()
    assert x.numpy()[0] == 100000.0


def test_context_names_an_unknown_setting():
  from lazygrad import Context, settings
  with pytest.raises(AttributeError, match="unknown setting 'VIZ'; known: DEBUG"):
    with Context(DEBUG=2, VIZ=1): pass
  assert settings.DEBUG == 0   # nothing was changed
