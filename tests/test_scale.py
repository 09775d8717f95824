"""Work and memory that grow with the data, not faster: a cat of thousands of tensors, reductions over more elements
than a numpy tile should hold, and long runs that keep making new constants."""
import tracemalloc

import numpy as np
import pytest

import lazygrad
from lazygrad import Tensor
from lazygrad.runtime import realize as engine
from lazygrad.runtime.device import get_device
from lazygrad.codegen.schedule import MAX_COMBINED_BUFFERS


def peak_bytes(fn) -> int:
  """Peak host memory numpy (and Python) allocate while fn runs."""
  tracemalloc.start()
  try:
    fn()
    return tracemalloc.get_traced_memory()[1]
  finally: tracemalloc.stop()


def test_cat_of_thousands_of_tensors_is_linear():
  parts = [Tensor(np.full(256, i, np.float32)) for i in range(2000)]
  out = Tensor.cat(parts)
  items = engine.get_schedule([out.node])
  widest = max(len(it.kernel.bufs) for it in items if not it.kernel.parts)
  assert widest <= 17, f"a kernel reads {widest - 1} inputs"   # one output and at most 16 inputs per kernel
  assert max(len(it.kernel.bufs) for it in items) <= MAX_COMBINED_BUFFERS   # as the parts of one launch, a few more
  peak = peak_bytes(lambda: np.testing.assert_array_equal(out.numpy(), np.repeat(np.arange(2000), 256)))
  assert peak < 200e6, f"{peak / 1e6:.0f} MB"   # quadratic, it was 8.4 GB


def test_cat_keeps_the_sign_of_zero():
  out = Tensor.cat([Tensor([-0.0, 1.0]), Tensor([-0.0])]).numpy()
  assert np.signbit(out).tolist() == [True, False, True]


@pytest.mark.skipif(get_device().name != "numpy", reason="the numpy device's tiling")
def test_reductions_over_huge_tensors_are_tiled_on_numpy():
  n = 1 << 27   # 128 MB of uint8; a whole-tile sum would make a 1 GB int64 copy, argmax several
  a = np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8)
  a[12345] = 255
  x = Tensor(a)
  got = {}
  peak = peak_bytes(lambda: got.update(sum=x.sum().item(), argmax=x.argmax().item()))
  assert got == {"sum": int(a.sum(dtype=np.int64)), "argmax": int(a.argmax())}
  assert peak < 400e6, f"{peak / 1e6:.0f} MB"


def test_new_constants_reuse_the_schedule_and_kernel():
  x = Tensor([1.0, 2.0])
  (x * 0.5 + 1).realize()
  schedules, lowerings = lazygrad.counters.schedules, lazygrad.counters.lowerings
  for i in range(1, 300):   # (at i = 0 both constants are 0.0: one node, another structure)
    np.testing.assert_allclose((x * (i * 0.1) + i).numpy(), np.array([1.0, 2.0]) * np.float32(i * 0.1) + i, rtol=1e-6)
  assert (lazygrad.counters.schedules, lazygrad.counters.lowerings) == (schedules, lowerings)
  assert (Tensor([1.5]) * 2 + (1 - 0.9)).node.srcs[1].op.name == "CONST"   # constants fold when built


def test_compiler_caches_are_bounded():
  x = Tensor([1.0, 2.0])
  before = lazygrad.counters.schedules
  for i in range(engine._schedule_cache.size + 50):
    (x.reshape(1, 2).expand(i + 1, 2) * 1).realize()   # a new structure every time
  assert lazygrad.counters.schedules - before == engine._schedule_cache.size + 50
  assert len(engine._schedule_cache) <= engine._schedule_cache.size
  assert len(engine._program_cache) <= engine._program_cache.size
