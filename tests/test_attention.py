"""Fused attention (the ATTENTION primitive, lowered flash-attention style): forward and gradients against PyTorch's
scaled_dot_product_attention, on whatever device the suite runs (numpy, or the Triton interpreter with its real
block sizes, so rows and keys that do not fill a block are exercised); the schedule holds no T x T buffer; check
mode compares the kernels with the numpy reference; bad arguments raise clear errors."""
import math
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import lazygrad
from lazygrad import Tensor, Context
from lazygrad.nn import functional as F
from lazygrad import helpers


def _run(shapes, mask=None, causal=False, scale=None, dtype="float32", gqa=False, seed=0, atol=2e-5):
  """Forward and backward of q, k, v of `shapes` in lazygrad and torch; returns the largest differences."""
  rng = np.random.default_rng(seed)
  arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
  tdt = getattr(torch, dtype)
  ts = [torch.tensor(a).to(tdt).requires_grad_() for a in arrays]
  ls = [Tensor(t.detach().float().numpy(), requires_grad=True) for t in ts]
  lx = [x.cast(dtype) if dtype != "float32" else x for x in ls]
  tm = torch.tensor(mask) if mask is not None else None
  lm = Tensor(mask) if mask is not None else None
  want = torch.nn.functional.scaled_dot_product_attention(*ts, attn_mask=tm, is_causal=causal, scale=scale,
                                                          enable_gqa=gqa)
  got = F.scaled_dot_product_attention(*lx, attn_mask=lm, is_causal=causal, scale=scale, enable_gqa=gqa)
  g = rng.standard_normal(want.shape).astype(np.float32)
  (want.float() * torch.tensor(g)).sum().backward()
  (got.float() * Tensor(g)).sum().backward()
  assert got.shape == tuple(want.shape) and got.dtype.name == dtype
  tol = atol if dtype in ("float32", "float64") else 3e-2
  np.testing.assert_allclose(got.float().numpy(), want.detach().float().numpy(), atol=tol, rtol=tol)
  for l, t in zip(ls, ts):
    np.testing.assert_allclose(l.grad.numpy(), t.grad.float().numpy(), atol=5 * tol, rtol=5 * tol)


@pytest.mark.parametrize("tq, tk", [(5, 7), (64, 64), (70, 33), (1, 40), (33, 1)])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_torch_at_awkward_lengths(tq, tk, causal):
  _run([(2, 3, tq, 16), (2, 3, tk, 16), (2, 3, tk, 16)], causal=causal)


def test_feature_sizes_that_are_no_power_of_two_and_differ_between_k_and_v():
  _run([(1, 2, 9, 20), (1, 2, 11, 20), (1, 2, 11, 6)], causal=True)


def test_bool_mask_with_a_row_that_attends_to_nothing_gives_zeros():
  rng = np.random.default_rng(3)
  mask = rng.random((9, 13)) > 0.4
  mask[2] = False
  _run([(2, 2, 9, 16), (2, 2, 13, 16), (2, 2, 13, 16)], mask=mask)
  q = Tensor.ones(1, 1, 9, 16)
  out = F.scaled_dot_product_attention(q, Tensor.ones(1, 1, 13, 16), Tensor.ones(1, 1, 13, 16), attn_mask=Tensor(mask))
  np.testing.assert_array_equal(out.numpy()[0, 0, 2], 0)


def test_float_mask_per_batch_and_head_and_a_scale():
  rng = np.random.default_rng(4)
  bias = rng.standard_normal((2, 1, 6, 10)).astype(np.float32)
  bias[1, 0, 3, 4:] = -math.inf
  _run([(2, 3, 6, 8), (2, 3, 10, 8), (2, 3, 10, 8)], mask=bias, scale=0.3)


def test_three_and_two_dim_inputs_and_broadcast_batches():
  _run([(4, 7, 16), (4, 9, 16), (4, 9, 16)], causal=True)
  _run([(7, 16), (9, 16), (9, 16)])
  _run([(2, 3, 7, 16), (1, 3, 9, 16), (1, 3, 9, 16)])


def test_grouped_query_attention():
  _run([(1, 4, 7, 16), (1, 2, 9, 16), (1, 2, 9, 16)], gqa=True, causal=True)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float64"])
def test_other_dtypes(dtype):
  """Half precision feeds the tensor cores; float64 has no DOT on Triton (a broadcast product summed instead)."""
  _run([(1, 2, 40, 16), (1, 2, 40, 16), (1, 2, 40, 16)], causal=True, dtype=dtype)


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 2), st.integers(1, 40), st.integers(1, 40), st.sampled_from([4, 16, 24]), st.booleans())
def test_random_shapes(batch, tq, tk, d, causal):
  _run([(batch, 2, tq, d), (batch, 2, tk, d), (batch, 2, tk, d)], causal=causal, seed=tq * 41 + tk)


def test_q_k_v_as_views_of_one_projection_train_like_gpt():
  """The GPT pattern: q, k, v are split, reshaped and transposed views of one matmul, cast under autocast."""
  B, T, H, D = 2, 12, 2, 16
  rng = np.random.default_rng(5)
  x, w = rng.standard_normal((B, T, H * D)).astype(np.float32), rng.standard_normal((H * D, 3 * H * D)).astype(np.float32) / 8
  def fwd(lib, x, w):
    qkv = x @ w
    q, k, v = (t.reshape(B, T, H, D).transpose(1, 2) for t in qkv.split(H * D, dim=2))
    return (lib.scaled_dot_product_attention(q, k, v, is_causal=True) ** 2).sum()
  tx, tw = torch.tensor(x), torch.tensor(w, requires_grad=True)
  lx, lw = Tensor(x), Tensor(w, requires_grad=True)
  fwd(torch.nn.functional, tx, tw).backward()
  loss = fwd(F, lx, lw)
  loss.backward()
  np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), atol=1e-4, rtol=1e-3)


def _schedule_of(*tensors):
  seen = []
  class Watch:
    def schedule(self, items, order): seen.extend(items)
  helpers.observers.append(w := Watch())
  try: lazygrad.realize(*tensors)
  finally: helpers.observers.remove(w)
  return seen


def test_one_forward_and_two_backward_kernels_and_no_t_by_t_buffer():
  """The forward stores out and lse; the query-major backward kernel computes delta = rowsum(dO * out) for its rows
  and stores it with dq, for the key-major one (dk, dv): no kernel of its own."""
  T = 96
  q, k, v = (Tensor.randn(2, 2, T, 16, requires_grad=True) for _ in range(3))
  F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
  items = _schedule_of(q.grad, k.grad, v.grad)
  names = [it.kernel.name for it in items if it.kernel is not None]
  assert len(names) == 3 and all(n.startswith("attention_") for n in names), names
  assert names[0].startswith("attention_lse_out") and names[1].startswith("attention_dq_delta") and \
    names[2].startswith("attention_dk_dv"), names
  biggest = max(math.prod(o.shape) for it in items for o in it.outputs)
  assert biggest < T * T, f"a buffer of {biggest} elements: the scores were materialized"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_probabilities_are_one_exp2_each_and_float64_ones_stay_exact(dtype):
  """float32 scores are kept in base 2 (the scale carries log2 e): every probability is one EXP2, the device's fast
  exponential, in the forward and both backward kernels; float64 scores stay in base e (EXP), exact. Values match
  torch either way."""
  from lazygrad.codegen.linearize import LoweringOptions, linearize
  from lazygrad.codegen.uops import U
  from lazygrad.ir.ops import Op
  rng = np.random.default_rng(0)
  arrays = [rng.standard_normal((2, 3, 40, 16)).astype(dtype) for _ in range(3)]
  q, k, v = (Tensor(a, dtype=dtype, requires_grad=True) for a in arrays)
  F.scaled_dot_product_attention(q, k, v, is_causal=True).square().sum().backward()
  items = _schedule_of(q.grad, k.grad, v.grad)
  tiled = LoweringOptions(whole=False)
  for it in items:
    if it.kernel is None or not it.kernel.name.startswith("attention_"): continue
    ops = {u.arg for u in linearize(it.kernel, tiled).uops if u.op is U.ALU}
    assert (Op.EXP2 in ops, Op.EXP in ops) == ((True, False) if dtype == "float32" else (False, True)), it.kernel.name
  tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in arrays)
  torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True).square().sum().backward()
  for mine, theirs in zip((q, k, v), (tq, tk, tv)):
    np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_dropout_composes_from_primitives_and_keeps_the_expected_value():
  q, k, v = (Tensor.ones(1, 1, 4, 8) for _ in range(3))
  out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
  vals = out.numpy()
  assert set(np.unique(np.round(vals, 5))) <= {0.0, 0.5, 1.0, 1.5, 2.0}   # kept probabilities scaled by 2


def test_check_mode_compares_the_attention_kernels_with_numpy():
  q, k, v = (Tensor.randn(1, 2, 40, 16, requires_grad=True) for _ in range(3))
  F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
  with Context(CHECK=1): lazygrad.realize(q.grad, k.grad, v.grad)


@pytest.mark.parametrize("build, words", [
  (lambda: F.scaled_dot_product_attention(Tensor.ones(1, 4, 8), Tensor.ones(1, 4, 8).half(), Tensor.ones(1, 4, 8)),
   ["share one float dtype", "float32", "float16"]),
  (lambda: F.scaled_dot_product_attention(Tensor.ones(1, 4, 8), Tensor.ones(1, 4, 6), Tensor.ones(1, 4, 8)),
   ["(1, 4, 8)", "(1, 4, 6)", "do not fit"]),
  (lambda: F.scaled_dot_product_attention(Tensor.ones(1, 4, 8), Tensor.ones(1, 4, 8), Tensor.ones(1, 4, 8),
                                          attn_mask=Tensor.ones(4, 4).bool(), is_causal=True), ["is_causal"]),
  (lambda: F.scaled_dot_product_attention(Tensor.ones(1, 3, 4, 8), Tensor.ones(1, 2, 4, 8), Tensor.ones(1, 2, 4, 8),
                                          enable_gqa=True), ["multiple"]),
])
def test_bad_arguments_raise_naming_the_problem_and_the_line(build, words):
  with pytest.raises((TypeError, ValueError, lazygrad.ShapeError)) as e: build()
  for w in words + ["test_attention.py"]: assert w in str(e.value), str(e.value)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks_over_several_blocks(kind):
  """A mask tensor makes every block of the loop masked (no unmasked segment), with rows and keys past a block."""
  rng = np.random.default_rng(7)
  mask = rng.random((70, 45)) > 0.3 if kind == "bool" else rng.standard_normal((70, 45)).astype(np.float32)
  _run([(1, 2, 70, 16), (1, 2, 45, 16), (1, 2, 45, 16)], mask=mask)
