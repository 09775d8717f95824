"""Autocast (lazygrad.amp) against torch.autocast's CUDA rules: which ops run in bfloat16, which in float32, which
as they are; values and gradients against torch; the pieces an op is composed from are not autocast."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import lazygrad
from lazygrad import Tensor, nn, amp
from lazygrad.nn import functional as F

rng = np.random.default_rng(0)


def t(*shape, dtype="float32"):
  return Tensor(rng.standard_normal(shape).astype(np.float32)).cast(dtype)


# op: (what it computes from float32 inputs, the dtype torch's CUDA autocast gives)
CASES = {
  "matmul": (lambda: t(4, 8) @ t(8, 3), "bfloat16"),
  "rmatmul": (lambda: np.ones((2, 4), np.float32) @ t(4, 3), "bfloat16"),
  "mm": (lambda: t(4, 8).mm(t(8, 3)), "bfloat16"),
  "bmm": (lambda: t(2, 4, 8).bmm(t(2, 8, 3)), "bfloat16"),
  "addmm": (lambda: t(3).addmm(t(4, 8), t(8, 3)), "bfloat16"),
  "baddbmm": (lambda: t(2, 4, 3).baddbmm(t(2, 4, 8), t(2, 8, 3)), "bfloat16"),
  "einsum": (lambda: lazygrad.einsum("ij,kj->ik", t(4, 8), t(3, 8)), "bfloat16"),
  "F.linear": (lambda: F.linear(t(4, 8), t(3, 8), t(3)), "bfloat16"),
  "nn.Linear": (lambda: nn.Linear(8, 3)(t(4, 8)), "bfloat16"),
  "conv2d": (lambda: F.conv2d(t(1, 2, 5, 5), t(3, 2, 3, 3), t(3)), "bfloat16"),
  "sdpa": (lambda: F.scaled_dot_product_attention(t(1, 2, 4, 8), t(1, 2, 4, 8), t(1, 2, 4, 8)), "bfloat16"),
  "softmax of bf16": (lambda: t(4, 8, dtype="bfloat16").softmax(-1), "float32"),
  "log_softmax of bf16": (lambda: F.log_softmax(t(4, 8, dtype="bfloat16"), -1), "float32"),
  "layer_norm of bf16": (lambda: F.layer_norm(t(4, 8, dtype="bfloat16"), (8,)), "float32"),
  "nn.LayerNorm of bf16": (lambda: nn.LayerNorm(8)(t(4, 8, dtype="bfloat16")), "float32"),
  "exp of bf16": (lambda: t(4, dtype="bfloat16").exp(), "float32"),
  "pow of bf16": (lambda: t(4, dtype="bfloat16") ** 2, "float32"),
  "sum of bf16": (lambda: t(4, dtype="bfloat16").sum(), "float32"),
  "cross_entropy of bf16": (lambda: F.cross_entropy(t(4, 5, dtype="bfloat16"), Tensor(np.array([0, 1, 2, 4]))), "float32"),
  "mse_loss of bf16": (lambda: F.mse_loss(t(4, dtype="bfloat16"), t(4, dtype="bfloat16")), "float32"),
  # not in either list: the inputs' dtype, computed as without autocast
  "gelu of bf16": (lambda: t(4, dtype="bfloat16").gelu(), "bfloat16"),
  "mean of bf16": (lambda: t(4, dtype="bfloat16").mean(), "bfloat16"),
  "var of bf16": (lambda: t(4, 8, dtype="bfloat16").var(-1), "bfloat16"),
  "add": (lambda: t(4) + t(4, dtype="bfloat16"), "float32"),
  "relu of f32": (lambda: t(4).relu(), "float32"),
  "float64 matmul": (lambda: t(4, 8, dtype="float64") @ t(8, 3, dtype="float64"), "float64"),
}


@pytest.mark.parametrize("name", CASES)
def test_autocast_dtypes_follow_torch_cuda_lists(name):
  fn, want = CASES[name]
  with nn.autocast("bfloat16"): out = fn()
  assert out.dtype.name == want
  out.numpy()   # and it runs


def test_outside_autocast_nothing_changes():
  assert (t(4, 8) @ t(8, 3)).dtype.name == "float32"
  assert t(4, dtype="bfloat16").exp().dtype.name == "bfloat16"
  with nn.autocast("bfloat16"):
    with nn.autocast(enabled=False): assert (t(4, 8) @ t(8, 3)).dtype.name == "float32"
    assert amp.autocast_dtype() is lazygrad.bfloat16
  assert amp.autocast_dtype() is None


def test_autocast_rejects_a_dtype_that_is_not_16_bit_float_and_an_unknown_name():
  with pytest.raises(TypeError, match="float16 or bfloat16"):
    with nn.autocast("float64"): pass
  with pytest.raises(ValueError, match="neither a dtype nor a device type"):
    with nn.autocast("bf16"): pass


@pytest.mark.parametrize("args, kw, want", [
  ((), {}, "bfloat16"), (("float16",), {}, "float16"), (("cuda",), {}, "float16"), (("cpu",), {}, "bfloat16"),
  (("cuda",), {"dtype": torch.bfloat16}, "bfloat16"), ((), {"dtype": lazygrad.float16}, "float16"),
  ((None,), {}, None), (("cuda",), {"enabled": False}, None)])
def test_autocast_takes_torchs_signature(args, kw, want):
  """lazygrad's autocast("bfloat16") and torch's autocast(device_type, dtype=None, enabled=True): float16 by
  default on a GPU device type, as torch's, bfloat16 on the CPU."""
  with lazygrad.autocast(*args, **kw):
    assert (amp.autocast_dtype().name if want else None) == want
    assert lazygrad.is_autocast_enabled() == (want is not None)
  assert not lazygrad.is_autocast_enabled()


def test_every_listed_op_that_lazygrad_has_is_wrapped():
  """A name in the lists that Tensor or nn.functional defines is autocast there (a renamed method would silently drop
  out of autocast)."""
  for names in (amp.LOWER_PRECISION, amp.FLOAT32):
    for name in names:
      for where in (Tensor, F):
        fn = getattr(where, name, None)
        if fn is not None: assert hasattr(fn, "__autocast__"), f"{where.__name__}.{name}"
  assert hasattr(Tensor.einsum, "__autocast__") and hasattr(lazygrad.einsum, "__autocast__")


def test_linear_values_and_gradients_match_torch_autocast():
  """Linear -> gelu -> Linear under autocast, against torch's CPU autocast (the same bfloat16 rules for linear):
  outputs bfloat16 with the bias added before the one rounding, float32 master weights with float32 gradients."""
  x = rng.standard_normal((16, 32)).astype(np.float32)
  l1, l2 = nn.Linear(32, 64), nn.Linear(64, 8)
  tl1, tl2 = torch.nn.Linear(32, 64), torch.nn.Linear(64, 8)
  with torch.no_grad():
    for a, b in ((l1, tl1), (l2, tl2)):
      b.weight.copy_(torch.tensor(a.weight.numpy())); b.bias.copy_(torch.tensor(a.bias.numpy()))
  with nn.autocast("bfloat16"):
    h = l1(Tensor(x)); y = l2(h.gelu())
  with torch.autocast("cpu", dtype=torch.bfloat16):
    th = tl1(torch.tensor(x)); ty = tl2(TF.gelu(th))
  assert h.dtype.name == "bfloat16" and y.dtype.name == "bfloat16" and ty.dtype == torch.bfloat16
  np.testing.assert_allclose(h.float().numpy(), th.float().detach().numpy(), rtol=1e-2, atol=1e-2)
  np.testing.assert_allclose(y.float().numpy(), ty.float().detach().numpy(), rtol=2e-2, atol=2e-2)
  (y.float() ** 2).mean().backward()
  (ty.float() ** 2).mean().backward()
  for a, b in ((l1, tl1), (l2, tl2)):
    assert a.weight.grad.dtype.name == "float32" and a.bias.grad.dtype.name == "float32"
    np.testing.assert_allclose(a.weight.grad.numpy(), b.weight.grad.numpy(), rtol=5e-2, atol=2e-3)
    np.testing.assert_allclose(a.bias.grad.numpy(), b.bias.grad.numpy(), rtol=5e-2, atol=2e-3)


def test_linear_adds_the_bias_before_rounding():
  """x @ W.T + b rounded once (cuBLAS's epilogue), not the product rounded, then the sum rounded again: here the
  product is 1 + 3/512 (bfloat16 rounds it to 1 + 4/512) and the bias -1.5/512, so the two give 1 and 1 + 1/128."""
  x = np.ones((1, 256), np.float32)
  w = np.full((1, 256), 2.0 ** -8, np.float32); w[0, 0] = 5 * 2.0 ** -9
  b = np.array([-3 * 2.0 ** -10], np.float32)
  want = (torch.tensor(x) @ torch.tensor(w).T + torch.tensor(b)).bfloat16().float().item()
  assert want == 1.0
  with nn.autocast("bfloat16"): got = F.linear(Tensor(x), Tensor(w), Tensor(b))
  assert got.float().item() == want


def test_composed_ops_keep_their_pieces_unchanged():
  """var of a bfloat16 tensor is composed of sum and pow (both float32 ops under autocast): it must give what it gives
  without autocast, as torch's var (one kernel) does."""
  x = t(4, 8, dtype="bfloat16")
  want = x.var(-1).numpy()
  with nn.autocast("bfloat16"): got = x.var(-1).numpy()
  np.testing.assert_array_equal(got, want)


def test_generated_lines_name_the_op_not_the_autocast_wrapper():
  with nn.autocast("bfloat16"): a, b = t(4, 8).matmul(t(8, 3)), t(4, 8) @ t(8, 3)
  assert a.node.loc[0] == __file__ and a.node.loc[2] == "Tensor.matmul"
  assert b.node.loc[0] == __file__ and b.node.loc[2] == "Tensor.__matmul__"
