"""Values the compiler cannot see when it builds an op, checked when they are computed: integer indices (tensor
indexing, gather, embedding, one_hot, cross-entropy targets) raise IndexOutOfBounds naming the index, the size and the
user's line; and gradients at the edges (zero-size tensors, sign) are zeros as in PyTorch, never errors."""
import numpy as np
import pytest
import torch

import lazygrad
from lazygrad import Tensor, nn
from lazygrad.errors import IndexOutOfBounds

OUT_OF_RANGE = {   # build fn, substrings of the message
  "getitem": (lambda: Tensor([0.0, 1.0, 2.0])[Tensor([1, 7])], ["index 7", "dimension 0", "size 3"]),
  "getitem_negative": (lambda: Tensor([0.0, 1.0, 2.0])[Tensor([-4])], ["index -4", "size 3"]),
  "getitem_2d": (lambda: Tensor.ones(2, 3)[:, Tensor([[0, 3]])], ["index 3", "dimension 1", "size 3"]),
  "gather": (lambda: Tensor.ones(2, 3).gather(1, Tensor([[5], [0]])), ["index 5", "dimension 1", "size 3"]),
  "gather_negative": (lambda: Tensor.ones(2, 3).gather(1, Tensor([[-1], [0]])), ["index -1"]),
  "embedding": (lambda: nn.Embedding(3, 2)(Tensor([[0, 5]])), ["index 5", "3 embeddings"]),
  "embedding_negative": (lambda: nn.Embedding(3, 2)(Tensor([-1])), ["index -1"]),
  "one_hot": (lambda: Tensor([0, 5]).one_hot(3), ["class value 5", "num_classes=3"]),
  "cross_entropy": (lambda: Tensor.ones(2, 3).cross_entropy(Tensor([0, 5])), ["target 5", "3 classes"]),
  "cross_entropy_negative": (lambda: Tensor.ones(1, 3).cross_entropy(Tensor([-1])), ["target -1"]),
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_out_of_range_index_raises_with_index_size_and_line(case):
  build, parts = OUT_OF_RANGE[case]
  out = build()                       # built without error: the index values are not known yet
  with pytest.raises(IndexOutOfBounds) as e:
    out.numpy()
  assert isinstance(e.value, IndexError) and isinstance(e.value, RuntimeError)
  for part in parts + ["test_checks.py"]: assert part in str(e.value), str(e.value)
  np.testing.assert_array_equal((Tensor([1.0]) + 1).numpy(), [2.0])   # a failed check does not stick


def test_valid_indices_pass_and_ignore_index_is_allowed():
  np.testing.assert_array_equal(Tensor([0.0, 1.0, 2.0])[Tensor([-3, 2])].numpy(), [0.0, 2.0])
  loss = Tensor.ones(2, 3).cross_entropy(Tensor([-100, 1]), reduction="sum")
  np.testing.assert_allclose(loss.item(), np.log(3), rtol=1e-6)
  np.testing.assert_array_equal(nn.Embedding(3, 2)(Tensor(np.zeros((0,), np.int64))).numpy().shape, (0, 2))


def test_checked_index_keeps_gradients():
  w = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
  w[Tensor([1, 1, 0])].sum().backward()
  np.testing.assert_array_equal(w.grad.numpy(), [[1, 1], [2, 2]])


ZERO_SIZE = {
  "sum": lambda x: x.sum(0), "mean": lambda x: x.mean(0), "var": lambda x: x.var(0, correction=0),
  "matmul": lambda x: x.T @ x, "matmul_empty_out": lambda x: x @ x.T, "softmax": lambda x: x.softmax(-1),
  "log_softmax": lambda x: x.log_softmax(-1), "logsumexp": lambda x: x.logsumexp(0), "tril": lambda x: x.tril(),
  "triu": lambda x: x.triu(1), "cat": lambda x: (Tensor if isinstance(x, Tensor) else torch).cat([x, x * 2]),
  "sign": lambda x: x.sign(), "abs": lambda x: x.abs(),
}


@pytest.mark.parametrize("case", list(ZERO_SIZE))
def test_gradients_through_zero_size_tensors_are_empty_zeros(case):
  fn = ZERO_SIZE[case]
  x, tx = Tensor(np.ones((0, 3), np.float32), requires_grad=True), torch.ones((0, 3), requires_grad=True)
  fn(x).sum().backward()
  fn(tx).sum().backward()
  assert x.grad.shape == tuple(tx.grad.shape)
  np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_cross_entropy_of_an_empty_batch_is_nan_with_an_empty_gradient():
  x = Tensor(np.ones((0, 3), np.float32), requires_grad=True)
  loss = x.cross_entropy(Tensor(np.zeros((0,), np.int64)))
  loss.backward()
  assert np.isnan(loss.item()) and x.grad.shape == (0, 3)


@pytest.mark.parametrize("fn", [lambda x: x.sign(), lambda x: x.floor(), lambda x: x.ceil(), lambda x: x.round(),
                                lambda x: x.trunc()])
def test_piecewise_constant_ops_have_zero_gradient(fn):
  v = np.array([-1.5, 0.0, 0.4, 2.5, np.nan, np.inf], np.float32)
  x, tx = Tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
  fn(x).sum().backward()
  fn(tx).sum().backward()
  np.testing.assert_array_equal(fn(x).numpy(), fn(tx).detach().numpy())
  np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_float32_matmul_precision_follows_pytorch():
  assert lazygrad.get_float32_matmul_precision() == "highest"   # exact float32 by default, as torch
  lazygrad.set_float32_matmul_precision("high")
  try:
    assert lazygrad.get_float32_matmul_precision() == "high"
  finally: lazygrad.set_float32_matmul_precision("highest")
  with pytest.raises(ValueError, match="'highest'"): lazygrad.set_float32_matmul_precision("fast")


@pytest.mark.parametrize("build", [lambda: Tensor([5, 3]) // Tensor([1, 0]), lambda: Tensor([5]) % Tensor([0]),
                                   lambda: 7 % Tensor([0]), lambda: Tensor([5]).fmod(Tensor([0])),
                                   lambda: Tensor([5]).div(Tensor([0]), rounding_mode="trunc")])
def test_integer_division_by_zero_raises(build):
  from lazygrad.errors import DivisionByZero
  out = build()
  with pytest.raises(DivisionByZero, match="division by zero") as e:
    out.numpy()
  assert isinstance(e.value, ZeroDivisionError) and isinstance(e.value, RuntimeError) and "test_checks.py" in str(e.value)


def test_integer_division_by_a_zero_constant_raises_when_built():
  from lazygrad.errors import DivisionByZero
  for build in (lambda: Tensor([5]) // 0, lambda: Tensor([5]) % 0):
    with pytest.raises(DivisionByZero, match="division by zero"): build()
  assert np.isinf((Tensor([5.0]) // 0).item()) and (Tensor([7, -7]) // Tensor([2, 2])).tolist() == [3, -4]
