"""In-place updates, views and leaf identity, against PyTorch eager: values a graph reads are fixed when it is built,
views see and write their base, in-place operators update the tensor itself, leaves made from equal constants keep
separate gradients, and the standard training loop reports PyTorch's losses."""
import numpy as np
import pytest
import torch
from hypothesis import example, given, settings, strategies as st

import lazygrad
from lazygrad import Tensor, no_grad
from lazygrad.errors import StaleValueError
from lazygrad.optim import SGD, AdamW


def test_constant_leaves_have_separate_gradients():
  w = Tensor.ones(3, requires_grad=True)
  (w + 1).sum().backward()
  np.testing.assert_array_equal(w.grad.numpy(), [1, 1, 1])
  a, b = Tensor.zeros(3, requires_grad=True), Tensor.zeros(3, requires_grad=True)
  (a * 2 + b * 3).sum().backward()
  np.testing.assert_array_equal(a.grad.numpy(), [2, 2, 2])
  np.testing.assert_array_equal(b.grad.numpy(), [3, 3, 3])
  c, d = Tensor.full((2,), 5.0).requires_grad_(), Tensor.full((2,), 5.0)   # d is an equal constant, not a leaf
  (c * d).sum().backward()
  np.testing.assert_array_equal(c.grad.numpy(), [5, 5])


def test_computed_tensor_made_a_leaf_gets_its_gradient():
  x = (Tensor([1.0, 2.0]) * 2).requires_grad_()
  assert x.is_leaf
  (x * x).sum().backward()
  np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_standard_training_loop_reports_pytorch_losses(opt_name):
  rng = np.random.default_rng(0)
  w0, xs = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((5, 2, 4)).astype(np.float32)
  w, tw = Tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
  make = {"sgd": (lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
          "adamw": (lambda p: AdamW(p, lr=0.05), lambda p: torch.optim.AdamW(p, lr=0.05))}[opt_name]
  opt, topt = make[0]([w]), make[1]([tw])
  for x in xs:
    loss = (Tensor(x) @ w).tanh().square().mean()
    opt.zero_grad(); loss.backward(); opt.step()
    tloss = (torch.tensor(x) @ tw).tanh().square().mean()
    topt.zero_grad(); tloss.backward(); topt.step()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)   # read after the step, as users do
  np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("first", ["reader", "updated", "neither"])
def test_value_built_before_assign_does_not_depend_on_realize_order(first):
  x = Tensor([1.0, 2.0]).realize()
  y = x * 2
  x.assign(x + 1)
  if first == "reader": y.realize()
  if first == "updated": x.realize()
  np.testing.assert_array_equal(x.numpy(), [2, 3])
  np.testing.assert_array_equal(y.numpy(), [2, 4])


def test_gradient_to_a_leaf_updated_under_no_grad_before_backward():
  w = Tensor([1.0, 2.0], requires_grad=True)
  loss = (w * 3).sum()
  with no_grad(): w.assign(w * 0.5)
  loss.backward()
  np.testing.assert_array_equal(w.grad.numpy(), [3, 3])
  np.testing.assert_array_equal(w.numpy(), [0.5, 1.0])
  # the same when the update was realized before backward
  v = Tensor([1.0, 2.0], requires_grad=True)
  loss = (v * 3).sum()
  with no_grad(): v.assign(v * 0.5)
  v.realize()
  loss.backward()
  np.testing.assert_array_equal(v.grad.numpy(), [3, 3])


def test_backward_needing_an_overwritten_value_raises():
  w = Tensor([1.0, 2.0], requires_grad=True)
  loss = (w * w).sum()
  with no_grad(): w.assign(w * 0.5)
  w.realize()   # the old w, which d(w*w)/dw needs, is gone (PyTorch raises here too)
  loss.backward()
  with pytest.raises(StaleValueError, match="overwritten by an in-place update"):
    w.grad.numpy()


def test_inplace_operators_update_the_tensor_and_its_aliases():
  a = Tensor([1.0, 2.0])
  b = a
  b += 1
  np.testing.assert_array_equal(a.numpy(), [2, 3])
  d = a.detach()
  a *= 10
  np.testing.assert_array_equal(d.numpy(), [20, 30])   # detach shares memory, as in torch
  d.sub_(5)
  np.testing.assert_array_equal(a.numpy(), [15, 25])
  d.neg_()
  np.testing.assert_array_equal(a.numpy(), [-15, -25])
  np.testing.assert_array_equal(a.neg().numpy(), [15, 25])
  i = Tensor([1, 2])
  with pytest.raises(TypeError, match="can't be cast"): i += 0.5
  with pytest.raises(lazygrad.ShapeError): a += Tensor([[1.0], [2.0]])


def test_inplace_on_leaf_requiring_grad_raises_outside_no_grad():
  w = Tensor([1.0, 2.0], requires_grad=True)
  with pytest.raises(RuntimeError, match="leaf tensor"): w += 1
  with pytest.raises(RuntimeError, match="view of a leaf"): w[0] += 1
  with no_grad(): w += 1
  np.testing.assert_array_equal(w.numpy(), [2, 3])


def test_views_see_and_write_their_base():
  x = Tensor([[1.0, 2.0], [3.0, 4.0]])
  row, col, t = x[0], x[:, 1], x.T
  x += 1
  np.testing.assert_array_equal(row.numpy(), [2, 3])
  row += 10
  np.testing.assert_array_equal(x.numpy(), [[12, 13], [4, 5]])
  col.fill_(0)
  np.testing.assert_array_equal(t.numpy(), [[12, 4], [0, 0]])
  x[1, 0] = 7.0
  x[:, 1] = Tensor([8.0, 9.0])
  np.testing.assert_array_equal(x.numpy(), [[12, 8], [7, 9]])
  y = x * 1            # a computed base: writing through its view gives it memory of its own
  y[0] = Tensor([-1.0, -2.0])
  np.testing.assert_array_equal(y.numpy(), [[-1, -2], [7, 9]])
  np.testing.assert_array_equal(x.numpy(), [[12, 8], [7, 9]])


def test_strided_slice_writes_and_expanded_view_refuses():
  x = Tensor(np.arange(6, dtype=np.float32))
  x[::2] = 0.0
  np.testing.assert_array_equal(x.numpy(), [0, 1, 0, 3, 0, 5])
  e = Tensor([1.0]).expand(3)
  with pytest.raises(RuntimeError, match="one to one"): e += 1


def test_gradient_through_writes_into_views():
  w0 = np.array([1.0, 2.0, 3.0], np.float32)
  w, tw = Tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
  y, ty = w * 1, tw * 1
  y[1:] = w[:2] * 10
  ty[1:] = tw[:2] * 10
  (y * Tensor([1.0, 2.0, 3.0])).sum().backward()
  (ty * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
  np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
  np.testing.assert_array_equal(w.grad.numpy(), tw.grad.numpy())


def test_copies_do_not_alias():
  a = Tensor([1.0, 2.0])
  c, k1, k2 = Tensor(a), a.clone(), a.clone()
  a += 1
  k1 += 5
  np.testing.assert_array_equal(c.numpy(), [1, 2])
  np.testing.assert_array_equal(k1.numpy(), [6, 7])
  np.testing.assert_array_equal(k2.numpy(), [1, 2])
  # two tensors realized from one (hash-consed) computation: writing one leaves the other alone
  p, q = (a * 1).realize(), (a * 1).realize()
  p += 5
  np.testing.assert_array_equal(p.numpy(), [7, 8])
  np.testing.assert_array_equal(q.numpy(), [2, 3])


# ---------------------------------------------------------------- random programs against PyTorch eager
SHAPE = (3, 4)
VIEWS = {"row": lambda t, i: t[i % 3], "col": lambda t, i: t[:, i % 4], "T": lambda t, i: t.T,
         "rows": lambda t, i: t[i % 2:], "every2": lambda t, i: t[:, ::2], "detach": lambda t, i: t.detach(),
         "flat": lambda t, i: t.reshape(12), "flatT": lambda t, i: t.T.reshape(12)}
MAKE = {"mul2": lambda t: t * 2, "add1": lambda t: t + 1, "relu": lambda t: t.relu(), "exp": lambda t: (t * 0.1).exp(),
        "rowsum": lambda t: t.sum(1, keepdim=True).expand(*SHAPE) * 1}
INPLACE = {"add": lambda v, o: v.__iadd__(o), "mul": lambda v, o: v.__imul__(o), "sub": lambda v, o: v.__isub__(o),
           "copy": lambda v, o: v.copy_(o)}

instruction = st.one_of(
  st.tuples(st.just("make"), st.sampled_from(sorted(MAKE)), st.integers(0, 9)),
  st.tuples(st.just("view"), st.sampled_from(sorted(VIEWS)), st.integers(0, 9), st.integers(0, 5)),
  st.tuples(st.just("inplace"), st.sampled_from(sorted(INPLACE)), st.integers(0, 9), st.integers(0, 9),
            st.sampled_from(["tensor", "copy", 0.5, -2.0])),
  st.tuples(st.just("realize"), st.integers(0, 9)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(instruction, min_size=1, max_size=12))
# two in-place writes of one buffer in one schedule, the later one a full overwrite that reads nothing of it
@example(program=[("inplace", "add", 0, 0, "tensor"), ("make", "add1", 0), ("inplace", "add", 0, 0, "tensor"),
                  ("inplace", "copy", 0, 2, "tensor")])
@example(program=[("inplace", "add", 1, 0, 0.5), ("make", "add1", 1), ("inplace", "add", 1, 0, "tensor"),
                  ("inplace", "add", 0, 0, "tensor"), ("inplace", "add", 1, 0, "tensor")])
def test_random_programs_with_inplace_updates_match_pytorch(program):
  rng = np.random.default_rng(0)
  start = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(2)]
  lz, th = [Tensor(a) for a in start], [torch.tensor(a) for a in start]
  for ins in program:
    kind, pick = ins[0], lambda k: k % len(lz)
    if kind in ("make", "view"):
      i = pick(ins[2])
      if tuple(lz[i].shape) != SHAPE: continue
      fn = MAKE[ins[1]] if kind == "make" else lambda t, f=VIEWS[ins[1]], k=ins[3]: f(t, k)
      lz.append(fn(lz[i])); th.append(fn(th[i]))
    elif kind == "inplace":
      i, j, other = pick(ins[2]), pick(ins[3]), ins[4]
      scalar = not isinstance(other, str)
      if (not scalar and tuple(lz[j].shape) != tuple(lz[i].shape)) or (ins[1] == "copy" and scalar): continue
      lo, to = (other, other) if scalar else (lz[j], th[j]) if other == "tensor" else (lz[j] * 1, th[j] * 1)
      try: INPLACE[ins[1]](th[i], to)
      except RuntimeError: continue   # torch refuses (an expanded view, overlapping memory): so do we, or we may not
      INPLACE[ins[1]](lz[i], lo)
    else:
      lz[pick(ins[1])].realize()
  for a, b in zip(lz, th):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_no_grad_results_and_copies_carry_no_gradient():
  w = Tensor([1.0, 2.0], requires_grad=True)
  x = Tensor.zeros(2)
  with no_grad():
    x.copy_(w * 3)
    y, v = w * 3, w[0:1]
  (x * w + y * w).sum().backward()
  (v * w[0:1]).sum().backward()
  np.testing.assert_array_equal(w.grad.numpy(), [3 + 3 + 1, 6 + 6])   # torch: x, y and v are constants


def test_setitem_from_another_tensors_view_and_copies_of_updated_tensors():
  x, y = Tensor.zeros(3, 3), Tensor.ones(3, 3)
  x[0] = y[0]
  x[:, 2] = y[1]
  np.testing.assert_array_equal(x.numpy(), [[1, 1, 1], [0, 0, 1], [0, 0, 1]])
  a = Tensor([1.0, 2.0])
  b = Tensor(a)
  a += 1
  assert a.tolist() == [2, 3] and b.tolist() == [1, 2]


def test_requires_grad_on_a_non_leaf_and_fill_with_a_tensor():
  x = Tensor([1.0, 2.0], requires_grad=True)
  y = x * 2
  y.requires_grad_()
  y.sum().backward()
  assert y.grad is None and x.grad.tolist() == [2, 2]   # torch fills only leaves
  z = Tensor([1.0, 2.0, 3.0])
  z.fill_(Tensor(5.0))
  assert z.tolist() == [5, 5, 5]


def test_updating_a_clone_is_one_kernel():
  x = Tensor.ones(3).clone().realize()
  before = lazygrad.counters.kernels
  x.assign(x * 2 + 1).realize()
  assert lazygrad.counters.kernels - before == 1 and x.tolist() == [3, 3, 3]


@pytest.mark.parametrize("shape,update", [((3,), lambda x: x[3:].__iadd__(1)),
                                          ((3,), lambda x: x.__setitem__(slice(1, 1), 5.0)),
                                          ((3, 3), lambda x: x[:, 2:2].assign(Tensor.ones(3, 0)))])
def test_an_update_of_an_empty_region_changes_nothing(shape, update):
  """An in-place update whose region is empty (an empty iteration space inside a non-empty buffer) runs no kernel."""
  x = Tensor(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))
  before = x.numpy().copy()
  update(x)
  np.testing.assert_array_equal(x.numpy(), before)


def test_a_chain_of_updates_reading_two_versions_of_another_tensor():
  """b's first update reads a before `a += a`, its second after: the first is computed before a's update, and that
  writes b's memory in the same schedule, so c (made from b's old value) is computed before it too (found by the
  random programs above: a StaleValueError for c, or an IndexError in the scheduler)."""
  rng = np.random.default_rng(0)
  start = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(2)]
  a, b = (Tensor(x) for x in start)
  ta, tb = (torch.tensor(x) for x in start)
  c, tc = b + 1, tb + 1
  b += a; tb += ta
  a += a; ta += ta
  b += a; tb += ta
  for x, y in ((a, ta), (b, tb), (c, tc)): np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-6)
