"""Per-shape tuning of contraction kernels (runtime.autotune): every candidate tiling computes the same result, the
fastest is chosen and kept on disk for the next process, and a kernel that updates memory it reads is never timed.
Timing needs a GPU: here a stand-in device clock, on the numpy device with tiled lowering."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st
import lazygrad
from lazygrad import Tensor
from lazygrad.codegen.linearize import LoweringOptions, dot_tilings
from lazygrad.runtime import autotune, disk_cache, realize as engine
from lazygrad.runtime.buffer import Buffer
from lazygrad.runtime.device import get_device, default_device_name

DEVICE = default_device_name()
TILED = LoweringOptions(whole=False)


def contraction_of(t: Tensor):
  (item,) = [it for it in engine.get_schedule([t.node]) if it.kernel is not None and dot_tilings(it.kernel, TILED)]
  return item


@hsettings(max_examples=12, deadline=None)
@given(st.integers(3, 70), st.integers(3, 70), st.integers(3, 90), st.integers(0, 2),
       st.sampled_from(["float32", "bfloat16"]))
def test_every_candidate_tiling_computes_the_same_contraction(m, n, k, batch, dtype):
  """Each tiling a tuner may pick (odd sizes, a batch axis, one operand broadcast along it) matches torch."""
  rng = np.random.default_rng(m * 10007 + n * 101 + k)
  a = rng.standard_normal((batch, m, k) if batch else (m, k)).astype(np.float32)
  b = rng.standard_normal((k, n)).astype(np.float32)
  out = Tensor(a, device=DEVICE).cast(dtype) @ Tensor(b, device=DEVICE).cast(dtype)
  item = contraction_of(out)
  dev = get_device(DEVICE)
  want = (torch.tensor(a).to(getattr(torch, dtype)) @ torch.tensor(b).to(getattr(torch, dtype))).float().numpy()
  tilings = dot_tilings(item.kernel, TILED)
  assert len(tilings) == len(set(tilings)) > 1
  for tiling in tilings:
    prg = engine.compile_kernel(item.kernel, dev, tiling)
    bufs = [Buffer(dev, item.kernel.bufs[0].dtype, item.kernel.bufs[0].size)] + [n_.buffer for n_ in item.inputs]
    prg(bufs, [])
    got = bufs[0].numpy().astype(np.float32).reshape(want.shape)
    tol = 2e-2 if dtype == "bfloat16" else 1e-4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()), err_msg=str(tiling))


@pytest.fixture
def timed_numpy(tmp_path, monkeypatch):
  """The numpy device lowering in tiles and timing with a stand-in clock (`clock`: the times it reports, in order of
  the candidates), its choices kept under tmp_path."""
  dev = get_device("numpy")
  monkeypatch.setattr(dev, "lowering", TILED, raising=False)
  monkeypatch.setattr(type(dev), "can_time", True, raising=False)
  monkeypatch.setattr(type(dev), "model", "stand-in", raising=False)
  clock = {"times": [], "calls": 0}
  def time(self, fn, reps):
    fn()
    clock["calls"] += 1
    return clock["times"].pop(0)
  monkeypatch.setattr(type(dev), "time", time, raising=False)
  monkeypatch.setattr(disk_cache, "ROOT", tmp_path)
  monkeypatch.setattr(autotune, "_chosen", {})
  monkeypatch.setattr(autotune, "_of_kernel", type(autotune._of_kernel)())
  monkeypatch.setattr(engine, "_program_cache", {})
  return dev, clock


def test_the_fastest_tiling_is_chosen_and_kept_for_the_next_process(timed_numpy):
  dev, clock = timed_numpy
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal((40, 24)).astype(np.float32), rng.standard_normal((24, 36)).astype(np.float32)
  out = Tensor(a, device="numpy") @ Tensor(b, device="numpy")
  kernel = contraction_of(out).kernel
  tilings = dot_tilings(kernel, TILED)
  clock["times"] = [3.0, 1.0] + [2.0] * (len(tilings) - 2)   # the second candidate is the fastest
  np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-5)
  assert clock["calls"] == len(tilings)
  assert autotune.chosen(kernel, dev, "ieee") == tilings[1]
  assert list((disk_cache.ROOT / "tuned").glob("*.json"))
  # a new process: nothing in memory, the choice read from disk, nothing timed again
  autotune._chosen.clear(); autotune._of_kernel.clear(); engine._program_cache.clear()
  again = Tensor(a, device="numpy") @ Tensor(b, device="numpy")
  np.testing.assert_allclose(again.numpy(), a @ b, rtol=1e-5)
  assert clock["calls"] == len(tilings) and autotune.chosen(kernel, dev, "ieee") == tilings[1]


def test_a_kernel_that_updates_memory_it_reads_is_not_timed(timed_numpy):
  dev, clock = timed_numpy
  acc = Tensor(np.ones((16, 16), np.float32), device="numpy").realize()
  x = Tensor(np.eye(16, dtype=np.float32), device="numpy")
  acc.assign(acc + x @ x).realize()   # one kernel reads acc and writes it
  acc.assign(acc + x @ x).realize()
  np.testing.assert_array_equal(acc.numpy(), np.ones((16, 16)) + 2 * np.eye(16))
  assert clock["calls"] == 0


def test_a_corrupt_choice_on_disk_is_tuned_again(timed_numpy):
  dev, clock = timed_numpy
  a = np.ones((32, 32), np.float32)
  out = Tensor(a, device="numpy") @ Tensor(a, device="numpy")
  kernel = contraction_of(out).kernel
  n = len(dot_tilings(kernel, TILED))
  clock["times"] = [1.0] * n
  out.realize()
  (entry,) = (disk_cache.ROOT / "tuned").glob("*.json")
  entry.write_bytes(entry.read_bytes()[:-10])   # cut short, as a killed writer would leave it
  autotune._chosen.clear(); autotune._of_kernel.clear()
  clock["times"] = [2.0, 1.0] + [3.0] * (n - 2)
  np.testing.assert_allclose((Tensor(a, device="numpy") @ Tensor(a, device="numpy")).numpy(), a @ a)
  assert clock["calls"] == 2 * n and autotune.chosen(kernel, dev, "ieee") == dot_tilings(kernel, TILED)[1]
