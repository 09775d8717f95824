"""Common torch.Tensor methods a PyTorch user reaches for, against torch, forward and backward: norms, add/sub with
alpha, round(decimals), t/mm/outer, fmax/fmin/hypot/nan_to_num/frac, unbind/diff, count_nonzero, type_as, new_*,
lazygrad.einsum."""
import math
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor, ShapeError

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4)).astype(np.float32)
B = rng.standard_normal((3, 4)).astype(np.float32)
SPECIAL = np.array([[np.nan, 1.0, -np.inf, 3.0], [np.inf, np.nan, -2.0, 0.0], [1e30, -1e30, 1e-30, 5.0]], np.float32)

CASES = {   # name: fn(x, y, lib) for lazygrad tensors (lib=lazygrad) and torch tensors (lib=torch)
  "norm": lambda x, y, lib: x.norm(), "norm_dim": lambda x, y, lib: x.norm(dim=1),
  "norm_1_keepdim": lambda x, y, lib: x.norm(p=1, dim=0, keepdim=True),
  "norm_inf": lambda x, y, lib: x.norm(p=math.inf, dim=1), "norm_3": lambda x, y, lib: x.norm(p=3),
  "add_alpha": lambda x, y, lib: x.add(y, alpha=2.5), "sub_alpha": lambda x, y, lib: x.sub(y, alpha=-0.5),
  "round_decimals": lambda x, y, lib: (x * 10).round(decimals=1), "round_negative": lambda x, y, lib: (x * 100).round(decimals=-1),
  "t": lambda x, y, lib: x.t() * 2, "mm": lambda x, y, lib: x.mm(y.t()), "outer": lambda x, y, lib: x[0].outer(y[1]),
  "frac": lambda x, y, lib: (x * 3).frac(), "hypot": lambda x, y, lib: x.hypot(y),
  "fmax": lambda x, y, lib: x.fmax(y), "fmin": lambda x, y, lib: x.fmin(y),
  "unbind": lambda x, y, lib: x.unbind(1)[2] * 3 + x.unbind(0)[1].sum(),
  "diff": lambda x, y, lib: x.diff(dim=1), "diff_2_prepend": lambda x, y, lib: x.diff(n=2, dim=0, prepend=y[:1]),
  "einsum": lambda x, y, lib: lib.einsum("ij,kj->ik", x, y),
  "type_as": lambda x, y, lib: x.type_as(y.double()) * 2,
}


@pytest.mark.parametrize("fn", [lambda x: x.nan_to_num(), lambda x: x.nan_to_num(nan=-1.0, posinf=7.0, neginf=-7.0),
                                lambda x: x.half().nan_to_num(), lambda x: x.fmax(x.flip(0)), lambda x: x.fmin(x.flip(1)),
                                lambda x: x.hypot(x.flip(0)), lambda x: (x != 0).count_nonzero(),
                                lambda x: x.count_nonzero(dim=1)])
def test_special_values_match_torch(fn):
  np.testing.assert_array_equal(fn(Tensor(SPECIAL)).numpy(), fn(torch.tensor(SPECIAL)).numpy())


def test_new_constructors_take_the_tensors_dtype_and_device():
  x, tx = Tensor(np.arange(6, dtype=np.int32).reshape(2, 3)), torch.arange(6, dtype=torch.int32).reshape(2, 3)
  for ours, theirs in ((x.new_zeros((2, 2)), tx.new_zeros((2, 2))), (x.new_ones(3), tx.new_ones(3)),
                       (x.new_full((2,), 7), tx.new_full((2,), 7)), (x.new_tensor([1, 2]), tx.new_tensor([1, 2])),
                       (x.new_zeros(2, dtype=lazygrad.float32), tx.new_zeros(2, dtype=torch.float32))):
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", "") and ours.device == x.device
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
  assert x.new_empty(4, 1).shape == (4, 1)


def test_shape_errors_name_the_op():
  with pytest.raises(ShapeError, match="mm: expects two 2-D tensors"): Tensor(A).mm(Tensor(A[0]))
  with pytest.raises(ShapeError, match="outer: expects two 1-D tensors"): Tensor(A).outer(Tensor(A[0]))
  with pytest.raises(ShapeError, match="t: expects a tensor of at most 2 dims"): Tensor(A[None]).t()
  assert Tensor(A[0]).t().shape == (4,) and Tensor(A[:, :0]).unbind(1) == ()


@pytest.mark.parametrize("method", ["float", "half", "bfloat16", "double", "int", "long", "short", "char", "byte", "bool"])
def test_cast_shortcuts_match_torch(method):
  x = np.array([-2.7, 0.0, 1.5, 300.2], np.float32)
  ours, theirs = getattr(Tensor(x), method)(), getattr(torch.tensor(x), method)()
  assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
  np.testing.assert_array_equal(ours.float().numpy(), theirs.float().numpy())


FUNCTIONAL = ["softmin", "relu6", "hardsigmoid", "hardswish", "celu", "selu", "softsign", "mish", "logsigmoid",
              "sigmoid", "tanh", "glu", "hardshrink", "softshrink", "tanhshrink"]


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_functional_forms_match_torch(name):
  from lazygrad.nn import functional as F
  lx, tx = Tensor(A * 3, requires_grad=True), torch.tensor(A * 3, requires_grad=True)
  got, ref = getattr(F, name)(lx), getattr(torch.nn.functional, name)(tx)
  np.testing.assert_allclose(got.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
  got.sum().backward(); ref.sum().backward()
  np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_linear_cosine_similarity_logit_isin_allclose_equal_match_torch():
  from lazygrad.nn import functional as F
  TF = torch.nn.functional
  w, b = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
  np.testing.assert_allclose(F.linear(Tensor(A), Tensor(w), Tensor(b)).numpy(),
                             TF.linear(torch.tensor(A), torch.tensor(w), torch.tensor(b)).numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(F.cosine_similarity(Tensor(A), Tensor(B[:1]), dim=1).numpy(),
                             TF.cosine_similarity(torch.tensor(A), torch.tensor(B[:1]), dim=1).numpy(), rtol=1e-5)
  p = np.array([0.0, 0.25, 0.5, 0.999, 1.0], np.float32)
  np.testing.assert_allclose(Tensor(p).logit().numpy(), torch.tensor(p).logit().numpy(), rtol=1e-6)
  np.testing.assert_allclose(Tensor(p).logit(eps=1e-3).numpy(), torch.tensor(p).logit(eps=1e-3).numpy(), rtol=1e-6)
  x, e = np.array([[1, 5, 3], [2, 2, 9]]), np.array([2, 3, 7])
  np.testing.assert_array_equal(Tensor(x).isin(Tensor(e)).numpy(), torch.isin(torch.tensor(x), torch.tensor(e)).numpy())
  np.testing.assert_array_equal(Tensor(x).isin([9], invert=True).numpy(),
                                torch.isin(torch.tensor(x), torch.tensor([9]), invert=True).numpy())
  assert Tensor(A).allclose(Tensor(A + 1e-7)) and not Tensor(A).allclose(Tensor(A + 1e-3))
  assert Tensor(A).equal(Tensor(A.copy())) and not Tensor(A).equal(Tensor(A[:2])) and not Tensor(A).equal(Tensor(B))


def test_unique_and_bincount_match_torch():
  x = np.array([[3, 1, 3], [2, 7, 1]])
  for kw in ({}, {"return_inverse": True}, {"return_counts": True}, {"return_inverse": True, "return_counts": True}):
    got, ref = Tensor(x).unique(**kw), torch.unique(torch.tensor(x), **kw)
    for g, r in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)):
      assert g.dtype.name == str(r.dtype).replace("torch.", "")
      np.testing.assert_array_equal(g.numpy(), r.numpy())
  b = np.array([0, 2, 2, 5])
  for w in (None, np.array([1.0, 2, 3, 4], np.float32), np.array([1, 2, 3, 4]), np.array([1, 2, 3, 4], np.float16)):
    got = Tensor(b).bincount(None if w is None else Tensor(w), minlength=7)
    ref = torch.bincount(torch.tensor(b), None if w is None else torch.tensor(w), minlength=7)
    assert got.dtype.name == str(ref.dtype).replace("torch.", "")
    np.testing.assert_array_equal(got.numpy(), ref.numpy())
  assert Tensor(np.array([], np.int64)).bincount().shape == (0,)
  with pytest.raises(ValueError, match="bincount: the values must be non-negative"): Tensor([1, -1]).bincount()


def test_unique_along_a_dim_matches_torch():
  """unique(dim=d): the distinct slices along d in lexicographic order, each slice's index among them, their counts."""
  x = np.array([[1, 0, 1, 2], [3, 3, 3, 1], [1, 0, 1, 2], [0, 5, 0, 9]])   # rows 0 and 2, columns 0 and 2 repeat
  cube = np.random.default_rng(3).integers(0, 2, (4, 3, 2)).astype(np.float32)
  for arr, dim in ((x, 0), (x, 1), (x, -1), (cube, 0), (cube, 1), (cube, 2), (np.zeros((0, 3), np.float32), 0)):
    for kw in ({}, {"return_inverse": True, "return_counts": True}):
      got, ref = Tensor(arr).unique(dim=dim, **kw), torch.unique(torch.tensor(arr), dim=dim, **kw)
      for g, r in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)):
        assert g.shape == tuple(r.shape) and g.dtype.name == str(r.dtype).replace("torch.", "")
        np.testing.assert_array_equal(g.numpy(), r.numpy())
  assert Tensor(x).unique(dim=0).shape == (3, 4)
  with pytest.raises(ValueError, match="unique: slices along dim 0 of shape \\(2, 0\\) are empty"):
    Tensor(np.ones((2, 0))).unique(dim=0)
  with pytest.raises(IndexError, match="unique: dim 0 is out of range for a 0-d tensor"): Tensor(5).unique(dim=0)
  with pytest.raises(IndexError, match="unique: dim 2 is out of range"): Tensor(x).unique(dim=2)


def test_in_place_forms_match_torch():
  x, y, z = (rng.standard_normal(6).astype(np.float32) for _ in range(3))
  for name, args, kw in (("clamp_min_", (0.1,), {}), ("clamp_max_", (-0.2,), {}), ("addcmul_", (y, z), {"value": 0.5}),
                         ("addcdiv_", (y, z), {}), ("lerp_", (y, 0.25), {})):
    ours, theirs = Tensor(x.copy()), torch.tensor(x.copy())
    out = getattr(ours, name)(*(Tensor(a) if isinstance(a, np.ndarray) else a for a in args), **kw)
    getattr(theirs, name)(*(torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args), **kw)
    assert out is ours
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
  w = Tensor(np.zeros((200, 50), np.float32))
  view = w[:, :10]
  assert w.normal_(2.0, 0.5) is w and abs(w.numpy().mean() - 2.0) < 0.02 and abs(w.numpy().std() - 0.5) < 0.02
  np.testing.assert_array_equal(view.numpy(), w.numpy()[:, :10])   # in place: views see the drawn values
  u = Tensor(np.zeros(10000, np.float32)).uniform_(-1.0, 3.0).numpy()
  assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 0.05


MORE = {   # name: fn(x, y, lib); x, y of shape (3, 4)
  "less": lambda x, y, lib: x.less(y), "greater_equal": lambda x, y, lib: x.greater_equal(y),
  "not_equal": lambda x, y, lib: x.not_equal(y), "multiply": lambda x, y, lib: x.multiply(y),
  "subtract": lambda x, y, lib: x.subtract(y, alpha=2), "divide": lambda x, y, lib: x.divide(y),
  "divide_floor": lambda x, y, lib: x.divide(y, rounding_mode="floor"), "true_divide": lambda x, y, lib: x.true_divide(y),
  "bitwise": lambda x, y, lib: (x > 0).bitwise_and(y > 0).bitwise_or((x > y).bitwise_xor(y < 0)).bitwise_not(),
  "positive_sgn_signbit": lambda x, y, lib: x.positive() + x.sgn() + x.signbit().float(),
  "deg_rad": lambda x, y, lib: x.deg2rad() + x.rad2deg(), "xlogy": lambda x, y, lib: x.xlogy(y.abs()),
  "float_power": lambda x, y, lib: x.abs().float_power(y), "heaviside": lambda x, y, lib: (x * 0 + x.round()).heaviside(y),
  "swapaxes": lambda x, y, lib: x.swapaxes(0, 1) * 2, "view_as": lambda x, y, lib: x.view_as(y.T.contiguous()),
  "fliplr_flipud": lambda x, y, lib: x.fliplr() + x.flipud(), "narrow": lambda x, y, lib: x.narrow(1, -3, 2),
  "select": lambda x, y, lib: x.select(1, 2), "rot90": lambda x, y, lib: x.rot90(1) + y.rot90(-1),
  "rot90_2": lambda x, y, lib: x.rot90(2, (1, 0)), "nansum": lambda x, y, lib: (x / (y > 0)).nansum(1),
  "nanmean": lambda x, y, lib: (x.log()).nanmean(0), "trace": lambda x, y, lib: x[:, :3].trace(),
  "tensordot": lambda x, y, lib: (torch.tensordot if lib is torch else Tensor.tensordot)(x, y, dims=([1], [1])), "kron": lambda x, y, lib: x[:2, :2].kron(y[:2]),
  "cross": lambda x, y, lib: x[:, :3].cross(y[:, :3], dim=1),
  "arc_aliases": lambda x, y, lib: (x.tanh() * 0.9).arcsin() + (y.tanh() * 0.9).arccos() + x.arctan() +
  x.arctan2(y) + x.arcsinh() + (x.abs() + 1.5).arccosh() + (y.tanh() * 0.9).arctanh(),
  "absolute_fix": lambda x, y, lib: x.absolute() + (x * 3).fix(), "ravel": lambda x, y, lib: x.T.ravel() * 2,
  "broadcast_to": lambda x, y, lib: x[0].broadcast_to((2, 4)) * 2,
  "sum_to_size": lambda x, y, lib: x.sum_to_size(1, 4) + x.sum_to_size((3, 1)).sum(),
  "sinc": lambda x, y, lib: (x * (x.abs() > 0.3)).sinc(), "logaddexp2": lambda x, y, lib: x.logaddexp2(y),
  "ldexp": lambda x, y, lib: x.ldexp(y.round()), "hardshrink": lambda x, y, lib: x.hardshrink(0.7),
  "angle": lambda x, y, lib: x.angle() + x.isreal().float(),
  "bmm_baddbmm_addbmm": lambda x, y, lib: x.reshape(2, 2, 3).bmm(y.reshape(2, 3, 2)) +
  x[:2, :2].baddbmm(x.reshape(2, 2, 3), y.reshape(2, 3, 2), beta=0.5, alpha=2) +
  x[0, :2].addbmm(x.reshape(2, 2, 3)[:, :1], y.reshape(2, 3, 2), alpha=-1),
  "mv_vdot_inner_ger": lambda x, y, lib: x.mv(y[0]) + x[0].vdot(y[1]) + x.inner(y).sum(1) + x[:, 0].ger(y[:, 1]).sum(0)[:3],
  "addmm_addmv_addr": lambda x, y, lib: x[:, :3].addmm(x, y.T[:, :3], beta=0.5) + y[:, 0].addmv(x, y[0]).unsqueeze(1) +
  x[:, :3].addr(x[:, 0], y[0, :3], alpha=3, beta=0),
  "tensor_split": lambda x, y, lib: x.tensor_split(3, dim=1)[0].sum() * x.tensor_split([1, -1])[1],
  "hsplit_vsplit": lambda x, y, lib: x.hsplit(2)[1] * 2 + x.vsplit([1])[1].sum(),
  "take": lambda x, y, lib: x.take(lib.tensor([[0, 5], [11, 3]])) if lib is torch else x.take(Tensor([[0, 5], [11, 3]])),
  "erfc": lambda x, y, lib: (x * 3).erfc() + (y * 0).erfc(),
  "lgamma": lambda x, y, lib: (x * 4).lgamma() + (y.abs() * 20 + 0.01).lgamma(),
  "digamma": lambda x, y, lib: (x.abs() * 5 + 0.05).digamma() + (x.sigmoid() - 3.5).digamma(),
  "erfinv": lambda x, y, lib: (x.tanh() * 0.9999).erfinv() + (y * 1e-3).erfinv(),
  "quantile": lambda x, y, lib: x.quantile(0.3) + x.quantile(0.75, dim=1).sum() +
  x.quantile(lib.tensor([0.1, 0.5, 1.0]) if lib is torch else Tensor([0.1, 0.5, 1.0]), dim=0, keepdim=True).sum(0),
  "quantile_modes": lambda x, y, lib: sum(x.quantile(0.4, dim=1, interpolation=m) for m in
                                          ("lower", "higher", "midpoint", "nearest")),
  "nanquantile": lambda x, y, lib: (x / (y > -0.5)).nanquantile(0.6, dim=1) + (x / (y > 0.2)).nanquantile(0.5),
  "matrix_power": lambda x, y, lib: x[:, :3].matrix_power(3) + x[:, :3].matrix_power(0) + x[:, 1:].matrix_power(1),
  "take_along_dim": lambda x, y, lib: x.take_along_dim(x.argsort(dim=1), dim=1) + x.take_along_dim(x.argmax(dim=0, keepdim=True), 0),
}


@pytest.mark.parametrize("name", list(CASES) + list(MORE))
def test_matches_torch_with_gradients(name):
  fn = {**CASES, **MORE}[name]
  lx, ly = Tensor(A, requires_grad=True), Tensor(B, requires_grad=True)
  tx, ty = torch.tensor(A, requires_grad=True), torch.tensor(B, requires_grad=True)
  got, ref = fn(lx, ly, lazygrad), fn(tx, ty, torch)
  assert got.shape == tuple(ref.shape) and got.dtype.name == str(ref.dtype).replace("torch.", "")
  np.testing.assert_allclose(got.numpy().astype(np.float64), ref.detach().numpy().astype(np.float64), rtol=1e-5,
                             atol=1e-5, equal_nan=True)
  if got.requires_grad and name != "heaviside":   # torch has no heaviside derivative
    got.float().nan_to_num().sum().backward(); ref.float().nan_to_num().sum().backward()
    for l, t in ((lx, tx), (ly, ty)):
      if t.grad is not None: np.testing.assert_allclose(l.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_tensor_data_and_shape_helpers_follow_torch():
  p = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
  view = p[0]
  p.data -= 0.5 * Tensor(np.ones((2, 3), np.float32))   # in place, as torch's p.data updates
  assert p.requires_grad and p.is_leaf and not p.data.requires_grad
  np.testing.assert_array_equal(view.numpy(), [0.5, 0.5, 0.5])
  assert p.dim() == p.ndimension() == 2 and p.nelement() == 6 and p.is_floating_point()
  assert not Tensor([1, 2]).is_floating_point()
  assert Tensor(A).cpu().device == "numpy" and Tensor(A, device="numpy").to("cpu").device == "numpy"
  mn, mx = Tensor(A).aminmax(dim=1)
  ref = torch.tensor(A).aminmax(dim=1)
  np.testing.assert_array_equal(mn.numpy(), ref.min.numpy()); np.testing.assert_array_equal(mx.numpy(), ref.max.numpy())
  with pytest.raises(IndexError, match="narrow: start 3 and length 2"): Tensor(A).narrow(0, 3, 2)


def test_module_level_constructors_and_joins_follow_torch():
  """torch.cat, torch.zeros, torch.zeros_like, ... as lazygrad.cat, lazygrad.zeros, lazygrad.zeros_like."""
  a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32)
  calls = {
    "cat": lambda m, x, y: m.cat([x, y], dim=1), "concat": lambda m, x, y: m.concat([x, y]),
    "concatenate": lambda m, x, y: m.concatenate([x, y], 0), "stack": lambda m, x, y: m.stack([x, y], dim=2),
    "meshgrid": lambda m, x, y: m.meshgrid(x[0], y[:, 0], indexing="xy")[1],
    "einsum": lambda m, x, y: m.einsum("ij,kj->ik", x, y),
    "arange": lambda m, x, y: m.arange(1, 7, 2), "linspace": lambda m, x, y: m.linspace(0, 1, 5),
    "eye": lambda m, x, y: m.eye(3, 2), "full": lambda m, x, y: m.full((2, 2), 7.0),
    "zeros": lambda m, x, y: m.zeros(2, 3), "ones": lambda m, x, y: m.ones((3,)),
    "zeros_like": lambda m, x, y: m.zeros_like(x), "ones_like": lambda m, x, y: m.ones_like(x),
    "full_like": lambda m, x, y: m.full_like(x, 2.5),
  }
  for name, call in calls.items():
    got, want = call(lazygrad, Tensor(a), Tensor(b)), call(torch, torch.tensor(a), torch.tensor(b))
    assert got.dtype.name == str(want.dtype).split(".")[1], name
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, err_msg=name)
  for name in ("empty", "rand", "randn"):
    assert getattr(lazygrad, name)(2, 3).shape == (2, 3)
  assert lazygrad.randint(0, 5, (4,)).dtype == lazygrad.int64
  for name in ("randn_like", "rand_like", "empty_like"):
    assert getattr(lazygrad, name)(Tensor(a)).shape == (2, 3)


def test_special_functions_at_their_edges_match_torch():
  x = np.array([-1, 1, 1.5, -2, 0, 0.9999999, -0.99999, 1e-7, 0.5], np.float32)
  np.testing.assert_allclose(Tensor(x).erfinv().numpy(), torch.tensor(x).erfinv().numpy(), rtol=2e-6)
  z = np.array([0, -1, -2, -7, 1, 2, 1e-4, -1e-4, 35, -6.5, -7.0008, 0.5, 1e6, 9.5, -9.5], np.float32)
  for name in ("lgamma", "digamma", "erfc"):   # poles, zero, tails, huge values
    np.testing.assert_allclose(getattr(Tensor(z), name)().numpy(), getattr(torch.tensor(z), name)().numpy(),
                               rtol=2e-5, atol=1e-6, err_msg=name)


def test_histc_fill_diagonal_and_bernoulli_follow_torch():
  x = rng.standard_normal(200).astype(np.float32)
  for args in ((10,), (7, -1.0, 1.0), (5, 0.5, 0.5), (3, -10.0, 10.0)):
    np.testing.assert_array_equal(Tensor(x).histc(*args).numpy(), torch.tensor(x).histc(*args).numpy(), err_msg=str(args))
  np.testing.assert_array_equal(Tensor(np.full(5, 2.0, np.float32)).histc(4).numpy(), torch.full((5,), 2.0).histc(4).numpy())
  for shape, wrap in (((4, 4), False), ((7, 3), False), ((7, 3), True), ((3, 6), True), ((3, 3, 3), False)):
    a, t = Tensor(np.zeros(shape, np.float32)), torch.zeros(shape)
    assert a.fill_diagonal_(5.0, wrap=wrap) is a
    np.testing.assert_array_equal(a.numpy(), t.fill_diagonal_(5.0, wrap=wrap).numpy(), err_msg=str((shape, wrap)))
  lazygrad.manual_seed(3)
  p = Tensor(np.array([0.0, 1.0, 0.25] * 2000, np.float32))
  draws = p.bernoulli().numpy().reshape(-1, 3)
  assert set(np.unique(draws)) <= {0.0, 1.0} and draws[:, 0].sum() == 0 and draws[:, 1].all()
  assert abs(draws[:, 2].mean() - 0.25) < 0.03
  z = Tensor(np.zeros(4000, np.float32))
  assert z.bernoulli_(0.7) is z and abs(z.numpy().mean() - 0.7) < 0.03


@pytest.mark.parametrize("seq, values, kw", [
  ([1.0, 2.0, 2.0, 3.0], [[float("nan"), 0.0, 2.0], [2.5, 3.0, 9.0]], {}),
  ([1.0, 2.0, 2.0, 3.0], [[float("nan"), 0.0, 2.0], [2.5, 3.0, 9.0]], {"right": True}),
  ([1.0, 2.0, 2.0, 3.0], [2.0, -1.0], {"side": "right", "out_int32": True}),
  ([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]], [[3.0, 0.0], [6.0, 4.5]], {}),
  ([0, 5, 10], [5, 11, -3], {"right": True}),
])
def test_searchsorted_matches_torch(seq, values, kw):
  got = lazygrad.searchsorted(Tensor(seq), Tensor(values), **kw)
  want = torch.searchsorted(torch.tensor(seq), torch.tensor(values), **kw)
  assert got.dtype.name == str(want.dtype).replace("torch.", "") and got.tolist() == want.tolist()


@pytest.mark.parametrize("right", [False, True])
def test_bucketize_matches_torch(right):
  x, b = [[0.5, 1.0], [2.0, 9.0]], [1.0, 2.0, 3.0]
  assert lazygrad.bucketize(Tensor(x), Tensor(b), right=right).tolist() == \
    torch.bucketize(torch.tensor(x), torch.tensor(b), right=right).tolist()
  with pytest.raises(ShapeError, match="boundaries must be 1-D"): lazygrad.bucketize(Tensor(x), Tensor(x))
  with pytest.raises(ShapeError, match="leading dims"): lazygrad.searchsorted(Tensor([[1.0, 2.0]]), Tensor([[1.0], [2.0]]))


def test_multinomial_draws_by_weight():
  """Frequencies against the weights (20,000 draws: 4 standard deviations is under 0.015); without replacement a
  row's samples are distinct, zero weights are never drawn, and the first draw of each row follows the weights."""
  lazygrad.manual_seed(0)
  p = np.array([0.1, 0.0, 0.6, 0.3], np.float32)
  with_ = Tensor(p * 7).multinomial(20000, replacement=True).numpy()
  assert with_.dtype == np.int64 and with_.shape == (20000,)
  np.testing.assert_allclose(np.bincount(with_, minlength=4) / 20000, p, atol=0.015)
  rows = Tensor(np.tile(p, (5000, 1))).multinomial(3).numpy()
  assert rows.shape == (5000, 3) and all(len(set(r)) == 3 for r in rows) and not (rows == 1).any()
  np.testing.assert_allclose(np.bincount(rows[:, 0], minlength=4) / 5000, p, atol=0.03)
  assert sorted(Tensor(p).multinomial(3).tolist()) == [0, 2, 3]


@pytest.mark.parametrize("weights, k, replacement", [([0.5, -0.1, 0.6], 1, True), ([0.0, 0.0], 1, True),
                                                       ([0.5, 0.0, 0.0], 2, False), ([[1.0, float("nan")]], 1, True)])
def test_multinomial_refuses_an_invalid_distribution_when_realized(weights, k, replacement):
  from lazygrad.errors import InvalidValue
  out = Tensor(weights).multinomial(k, replacement)   # built: the weights are only known when realized
  with pytest.raises(InvalidValue, match="multinomial: row 0 of the weights"): out.numpy()


def test_multinomial_checks_its_arguments_when_built():
  with pytest.raises(ShapeError, match="1-D or 2-D"): Tensor(np.ones((2, 2, 2), np.float32)).multinomial(1)
  with pytest.raises(RuntimeError, match="without replacement from 3 categories"): Tensor([1.0, 1.0, 1.0]).multinomial(4)
  with pytest.raises(ValueError, match="positive int"): Tensor([1.0]).multinomial(0)
  with pytest.raises(TypeError, match="must be floats"): Tensor([1, 2]).multinomial(1)
