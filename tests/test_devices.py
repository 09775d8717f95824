"""Devices in the graph: nodes carry their device, `.to()` is a lazy COPY (gradients flow back through it), one
schedule spans devices, and copies between torch-backed devices stay off the host. A second numpy device and a
second interpreter device are registered here, so the cross-device paths run without a GPU."""
import os
import numpy as np
import pytest
import torch
import lazygrad
import lazygrad.nn
from lazygrad import Tensor, counters
from lazygrad.dtypes import float32
from lazygrad.helpers import InvalidIR
from lazygrad.ir import build as B
from lazygrad.ir.node import LazyNode, verify
from lazygrad.ir.ops import Op
from lazygrad.runtime.device import register_device, get_device
from lazygrad.runtime.numpy_device import NumpyDevice

INTERP = os.environ.get("TRITON_INTERPRET") == "1"
needs_interp = pytest.mark.skipif(not INTERP, reason="Triton is not in interpreter mode in this process")
rng = np.random.default_rng(0)
def randn(*shape): return rng.standard_normal(shape).astype(np.float32)


def _named(dev, name: str):
  dev.name = name
  return dev


def _interp_b():
  from lazygrad.runtime.triton_device import TritonDevice
  return _named(TritonDevice(interpret=True), "triton-interp-b")


register_device("numpy-b", lambda: _named(NumpyDevice(), "numpy-b"))
register_device("triton-interp-b", _interp_b)

PAIRS = [("numpy", "numpy-b"),
         pytest.param("numpy", "triton-interp", marks=needs_interp),
         pytest.param("triton-interp", "numpy", marks=needs_interp),
         pytest.param("triton-interp", "triton-interp-b", marks=needs_interp)]


@pytest.mark.parametrize("src,dst", PAIRS)
def test_to_moves_values_and_gradients_back(src, dst):
  x_np, w_np = randn(4, 6), randn(6, 3)
  x = Tensor(x_np, device=src, requires_grad=True)
  y = x.to(dst)
  assert y.device == dst and x.device == src and y.node.op is Op.COPY   # lazy: nothing was copied yet
  w = Tensor(w_np, device=dst, requires_grad=True)
  loss = ((y @ w).relu() * 2).sum()
  loss.backward()
  xt, wt = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
  lt = ((xt @ wt).relu() * 2).sum()
  lt.backward()
  np.testing.assert_allclose(loss.item(), lt.item(), rtol=1e-5)
  assert x.grad.device == src and w.grad.device == dst
  np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("src,dst", PAIRS)
def test_one_schedule_spans_devices(src, dst):
  """Work on both sides of two copies, realized in one schedule: each kernel on its own device."""
  x_np, w_np = randn(5, 8), randn(8, 4)
  x, w = Tensor(x_np, device=src), Tensor(w_np, device=dst)
  h = (x.exp().to(dst) @ w).softmax(-1)   # computed on dst
  out = h.to(src) + x[:, :4]              # and back on src
  kernels, copies = counters.kernels, counters.copies
  out.realize()
  assert counters.copies - copies == 2 and counters.kernels - kernels >= 2
  ref = torch.softmax(torch.tensor(x_np).exp() @ torch.tensor(w_np), -1) + torch.tensor(x_np)[:, :4]
  assert out.device == src
  np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_copy_of_a_view_and_of_a_constant():
  x_np = randn(3, 4)
  x = Tensor(x_np, device="numpy")
  np.testing.assert_array_equal(x.T.to("numpy-b").numpy(), x_np.T)          # the view is stored first, then copied
  z = Tensor.full((2, 2), 7.0, device="numpy").to("numpy-b")
  assert z.node.op is Op.CONST and z.device == "numpy-b"                    # a constant is made on the other device
  np.testing.assert_array_equal(z.numpy(), np.full((2, 2), 7.0, np.float32))
  assert Tensor.zeros(0, 3, device="numpy").to("numpy-b").realize().shape == (0, 3)


@needs_interp
def test_copy_between_torch_devices_stays_off_the_host(monkeypatch):
  x_np = randn(64)
  x = (Tensor(x_np, device="triton-interp") * 2).realize()
  y = (x.to("triton-interp-b") + 1)
  for name in ("triton-interp", "triton-interp-b"):
    def refuse(buf): raise AssertionError("a copy between torch devices went through numpy")
    monkeypatch.setattr(get_device(name), "to_numpy", refuse)
  y.realize()
  monkeypatch.undo()
  np.testing.assert_allclose(y.numpy(), x_np * 2 + 1, rtol=1e-6)


def test_mixed_devices_in_one_op_are_an_error():
  a, b = Tensor([1.0, 2.0], device="numpy"), Tensor([3.0, 4.0], device="numpy-b")
  with pytest.raises(RuntimeError, match=r"add: expected all tensors on one device, got numpy \(shape \(2,\)\) and "
                     r"numpy-b \(shape \(2,\)\)\. Fix: move one with \.to\('numpy'\) or \.to\('numpy-b'\) "
                     r"\(at .*test_devices\.py:\d+\)"):
    a + b
  np.testing.assert_array_equal((a + b.to("numpy")).numpy(), [4.0, 6.0])


def test_constants_on_two_devices_are_two_nodes():
  one_a, one_b = B.const(1.0, float32, (3,), "numpy"), B.const(1.0, float32, (3,), "numpy-b")
  assert one_a is not one_b and (one_a.device, one_b.device) == ("numpy", "numpy-b")
  assert B.const(1.0, float32, (3,), "numpy") is one_a   # hash-consed on one device
  assert Tensor.ones(3, device="numpy").node is not Tensor.ones(3, device="numpy-b").node
  assert B.iota(4, "numpy") is not B.iota(4, "numpy-b")
  assert Tensor.arange(4, device="numpy-b").device == "numpy-b"
  assert Tensor.zeros_like(Tensor.ones(2, device="numpy-b")).device == "numpy-b"


def test_verify_checks_devices():
  a, b = Tensor(randn(2), device="numpy").node, Tensor(randn(2), device="numpy-b").node
  mixed = LazyNode(Op.ADD, float32, (2,), (a, b))   # built below the Tensor API, which refuses it
  assert mixed.device == "numpy"
  with pytest.raises(InvalidIR, match=r"sources on devices \['numpy', 'numpy-b'\], the node on numpy"): verify([mixed])
  verify([B.copy(a, "numpy-b")])
  with pytest.raises(InvalidIR, match="a COPY from numpy to numpy"): verify([LazyNode(Op.COPY, float32, (2,), (a,), "numpy")])
  with pytest.raises(InvalidIR, match="a CONST node needs its device"): LazyNode(Op.CONST, float32, (), (), 1.0)


def test_jit_replays_copies():
  @lazygrad.jit
  def f(x):
    return (x * 2).to("numpy-b").exp().to("numpy") + x
  for i in range(4):
    x_np = randn(3, 5)
    if i == 3: schedules, copies = counters.schedules, counters.copies
    out = f(Tensor(x_np, device="numpy"))
    assert out.device == "numpy"
    np.testing.assert_allclose(out.numpy(), np.exp(x_np * 2) + x_np, rtol=1e-6)
  assert counters.schedules == schedules and counters.copies - copies == 2   # the replay copied, scheduled nothing


def test_module_to_moves_parameters():
  lin = lazygrad.nn.Linear(4, 2)
  x_np = randn(3, 4)
  ref = lin(Tensor(x_np)).numpy()
  lin.to("numpy-b")
  assert all(p.device == "numpy-b" for p in lin.parameters())
  np.testing.assert_allclose(lin(Tensor(x_np, device="numpy-b")).numpy(), ref, rtol=1e-6)


def test_copies_and_in_place_updates():
  """A copy holds the value its source had when it was built; copied values can be written in place."""
  x = Tensor([1.0, 2.0], device="numpy")
  y = x.to("numpy-b")
  x += 1
  x.realize()
  np.testing.assert_array_equal(y.numpy(), [1.0, 2.0])
  z = Tensor.zeros(2, device="numpy-b").clone()
  z.assign(x.to("numpy-b") * 2)
  z[0] = x[1].to("numpy-b")
  np.testing.assert_array_equal(z.numpy(), [3.0, 6.0])
