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
  (item,) = engine.get_schedule([t.node])
  return item.kernel


def test_rendered_source_is_golden():
  """The Triton source of a fused softmax with 4x16 tiles (tests/golden/triton_softmax.txt)."""
  x = Tensor(randn(6, 10), device="numpy")
  prog = linearize(kernel_of((x * 2).softmax(-1)), LoweringOptions(whole=False, max_tile=64, max_reduce_block=16))
  src = triton_render.render(prog) + "\n"   # no user lines: they are attached when the source is shown
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
  assert "kernel mul_exp_20" in msg and "test_triton.py" in msg and "tl.exp(" in msg and "largest difference" in msg


@needs_interp
def test_check_mode_passes_on_correct_kernels(fresh_cache):
  a = Tensor(randn(8, 16), device="triton-interp", requires_grad=True)
  loss = (a @ a.T).softmax(-1).sum()
  loss.backward()
  with Context(CHECK=1): lazygrad.realize(loss, a.grad)


def flat_optimizer_step():
  w1 = Tensor(randn(16, 8), device="triton-interp", requires_grad=True)
  w2 = Tensor(randn(8, 4), device="triton-interp", requires_grad=True)
  opt = lazygrad.optim.AdamW([w1, w2], lr=1e-2)
  ((Tensor(randn(5, 16), device="triton-interp") @ w1).relu() @ w2).square().mean().backward()
  return opt.schedule_step()


@needs_interp
@pytest.mark.parametrize("renderer_bug", [False, True])
def test_check_mode_over_a_flat_optimizer_step(fresh_cache, monkeypatch, renderer_bug):
  """Parameters are views of the optimizer's flat buffer: a kernel reads or writes a part of it, and check mode
  compares that part (`Kernel.spans`) — and still stops at a wrong kernel there."""
  if not renderer_bug:
    with Context(CHECK=1): lazygrad.realize(*flat_optimizer_step())
    return
  monkeypatch.setitem(triton_render._BINARY, Op.MUL, "+")
  with Context(CHECK=1), pytest.raises(CheckError, match="differs from the numpy reference"):
    lazygrad.realize(*flat_optimizer_step())


def test_check_tolerance_of_a_kernel_that_rounds_to_bf16_inside():
  """An autocast matmul added to a float32 residual (GPT-2's c_proj): the product is rounded to bf16 inside the
  kernel, and another summation order may round it to the neighbouring bf16 value, so the float32 output is
  compared at 16-bit tolerance; a plain float32 kernel keeps the tight one."""
  from lazygrad.runtime.check import tolerance
  x, w, r = Tensor(randn(8, 16)), Tensor(randn(16, 16)), Tensor(randn(8, 16))
  mixed = (x.cast("bfloat16") @ w.cast("bfloat16")).float() + r   # what autocast makes of nn.Linear
  def tol(t):
    items = engine.get_schedule([t._node])
    item = next(it for it in items if it.kernel is not None)
    return tolerance(item.kernel, get_device("numpy").compile(item.kernel))
  assert mixed.dtype == lazygrad.float32 and tol(mixed) == (2e-2, 2e-2)
  assert tol(x @ w + r) == (1e-4, 1e-5)


@needs_interp
def test_compile_error_reports_kernel_and_source(fresh_cache, monkeypatch):
  monkeypatch.setitem(triton_render._UNARY, Op.EXP, "tl.no_such_function({})")
  with pytest.raises(lazygrad.runtime.triton_device.CompileError) as e:
    Tensor(randn(3, 3), device="triton-interp").exp().realize()
  msg = str(e.value)
  assert "kernel exp_9" in msg and "tl.no_such_function" in msg and "--- kernel AST ---" in msg


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


TRITON_DEVICES = [pytest.param("triton-interp", marks=needs_interp), pytest.param("triton", marks=pytest.mark.gpu)]
# rows over 512 wide take a whole 1024-lane interpreter tile: one program per row, whose bounds are scalars of its id
WIDE_ROW_CASES = {
  "cat_flip": lambda x, b: Tensor.cat([x, x.flip(0)]) + 1,
  "pad_rows": lambda x, b: x.pad((0, 0, 1, 2)) * 2,
  "flip_pad_both": lambda x, b: x.flip((0, 1)).pad((3, 5, 2, 1)) - 1,
  "bool_pad_cat": lambda x, b: Tensor.cat([b.pad((0, 0, 1, 1)), b.flip(0)]),
  "cat_sum": lambda x, b: Tensor.cat([x, x.flip(0)]).sum(-1),
}


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("case", list(WIDE_ROW_CASES))
@pytest.mark.parametrize("n", [513, 1000, 4097])
def test_row_masks_from_program_id_match_numpy(n, case, device):
  """A row bound computed from the program id is a scalar bool that meets tiles in masks and stored values."""
  x, b = np.arange(2 * n, dtype=np.float32).reshape(2, n), np.arange(2 * n).reshape(2, n) % 3 == 0
  got = WIDE_ROW_CASES[case](Tensor(x, device=device), Tensor(b, device=device)).numpy()
  np.testing.assert_array_equal(got, WIDE_ROW_CASES[case](Tensor(x, device="numpy"), Tensor(b, device="numpy")).numpy())


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_realize_from_threads(fresh_cache, device):
  """8 threads at once, on the same and on different kernels (the interpreter shares global state across launches;
  the cache files are written by several threads of one process)."""
  import threading
  fns = [lambda t: (t * 2).exp().sum(-1), lambda t: (t + 1).relu(), lambda t: t.softmax(-1) * 3]
  data = [randn(3, 40 + i % 2) for i in range(8)]   # two shapes: identical and different kernels in each fn
  start, results = threading.Barrier(8), {}
  def work(i):
    start.wait()
    try: results[i] = fns[i % 3](Tensor(data[i], device=device)).numpy()
    except Exception as e: results[i] = e
  threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
  for t in threads: t.start()
  for t in threads: t.join()
  for i in range(8):
    assert not isinstance(results[i], Exception), f"thread {i}: {results[i]!r}"
    np.testing.assert_allclose(results[i], fns[i % 3](Tensor(data[i], device="numpy")).numpy(), rtol=1e-5, atol=1e-5)


CORRUPTIONS = {
  "empty": lambda src: "",
  "cut_short": lambda src: src[:len(src) // 2],
  "cut_at_a_line": lambda src: src[:src.index("\nGRID")] + "\n",   # still parses: only the checksum tells
  "syntax_error": lambda src: src.replace("):", ")", 1),
  "no_grid": lambda src: src.replace("GRID =", "GRIDX ="),
  "no_kernel": lambda src: src.replace("@triton.jit\ndef ", "@triton.jit\ndef renamed_"),
  "no_grid_checksum_ok": lambda src: _resealed(src.replace("GRID =", "GRIDX =")),
}


def _resealed(text: str) -> str:
  """`text` with the checksum line made to match it again: only loading it finds what is wrong."""
  from lazygrad.runtime import disk_cache
  return disk_cache.sealed(text.encode().rpartition(disk_cache.SEAL)[0]).decode()


@needs_interp
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupted_cache_file_is_rebuilt(fresh_cache, monkeypatch, corruption):
  x = randn(5, 7)
  def run():
    monkeypatch.setattr(engine, "_program_cache", {})   # as in a new process: only the disk cache is left
    before = counters.lowerings
    out = (Tensor(x, device="triton-interp").exp() + 1).numpy()
    np.testing.assert_allclose(out, np.exp(x) + 1, rtol=1e-6)
    return counters.lowerings - before
  assert run() == 1
  (path,) = (fresh_cache / "triton").glob("*.py")
  path.write_text(CORRUPTIONS[corruption](path.read_text()))
  assert run() == 1    # discarded and rendered again
  assert run() == 0    # and the new file is good


def _exp_of_double(x): return (x * 2).exp()        # the first program's line
def _exp_of_double_again(x): return (x * 2).exp()  # the same structure, another line


def test_a_shared_kernel_shows_each_program_its_own_lines():
  """Rendered source carries no user lines (it is cached on disk and shared by every graph of the same structure);
  the lines are attached from the graph being run."""
  import inspect
  x, y = Tensor(randn(4, 4), device="numpy"), Tensor(randn(4, 4), device="numpy")   # equal graphs would be one
  (a,) = engine.get_schedule([_exp_of_double(x).node])
  (b,) = engine.get_schedule([_exp_of_double_again(y).node])
  assert a.kernel is b.kernel   # the second graph reuses the first one's schedule
  src = triton_render.render(linearize(a.kernel))
  assert "test_triton.py" not in src and "# exp %" in src
  line_a = f"test_triton.py:{inspect.getsourcelines(_exp_of_double)[1]}"
  line_b = f"test_triton.py:{inspect.getsourcelines(_exp_of_double_again)[1]}"
  assert f"# exp @ {line_a}" in a.annotated(src) and line_b not in a.annotated(src)
  assert f"# exp @ {line_b}" in b.annotated(src) and line_a not in b.annotated(src)


@needs_interp
def test_debug_source_shows_the_lines_of_the_program_run(capsys):
  import inspect
  for fn in (_exp_of_double, _exp_of_double_again):
    with Context(DEBUG=5): fn(Tensor(randn(4, 4), device="triton-interp")).realize()
    out = capsys.readouterr().out
    assert f"# exp @ test_triton.py:{inspect.getsourcelines(fn)[1]}" in out


@needs_interp
def test_a_scalar_argument_cast_to_another_float_renders_for_the_interpreter():
  """Under the interpreter a float scalar argument arrives as a Python float: its cast must not call .to() on it."""
  x = Tensor([1.0, 2.0], device="triton-interp", requires_grad=True)
  (x.cast("float64") * 0.5).float().sum().backward()   # the gradient's seed 1.0 (a float32 argument) cast to float64
  np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.5])
