"""Shared helpers: run the same computation in lazygrad and torch and compare."""
import numpy as np
import torch

import lazygrad

# Checked in order, so "bfloat16" wins over "float16" and "uint8" over "int8".
_NAMES = ("bfloat16", "float16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")
_ALIASES = {"half": "float16", "float": "float32", "double": "float64", "int": "int32", "long": "int64"}


def dtype_name(dt):
    """Canonical name of a lazygrad / torch / numpy dtype: 'float32', 'bool', ..."""
    s = str(dt)
    for name in _NAMES:
        if name in s:
            return name
    s = s.split(".")[-1]
    return _ALIASES.get(s, s)


def make_array(shape_or_array, dtype=np.float32, low=-2, high=2, rng=None):
    """Random array in [low, high) for a shape tuple; anything else is passed through np.asarray.

    dtype="bfloat16" gives float32 values that are exactly representable in bfloat16."""
    if not isinstance(shape_or_array, tuple):
        return np.asarray(shape_or_array)
    rng = rng if rng is not None else np.random.default_rng(0)
    name = dtype_name(dtype)
    if name == "bool":
        return rng.random(shape_or_array) < 0.5
    if name == "bfloat16":
        a = rng.uniform(low, high, shape_or_array).astype(np.float32)
        return torch.tensor(a).bfloat16().float().numpy()
    if np.dtype(dtype).kind in "iu":
        return rng.integers(low, high, shape_or_array).astype(dtype)
    return rng.uniform(low, high, shape_or_array).astype(dtype)


def to_numpy(t):
    """numpy value of a lazygrad or torch result (bfloat16 is returned as float32)."""
    if isinstance(t, torch.Tensor):
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    a = np.asarray(t.numpy())
    return a.astype(np.float32) if dtype_name(t.dtype) == "bfloat16" else a


def assert_same(lz, th, atol=1e-6, rtol=1e-3, values=True):
    """Assert a lazygrad Tensor matches a torch tensor in shape, dtype and (optionally) values."""
    assert isinstance(lz, lazygrad.Tensor), f"expected a lazygrad.Tensor, got {type(lz)}"
    assert tuple(lz.shape) == tuple(th.shape), f"shape {lz.shape} != torch {tuple(th.shape)}"
    name = dtype_name(th.dtype)
    assert dtype_name(lz.dtype) == name, f"dtype {lz.dtype} != torch {th.dtype}"
    if not values:
        return
    got, want = to_numpy(lz), to_numpy(th)
    assert got.shape == want.shape, f"numpy() shape {got.shape} != {want.shape}"
    if name != "bfloat16":
        assert got.dtype == want.dtype, f"numpy() dtype {got.dtype} != {want.dtype}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    if name == "bfloat16":
        atol, rtol = max(atol, 1e-2), max(rtol, 1.6e-2)
    elif name == "float16":
        atol, rtol = max(atol, 1e-3), max(rtol, 2e-3)
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), atol=atol, rtol=rtol, equal_nan=True)


def check(lazy_fn, torch_fn, *shapes_or_arrays, dtype=np.float32, atol=1e-6, rtol=1e-3, low=-2, high=2, seed=0):
    """Build inputs, run lazy_fn on lazygrad Tensors and torch_fn on torch tensors, compare the outputs.

    Shape tuples become random arrays of `dtype` in [low, high); arrays are used as they are
    (except that a float64 array becomes float32 on the torch side too, as lazygrad does)."""
    rng = np.random.default_rng(seed)
    bf16 = dtype_name(dtype) == "bfloat16"
    lz_in, th_in = [], []
    for s in shapes_or_arrays:
        a = make_array(s, dtype, low, high, rng)
        if bf16 and isinstance(s, tuple):
            lz_in.append(lazygrad.Tensor(a, dtype=lazygrad.bfloat16))
            th_in.append(torch.tensor(a).bfloat16())
            continue
        lz_in.append(lazygrad.Tensor(a))
        th_in.append(torch.tensor(a.astype(np.float32) if a.dtype == np.float64 else a))
    lz_out, th_out = lazy_fn(*lz_in), torch_fn(*th_in)
    if isinstance(th_out, (tuple, list)):
        assert isinstance(lz_out, (tuple, list)), f"expected a tuple/list of outputs, got {type(lz_out)}"
        assert len(lz_out) == len(th_out), f"{len(lz_out)} outputs != torch {len(th_out)}"
        for lz, th in zip(lz_out, th_out):
            assert_same(lz, th, atol, rtol)
    else:
        assert_same(lz_out, th_out, atol, rtol)
