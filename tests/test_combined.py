"""Horizontal fusion: small kernels that share no data run as the parts of one combined kernel (one launch, each
part on programs of its own), and in-place updates of disjoint parts of one buffer need no order among them."""
import os
from dataclasses import replace
import numpy as np
import pytest
import lazygrad
import lazygrad.nn
from lazygrad import Tensor, counters
from lazygrad.helpers import InvalidIR
from lazygrad.codegen.linearize import LoweringOptions
from lazygrad.codegen.uops import U
from lazygrad.runtime.device import get_device
from lazygrad.runtime.realize import compile_kernel, get_schedule

DEVICE = os.environ.get("LAZYGRAD_DEVICE", "numpy")
rng = np.random.default_rng(0)
def randn(*shape): return rng.standard_normal(shape).astype(np.float32)
def realized(*shape): return Tensor(randn(*shape)).realize()


def kernels(*tensors):
  return [it.kernel for it in get_schedule([t.node for t in tensors]) if it.kernel is not None]


def four_independent_results():
  a, b, c, d = realized(9, 5), realized(4, 7), realized(6, 3), realized(3, 2, 5)
  outs = [a.sum(0), b * 2 + 1, c.amax(1), d.softmax(-1).bfloat16()]
  refs = [a.numpy().sum(0), b.numpy() * 2 + 1, c.numpy().max(1),
          np.exp(d.numpy()) / np.exp(d.numpy()).sum(-1, keepdims=True)]
  return outs, refs


def test_independent_small_kernels_run_as_the_parts_of_one_kernel():
  outs, refs = four_independent_results()
  (k,) = kernels(*outs)
  assert len(k.parts) == 4 and k.n_out == 4 and k.stores == tuple(s for p in k.parts for s in p.stores)
  assert {p.n_reduce for p in k.parts} == {0, 1}   # reductions and elementwise work side by side
  before = counters.kernels
  lazygrad.realize(*outs)
  assert counters.kernels - before == 1
  for out, ref in zip(outs, refs):
    np.testing.assert_allclose(out.float().numpy(), ref, rtol=1e-2 if out.dtype.itemsize == 2 else 1e-5, atol=1e-6)


def test_each_part_runs_on_programs_of_its_own(monkeypatch):
  """Cut into small tiles, each part has several programs: the launch runs their sum, and every program runs exactly
  one part (as a loop that runs once there and not at all elsewhere)."""
  tiny = LoweringOptions(whole=False, max_tile=8, max_elementwise_tile=8, max_reduce_block=4)
  monkeypatch.setattr(get_device("numpy"), "lowering", tiny)
  outs, refs = four_independent_results()
  (k,) = kernels(*outs)
  prog = compile_kernel(k, get_device("numpy")).prog
  parts = [compile_kernel(p, get_device("numpy")).prog for p in k.parts]
  assert prog.grid == sum(p.grid for p in parts) and [p.grid > 1 for p in parts].count(True) >= 3, [p.grid for p in parts]
  loops = [u for u in prog.uops if u.op is U.RANGE and u.srcs]
  assert [u.arg for u in loops[:len(parts)]] == [p.grid for p in parts]
  lazygrad.realize(*outs)
  for out, ref in zip(outs, refs):
    np.testing.assert_allclose(out.float().numpy(), ref, rtol=1e-2 if out.dtype.itemsize == 2 else 1e-5, atol=1e-6)


def test_a_kernel_reading_a_large_intermediate_does_not_wait_to_be_combined():
  """Holding a kernel back keeps what it reads in memory: only kernels that read small or realized buffers wait."""
  big = (realized(512, 600) * 2).contiguous()
  outs = [big.sum(0), realized(3, 4).sum(1)]
  items = get_schedule([t.node for t in outs])
  (reader,) = [it for it in items if any(not n.realized and n.numel == 512 * 600 for n in it.inputs)]
  assert not reader.kernel.parts
  assert sum(len(it.kernel.parts) for it in items) == 2   # the two that read realized inputs ran together


def test_ready_reductions_of_one_space_reading_different_buffers_run_in_one_kernel():
  """Not parts of a combined kernel: one kernel over their one iteration space, storing both (a LayerNorm's
  weight-gradient partial sums and the next bias gradient's, in GPT-2's backward)."""
  x = realized(512, 600)
  a, b = x.exp().contiguous(), (x * 3).contiguous()
  outs = [a.sum(1), b.amax(1)]
  ks = kernels(*outs)
  assert len(ks) == 2 and not ks[1].parts and ks[1].n_out == 2 and len(ks[1].reduces) == 2, [k.name for k in ks]
  np.testing.assert_allclose(outs[0].numpy(), np.exp(x.numpy()).sum(1), rtol=1e-5)
  np.testing.assert_allclose(outs[1].numpy(), (x.numpy() * 3).max(1), rtol=1e-6)
  # large results stay where the order puts them: moved earlier, one would hold its memory longer
  c, d = (x * 2).contiguous(), (x + 1).contiguous()
  assert len(kernels(c.T.exp(), d.T.sin())) == 3


def test_a_ready_kernel_with_a_small_result_runs_beside_the_kernel_chosen_next():
  """Both read large intermediates (so neither waits to be combined), over different iteration spaces: the one that
  stores little (a bias gradient's partial sums in GPT-2) runs as a part of the other's kernel."""
  x = realized(256, 2048)
  a, b = (x * 2).contiguous(), (x + 1).contiguous()
  outs = [a.T.softmax(-1), b.T.sum(0)]
  ks = kernels(*outs)
  assert len(ks) == 2 and [len(p.stores) for p in ks[1].parts] == [1, 1], [k.name for k in ks]
  e = np.exp(2 * x.numpy().T - (2 * x.numpy().T).max(-1, keepdims=True))
  np.testing.assert_allclose(outs[0].numpy(), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(outs[1].numpy(), (x.numpy() + 1).sum(1), rtol=1e-5)


def test_disjoint_in_place_updates_of_one_buffer_run_together_and_a_reader_sees_them_all():
  buf = Tensor.zeros(20).contiguous().realize()
  a, b, c = realized(8, 3), realized(5, 4), realized(2, 2)
  buf[0:3] = a.sum(0)
  buf[10:14] = b.amax(0)
  buf[16:18] = c[0] * 3
  total = buf * 1
  ks = kernels(total)
  assert len(ks) == 2 and len(ks[0].parts) == 3   # the three updates in one launch, then the reader
  want = np.zeros(20, np.float32)
  want[0:3], want[10:14], want[16:18] = a.numpy().sum(0), b.numpy().max(0), c.numpy()[0] * 3
  np.testing.assert_allclose(total.numpy(), want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(buf.numpy(), want, rtol=1e-5, atol=1e-6)


def test_overlapping_in_place_updates_keep_their_order():
  buf = Tensor.zeros(10).contiguous().realize()
  a, b = realized(4, 5), realized(4, 5)
  buf[0:5] = a.sum(0)
  buf[3:8] = b.sum(0)
  assert len(kernels(buf)) == 2
  want = np.zeros(10, np.float32)
  want[0:5] = a.numpy().sum(0)
  want[3:8] = b.numpy().sum(0)
  np.testing.assert_allclose(buf.numpy(), want, rtol=1e-5, atol=1e-6)


def test_a_reader_of_an_older_version_runs_before_an_update_of_another_part():
  """A value read before two disjoint updates sees neither, though the updates need no order between them."""
  buf = Tensor(np.arange(12, dtype=np.float32)).realize()
  old = buf * 10
  buf[0:4] = realized(3, 4).sum(0)
  buf[6:9] = realized(2, 3).sum(0)
  lazygrad.realize(old, buf)
  np.testing.assert_array_equal(old.numpy(), np.arange(12, dtype=np.float32) * 10)


def test_a_value_read_between_two_disjoint_updates_sees_the_first_only():
  buf = Tensor(np.arange(10, dtype=np.float32)).realize()
  a, b = realized(2, 3), realized(2, 3)
  buf[0:3] = a.sum(0)
  between = buf * 1
  buf[5:8] = b.sum(0)
  lazygrad.realize(buf, between)
  want = np.arange(10, dtype=np.float32)
  want[0:3] = a.numpy().sum(0)
  np.testing.assert_allclose(between.numpy(), want, rtol=1e-6)
  want[5:8] = b.numpy().sum(0)
  np.testing.assert_allclose(buf.numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("first, second", [((slice(None, None, 2),), (slice(1, None, 2),)), ((0,), (1,)),
                                           ((slice(None), 0), (slice(None), 1)), ((slice(1, 3),), (slice(2, 4),))])
def test_updates_of_parts_of_a_matrix_in_any_layout_give_torchs_result(first, second):
  """Interleaved columns, rows, overlapping row ranges: whatever the scheduler may run in either order, the result is
  the one the program order gives (as torch's)."""
  torch = pytest.importorskip("torch")
  start, x, y = randn(4, 6), realized(3, 24), realized(3, 24)
  lz, th = Tensor(start).realize(), torch.tensor(start)
  for index, m in ((first, x), (second, y)):   # each value a reduction: a kernel of its own, ready at the start
    shape = th[index].shape
    th[index] = torch.tensor(m.numpy()).sum(0)[:shape.numel()].reshape(shape)
    lz[index] = m.sum(0)[:shape.numel()].reshape(tuple(shape))
  np.testing.assert_allclose(lz.numpy(), th.numpy(), rtol=1e-5, atol=1e-6)


def test_bias_gradients_of_a_model_finish_in_combined_kernels():
  """The second passes of the split column sums (bias and layernorm gradients) wait and run together, after the
  matmuls that write the weights' gradients into the same flat buffer; every gradient is right."""
  torch = pytest.importorskip("torch")
  layers = [lazygrad.nn.Linear(16, 16) for _ in range(4)]
  norms = [lazygrad.nn.LayerNorm(16) for _ in range(4)]
  tl, tn = [torch.nn.Linear(16, 16) for _ in range(4)], [torch.nn.LayerNorm(16) for _ in range(4)]
  with torch.no_grad():
    for a, b in zip(tl + tn, layers + norms):
      for pa, pb in zip(a.parameters(), b.parameters()): pa.copy_(torch.tensor(pb.numpy()))
  params = [p for m in layers + norms for p in m.parameters()]
  lazygrad.optim.SGD(params, lr=0.1)   # gathers the parameters and their gradients into flat buffers
  x = randn(64, 64, 16)
  h = Tensor(x)
  for lin, ln in zip(layers, norms): h = ln(lin(h)).relu()
  h.sum().backward()
  grads = [p.grad for p in params]
  combined = [k for k in kernels(*grads) if k.parts]
  assert combined and sum(len(k.parts) for k in combined) >= 8
  th = torch.tensor(x)
  for lin, ln in zip(tl, tn): th = ln(lin(th)).relu()
  th.sum().backward()
  for g, p in zip(grads, [p for m in tl + tn for p in m.parameters()]):
    np.testing.assert_allclose(g.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_a_combined_kernel_checks_its_contract():
  outs, _ = four_independent_results()
  (k,) = kernels(*outs)
  k.verify()
  with pytest.raises(InvalidIR, match="its parts' stores"):
    replace(k, parts=k.parts[::-1]).verify()
  with pytest.raises(InvalidIR, match="buffers or scalars of its own"):
    replace(k, parts=(replace(k.parts[0], bufs=k.parts[0].bufs[:-1]),) + k.parts[1:]).verify()
  assert "parts=4" in k.text and all(f"part {i}: " in k.text for i in range(4))


def test_a_combined_kernels_cost_is_its_parts_work_and_its_buffers_once():
  from lazygrad.runtime.realize import kernel_cost
  outs, _ = four_independent_results()
  (k,) = kernels(*outs)
  nbytes, flops = kernel_cost(k)
  assert nbytes == sum(b.size * b.dtype.itemsize for b in k.bufs)
  assert flops == sum(kernel_cost(p)[1] for p in k.parts) and flops >= 9 * 5 + 4 * 7 * 2
