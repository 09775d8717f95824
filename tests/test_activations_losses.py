"""Activations, elementwise functions, losses and small modules against PyTorch, forward and backward, including
edge values (0, the thresholds, infinities), empty and 0-d inputs and half precision."""
import math
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from lazygrad import Tensor, nn, ShapeError
from lazygrad.nn import functional as F

pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")   # torch's kl_div note
rng = np.random.default_rng(0)
EDGES = np.array([0.0, -0.0, 1e-8, -1e-8, 3.0, -3.0, 6.0, 20.0, 25.0, -25.0, 1e-30, -90.0, 90.0], np.float32)


def values(n=64):
  return np.concatenate([rng.standard_normal(n).astype(np.float32) * 4, EDGES])


UNARY = {   # name: (lazygrad, torch)
  "log1p": (lambda x: x.abs().log1p(), lambda x: x.abs().log1p()),
  "expm1": (lambda x: x.expm1(), lambda x: x.expm1()),
  "hardtanh": (lambda x: x.hardtanh(-2.0, 3.0), lambda x: TF.hardtanh(x, -2.0, 3.0)),
  "relu6": (lambda x: x.relu6(), TF.relu6),
  "hardsigmoid": (lambda x: x.hardsigmoid(), TF.hardsigmoid),
  "hardswish": (lambda x: x.hardswish(), TF.hardswish),
  "leaky_relu": (lambda x: x.leaky_relu(0.2), lambda x: TF.leaky_relu(x, 0.2)),
  "elu": (lambda x: x.elu(0.7), lambda x: TF.elu(x, 0.7)),
  "celu": (lambda x: x.celu(1.5), lambda x: TF.celu(x, 1.5)),
  "selu": (lambda x: x.selu(), TF.selu),
  "softplus": (lambda x: x.softplus(), TF.softplus),
  "softplus_beta": (lambda x: x.softplus(2.0, 10.0), lambda x: TF.softplus(x, 2.0, 10.0)),
  "softsign": (lambda x: x.softsign(), TF.softsign),
  "mish": (lambda x: x.mish(), TF.mish),
  "logsigmoid": (lambda x: x.logsigmoid(), TF.logsigmoid),
  "quick_gelu": (lambda x: x.quick_gelu(), lambda x: x * torch.sigmoid(1.702 * x)),
  "softmin": (lambda x: x.softmin(0), lambda x: TF.softmin(x, 0)),
  "tan": (lambda x: (x * 0.3).tan(), lambda x: (x * 0.3).tan()),
  "log10": (lambda x: x.abs().log10(), lambda x: x.abs().log10()),
  "sinh": (lambda x: x.sinh(), lambda x: x.sinh()),
  "cosh": (lambda x: x.cosh(), lambda x: x.cosh()),
  "asinh": (lambda x: (x * 1e3).asinh(), lambda x: (x * 1e3).asinh()),
  "acosh": (lambda x: (x.abs() + 1).acosh(), lambda x: (x.abs() + 1).acosh()),
  "atanh": (lambda x: (x / 91).atanh(), lambda x: (x / 91).atanh()),
  "atan": (lambda x: (x * 3).atan(), lambda x: (x * 3).atan()),
  "asin": (lambda x: (x / 91).asin(), lambda x: (x / 91).asin()),
  "acos": (lambda x: (x / 91).acos(), lambda x: (x / 91).acos()),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_matches_torch_with_its_gradient(name):
  ours, theirs = UNARY[name]
  x = values()
  lt, tt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
  out, ref = ours(lt), theirs(tt)
  w = rng.standard_normal(x.shape).astype(np.float32)
  (out * Tensor(w)).sum().backward()
  (ref * torch.tensor(w)).sum().backward()
  np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=2e-6, atol=1e-6)
  np.testing.assert_allclose(lt.grad.numpy(), tt.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["softplus", "elu", "hardswish", "logsigmoid", "mish"])
def test_unary_in_bfloat16_and_on_empty_and_scalar_inputs(name):
  ours, theirs = UNARY[name]
  x = values(16)
  got = ours(Tensor(x).cast("bfloat16"))
  assert got.dtype.name == "bfloat16"
  np.testing.assert_allclose(got.float().numpy(), theirs(torch.tensor(x).bfloat16()).float().numpy(), rtol=2e-2, atol=2e-2)
  assert ours(Tensor(np.zeros((0, 3), np.float32))).shape == (0, 3)
  np.testing.assert_allclose(ours(Tensor(1.5)).numpy(), theirs(torch.tensor(1.5)).numpy(), rtol=1e-6)


def test_atan2_in_every_quadrant_and_at_signed_zeros():
  y, x = values(), values()[::-1].copy()
  x[:4], y[:4] = [0.0, -0.0, 0.0, -0.0], [0.0, 0.0, -0.0, -0.0]
  ly, lx = Tensor(y, requires_grad=True), Tensor(x, requires_grad=True)
  ty, tx = torch.tensor(y, requires_grad=True), torch.tensor(x, requires_grad=True)
  got, ref = ly.atan2(lx), torch.atan2(ty, tx)
  np.testing.assert_allclose(got.numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-6)
  got.sum().backward(); ref.sum().backward()
  np.testing.assert_allclose(ly.grad.numpy()[4:], ty.grad.numpy()[4:], rtol=1e-5, atol=1e-6)   # off the origin
  np.testing.assert_allclose(lx.grad.numpy()[4:], tx.grad.numpy()[4:], rtol=1e-5, atol=1e-6)


def test_logaddexp_isclose_isfinite_lerp():
  a, b = values(), values()[::-1].copy()
  b[:3] = [math.inf, -math.inf, math.nan]
  a[:3] = [math.inf, -math.inf, 1.0]
  la, lb = Tensor(a, requires_grad=True), Tensor(b)
  ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b)
  got, ref = la.logaddexp(lb), torch.logaddexp(ta, tb)
  np.testing.assert_allclose(got.numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-6)
  fin = np.isfinite(a) & np.isfinite(b)
  got.where(Tensor(fin), 0.0).sum().backward()
  torch.where(torch.tensor(fin), ref, 0.0).sum().backward()
  np.testing.assert_allclose(la.grad.numpy()[fin], ta.grad.numpy()[fin], rtol=1e-5, atol=1e-7)   # torch: nan elsewhere
  np.testing.assert_array_equal(Tensor(b).isfinite().numpy(), np.isfinite(b))
  for kw in ({}, {"rtol": 1e-2, "atol": 0.5}, {"equal_nan": True}):
    np.testing.assert_array_equal(la.isclose(Tensor(a + 1e-4), **kw).numpy(), torch.isclose(ta, torch.tensor(a + 1e-4), **kw).numpy())
  np.testing.assert_allclose(Tensor(a[3:]).lerp(Tensor(b[3:]), 0.3).numpy(), torch.lerp(torch.tensor(a[3:]), torch.tensor(b[3:]), 0.3).numpy(), rtol=1e-6, atol=1e-5)


LOSSES = {   # name: (lazygrad, torch, target maker)
  "mse": (F.mse_loss, TF.mse_loss, lambda s: rng.standard_normal(s).astype(np.float32)),
  "l1": (F.l1_loss, TF.l1_loss, lambda s: rng.standard_normal(s).astype(np.float32)),
  "smooth_l1": (lambda x, t, **k: F.smooth_l1_loss(x, t, beta=0.5, **k), lambda x, t, **k: TF.smooth_l1_loss(x, t, beta=0.5, **k),
                lambda s: rng.standard_normal(s).astype(np.float32)),
  "bce": (lambda x, t, **k: F.binary_cross_entropy(x.sigmoid(), t, **k),
          lambda x, t, **k: TF.binary_cross_entropy(torch.sigmoid(x), t, **k), lambda s: rng.random(s).astype(np.float32)),
  "bce_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                 lambda s: (rng.random(s) > 0.5).astype(np.float32)),
  "kl_div": (lambda x, t, **k: F.kl_div(x.log_softmax(-1), t, **k), lambda x, t, **k: TF.kl_div(x.log_softmax(-1), t, **k),
             lambda s: np.where(rng.random(s) > 0.3, rng.random(s), 0).astype(np.float32)),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_match_torch(name, reduction):
  ours, theirs, make = LOSSES[name]
  x, t = rng.standard_normal((4, 5)).astype(np.float32) * 3, make((4, 5))
  lx, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
  got, ref = ours(lx, Tensor(t), reduction=reduction), theirs(tx, torch.tensor(t), reduction=reduction)
  np.testing.assert_allclose(got.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
  got.sum().backward(); ref.sum().backward()
  np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_kl_div_batchmean_and_log_target_and_bce_weights():
  x, t = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
  np.testing.assert_allclose(F.kl_div(Tensor(x), Tensor(t), "batchmean", log_target=True).numpy(),
                             TF.kl_div(torch.tensor(x), torch.tensor(t), reduction="batchmean", log_target=True).numpy(), rtol=1e-5)
  y, w, pw = (rng.random((3, 4)) > 0.5).astype(np.float32), rng.random((3, 4)).astype(np.float32), rng.random(4).astype(np.float32) + 0.5
  np.testing.assert_allclose(F.binary_cross_entropy_with_logits(Tensor(x), Tensor(y), Tensor(w), pos_weight=Tensor(pw)).numpy(),
                             TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y), torch.tensor(w), pos_weight=torch.tensor(pw)).numpy(), rtol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_and_cross_entropy_with_class_weights(reduction):
  x = rng.standard_normal((6, 4, 3)).astype(np.float32)
  t = rng.integers(0, 4, (6, 3)); t[0, 0] = -100
  w = rng.random(4).astype(np.float32) + 0.1
  lx, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
  for ours, theirs in ((lambda a: F.nll_loss(a.log_softmax(1), Tensor(t), Tensor(w), reduction=reduction),
                        lambda a: TF.nll_loss(a.log_softmax(1), torch.tensor(t), torch.tensor(w), reduction=reduction)),
                       (lambda a: F.cross_entropy(a, Tensor(t), Tensor(w), reduction=reduction, label_smoothing=0.1),
                        lambda a: TF.cross_entropy(a, torch.tensor(t), torch.tensor(w), reduction=reduction, label_smoothing=0.1))):
    got, ref = ours(lx), theirs(tx)
    np.testing.assert_allclose(got.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2), (4,), (0, 4)])
def test_cross_entropy_with_probability_targets(reduction, shape):
  """Soft targets (a float tensor of the input's shape), with class weights and label smoothing, forward and
  backward, including K-dim, 1-D and empty inputs."""
  x = rng.standard_normal(shape).astype(np.float32)
  p = rng.random(shape).astype(np.float32)
  p /= np.maximum(p.sum(1 if len(shape) > 1 else 0, keepdims=True), 1e-6)
  w = rng.random(4).astype(np.float32) + 0.1
  for kw in ({}, {"label_smoothing": 0.2}, {"weight": w}):
    lx, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lkw = {k: Tensor(v) if k == "weight" else v for k, v in kw.items()}
    tkw = {k: torch.tensor(v) if k == "weight" else v for k, v in kw.items()}
    got = F.cross_entropy(lx, Tensor(p), reduction=reduction, **lkw)
    ref = TF.cross_entropy(tx, torch.tensor(p), reduction=reduction, **tkw)
    np.testing.assert_allclose(got.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    if x.size:
      got.sum().backward(); ref.sum().backward()
      np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
  with pytest.raises(ShapeError, match="probability targets must have the input's shape"):
    F.cross_entropy(Tensor(np.ones((2, 3), np.float32)), Tensor(np.ones((2, 4), np.float32)))


def test_small_modules_compose_like_torch():
  model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 8), nn.LeakyReLU(0.1), nn.SiLU(),
                        nn.Tanh(), nn.Sigmoid(), nn.Identity(), nn.Linear(8, 3), nn.Softmax(-1))
  tmodel = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                               torch.nn.LeakyReLU(0.1), torch.nn.SiLU(), torch.nn.Tanh(), torch.nn.Sigmoid(),
                               torch.nn.Identity(), torch.nn.Linear(8, 3), torch.nn.Softmax(-1))
  assert len(model) == 11 and isinstance(model[-1], nn.Softmax) and [k for k, _ in model.named_parameters()][0] == "1.weight"
  tmodel.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
  x, y = rng.standard_normal((5, 3, 4)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
  np.testing.assert_allclose(model(Tensor(x)).numpy(), tmodel(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(nn.MSELoss()(model(Tensor(x)), Tensor(y)).numpy(),
                             torch.nn.MSELoss()(tmodel(torch.tensor(x)), torch.tensor(y)).detach().numpy(), rtol=1e-5)
  t = rng.integers(0, 3, 5)
  np.testing.assert_allclose(nn.CrossEntropyLoss(label_smoothing=0.1)(Tensor(y), Tensor(t)).numpy(),
                             torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(y), torch.tensor(t)).numpy(), rtol=1e-5)


def test_normalize_and_loss_shape_errors():
  x = rng.standard_normal((3, 4)).astype(np.float32)
  for p, dim in ((2.0, 1), (1.0, 0), (3.0, -1)):
    np.testing.assert_allclose(F.normalize(Tensor(x), p, dim).numpy(), TF.normalize(torch.tensor(x), p, dim).numpy(), rtol=1e-5, atol=1e-6)
  with pytest.raises(Exception, match=r"mse_loss: target shape \(4,\) differs from input shape \(3, 4\)"):
    F.mse_loss(Tensor(x), Tensor(np.zeros(4, np.float32)))
  with pytest.raises(ValueError, match="reduction must be"): F.l1_loss(Tensor(x), Tensor(x), reduction="avg")
