"""The Triton path: rendered source, the interpreter device, the disk cache, check mode and error reports.
Runs on the CPU under Triton's interpreter; tests marked `gpu` need a CUDA GPU."""
import os, subprocess, sys, textwrap
from pathlib import Path
import numpy as np
import pytest
import lazygrad
from lazygrad import Tensor, Context, counters
from lazygrad.ir.ops import Op
from lazygrad.codegen import triton as triton_render
from lazygrad.codegen.linearize import LoweringOptions, linearize
from lazygrad.runtime import realize as engine
from lazygrad.runtime.check import CheckError
from lazygrad.runtime.device import get_device

triton = pytest.importorskip("triton")
INTERP = os.environ.get("TRITON_INTERPRET") == "1"
needs_interp = pytest.mark.skipif(not INTERP, reason="Triton is not in interpreter mode in this process")
rng = np.random.default_rng(0)
def randn(*shape): return rng.standard_normal(shape).astype(np.float32)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
  """An empty kernel cache, on disk and in memory."""
  from lazygrad.runtime import triton_device
  monkeypatch.setattr(triton_device, "CACHE_DIR", tmp_path / "triton")
  monkeypatch.setattr(engine, "_program_cache", {})
  return tmp_path


def kernel_of(t: Tensor):
  (item,) = engine.get_schedule([t.node], get_device("numpy"))
  return item.kernel


def test_rendered_source_is_golden():
  """The Triton source of a fused softmax with 4x16 tiles (tests/golden/triton_softmax.txt)."""
  x = Tensor(randn(6, 10), device="numpy")
  prog = linearize(kernel_of((x * 2).softmax(-1)), LoweringOptions(whole=False, max_tile=64, max_reduce_block=16))
  src = triton_render.render(prog)
  src = "\n".join(line.split("  #")[0].rstrip() if "@ " in line else line for line in src.splitlines()) + "\n"
  golden = Path(__file__).parent / "golden" / "triton_softmax.txt"
  if not golden.exists(): golden.write_text(src)
  assert src == golden.read_text()


def test_dot_renders_to_tl_dot_with_precision_switch():
  a, b = Tensor(randn(32, 64), device="numpy"), Tensor(randn(64, 16), device="numpy")
  prog = linearize(kernel_of(a @ b), LoweringOptions(whole=False))
  assert "tl.dot(" in triton_render.render(prog, "tf32") and "input_precision='tf32'" in triton_render.render(prog, "tf32")
  assert "input_precision='ieee'" in triton_render.render(prog, "ieee")


def test_large_buffers_switch_index_math_to_int64():
  big = Tensor.zeros(2**31 + 8, device="numpy") + 1      # never realized: only lowered
  src = triton_render.render(linearize(kernel_of(big), LoweringOptions(whole=False)))
  assert "tl.program_id(0).to(tl.int64)" in src and ".to(tl.int64)" in src
  small = Tensor.zeros(1024, device="numpy") + 1
  assert "int64" not in triton_render.render(linearize(kernel_of(small), LoweringOptions(whole=False)))


@needs_interp
@pytest.mark.parametrize("case", ["matmul_relu", "softmax", "layernorm", "bf16_matmul", "big_sum", "gather"])
def test_interpreter_device_matches_numpy(case):
  x, w = randn(24, 40), randn(40, 24)
  fns = {
    "matmul_relu": lambda d: (Tensor(x, device=d) @ Tensor(w, device=d)).relu(),
    "softmax": lambda d: Tensor(x, device=d).softmax(-1),
    "layernorm": lambda d: (lambda t: (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True) + 1e-5).sqrt())(Tensor(x, device=d)),
    "bf16_matmul": lambda d: (Tensor(x, device=d).bfloat16() @ Tensor(w, device=d).bfloat16()).float(),
    "big_sum": lambda d: Tensor(np.tile(x, (40, 1)), device=d).sum(0),   # 960 rows: a looped reduction
    "gather": lambda d: Tensor(x, device=d)[Tensor(np.array([3, 1, 3, 0]), device=d)],
  }
  ref = fns[case]("numpy").numpy()
  got = fns[case]("triton-interp").numpy()
  np.testing.assert_allclose(got, ref, rtol=1e-2 if "bf16" in case else 1e-5, atol=1e-2 if "bf16" in case else 1e-5)


@needs_interp
def test_second_process_does_no_lowering(tmp_path):
  script = textwrap.dedent("""
    import numpy as np, lazygrad
    from lazygrad import Tensor
    x = Tensor(np.arange(12, dtype=np.float32).reshape(3, 4), device="triton-interp")
    print((x.softmax(-1) * 2).sum().item(), lazygrad.counters.lowerings)
  """)
  env = dict(os.environ, LAZYGRAD_CACHE=str(tmp_path), TRITON_INTERPRET="1", PYTHONPATH=str(Path(__file__).parents[1]))
  first, second = (subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
                   .stdout.split() for _ in range(2))
  assert first[0] == second[0]
  assert int(first[1]) > 0 and int(second[1]) == 0


@needs_interp
def test_check_mode_names_the_wrong_kernel(fresh_cache, monkeypatch):
  monkeypatch.setitem(triton_render._BINARY, Op.MUL, "+")     # a renderer bug: multiplication becomes addition
  a, b = Tensor(randn(4, 5), device="triton-interp"), Tensor(randn(4, 5), device="triton-interp")
  out = (a * b).exp()
  with Context(CHECK=1), pytest.raises(CheckError) as e:
    out.realize()
  msg = str(e.value)
  assert "kernel e_20" in msg and "test_triton.py" in msg and "tl.exp(" in msg and "largest difference" in msg


@needs_interp
def test_check_mode_passes_on_correct_kernels(fresh_cache):
  a = Tensor(randn(8, 16), device="triton-interp", requires_grad=True)
  loss = (a @ a.T).softmax(-1).sum()
  loss.backward()
  with Context(CHECK=1): lazygrad.realize(loss, a.grad)


@needs_interp
def test_compile_error_reports_kernel_and_source(fresh_cache, monkeypatch):
  monkeypatch.setitem(triton_render._UNARY, Op.EXP, "tl.no_such_function({})")
  with pytest.raises(lazygrad.runtime.triton_device.CompileError) as e:
    Tensor(randn(3, 3), device="triton-interp").exp().realize()
  msg = str(e.value)
  assert "kernel e_9" in msg and "tl.no_such_function" in msg and "--- kernel AST ---" in msg


def test_triton_device_without_gpu_is_a_clear_error():
  import torch
  if torch.cuda.is_available(): pytest.skip("a GPU is present")
  with pytest.raises(lazygrad.runtime.triton_device.DeviceUnavailable, match="CUDA GPU"):
    Tensor([1.0], device="triton")
  assert Tensor([1.0, 2.0]).sum().item() == 3.0   # the default device still works


@pytest.mark.gpu
def test_gpu_matches_numpy():
  x, w = randn(256, 512), randn(512, 128)
  for fn in (lambda d: (Tensor(x, device=d) @ Tensor(w, device=d)).relu().sum(0),
             lambda d: Tensor(x, device=d).softmax(-1)):
    np.testing.assert_allclose(fn("triton").numpy(), fn("numpy").numpy(), rtol=2e-2, atol=2e-2)


@pytest.mark.gpu
def test_check_mode_on_gpu():
  """A training step's every kernel, on the GPU and on numpy, within tolerance (tf32 contractions included)."""
  w = Tensor(randn(64, 32), device="triton", requires_grad=True)
  x = Tensor(randn(128, 64), device="triton")
  loss = (x @ w).relu().softmax(-1).log().mean()
  loss.backward()
  with Context(CHECK=1): lazygrad.realize(loss, w.grad)


def test_missing_triton_is_a_clear_error(monkeypatch):
  import importlib.util
  from lazygrad.runtime.triton_device import TritonDevice, DeviceUnavailable
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "triton" else real_find_spec(name, *a))
  for interpret in (True, False):
    with pytest.raises(DeviceUnavailable, match="need triton"): TritonDevice(interpret=interpret)
  monkeypatch.undo()
  assert Tensor([2.0], device="numpy").exp().item() > 7   # the numpy device keeps working
