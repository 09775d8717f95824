"""nn: modules and functional ops against torch.nn, learning-rate schedule, memory that stays flat in training."""
import gc, math
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor
import lazygrad.nn as nn
from lazygrad.nn import functional as F
from lazygrad.runtime.buffer import Buffer

rng = np.random.default_rng(0)
def randn(*s): return rng.standard_normal(s).astype(np.float32)


@pytest.mark.parametrize("mask", ["causal", "bool", "additive", "none"])
def test_scaled_dot_product_attention(mask):
  q, k, v = randn(2, 3, 5, 4), randn(2, 3, 7, 4), randn(2, 3, 7, 4)
  m = rng.random((5, 7)) > 0.3
  m[:, 0] = True                                   # no fully masked row
  add = randn(5, 7)
  kw_l = {"causal": dict(is_causal=True), "bool": dict(attn_mask=Tensor(m)), "additive": dict(attn_mask=Tensor(add)),
          "none": {}}[mask]
  kw_t = {"causal": dict(is_causal=True), "bool": dict(attn_mask=torch.tensor(m)),
          "additive": dict(attn_mask=torch.tensor(add)), "none": {}}[mask]
  tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
  lq, lk, lv = (Tensor(a, requires_grad=True) for a in (q, k, v))
  want = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **kw_t)
  got = F.scaled_dot_product_attention(lq, lk, lv, **kw_l)
  np.testing.assert_allclose(got.numpy(), want.detach().numpy(), atol=1e-5, rtol=1e-4)
  w = randn(*want.shape)
  (want * torch.tensor(w)).sum().backward()
  (got * Tensor(w)).sum().backward()
  for l, t in ((lq, tq), (lk, tk), (lv, tv)): np.testing.assert_allclose(l.grad.numpy(), t.grad.numpy(), atol=1e-4, rtol=1e-3)


def test_layers_match_torch():
  x = randn(3, 8)
  lin, tlin = nn.Linear(8, 5), torch.nn.Linear(8, 5)
  with torch.no_grad(): tlin.weight.copy_(torch.tensor(lin.weight.numpy())); tlin.bias.copy_(torch.tensor(lin.bias.numpy()))
  np.testing.assert_allclose(lin(Tensor(x)).numpy(), tlin(torch.tensor(x)).detach().numpy(), atol=1e-5)
  ln = nn.LayerNorm(8)
  np.testing.assert_allclose(ln(Tensor(x)).numpy(), torch.nn.functional.layer_norm(torch.tensor(x), (8,)).numpy(), atol=1e-5)
  emb = nn.Embedding(10, 4)
  idx = np.array([[1, 9], [0, 1]])
  np.testing.assert_allclose(emb(Tensor(idx)).numpy(), emb.weight.numpy()[idx])
  assert nn.GELU("tanh")(Tensor(x)).shape == (3, 8)


@pytest.mark.parametrize("shape, normalized", [((3, 4, 5), (4, 5)), ((2, 6), 6), ((2, 3, 4), (2, 3, 4))])
def test_layer_norm_over_several_trailing_dims(shape, normalized):
  x = randn(*shape)
  ln, tln = nn.LayerNorm(normalized), torch.nn.LayerNorm(normalized)
  rng = np.random.default_rng(1)
  w, b = rng.standard_normal(ln.weight.shape).astype(np.float32), rng.standard_normal(ln.weight.shape).astype(np.float32)
  with lazygrad.no_grad(): ln.weight.copy_(Tensor(w)); ln.bias.copy_(Tensor(b))
  with torch.no_grad(): tln.weight.copy_(torch.tensor(w)); tln.bias.copy_(torch.tensor(b))
  xt, txt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
  (ln(xt) * Tensor(x)).sum().backward()
  (tln(txt) * torch.tensor(x)).sum().backward()
  np.testing.assert_allclose(ln(xt).numpy(), tln(txt).detach().numpy(), atol=1e-5)
  for a, t in ((xt, txt), (ln.weight, tln.weight), (ln.bias, tln.bias)):
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), atol=1e-4)
  assert nn.LayerNorm(normalized, elementwise_affine=False).weight is None
  with pytest.raises(lazygrad.ShapeError, match="trailing"): nn.LayerNorm((7,))(Tensor(x))


def test_dropout_scales_and_turns_off_in_eval():
  d = nn.Dropout(0.25)
  y = d(Tensor(np.ones((200, 200), np.float32))).numpy()
  assert set(np.unique(y).tolist()) <= {0.0, float(np.float32(1 / 0.75))} and abs((y == 0).mean() - 0.25) < 0.02
  d.eval()
  assert (d(Tensor(np.ones(5, np.float32))).numpy() == 1).all()


def test_module_conventions():
  class Net(nn.Module):
    def __init__(self):
      self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)
      self.blocks = nn.ModuleList([nn.LayerNorm(4), nn.LayerNorm(4)])
    def forward(self, x): return self.b(self.blocks[1](self.a(x)))
  net = Net()
  names = [n for n, _ in net.named_parameters()]
  assert names == ["a.weight", "a.bias", "b.weight", "b.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                   "blocks.1.bias"]
  sd = {k: v.numpy() * 0 + 1 for k, v in net.state_dict().items()}
  net.load_state_dict(sd)
  assert (net.a.weight.numpy() == 1).all()
  with pytest.raises(KeyError, match="missing"): net.load_state_dict({})
  assert net.eval().blocks[0].training is False and net.train().blocks[0].training is True
  assert net(Tensor(randn(2, 4))).shape == (2, 2)


def test_safetensors_round_trip_and_format(tmp_path):
  from safetensors.numpy import load_file   # the reference reader (a dependency of transformers)
  tensors = {"w": Tensor(randn(3, 4)), "i": Tensor(np.arange(5)), "h": Tensor(randn(2, 2)).bfloat16()}
  nn.save_safetensors(tensors, tmp_path / "x.safetensors", {"step": 7})
  back, meta = nn.load_safetensors(tmp_path / "x.safetensors")
  assert meta == {"step": "7"}
  for k, v in tensors.items():
    assert back[k].dtype == v.dtype
    np.testing.assert_array_equal(back[k].float().numpy(), v.float().numpy())
  ref = load_file(str(tmp_path / "x.safetensors"))
  np.testing.assert_array_equal(ref["w"], tensors["w"].numpy())


def test_cosine_warmup_lr():
  lr = lambda s: lazygrad.optim.cosine_warmup_lr(s, 10, 110, 1.0, 0.1)
  assert lr(0) == pytest.approx(0.1) and lr(9) == pytest.approx(1.0)
  assert lr(10) == pytest.approx(1.0) and lr(60) == pytest.approx(0.55) and lr(110) == pytest.approx(0.1)
  assert all(lr(s) >= lr(s + 1) for s in range(10, 120))


def live_buffers() -> int:
  gc.collect()
  return sum(1 for o in gc.get_objects() if isinstance(o, Buffer))


def test_memory_stays_flat_over_training_steps():
  lin1, lin2 = nn.Linear(16, 32), nn.Linear(32, 4)
  params = lin1.parameters() + lin2.parameters()
  opt = lazygrad.optim.AdamW(params, lr=1e-2)
  x, y = Tensor(randn(8, 16)), Tensor(rng.integers(0, 4, 8))
  counts = []
  for step in range(8):
    loss = lin2(lin1(x).relu()).cross_entropy(y)
    opt.zero_grad(); loss.backward()
    lazygrad.realize(loss, *opt.schedule_step())
    loss.item()   # a host read, as a training loop makes: on a GPU, the index checks' flags are read then
    del loss
    counts.append(live_buffers())
  assert counts[-1] == counts[2], counts
