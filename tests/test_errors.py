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
}


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
