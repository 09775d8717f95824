"""Convolutions, pooling, resampling and the normalization layers against PyTorch, forward and backward (input,
weight and bias gradients), with awkward geometry: odd sizes, strides, dilation, groups, padding past the kernel,
ceil_mode, batches of 1 and 0, unbatched inputs, 1-d and 3-d forms; nn.init's distributions; a small CNN trained
for 20 steps in both frameworks from the same weights."""
import math, os
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings, strategies as st
import lazygrad
from lazygrad import Tensor, nn, optim
from lazygrad.errors import ShapeError
from lazygrad.nn import functional as F, init

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")   # torch's note on its own copy
rng = np.random.default_rng(0)
def randn(*s): return rng.standard_normal(s).astype(np.float32)


def matches(ours, theirs, *arrays, rtol=1e-4, atol=1e-5):
  """ours(*lazygrad tensors) and theirs(*torch tensors) agree, and so do the gradients of every input for a random
  upstream gradient (a tuple result: its first element, the rest compared as values)."""
  lz = [Tensor(a, requires_grad=True) for a in arrays]
  th = [torch.tensor(a, requires_grad=True) for a in arrays]
  got, want = ours(*lz), theirs(*th)
  got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
  for g, w in zip(got, want):
    assert (g.shape, g.dtype.name) == (tuple(w.shape), str(w.dtype).split(".")[-1]), (g, w)
    np.testing.assert_allclose(g.numpy(), w.detach().numpy(), rtol=rtol, atol=atol)
  up = randn(*want[0].shape)
  (got[0] * Tensor(up)).sum().backward()
  (want[0] * torch.tensor(up)).sum().backward()
  for i, (l, t) in enumerate(zip(lz, th)):
    np.testing.assert_allclose(l.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


def same(name: str, x: np.ndarray, *args, **kw):
  """F.name(x, *args, **kw) matches torch.nn.functional's, with its gradient."""
  matches(lambda t: getattr(F, name)(t, *args, **kw), lambda t: getattr(TF, name)(t, *args, **kw), x)


CONV = [   # nd, (N, C, *spatial), out channels, kernel, keyword arguments
  (2, (2, 3, 7, 6), 4, (3, 3), {}),
  (2, (2, 4, 9, 8), 6, (3, 2), dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=2)),
  (2, (1, 3, 5, 5), 3, (1, 1), dict(stride=2)),
  (2, (1, 2, 4, 3), 2, (2, 2), dict(padding=3)),                                   # padding past the kernel
  (2, (2, 3, 6, 7), 4, (3, 4), dict(padding="same", dilation=2)),
  (2, (2, 3, 5, 6), 5, (2, 3), dict(padding="valid", stride=(1, 2))),
  (2, (1, 4, 6, 5), 8, (3, 3), dict(groups=4, padding=1)),                         # depthwise, multiplier 2
  (2, (0, 3, 5, 5), 4, (3, 3), {}),                                                # an empty batch
  (1, (2, 3, 11), 4, (3,), dict(stride=2, padding=4)),
  (1, (3, 2, 8), 2, (5,), dict(dilation=2, padding="same")),
  (3, (1, 2, 4, 5, 3), 2, (2, 3, 2), dict(padding=1, stride=(1, 2, 1))),
]


@pytest.mark.parametrize("nd,shape,out,kernel,kw", CONV)
def test_conv_matches_torch_with_input_weight_and_bias_gradients(nd, shape, out, kernel, kw):
  w = randn(out, shape[1] // kw.get("groups", 1), *kernel)
  matches(lambda x, w, b: getattr(F, f"conv{nd}d")(x, w, b, **kw),
          lambda x, w, b: getattr(TF, f"conv{nd}d")(x, w, b, **kw), randn(*shape), w, randn(out))


def test_conv_unbatched_without_bias():
  matches(lambda x, w: x.conv2d(w, padding=1), lambda x, w: TF.conv2d(x, w, padding=1), randn(3, 5, 4),
          randn(2, 3, 3, 3))


def test_conv_and_its_gradients_are_contractions():
  from lazygrad.codegen.schedule import schedule
  x, w = Tensor(randn(2, 3, 8, 8), requires_grad=True), Tensor(randn(4, 3, 3, 3), requires_grad=True)
  y = x.conv2d(w, Tensor(randn(4)), padding=1).relu()
  dx, dw = (y * Tensor(randn(*y.shape))).sum().gradient(x, w)
  texts = [item.kernel.text for item in schedule([y.node, dx.node, dw.node])]
  assert sum("DOT" in t for t in texts) == 3   # forward, input and weight gradients: each one DOT


CONV_T = [   # nd, (N, C, *spatial), out channels / groups, kernel, keyword arguments
  (2, (2, 4, 4, 5), 3, (3, 3), {}),
  (2, (2, 4, 4, 5), 3, (3, 2), dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 0), groups=2, dilation=(1, 2))),
  (2, (1, 2, 3, 3), 2, (2, 2), dict(stride=2)),
  (1, (1, 2, 5), 2, (4,), dict(stride=3, padding=3, output_padding=2)),
  (3, (1, 2, 2, 3, 2), 2, (2, 2, 3), dict(stride=2, padding=(0, 1, 1))),
]


@pytest.mark.parametrize("nd,shape,out,kernel,kw", CONV_T)
def test_conv_transpose_matches_torch(nd, shape, out, kernel, kw):
  groups = kw.get("groups", 1)
  matches(lambda x, w, b: getattr(F, f"conv_transpose{nd}d")(x, w, b, **kw),
          lambda x, w, b: getattr(TF, f"conv_transpose{nd}d")(x, w, b, **kw),
          randn(*shape), randn(shape[1], out, *kernel), randn(out * groups))


POOL = [   # (N, C, *spatial), keyword arguments (max_pool's; avg_pool drops dilation)
  ((2, 3, 9, 8), dict(kernel_size=2)),
  ((2, 3, 9, 8), dict(kernel_size=3, stride=2, padding=1)),
  ((2, 3, 9, 8), dict(kernel_size=(3, 2), stride=(2, 1), dilation=(2, 1), ceil_mode=True)),
  ((1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
  ((1, 1, 5, 6), dict(kernel_size=(1, 3), stride=(3, 1))),
  ((3, 5, 4), dict(kernel_size=2, stride=1)),                                      # unbatched
]


@pytest.mark.parametrize("shape,kw", POOL)
def test_max_pool2d_values_indices_and_gradient(shape, kw):
  same("max_pool2d", randn(*shape), **kw, return_indices=True)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("shape,kw", POOL)
def test_avg_pool2d(shape, kw, count_include_pad):
  kw = {k: v for k, v in kw.items() if k != "dilation"}
  same("avg_pool2d", randn(*shape), **kw, count_include_pad=count_include_pad)


def test_pooling_in_1d_and_3d_and_divisor_override():
  x1, x3 = randn(2, 3, 11), randn(1, 2, 5, 4, 6)
  same("max_pool1d", x1, 3, 2, 1, ceil_mode=True, return_indices=True)
  same("avg_pool1d", x1, 4, 3, 2, count_include_pad=False)
  same("max_pool3d", x3, (2, 3, 2), 2, (1, 1, 0), return_indices=True)
  same("avg_pool3d", x3, 2, ceil_mode=True)
  same("avg_pool2d", randn(1, 2, 6, 7), 3, 2, 1, divisor_override=5)


def test_max_pool_gradient_goes_to_the_first_maximum_and_integers_pool():
  x = np.array([[[[1, 3, 3], [3, 0, 2], [1, 3, 1]]]], np.float32)   # ties in every window
  same("max_pool2d", x, 2, 1, return_indices=True)
  xi = rng.integers(-50, 50, (2, 3, 5, 5))
  got, want = F.max_pool2d(Tensor(xi), 3, 2, 1), TF.max_pool2d(torch.tensor(xi), 3, 2, 1)
  assert got.dtype.name == "int64" and np.array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("size", [(3, 4), (4, 5), 1, (None, 3), (7, 2)])
def test_adaptive_pooling(size):
  x = randn(2, 3, 9, 8)
  same("adaptive_avg_pool2d", x, size)
  same("adaptive_max_pool2d", x, size, True)


@pytest.mark.parametrize("name,args,kw", [
  ("max_pool2d", (2,), dict(return_indices=True)), ("avg_pool2d", (3, 2, 1), {}), ("adaptive_avg_pool2d", ((4, 3),), {}),
  ("adaptive_max_pool2d", ((4, 3),), {}), ("interpolate", (), dict(scale_factor=2, mode="bilinear")), ("unfold", (2,), {}),
])
def test_pooling_and_resampling_of_an_empty_batch(name, args, kw):
  same(name, np.zeros((0, 3, 6, 5), np.float32), *args, **kw)


def test_adaptive_pooling_1d_3d_and_unbatched():
  same("adaptive_avg_pool1d", randn(2, 3, 10), 4)
  same("adaptive_max_pool1d", randn(2, 10), 3, True)
  same("adaptive_avg_pool3d", randn(1, 2, 5, 4, 3), (2, 3, 1))
  matches(lambda t: nn.AdaptiveAvgPool2d((2, 2))(t), lambda t: torch.nn.AdaptiveAvgPool2d((2, 2))(t), randn(3, 5, 5))


@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 3), ((2, 3), (2, 1))])
def test_max_unpool2d_inverts_max_pool2d(kernel, stride):
  x = randn(2, 3, 9, 8)
  v, i = F.max_pool2d(Tensor(x), kernel, stride, return_indices=True)
  tv, ti = TF.max_pool2d(torch.tensor(x), kernel, stride, return_indices=True)
  matches(lambda t: F.max_unpool2d(t, i, kernel, stride, output_size=x.shape),
          lambda t: TF.max_unpool2d(t, ti, kernel, stride, output_size=x.shape), tv.numpy())
  k = int(np.atleast_1d(kernel)[-1])
  v1, i1 = TF.max_pool1d(torch.tensor(randn(3, 10)), k, return_indices=True)   # unbatched 1-d
  matches(lambda t: F.max_unpool1d(t, Tensor(i1.numpy()), k), lambda t: TF.max_unpool1d(t, i1, k), v1.numpy())


def test_max_unpool_of_overlapping_windows_and_bad_indices():
  x = randn(1, 2, 7, 7)
  v, i = F.max_pool2d(Tensor(x), 3, 2, return_indices=True)   # some elements are the max of two windows
  tv, ti = TF.max_pool2d(torch.tensor(x), 3, 2, return_indices=True)
  np.testing.assert_allclose(F.max_unpool2d(v, i, 3, 2).numpy(), TF.max_unpool2d(tv, ti, 3, 2).numpy())
  with pytest.raises(lazygrad.errors.IndexOutOfBounds, match="max_unpool2d: index 49"):
    F.max_unpool2d(v, i + 49 - i.max().item(), 3, 2).numpy()


def test_unfold_as_tensor_method_and_im2col():
  x = randn(2, 3, 9, 8)
  matches(lambda t: t.unfold(2, 3, 2), lambda t: t.unfold(2, 3, 2), x)
  matches(lambda t: t.unfold(-1, 8, 1), lambda t: t.unfold(-1, 8, 1), x)
  same("unfold", x, (2, 3), dilation=(2, 1), padding=1, stride=(1, 2))
  same("unfold", randn(3, 4, 4), 2)


INTERP = [
  dict(scale_factor=2), dict(size=(5, 13)), dict(scale_factor=(0.7, 1.3)), dict(scale_factor=1.7, mode="nearest-exact"),
  dict(scale_factor=2, mode="bilinear"), dict(size=(4, 11), mode="bilinear", align_corners=True),
  dict(scale_factor=(0.7, 1.3), mode="bilinear"), dict(size=(1, 3), mode="bilinear", align_corners=True),
  dict(scale_factor=1.5, mode="bilinear", recompute_scale_factor=True), dict(size=(4, 5), mode="area"),
]


@pytest.mark.parametrize("kw", INTERP)
def test_interpolate(kw):
  same("interpolate", randn(2, 3, 6, 5), **kw)


def test_interpolate_1d_and_3d_and_in_bfloat16():
  same("interpolate", randn(1, 2, 5), size=7, mode="linear")
  same("interpolate", randn(1, 1, 3, 4, 4), scale_factor=(2, 1.5, 0.5), mode="trilinear", align_corners=False)
  x = randn(1, 2, 4, 4)
  got = F.interpolate(Tensor(x).cast("bfloat16"), scale_factor=2, mode="bilinear")
  want = TF.interpolate(torch.tensor(x).bfloat16(), scale_factor=2, mode="bilinear")
  assert got.dtype.name == "bfloat16"
  np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=1e-2, atol=1e-2)


def test_conv_and_pooling_in_half_precision():
  x, w = randn(2, 3, 6, 6), randn(4, 3, 3, 3)
  for dt, tdt in (("bfloat16", torch.bfloat16), ("float16", torch.float16)):
    got = F.conv2d(Tensor(x).cast(dt), Tensor(w).cast(dt), padding=1)
    want = TF.conv2d(torch.tensor(x).to(tdt), torch.tensor(w).to(tdt), padding=1)
    assert got.dtype.name == dt
    np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=2e-2, atol=5e-2)
    np.testing.assert_array_equal(F.max_pool2d(Tensor(x).cast(dt), 2).float().numpy(),
                                  TF.max_pool2d(torch.tensor(x).to(tdt), 2).float().numpy())


@pytest.mark.parametrize("call,message", [
  (lambda: F.conv2d(Tensor(randn(1, 3, 5, 5)), Tensor(randn(2, 4, 3, 3))), r"conv2d: input of shape .*\(3 channels\)"),
  (lambda: F.conv2d(Tensor(randn(1, 3, 2, 2)), Tensor(randn(2, 3, 3, 3))), "conv2d: the padded input .* smaller"),
  (lambda: F.conv2d(Tensor(randn(1, 3, 5, 5)), Tensor(randn(2, 3, 3, 3)), stride=2, padding="same"), "needs stride 1"),
  (lambda: F.conv2d(Tensor(randn(3, 5)), Tensor(randn(2, 3, 3, 3))), "conv2d: expected a 3-d .* or 4-d"),
  (lambda: F.conv2d(Tensor(randn(1, 3, 5, 5)), Tensor(randn(2, 3, 3, 3)).cast("bfloat16")), "one float dtype"),
  (lambda: F.conv2d(Tensor(randn(1, 3, 5, 5)), Tensor(randn(2, 3, 3, 3)), stride=(1, 2, 3)), "stride must be"),
  (lambda: F.conv_transpose2d(Tensor(randn(1, 3, 5, 5)), Tensor(randn(3, 2, 3, 3)), output_padding=1),
   "output_padding"),
  (lambda: F.max_pool2d(Tensor(randn(1, 3, 5, 5)), 3, padding=2), "max_pool2d: padding .* at most half"),
  (lambda: F.max_pool2d(Tensor(randn(1, 3, 2, 2)), 3), "max_pool2d: input of shape .* too small"),
  (lambda: F.avg_pool2d(Tensor(rng.integers(0, 3, (1, 3, 4, 4))), 2), "avg_pool2d: needs a float tensor"),
  (lambda: F.interpolate(Tensor(randn(1, 3, 4)), scale_factor=2, mode="bilinear"), "interpolate: mode 'bilinear'"),
  (lambda: F.interpolate(Tensor(randn(1, 3, 4, 4)), scale_factor=2, align_corners=True), "align_corners"),
  (lambda: Tensor(randn(3, 4)).unfold(1, 5, 1), "unfold: size 5 does not fit"),
  (lambda: F.group_norm(Tensor(randn(2, 6, 3)), 4), "group_norm"),
  (lambda: F.batch_norm(Tensor(randn(1, 3)), None, None, training=True), "more than 1 value per channel"),
  (lambda: F.instance_norm(Tensor(randn(2, 3, 1))), "more than 1 spatial element"),
  (lambda: nn.BatchNorm2d(3)(Tensor(randn(2, 3, 4))), "BatchNorm2d: expected an input of 4 dims"),
])
def test_errors_name_the_op_and_the_fix(call, message):
  with pytest.raises((ShapeError, TypeError, ValueError), match=message): call()


# ---------------------------------------------------------------- layers
def copy_params(ours, theirs):
  """Load our module's tensors into the torch module (same names, as torch's state_dict)."""
  state = {k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items() if v is not None}
  missing, unexpected = theirs.load_state_dict(state, strict=True)
  assert not missing and not unexpected


@pytest.mark.parametrize("make", [
  lambda m: m.Conv2d(3, 4, 3, stride=2, padding=1, bias=True), lambda m: m.Conv1d(4, 6, 2, groups=2, bias=False),
  lambda m: m.Conv3d(2, 2, (1, 2, 2), padding="same"), lambda m: m.ConvTranspose2d(4, 2, 3, stride=2, padding=1),
])
def test_conv_layers_have_torchs_parameters_and_outputs(make):
  ours, theirs = make(nn), make(torch.nn)
  copy_params(ours, theirs)
  shape = (2, ours.in_channels) + (5,) * ours.nd
  matches(lambda x: ours(x), lambda x: theirs(x), randn(*shape))


def test_conv_transpose_output_size_and_padding_modes():
  ours, theirs = nn.ConvTranspose2d(2, 3, 3, stride=2), torch.nn.ConvTranspose2d(2, 3, 3, stride=2)
  copy_params(ours, theirs)
  x = randn(1, 2, 4, 4)
  matches(lambda t: ours(t, output_size=(10, 9)), lambda t: theirs(t, output_size=(10, 9)), x)
  with pytest.raises(ValueError, match="output_size"): ours(Tensor(x), output_size=(12, 9))
  with pytest.raises(ValueError, match="padding_mode"): nn.Conv2d(2, 3, 3, padding_mode="mirror")


def test_initialisation_follows_torchs_rules():
  conv = nn.Conv2d(8, 16, 3)
  bound = 1 / math.sqrt(8 * 9)   # kaiming_uniform_ with a=sqrt(5): +-1/sqrt(fan_in); the bias the same
  w, b = conv.weight.numpy(), conv.bias.numpy()
  assert 0.9 * bound < np.abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound
  assert np.abs(b).max() <= bound and len(np.unique(b)) == 16
  cell = nn.LSTMCell(3, 5)
  assert all(np.abs(p.numpy()).max() <= 1 / math.sqrt(5) for p in cell.parameters())
  assert [n for n, _ in cell.named_parameters()] == [n for n, _ in torch.nn.LSTMCell(3, 5).named_parameters()]


def test_init_functions():
  t = Tensor.empty(200, 50, 3)
  fan_in, fan_out = init._calculate_fan_in_and_fan_out(t)
  assert (fan_in, fan_out) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(200, 50, 3)) == (150, 600)
  for name, param in (("relu", None), ("leaky_relu", 0.2), ("tanh", None), ("selu", None), ("conv2d", None)):
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
  view = t[:, 0]   # in place: a view of the tensor sees the new values
  cases = [   # (call, check of the values)
    (lambda: init.uniform_(t, -2, 3), lambda v: v.min() >= -2 and v.max() < 3 and abs(v.mean() - 0.5) < 0.05),
    (lambda: init.normal_(t, 1, 2), lambda v: abs(v.mean() - 1) < 0.05 and abs(v.std() - 2) < 0.05),
    (lambda: init.trunc_normal_(t, 0, 1, -1, 0.5), lambda v: v.min() >= -1 and v.max() <= 0.5 and v.std() > 0.3),
    (lambda: init.constant_(t, 0.25), lambda v: (v == 0.25).all()),
    (lambda: init.zeros_(t), lambda v: (v == 0).all()),
    (lambda: init.ones_(t), lambda v: (v == 1).all()),
    (lambda: init.xavier_uniform_(t, 2.0), lambda v: np.abs(v).max() <= 2 * math.sqrt(6 / 750)),
    (lambda: init.xavier_normal_(t), lambda v: abs(v.std() - math.sqrt(2 / 750)) < 0.003),
    (lambda: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"),
     lambda v: np.abs(v).max() <= math.sqrt(2) * math.sqrt(3 / 600)),
    (lambda: init.kaiming_normal_(t, nonlinearity="relu"), lambda v: abs(v.std() - math.sqrt(2 / 150)) < 0.003),
  ]
  for call, check in cases:
    assert call() is t
    assert check(t.numpy()) and np.array_equal(view.numpy(), t.numpy()[:, 0])
  with pytest.raises(ValueError, match="at least 2 dims"): init.xavier_uniform_(Tensor.empty(5))


def run_norm(ours, theirs, shapes, steps_train=3, rtol=1e-4, atol=1e-5):
  """Train-mode steps (outputs, gradients and running statistics compared after each), then one in eval mode."""
  copy_params(ours, theirs)
  for shape in shapes[:steps_train]:
    matches(lambda x: ours(x), lambda x: theirs(x), randn(*shape) * 2 + 1, rtol=rtol, atol=atol)
    for name, buf in theirs.named_buffers():
      np.testing.assert_allclose(getattr(ours, name).numpy(), buf.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
  ours.eval(); theirs.eval()
  matches(lambda x: ours(x), lambda x: theirs(x), randn(*shapes[-1]), rtol=rtol, atol=atol)


@pytest.mark.parametrize("make,shape", [
  (lambda m: m.BatchNorm2d(3), (4, 3, 5, 2)),
  (lambda m: m.BatchNorm2d(3, momentum=None, affine=False), (2, 3, 3, 3)),
  (lambda m: m.BatchNorm1d(4, momentum=0.3, eps=1e-3), (6, 4)),
  (lambda m: m.BatchNorm1d(4), (3, 4, 5)),
  (lambda m: m.BatchNorm3d(2, track_running_stats=False), (2, 2, 3, 2, 2)),
  (lambda m: m.InstanceNorm2d(3), (2, 3, 4, 5)),
  (lambda m: m.InstanceNorm2d(3, affine=True, track_running_stats=True), (2, 3, 4, 5)),
  (lambda m: m.InstanceNorm1d(2, affine=True), (2, 6)),                           # unbatched
  (lambda m: m.GroupNorm(2, 4), (3, 4, 5)),
  (lambda m: m.GroupNorm(3, 6, affine=False, eps=1e-3), (1, 6, 2, 2)),
])
def test_norm_layers_train_and_eval_with_running_statistics(make, shape):
  run_norm(make(nn), make(torch.nn), [shape] * 4)


def test_rms_norm():
  ours, theirs = nn.RMSNorm((3, 4)), torch.nn.RMSNorm((3, 4))
  with torch.no_grad(): theirs.weight.copy_(torch.tensor(randn(3, 4)))
  ours.load_state_dict({"weight": theirs.weight.detach().numpy()})
  matches(lambda x: ours(x), lambda x: theirs(x), randn(2, 3, 4))
  matches(lambda x, w: F.rms_norm(x, 5, w, 1e-3), lambda x, w: TF.rms_norm(x, (5,), w, 1e-3), randn(3, 5), randn(5))
  x = randn(2, 8)
  got, want = F.rms_norm(Tensor(x).cast("bfloat16"), 8), TF.rms_norm(torch.tensor(x).bfloat16(), (8,))
  assert got.dtype.name == "bfloat16"
  np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=1e-2, atol=1e-2)


def test_lstm_cell():
  ours, theirs = nn.LSTMCell(3, 4), torch.nn.LSTMCell(3, 4)
  copy_params(ours, theirs)
  x, h, c = randn(2, 3), randn(2, 4), randn(2, 4)
  def both(cell): return lambda x, h, c: cell(x, (h, c))[0] + cell(x, (h, c))[1] * 2   # gradients through h' and c'
  matches(both(ours), both(theirs), x, h, c)
  matches(lambda x: ours(x)[0], lambda x: theirs(x)[0], randn(3))   # unbatched, zero state
  ours_nb, theirs_nb = nn.LSTMCell(3, 2, bias=False), torch.nn.LSTMCell(3, 2, bias=False)
  copy_params(ours_nb, theirs_nb)
  matches(lambda x: ours_nb(x)[1], lambda x: theirs_nb(x)[1], randn(2, 3))


def test_pool_and_upsample_modules():
  x = randn(2, 3, 8, 7)
  for make in (lambda m: m.MaxPool2d(3, 2, 1, ceil_mode=True), lambda m: m.AvgPool2d(2, count_include_pad=False),
               lambda m: m.MaxPool1d(2), lambda m: m.AvgPool1d(3, 2, 1), lambda m: m.AdaptiveMaxPool2d((3, 2)),
               lambda m: m.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
               lambda m: m.Upsample(size=(4, 5))):
    ours, theirs = make(nn), make(torch.nn)
    arr = x[0] if isinstance(ours, (nn.MaxPool1d, nn.AvgPool1d)) else x
    matches(lambda t: ours(t), lambda t: theirs(t), arr)
  v, i = nn.MaxPool2d(2, return_indices=True)(Tensor(x))
  tv, ti = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
  np.testing.assert_array_equal(nn.MaxUnpool2d(2)(v, i, output_size=x.shape).numpy(),
                                torch.nn.MaxUnpool2d(2)(tv, ti, output_size=x.shape).numpy())


# ---------------------------------------------------------------- the small CNN
class CNN(nn.Module):
  """conv, batch norm, relu, max pool, conv, relu, max pool, linear; in lazygrad or torch (`m`: the nn module). The
  first conv has no bias: batch norm cancels it, so its gradient is 0 but for rounding, which AdamW would amplify."""
  def __init__(self, m, classes=10):
    self.conv1, self.bn1 = m.Conv2d(1, 4, 3, padding=1, bias=False), m.BatchNorm2d(4)
    self.conv2 = m.Conv2d(4, 8, 3, stride=2, padding=1)
    self.fc = m.Linear(8 * 4 * 4, classes)


def cnn_forward(model, x, fns):
  y = fns.max_pool2d(fns.relu(model.bn1(model.conv1(x))), 2)
  y = fns.max_pool2d(fns.relu(model.conv2(y)), 2, ceil_mode=True)
  return model.fc(y.flatten(1))


class TorchCNN(torch.nn.Module):
  def __init__(self):
    super().__init__()
    CNN.__init__(self, torch.nn)


# Triton's interpreter takes seconds per step of this CNN: there 3 steps with one optimizer check the kernels (the
# numpy run checks all 20 steps with both)
INTERP = os.environ.get("LAZYGRAD_DEVICE") == "triton-interp"


@pytest.mark.parametrize("opt", ["sgd", pytest.param("adamw", marks=pytest.mark.skipif(INTERP, reason="slow there"))])
def test_small_cnn_trains_like_torch(opt):
  lazygrad.manual_seed(1)
  ours, theirs = CNN(nn), TorchCNN()
  copy_params(ours, theirs)
  def make(lib, params): return lib.SGD(params, lr=0.05, momentum=0.9) if opt == "sgd" else lib.AdamW(params, lr=3e-3)
  o, t = make(optim, ours.parameters()), make(torch.optim, theirs.parameters())
  data = np.random.default_rng(5)
  steps = 3 if INTERP else 20
  for step in range(steps):
    x, y = data.standard_normal((8, 1, 28, 28)).astype(np.float32), data.integers(0, 10, 8)
    loss = F.cross_entropy(cnn_forward(ours, Tensor(x), F), Tensor(y))
    want = TF.cross_entropy(cnn_forward(theirs, torch.tensor(x), TF), torch.tensor(y))
    o.zero_grad(); loss.backward(); o.step()
    t.zero_grad(); want.backward(); t.step()
    assert loss.item() == pytest.approx(want.item(), rel=1e-4, abs=1e-5), f"step {step}"
  np.testing.assert_allclose(ours.bn1.running_var.numpy(), theirs.bn1.running_var.numpy(), rtol=1e-4)
  assert ours.bn1.num_batches_tracked.item() == steps
  ours.eval(); theirs.eval()
  x = data.standard_normal((2, 1, 28, 28)).astype(np.float32)
  np.testing.assert_allclose(cnn_forward(ours, Tensor(x), F).numpy(),
                             cnn_forward(theirs, torch.tensor(x), TF).detach().numpy(), rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- properties
@st.composite
def conv_geometry(draw):
  groups = draw(st.sampled_from([1, 1, 2]))
  c, o = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
  k, s, d = (tuple(draw(st.integers(1, hi)) for _ in range(2)) for hi in (3, 3, 2))
  p = tuple(draw(st.integers(0, 3)) for _ in range(2))
  size = tuple(draw(st.integers(max(1, dd * (kk - 1) + 1 - 2 * pp), 7)) for kk, dd, pp in zip(k, d, p))
  return (draw(st.integers(1, 2)), c) + size, (o, c // groups) + k, dict(stride=s, padding=p, dilation=d, groups=groups)


@settings(max_examples=12, deadline=None)
@given(conv_geometry())
def test_random_conv2d_geometry_matches_torch(geometry):
  shape, wshape, kw = geometry
  matches(lambda x, w: F.conv2d(x, w, **kw), lambda x, w: TF.conv2d(x, w, **kw), randn(*shape), randn(*wshape))


@st.composite
def pool_geometry(draw):
  k = tuple(draw(st.integers(1, 3)) for _ in range(2))
  s, d = (tuple(draw(st.integers(1, 3)) for _ in range(2)) for _ in range(2))
  p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
  size = tuple(draw(st.integers(dd * (kk - 1) + 1, 7)) for kk, dd in zip(k, d))
  return (1, 2) + size, dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=draw(st.booleans()))


@settings(max_examples=12, deadline=None)
@given(pool_geometry())
def test_random_pool_geometry_matches_torch(geometry):
  shape, kw = geometry
  same("max_pool2d", randn(*shape), **kw, return_indices=True)
  kw.pop("dilation")
  same("avg_pool2d", randn(*shape), **kw)


@settings(max_examples=8, deadline=None)
@given(conv_geometry(), st.integers(0, 2))
def test_random_conv_transpose2d_geometry_matches_torch(geometry, extra):
  shape, (o, c, *k), kw = geometry
  kw["output_padding"] = tuple(min(extra, max(s, d) - 1) for s, d in zip(kw["stride"], kw["dilation"]))
  kw["padding"] = tuple(min(p, ((n - 1) * s + d * (kk - 1) + e) // 2)   # an output of at least 1
                        for p, n, s, d, kk, e in zip(kw["padding"], shape[2:], kw["stride"], kw["dilation"], k,
                                                     kw["output_padding"]))
  x, w = randn(shape[0], o, *shape[2:]), randn(o, c, *k)   # the transpose of the convolution above
  matches(lambda x, w: F.conv_transpose2d(x, w, **kw), lambda x, w: TF.conv_transpose2d(x, w, **kw), x, w)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_modes_match_torch(mode):
  torch.manual_seed(0)
  theirs = torch.nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode)
  ours = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode)
  ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
  x = np.random.default_rng(1).standard_normal((2, 2, 5, 6)).astype(np.float32)
  lx, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
  out, ref = ours(lx), theirs(tx)
  np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
  (out * out).sum().backward(); (ref * ref).sum().backward()
  np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
