"""Scheduler, fusion, views, caching and tiling: kernel counts and lowered programs, checked against numpy."""
import dataclasses
import numpy as np
import torch
import pytest
import lazygrad
from lazygrad import Tensor, counters
from lazygrad.codegen.linearize import LoweringOptions, choose_tiling, dot_tilings
from lazygrad.codegen.uops import U
from lazygrad.helpers import InvalidIR
from lazygrad.codegen.kernel import K
from lazygrad.runtime.device import get_device
from lazygrad.runtime.realize import compile_kernel, get_schedule

rng = np.random.default_rng(0)
def randn(*shape): return rng.standard_normal(shape).astype(np.float32)


def kernels_for(*tensors) -> int:
  before = counters.kernels
  lazygrad.realize(*tensors)
  return counters.kernels - before


def programs_for(t: Tensor):
  dev = get_device("numpy")
  return [compile_kernel(it.kernel, dev).prog for it in get_schedule([t.node])]


@pytest.mark.parametrize("name, build, budget", [
  ("elementwise chain into a reduction", lambda a, b, c: ((a + b) * c).relu().sum(1), 1),
  ("softmax over the last dim", lambda a, b, c: a.softmax(-1), 1),
  ("log_softmax", lambda a, b, c: a.log_softmax(-1), 1),
  ("matmul then bias and relu", lambda a, b, c: (a @ b.T + c[0, :6]).relu(), 1),
  ("layernorm", lambda a, b, c: (a - a.mean(-1, keepdim=True)) / (a.var(-1, keepdim=True, correction=0) + 1e-5).sqrt(), 1),
  ("var", lambda a, b, c: a.var(1), 1),
  ("logsumexp", lambda a, b, c: a.logsumexp(1), 1),
  ("movement ops then elementwise", lambda a, b, c: a.T.reshape(4, 12)[1:, ::2].flip(0) + 1, 1),
  ("sum of a transposed matmul", lambda a, b, c: (a @ b.T).T.sum(1), 2),
])
def test_kernel_budget(name, build, budget):
  a, b, c = (Tensor(randn(6, 8)) for _ in range(3))
  out = build(a, b, c)
  assert kernels_for(out) <= budget, name


def test_building_runs_nothing_and_realize_runs_once():
  a = Tensor(randn(4, 4))
  before = counters.kernels
  b = ((a + 1) * 2).sum(0).reshape(2, 2).T
  assert counters.kernels == before
  b.realize()
  ran = counters.kernels - before
  assert ran >= 1
  b.realize(); b.numpy()
  assert counters.kernels - before == ran


def test_realized_tensor_is_not_recomputed():
  a = Tensor(randn(8, 8))
  mid = (a * 3).exp()
  mid.realize()
  assert kernels_for((mid + 1)) == 1
  np.testing.assert_allclose((mid + 1).numpy(), np.exp(a.numpy() * 3) + 1, rtol=1e-6)


def test_reduction_needed_by_two_kernels_is_stored_once_and_kept():
  a = Tensor(randn(8, 8))
  s = a.sum(1)
  out1 = (a - s.reshape(8, 1) * 2).exp()     # fuses s as a broadcast-back reduction and stores it too...
  out2 = s.reshape(1, 8) * a                 # ...for this kernel, which reads it transposed
  assert kernels_for(out1, out2) == 2
  assert kernels_for(s) == 0                 # computed on the way, and kept
  np.testing.assert_allclose(out1.numpy(), np.exp(a.numpy() - a.numpy().sum(1, keepdims=True) * 2), rtol=1e-5)
  np.testing.assert_allclose(out2.numpy(), a.numpy().sum(1)[None, :] * a.numpy(), rtol=1e-5)


def test_movement_ops_are_views():
  a = Tensor(randn(4, 6))
  views = [a.T, a.reshape(3, 8), a[1:3, ::2], a.flip(0), a.pad((1, 1)), a.unsqueeze(0).expand(2, 4, 6)]
  before = counters.kernels
  for v in views: v.shape
  assert counters.kernels == before
  # each consumer is a single kernel reading through the view
  for v in views: assert kernels_for(v + 1) == 1


def test_schedule_and_lowering_are_cached_by_structure():
  x = randn(5, 7)
  def step(arr): return (Tensor(arr) * 2 + 1).softmax(-1).sum(0)
  step(x).realize()
  s, l = counters.schedules, counters.lowerings
  for _ in range(3): out = step(x + 1).realize()
  assert counters.schedules == s and counters.lowerings == l
  ref = np.exp((x + 1) * 2 + 1 - ((x + 1) * 2 + 1).max(-1, keepdims=True))
  np.testing.assert_allclose(out.numpy(), (ref / ref.sum(-1, keepdims=True)).sum(0), rtol=1e-5)


def test_matmul_lowers_to_one_dot():
  a, b = Tensor(randn(16, 32)), Tensor(randn(32, 8))
  (prog,) = programs_for(a @ b)
  assert [u.op for u in prog.uops].count(U.DOT) == 1
  assert not any(u.op is U.REDUCE for u in prog.uops)


def test_batched_matmul_is_a_dot():
  a, b = Tensor(randn(3, 4, 5)), Tensor(randn(3, 5, 6))
  (prog,) = programs_for(a @ b)
  assert any(u.op is U.DOT for u in prog.uops)
  np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy(), rtol=1e-5, atol=1e-6)


def test_loads_stay_affine_after_reshape_of_a_transpose():
  # reshape, transpose, reshape: the views merge into one strided view, no div/mod in the index math
  a = Tensor(randn(2, 3, 4))
  (prog,) = programs_for(a.reshape(6, 4).T.reshape(4, 2, 3) * 2)
  assert not any(u.op is U.ALU and u.arg.name in ("IDIV", "MOD") for u in prog.uops)


TILED = LoweringOptions(whole=False, max_tile=8, max_reduce_block=4, dot_blocks=(4, 4, 4), min_dot_block=2)
LOOPED = LoweringOptions(whole=False, max_tile=8, max_reduce_block=4, max_whole_row=4, dot_blocks=(4, 4, 4),
                         min_dot_block=2)   # rows never fit a tile: softmax and layernorm loop once per reduction

TILED_CASES = {
  "sum_rows": (lambda a, b: a.sum(1), lambda a, b: a.sum(1)),
  "sum_cols": (lambda a, b: a.sum(0), lambda a, b: a.sum(0)),
  "sum_all": (lambda a, b: a.sum(), lambda a, b: a.sum()),
  "max_rows": (lambda a, b: a.amax(1), lambda a, b: a.max(1)),
  "softmax": (lambda a, b: a.softmax(-1), lambda a, b: np.exp(a - a.max(-1, keepdims=True)) /
              np.exp(a - a.max(-1, keepdims=True)).sum(-1, keepdims=True)),
  "matmul_bias": (lambda a, b: (a @ b.T + 1).relu(), lambda a, b: np.maximum(a @ b.T + 1, 0)),
  "padded_flip": (lambda a, b: a.flip(1).pad((2, 1, 0, 3)) * 2, lambda a, b: np.pad(a[:, ::-1], ((0, 3), (2, 1))) * 2),
  "exp_of_pad": (lambda a, b: a.exp().pad((1, 1)), lambda a, b: np.pad(np.exp(a), ((0, 0), (1, 1)))),
  "broadcast": (lambda a, b: a[:, :1] * b[:1, :], lambda a, b: a[:, :1] * b[:1, :]),
  "argmax": (lambda a, b: a.argmax(1), lambda a, b: a.argmax(1)),
  "strided": (lambda a, b: a[::2, 1::3] + b[::2, 2::3], lambda a, b: a[::2, 1::3] + b[::2, 2::3]),
  "layernorm": (lambda a, b: (a - a.mean(1, keepdim=True)) / (a.var(1, keepdim=True, correction=0) + 1e-5).sqrt() * b,
                lambda a, b: (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + 1e-5) * b),
  "var_cols": (lambda a, b: a.var(0), lambda a, b: a.var(0, ddof=1)),
  "logsumexp": (lambda a, b: a.logsumexp(1), lambda a, b: np.log(np.exp(a - a.max(1, keepdims=True)).sum(1)) + a.max(1)),
}


@pytest.mark.parametrize("opts", [TILED, LOOPED], ids=["tiled", "looped"])
@pytest.mark.parametrize("case", list(TILED_CASES))
def test_small_tiles_match_whole_tiles(case, opts, monkeypatch):
  """Lowering with small blocks (grids, masks, reduce loops, blocked DOT) computes what whole tiles compute."""
  fn, ref = TILED_CASES[case]
  x, y = randn(7, 13), randn(7, 13)
  monkeypatch.setattr(get_device("numpy"), "lowering", opts)
  out = fn(Tensor(x, device="numpy"), Tensor(y, device="numpy")).numpy()
  np.testing.assert_allclose(out, ref(x, y), rtol=1e-5, atol=1e-6)


def test_looped_softmax_has_a_loop_per_reduction_and_one_for_its_outputs(monkeypatch):
  monkeypatch.setattr(get_device("numpy"), "lowering", LOOPED)
  (prog,) = programs_for(Tensor(randn(7, 13)).softmax(-1))
  ops = [u.op for u in prog.uops]
  assert ops.count(U.RANGE) == 3 and ops.count(U.ACC) == 2   # max, sum of exp, then the probabilities
  stores = [i for i, op in enumerate(ops) if op is U.STORE]
  assert len(stores) == 1 and stores[0] < ops.index(U.ENDRANGE, stores[0])   # stored inside the last loop


def test_a_reduction_whose_loads_do_not_span_its_tile_loads_them_wide(monkeypatch):
  """nll_loss(log_softmax(x)) backward sums each row of a one-hot (iota compared with a column of targets): no load
  varies along the row, and Triton would give the tile the layout of the (rows, 1) load, computing each row many
  times over (14.8 ms on an H100 for 16384 x 50304; 2.35 ms with wide loads). Its loads span the whole tile; a
  column of weights, beside a load of the row itself, stays (rows, 1). Values are unchanged."""
  monkeypatch.setattr(get_device("numpy"), "lowering", LOOPED)
  rng = np.random.default_rng(0)
  x, y = randn(7, 13), rng.integers(0, 13, 7)
  lx = Tensor(x, requires_grad=True)
  loss = lx.log_softmax(-1).nll_loss(Tensor(y))
  loss.backward()
  dev = get_device("numpy")
  progs = {it.kernel.name: compile_kernel(it.kernel, dev).prog for it in get_schedule([loss.node, lx.grad.node])}
  (grad,) = [p for name, p in progs.items() if name.endswith("grad_7x13")]
  first_loop = grad.uops[:[u.op for u in grad.uops].index(U.ENDRANGE)]
  assert [u.shape for u in first_loop if u.op is U.LOAD] and all(u.shape == (LOOPED.max_tile // 4, 4) for u in first_loop if u.op is U.LOAD)
  (weighted,) = programs_for((Tensor(x) * Tensor(randn(7, 1))).sum(-1))   # the row of x anchors the tile
  assert sorted(u.shape for u in weighted.uops if u.op is U.LOAD) == [(2, 1), (2, 4)]
  tx = torch.tensor(x, requires_grad=True)
  torch.nn.functional.nll_loss(tx.log_softmax(-1), torch.tensor(y)).backward()
  np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_tiled_programs_loop_and_mask(monkeypatch):
  monkeypatch.setattr(get_device("numpy"), "lowering", TILED)
  (prog,) = programs_for(Tensor(randn(7, 13)).sum(1))
  ops = [u.op for u in prog.uops]
  assert U.RANGE in ops and U.ACC_UPDATE in ops and prog.grid == 4
  assert any(u.op is U.LOAD and len(u.srcs) == 3 for u in prog.uops)   # masked


def test_debug_text_is_stable(capsys):
  """DEBUG=3 prints kernel ASTs and DEBUG=4 uops; the text is golden (tests/golden/debug_softmax.txt)."""
  from pathlib import Path
  a = Tensor(np.arange(12, dtype=np.float32).reshape(3, 4), device="numpy")
  with lazygrad.Context(DEBUG=4):
    (a * 2).softmax(-1).realize()
  timings = ("kernel ", "realize:", "compile:")
  lines = [l for l in capsys.readouterr().out.splitlines() if not l.lstrip().startswith(timings) or l.startswith("kernel ")]
  golden = Path(__file__).parent / "golden" / "debug_softmax.txt"
  text = "\n".join(lines) + "\n"
  if not golden.exists(): golden.write_text(text)
  assert text == golden.read_text()


def test_text_forms_of_a_training_step_are_golden():
  """The lazy graph (DEBUG=6) and the schedule (DEBUG=2) of tests/programs/mlp_step.py, as text
  (tests/golden/mlp_step_graph.txt, mlp_step_schedule.txt): deterministic, with user lines and cut reasons."""
  from pathlib import Path
  from programs.mlp_step import build
  from lazygrad.ir.node import graph_text, toposort
  from lazygrad.codegen.schedule import schedule_text
  nodes = [t.node for t in build()]
  order = toposort(nodes)
  texts = {"graph": graph_text(nodes), "schedule": schedule_text(get_schedule(nodes, order), order)}
  for name, text in texts.items():
    golden = Path(__file__).parent / "golden" / f"mlp_step_{name}.txt"
    if not golden.exists(): golden.write_text(text + "\n")
    assert text + "\n" == golden.read_text(), name
  assert "(Tensor.backward) grad of max @ mlp_step.py:13 (Tensor.relu)" in texts["graph"]
  assert "(target)" in texts["schedule"] and "reads" in texts["schedule"]


def test_each_ir_checks_its_contract():
  """verify() of the lazy graph, the kernel AST and the uops (on in the tests: LAZYGRAD_VERIFY) catches a node that
  breaks its stage's contract."""
  from lazygrad.helpers import InvalidIR, settings
  from lazygrad.ir.node import LazyNode, verify
  from lazygrad.ir.ops import Op
  from lazygrad.codegen.linearize import linearize
  assert settings.VERIFY
  a = Tensor(np.ones((2, 3), np.float32)).node
  verify([a, LazyNode(Op.ADD, a.dtype, (2, 3), (a, a))])
  for bad in (LazyNode(Op.ADD, a.dtype, (3, 2), (a, a)), LazyNode(Op.RESHAPE, a.dtype, (5,), (a,), (5,)),
              LazyNode(Op.REDUCE_SUM, a.dtype, (2, 3), (a,), (1,)), LazyNode(Op.CMPLT, a.dtype, (2, 3), (a, a))):
    with pytest.raises(InvalidIR, match="lazy graph"): verify([bad])
  (item,) = get_schedule([(Tensor(np.ones((4, 8), np.float32)) * 2).sum(1).node])
  item.kernel.verify()
  k = item.kernel
  broken = type(k)(k.name, k.shape, 0, k.bufs, 1, k.stores, k.scalars)   # says no axis is reduced
  with pytest.raises(InvalidIR, match="reduces"): broken.verify()
  row_store = k.stores[0]   # the row sum's store, made to store the element values it sums instead
  element = row_store.srcs[0].srcs[0]
  wrong = type(row_store)(row_store.op, row_store.dtype, (element,), row_store.arg)
  with pytest.raises(InvalidIR, match="varies along axes"):
    type(k)(k.name, k.shape, k.n_reduce, k.bufs, 1, (wrong,), k.scalars).verify()
  prog = linearize(item.kernel)
  prog.verify()
  prog.uops = prog.uops[1:] + prog.uops[:1]   # a parameter moved after its first use
  with pytest.raises(InvalidIR, match="defined after"): prog.verify()


def test_tiling_is_an_explicit_input_and_part_of_the_cache_key():
  from lazygrad.codegen.linearize import Tiling, choose_tiling
  from lazygrad.runtime.device import register_device, get_device as device_named
  from lazygrad.runtime.numpy_device import NumpyDevice
  dev = get_device("numpy")
  x = np.arange(64, dtype=np.float32).reshape(8, 8)
  (item,) = get_schedule([(Tensor(x, device="numpy") * 3).sum(1).node])
  default = choose_tiling(item.kernel, dev.lowering)
  assert default.blocks == (8, 8)
  before = counters.lowerings
  programs = [compile_kernel(item.kernel, dev, t) for t in (default, Tiling((2, 4)), Tiling((2, 4)))]
  assert programs[1] is programs[2] and programs[0] is not programs[1] and counters.lowerings - before <= 2
  assert programs[1].prog.blocks == (2, 4) and programs[1].prog.grid == 4   # four programs, a loop over the row
  for prg in programs[:2]:
    out = lazygrad.runtime.buffer.Buffer(dev, item.kernel.bufs[0].dtype, 8)
    prg([out, item.inputs[0].buffer], [3.0])
    np.testing.assert_allclose(out.numpy(), (x * 3).sum(1))
  register_device("numpy-again", NumpyDevice, aliases=("np2",))   # a backend registers a factory: nothing else changes
  assert device_named("np2").name == "numpy" and Tensor([1.0, 2.0], device="numpy-again").to("np2").numpy().tolist() == [1, 2]


def _softmax_parts(t: Tensor):
  m = t.amax(-1, keepdim=True)
  e = (t - m).exp()
  s = e.sum(-1, keepdim=True)
  return e / s, m, s


def _layernorm_parts(t: Tensor):
  mean = t.mean(-1, keepdim=True)
  rstd = ((t - mean) ** 2).mean(-1, keepdim=True).add(1e-5).rsqrt()
  return (t - mean) * rstd, mean, rstd


@pytest.mark.parametrize("lowering", [None, LOOPED], ids=["whole_rows", "looped"])
@pytest.mark.parametrize("case", ["softmax", "layernorm"])
def test_one_kernel_with_two_reductions_stores_three_outputs(case, lowering, monkeypatch):
  """Softmax storing its max and sum, layernorm its mean and rstd: one kernel, two reductions (the second needs
  the first), three outputs, on the default device (numpy, or Triton's interpreter in the interpreter run)."""
  dev = get_device()
  if lowering is not None:   # rows longer than a tile: one loop per reduction, then one for the element outputs
    monkeypatch.setattr(dev, "lowering", LoweringOptions(whole=False, max_tile=16, max_reduce_block=4, max_whole_row=4))
  x = randn(6, 10)
  outs = {"softmax": _softmax_parts, "layernorm": _layernorm_parts}[case](Tensor(x))
  (item,) = get_schedule([o.node for o in outs])
  assert item.kernel.n_out == 3 and len(item.kernel.reduces) == 2
  assert kernels_for(*outs) == 1
  refs = {"softmax": lambda: (np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True),
                              x.max(-1, keepdims=True), np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)),
          "layernorm": lambda: ((x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5),
                                x.mean(-1, keepdims=True), 1 / np.sqrt(x.var(-1, keepdims=True) + 1e-5))}[case]()
  for got, ref in zip(outs, refs): np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_column_sums_of_one_input_share_a_kernel():
  a, b = Tensor(randn(12, 5)), Tensor(randn(12, 5))
  bias_grad, weight_grad = a.sum(0), (a * b).sum(0)
  assert kernels_for(bias_grad, weight_grad) == 1
  np.testing.assert_allclose(weight_grad.numpy(), (a.numpy() * b.numpy()).sum(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(bias_grad.numpy(), a.numpy().sum(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flat", [True, False])
def test_adamw_updates_parameters_and_moments_in_one_kernel(flat):
  """Flat (the default): one kernel updates every parameter and both moments, reading the flat gradient buffer the
  backward wrote; not flat: one kernel per parameter (the parameter, m and v together), run as parts of one launch."""
  ps = [Tensor(randn(4, 6), requires_grad=True), Tensor(randn(5), requires_grad=True)]
  ref = [p.numpy().copy() for p in ps]
  opt = lazygrad.optim.AdamW(ps, lr=1e-2, flat=flat)
  sum((p * p).sum() for p in ps).backward()
  lazygrad.realize(*(p.grad for p in ps))
  before = counters.kernels
  opt.step()
  # the step counter, then the updates: flat, one kernel; else the parameters' (each with its moments) side by side,
  # as the parts of one combined kernel
  assert counters.kernels - before == 2
  tp = [torch.tensor(r, requires_grad=True) for r in ref]
  topt = torch.optim.AdamW(tp, lr=1e-2)
  sum((p * p).sum() for p in tp).backward()
  topt.step()
  for p, t in zip(ps, tp): np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-6, atol=1e-6)


def test_cut_reasons_are_recorded():
  a = Tensor(randn(8, 8))
  s = a.sum(1)
  out = (a - s.reshape(8, 1)).exp() + s.reshape(1, 8)
  items = get_schedule([out.node])
  assert [r for it in items for r in it.reasons] == ["a reduction used in another iteration space", "target"]


def test_elementwise_work_joins_row_reductions_but_not_column_sums():
  """A merged kernel runs on the reduction's programs, a few rows each: fine for many rows (softmax, layernorm),
  but a column sum has few outputs, so a large elementwise output stays a kernel of its own."""
  a, b = Tensor(randn(4096, 32)), Tensor(randn(4096, 32))
  prod_, rows = a * b, (a * b).sum(1)
  assert kernels_for(prod_, rows) == 1
  c, d = Tensor(randn(4096, 32)), Tensor(randn(4096, 32))
  prod2, cols = c * d, (c * d).sum(0)
  assert kernels_for(prod2, cols) == 3   # the product, then the column sum in two stages (partials, their sum)
  np.testing.assert_allclose(cols.numpy(), (c.numpy() * d.numpy()).sum(0), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(rows.numpy(), (a.numpy() * b.numpy()).sum(1), rtol=1e-4, atol=1e-4)


def test_the_tour_runs_and_prints_its_schedule():
  """The tour's claims about fusion are the real schedule's kernel names (a change of schedule shows here)."""
  import os, subprocess, sys
  from pathlib import Path
  root = Path(__file__).parents[1]
  out = subprocess.run([sys.executable, str(root / "examples" / "demo.py")], capture_output=True, text=True,
                       env={**os.environ, "LAZYGRAD_DEVICE": "numpy"}, timeout=300)
  assert out.returncode == 0, out.stderr
  assert "kernels run: 4, named after the functions whose work each does: mul_4096, matmul_add_64x32x128" in out.stdout


def test_kernel_names_are_python_identifiers():
  import keyword
  a, b = Tensor(np.array(3, np.int32)), Tensor(np.array(6, np.int32))
  names = [it.kernel.name for it in get_schedule([(a & b).node, (a | b).node, (a * 2).node])]
  assert all(n.isidentifier() and not keyword.iskeyword(n) for n in names), names
  assert ((a & b).item(), (a | b).item()) == (2, 7)


def test_a_matmul_result_read_as_bfloat16_is_stored_as_bfloat16():
  """The float32 accumulator of a bfloat16 matmul is stored after its cast: half the memory, the same values."""
  rng = np.random.default_rng(0)
  a, b = (rng.standard_normal(s).astype(np.float32) for s in [(16, 32), (32, 24)])
  z = (Tensor(a).cast("bfloat16") @ Tensor(b).cast("bfloat16")).float().softmax(-1)
  first = get_schedule([z.node])[0]
  assert [n.dtype.name for n in first.outputs] == ["bfloat16"]
  ref = torch.tensor(a).bfloat16() @ torch.tensor(b).bfloat16()
  np.testing.assert_allclose(z.numpy(), ref.float().softmax(-1).numpy(), rtol=1e-2, atol=1e-3)


def test_a_long_sum_with_few_results_is_split_in_two():
  """Column sums over many rows (bias gradients) and totals run as partial sums over chunks, then their sum: many
  programs instead of one per result block. Row sums and contractions stay one reduction."""
  from lazygrad.ir.node import toposort
  from lazygrad.ir.ops import Op
  x = randn(16, 1024, 48)
  t = Tensor(x, requires_grad=True)
  cols, total, rows = t.sum((0, 1)), t.sum(), t.sum(2)
  def sums(out): return sum(n.op is Op.REDUCE_SUM for n in toposort([out.node]))
  assert sums(cols) == 2 and sums(total) == 2 and sums(rows) == 1
  assert sums(Tensor(randn(4, 8192)) @ Tensor(randn(8192, 3))) == 1   # a DOT
  big = randn(1 << 20)
  total_big = Tensor(big).sum()
  (partials,) = [n.shape for n in toposort([total_big.node]) if n.op is Op.REDUCE_SUM and n.shape[0] > 1]
  assert partials == (4096, 1)   # a total over many chunks, each a short walk (not 256 long ones)
  np.testing.assert_allclose(total_big.numpy(), big.astype(np.float64).sum(), rtol=1e-5, atol=1e-2)
  np.testing.assert_allclose(cols.numpy(), x.astype(np.float64).sum((0, 1)), rtol=1e-5, atol=1e-3)
  np.testing.assert_allclose(total.numpy(), x.astype(np.float64).sum(), rtol=1e-5, atol=1e-2)
  (cols * Tensor(np.arange(48, dtype=np.float32))).sum().backward()
  np.testing.assert_array_equal(t.grad.numpy(), np.broadcast_to(np.arange(48, dtype=np.float32), x.shape))


def test_a_residual_stream_is_stored_once_not_recomputed_in_every_kernel_that_reads_it():
  """x_{i+1} = x_i + f(x_i) @ W_i, read by each layer's row statistics and its normalized matmul operand: inline, each
  kernel would recompute the stream from its start (one more large input per layer); stored, each reads a few."""
  n, layers = 256, 8
  x0, ws = randn(n, n), [randn(n, n) / 16 for _ in range(layers)]
  def model(x, ws):
    for w in ws:
      mu = x.mean(-1, keepdims=True) if isinstance(x, np.ndarray) else x.mean(-1, keepdim=True)
      x = x + (x - mu) @ w
    return x
  out = model(Tensor(x0), [Tensor(w) for w in ws])
  items = get_schedule([out.node])
  reads = [len(it.inputs) for it in items if it.kernel is not None]
  assert max(reads) <= 4, reads
  assert any("computed by" in why for it in items for why in it.reasons)
  np.testing.assert_allclose(out.numpy(), model(x0, ws), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_an_embedding_gradient_is_a_scatter_add_not_a_one_hot_matmul(dtype):
  """Rows picked several times add up; no buffer of (picks x rows) is made; the result matches torch."""
  rows, dim = 50, 24
  idx = rng.integers(0, rows, (6, 7))
  idx[0, :3] = 4                                   # one row picked many times
  w, g = randn(rows, dim), randn(6, 7, dim)
  lw, tw = Tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
  (lw.cast(dtype)[Tensor(idx)].float() * Tensor(g)).sum().backward()
  (tw.to(getattr(torch, dtype))[torch.tensor(idx)].float() * torch.tensor(g)).sum().backward()
  items = get_schedule([lw.grad.node])
  assert any(it.kernel is not None and it.kernel.scattered for it in items)
  assert max(o.numel for it in items for o in it.outputs) <= rows * dim
  np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), rtol=1e-2 if dtype == "bfloat16" else 1e-5, atol=1e-2 if dtype == "bfloat16" else 1e-5)


def test_an_embedding_in_a_flat_parameter_buffer_gathers_its_rows_there():
  """An embedding whose weight is a part of an optimizer's flat buffer reads its rows from that buffer, not from a
  copy of the whole table stored first (a 147 MiB copy each step for GPT-2's); a table whose rows are not laid out
  one after another (a transpose) is still stored first."""
  import lazygrad.nn
  emb, lin = lazygrad.nn.Embedding(50, 8), lazygrad.nn.Linear(8, 4)
  lazygrad.optim.SGD([*emb.parameters(), *lin.parameters()], lr=0.1)
  assert emb.weight._base is not None   # a view of the flat buffer
  idx = rng.integers(0, 50, (2, 3))
  out = lin(emb(Tensor(idx)))
  def stored_tables(t): return [w for it in get_schedule([t.node]) for w in it.reasons if w == "table of a gather"]
  assert not stored_tables(out)
  want = emb.weight.numpy()[idx] @ lin.weight.numpy().T + lin.bias.numpy()
  np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-6)
  table = Tensor(randn(8, 50)).realize().T
  picked = table[Tensor(idx)]
  assert stored_tables(picked)
  np.testing.assert_array_equal(picked.numpy(), table.numpy()[idx])


@pytest.mark.parametrize("m, n", [(20 * 16 + 3, 64 * 16 + 1), (8 * 16, 70 * 16), (3 * 16, 65 * 16)])
def test_grouped_program_order_covers_every_block_of_a_matmul_once(m, n, monkeypatch):
  """Programs take groups of 8 row blocks by a run of column blocks (L2 reuse), a last group may be short: every
  output block is computed exactly once."""
  monkeypatch.setattr(get_device("numpy"), "lowering", LoweringOptions(whole=False, dot_blocks=(16, 16, 16)))
  a, b = randn(m, 24), randn(24, n)
  lazy = Tensor(a, device="numpy") @ Tensor(b, device="numpy")
  (prog,) = programs_for(lazy)
  assert prog.grid == -(-m // 16) * -(-n // 16)
  assert any(u.op is U.CONST and u.arg == 8 * -(-n // 16) for u in prog.uops)   # pid // (8 x column blocks): a group
  np.testing.assert_allclose(lazy.numpy(), a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("programs", [1, 7, 64])
def test_a_persistent_matmul_computes_every_tile_once_with_its_epilogue(programs, monkeypatch):
  """On a device that asks for persistent matmuls (`persistent_programs`, a GPU's SM count), a matmul of more tiles
  runs on that many programs, each looping over tiles pid, pid + programs, ... in grouped order; the bias and relu
  of its epilogue run per tile. Elementwise kernels keep a program per tile."""
  from lazygrad.codegen import triton as triton_render
  monkeypatch.setattr(get_device("numpy"), "lowering", LoweringOptions(whole=False, dot_blocks=(16, 16, 16),
                                                                       persistent_programs=programs))
  a, b, c = randn(5 * 16 + 3, 40), randn(40, 9 * 16 + 1), randn(9 * 16 + 1)
  lazy = (Tensor(a, device="numpy") @ Tensor(b, device="numpy") + Tensor(c, device="numpy")).relu()
  (prog,) = programs_for(lazy)
  tiles = -(-a.shape[0] // 16) * -(-b.shape[1] // 16)
  assert prog.grid == min(programs, tiles)
  stepped = [u for u in prog.uops if u.op is U.RANGE and len(u.srcs) == 3]
  assert len(stepped) == (programs < tiles) and all(u.srcs[2].arg == programs for u in stepped)
  if stepped: assert "tl.range(" in triton_render.render(prog) and "flatten=True" in triton_render.render(prog)
  np.testing.assert_allclose(lazy.numpy(), np.maximum(a @ b + c, 0), rtol=1e-5, atol=1e-4)
  (elementwise,) = programs_for(Tensor(a, device="numpy") * 2)
  assert not any(u.op is U.RANGE and len(u.srcs) == 3 for u in elementwise.uops)
  dev = get_device()
  if dev.name != "numpy":   # the same program rendered for Triton (its interpreter in CI)
    monkeypatch.setattr(dev, "lowering", dataclasses.replace(dev.lowering, dot_blocks=(16, 16, 16),
                                                             persistent_programs=programs))
    out = (Tensor(a) @ Tensor(b) + Tensor(c)).relu()
    np.testing.assert_allclose(out.numpy(), np.maximum(a @ b + c, 0), rtol=1e-5, atol=1e-4)


def assert_contract_catches(prog, u, field: str, value, match: str):
  """`prog.verify()` raises InvalidIR (matching `match`) while uop `u`'s `field` is `value`; restored after."""
  old = getattr(u, field)
  setattr(u, field, value)
  try:
    with pytest.raises(InvalidIR, match=match): prog.verify()
  finally: setattr(u, field, old)


@pytest.mark.parametrize("columns, stores", [(None, 1), (64, 1), (32, 2), (16, 4)])
@pytest.mark.parametrize("programs", [None, 5])
def test_a_matmul_epilogue_runs_on_column_sub_tiles_of_the_accumulator(columns, stores, programs, monkeypatch):
  """Where a device asks for it (`epilogue_columns`), what follows a matmul's K loop (bias, relu, scale, cast, store)
  runs once per sub-tile of that many columns, each on its SPLIT half (of a half ...) of the accumulator; the last
  column block overhangs the output and stays masked in every sub-tile."""
  from lazygrad.codegen import triton as triton_render
  lowering = LoweringOptions(whole=False, dot_blocks=(16, 64, 16), persistent_programs=programs,
                             epilogue_columns=columns)
  monkeypatch.setattr(get_device("numpy"), "lowering", lowering)
  a, b, c = randn(3 * 16 + 5, 40), randn(40, 2 * 64 + 16), randn(2 * 64 + 16)   # whole sub-tiles past the end
  build = lambda t: ((t(a) @ t(b) + t(c)).relu() * 3).cast("float16")
  want = (np.maximum(a @ b + c, 0) * 3).astype(np.float16)
  lazy = build(lambda x: Tensor(x, device="numpy"))
  (prog,) = programs_for(lazy)
  assert sum(u.op is U.STORE for u in prog.uops) == stores
  assert sum(u.op is U.SPLIT for u in prog.uops) == 2 * stores - 2
  if stores > 1:
    assert "tl.split(" in triton_render.render(prog)
    half = next(u for u in prog.uops if u.op is U.SPLIT)
    assert_contract_catches(prog, half, "shape", half.srcs[0].shape, "is no half of a tile")   # as wide as its tile
  np.testing.assert_allclose(lazy.numpy(), want, rtol=1e-3, atol=1e-3)
  dev = get_device()
  if dev.name != "numpy":   # the same program rendered for Triton (its interpreter in CI)
    monkeypatch.setattr(dev, "lowering", dataclasses.replace(dev.lowering, dot_blocks=(16, 64, 16),
                                                             persistent_programs=programs, epilogue_columns=columns))
    np.testing.assert_allclose(build(Tensor).numpy(), want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("layout", ["x @ w", "x @ w.T", "x.T @ w"])
@pytest.mark.parametrize("k", [40, 41])
def test_a_persistent_matmul_reads_aligned_operands_through_tensor_descriptors(layout, k, monkeypatch):
  """Where the device takes tensor descriptors (TMA, Hopper) and the tiling asks for them (a tuner's choice), a
  persistent matmul reads each operand tile as one block of a strided matrix (TILE_LOAD), zero past its edges, in
  either layout (a transposed block for an operand whose axes run the other way in memory); an operand whose rows
  are not 16-byte aligned (41 float32s) is read element by element. The numpy interpreter runs the same uops, and
  Triton's (in CI) the rendered descriptors."""
  from lazygrad.codegen import triton as triton_render
  from lazygrad.runtime import autotune
  opts = dict(dot_blocks=(16, 16, 16), persistent_programs=7, tensor_descriptors=True)
  monkeypatch.setattr(get_device("numpy"), "lowering", LoweringOptions(whole=False, **opts))
  described = lambda kern, dev: dataclasses.replace(choose_tiling(kern, dev.lowering), descriptors=True)
  monkeypatch.setattr(autotune, "chosen", lambda kern, dev, precision: described(kern, dev) if any(
    n.op is K.DOT for n in kern.nodes) else None)
  assert any(t.descriptors for t in dot_tilings(get_schedule([(Tensor(randn(300, 40)) @ Tensor(randn(40, 300))).node])
                                                [0].kernel, get_device("numpy").lowering))
  m, n = 5 * 16 + 4, 9 * 16 + 4   # rows of 84 and 148 float32s: aligned, and blocks that overhang the edges
  a = randn(k, m) if layout.startswith("x.T") else randn(m, k)
  b = randn(n, k) if layout.endswith("w.T") else randn(k, n)
  run = lambda x, w: eval(layout, {"x": x, "w": w})
  lazy = run(Tensor(a, device="numpy"), Tensor(b, device="numpy"))
  (prog,) = programs_for(lazy)
  tiles = [u for u in prog.uops if u.op is U.TILE_LOAD]
  aligned = {"x @ w": 2 if k == 40 else 1, "x @ w.T": 2 if k == 40 else 0, "x.T @ w": 2}[layout]
  assert len(tiles) == aligned, [u.arg for u in tiles]
  assert sum(u.arg.transposed for u in tiles) == (0 if layout == "x @ w" else 1 if aligned == 2 else 0)
  if tiles: assert "tl.make_tensor_descriptor(" in triton_render.render(prog)
  np.testing.assert_allclose(lazy.numpy(), run(a, b), rtol=1e-5, atol=1e-4)
  dev = get_device()
  if dev.name != "numpy":   # the same program rendered for Triton (its interpreter in CI)
    monkeypatch.setattr(dev, "lowering", dataclasses.replace(dev.lowering, **opts))
    np.testing.assert_allclose(run(Tensor(a), Tensor(b)).numpy(), run(a, b), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case, n, columns, tile_stores", [
  ("relu", 9 * 16 + 4, None, 1), ("relu", 9 * 16 + 4, 16, 2), ("relu", 9 * 16 + 3, 16, 0), ("bool", 10 * 16, 16, 0),
  ("transposed", 9 * 16 + 4, 16, 2)])
def test_a_persistent_matmul_stores_its_output_tiles_through_a_tensor_descriptor(case, n, columns, tile_stores,
                                                                                 monkeypatch):
  """With tensor descriptors, a persistent matmul's epilogue (bias, relu) stores each output tile (or each column
  sub-tile) as one block (TILE_STORE), what lies past the output's edges dropped, into a transposed view as the
  block's transpose; output rows that are not 16-byte aligned (147 float32s) and bool outputs (Triton's bool pointers
  have no byte size) are stored element by element."""
  from lazygrad.codegen import triton as triton_render
  from lazygrad.runtime import autotune
  opts = dict(dot_blocks=(16, 32, 16), persistent_programs=7, tensor_descriptors=True, epilogue_columns=columns)
  monkeypatch.setattr(get_device("numpy"), "lowering", LoweringOptions(whole=False, **opts))
  described = lambda kern, dev: dataclasses.replace(choose_tiling(kern, dev.lowering), descriptors=True)
  monkeypatch.setattr(autotune, "chosen", lambda kern, dev, precision: described(kern, dev) if any(
    n.op is K.DOT for n in kern.nodes) else None)
  m = 5 * 16 + 4 if case != "transposed" else 5 * 16 + 12   # (a transposed output's rows are 96 float32s)
  a, b, c = randn(m, 40), randn(40, n), randn(n)
  def run(t):
    y = t(a) @ t(b)
    if case == "bool": return y > 0
    if case == "relu": return (y + t(c)).relu()
    out = t(np.zeros((n, m), np.float32)).realize()
    out.T[:, :] = y
    return out
  want = {"bool": a @ b > 0, "relu": np.maximum(a @ b + c, 0), "transposed": (a @ b).T}[case]
  lazy = run(lambda x: Tensor(x, device="numpy"))
  (prog,) = [p for p in programs_for(lazy) if any(u.op is U.DOT for u in p.uops)]
  assert sum(u.op is U.TILE_STORE for u in prog.uops) == tile_stores
  assert all(u.arg.transposed == (case == "transposed") for u in prog.uops if u.op is U.TILE_STORE)
  assert sum(u.op is U.STORE for u in prog.uops) == (0 if tile_stores else 1 if columns is None else 2)
  if tile_stores:
    assert ".store([" in triton_render.render(prog)
    tile = next(u for u in prog.uops if u.op is U.TILE_STORE)
    assert_contract_catches(prog, tile, "arg", tile.arg._replace(block=(2 * tile.arg.block[0], tile.arg.block[1])),
                            "is no block")   # a block of another shape than the tile's
  np.testing.assert_allclose(lazy.numpy(), want, rtol=1e-5, atol=1e-4)
  dev = get_device()
  if dev.name != "numpy":   # the same program rendered for Triton (its interpreter in CI)
    monkeypatch.setattr(dev, "lowering", dataclasses.replace(dev.lowering, **opts))
    np.testing.assert_allclose(run(Tensor).numpy(), want, rtol=1e-5, atol=1e-4)


def test_only_tilings_whose_programs_loop_over_tiles_are_offered_with_descriptors():
  """Descriptors are made by persistent programs only: a tiling with no more tiles than programs (a small matmul,
  or a large block) is not offered again with descriptors, where it would be the same program."""
  opts = LoweringOptions(whole=False, persistent_programs=3, tensor_descriptors=True)
  def offered(m, n):
    (item,) = [it for it in get_schedule([(Tensor(randn(m, 64)) @ Tensor(randn(64, n))).node]) if it.kernel]
    return {t.blocks[:2] for t in dot_tilings(item.kernel, opts) if t.descriptors}
  assert offered(256, 256) == {(128, 128)}   # 2 tiles of 128 x 256 or 256 x 128 (not more than 3 programs), 4 of these
  assert offered(128, 128) == set()
  assert offered(1024, 1024) == {(128, 128), (128, 256), (256, 128)}


def test_an_epilogue_sub_tile_of_an_odd_width_is_not_halved_again():
  """Sub-tiles halve the accumulator while they are wider than `epilogue_columns` and even: blocks of 20 columns with a
  limit of 4 stop at 5."""
  lowering = LoweringOptions(whole=False, dot_blocks=(16, 20, 16), epilogue_columns=4)
  a, b = randn(20, 40), randn(40, 30)
  (item,) = [it for it in get_schedule([(Tensor(a) @ Tensor(b)).node]) if it.kernel]
  from lazygrad.codegen.linearize import linearize
  prog = linearize(item.kernel, lowering)
  assert {u.shape[1] for u in prog.uops if u.op is U.SPLIT} == {10, 5}
  assert sum(u.op is U.STORE for u in prog.uops) == 4


def test_a_large_float32_operand_cast_to_bfloat16_is_stored_cast_so_the_matmul_loads_half_the_bytes():
  """Under autocast a float32 weight (and a float32 gradient) is cast to bfloat16 for its matmul: the DOT would load
  and convert the float32 tiles again for every tile of the other side, so the bfloat16 copy is stored once."""
  a, w = randn(256, 256), randn(512, 256)
  out = Tensor(a).cast("bfloat16") @ Tensor(w).cast("bfloat16").T
  items = get_schedule([out.node])
  (dot,) = [it for it in items if it.kernel is not None and any(n.op is K.DOT for n in it.kernel.nodes)]
  assert {n.dtype.name for n in dot.inputs} == {"bfloat16"}
  assert any("narrowed" in why for it in items for why in it.reasons)
  ref = torch.tensor(a).bfloat16() @ torch.tensor(w).bfloat16().T
  np.testing.assert_allclose(out.float().numpy(), ref.float().numpy(), rtol=1e-2, atol=1e-2)


from hypothesis import given, settings as hsettings, strategies as st


@hsettings(max_examples=40, deadline=None)
@given(st.integers(0, 5), st.integers(1, 6), st.integers(-3, 3), st.booleans(), st.integers(0, 2), st.integers(1, 3))
def test_kernel_spans_cover_every_element_read(start, length, step_sign, flip, pad, reps):
  """`Kernel.spans` (what check mode copies) holds every element a kernel reads: a buffer of its own indices is read
  through shrink, step, flip, pad and expand, and every value the result holds lies in the load's span."""
  base = Tensor(np.arange(96, dtype=np.float32).reshape(8, 12)).realize()
  step = step_sign if step_sign else 1
  v = base[start:start + length, ::step]
  v = (v.flip(1) if flip else v).pad((pad, pad), value=-1.0)
  v = v.unsqueeze(0).expand(reps, *v.shape) * 1
  items = get_schedule([v.node])
  (item,) = [it for it in items if it.kernel is not None and base.node in it.inputs]
  slot = item.inputs.index(base.node) + item.kernel.n_out
  start = item.offsets[slot] if item.offsets else 0   # the kernel counts addresses from there (`kernel.rebased`)
  lo, hi = (start + i for i in item.kernel.spans[slot])
  read = v.numpy()[v.numpy() >= 0]
  assert lo <= read.min() and read.max() < hi
  assert hi - lo <= 12 * (length + 2)   # about the rows it reads (masked padding addresses may reach past them)


def test_kernel_span_of_a_slice_is_the_slice_it_counts_from():
  flat = Tensor(np.zeros(1000, np.float32)).realize()
  part = flat[300:420].reshape(10, 12)
  (item,) = [it for it in get_schedule([(part * 2).node]) if it.kernel is not None]
  assert item.kernel.spans == ((0, 120), (0, 120)) and item.offsets == (0, 300)


def test_kernels_of_parts_of_a_buffer_are_one_kernel():
  """A kernel reading or writing a part of a buffer counts its addresses from that part (`kernel.rebased`): the same
  computation on another part of the same shape is the same kernel, lowered once, and writes land where they
  should (on the numpy device, where a store may otherwise take over the memory it writes)."""
  flat = Tensor(np.arange(1000, dtype=np.float32)).realize()
  a, b = (flat[o:o + 120].reshape(10, 12) * 2 for o in (300, 600))
  ka, kb = ([it for it in get_schedule([t.node]) if it.kernel is not None][0] for t in (a, b))
  assert ka.kernel.text == kb.kernel.text and ka.offsets == (0, 300) and kb.offsets == (0, 600)
  before = counters.lowerings
  np.testing.assert_array_equal(a.numpy(), np.arange(300, 420).reshape(10, 12) * 2)
  np.testing.assert_array_equal(b.numpy(), np.arange(600, 720).reshape(10, 12) * 2)
  assert counters.lowerings - before <= 1
  src = Tensor(randn(10, 12))
  flat[500:620].reshape(10, 12).assign(src + 1).realize()   # a store into a part
  want = np.arange(1000, dtype=np.float32)
  want[500:620] = (src.numpy() + 1).reshape(-1)
  np.testing.assert_array_equal(flat.numpy(), want)


@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.1}, {"weight": True, "ignore_index": 2}])
def test_cross_entropy_gradient_reads_each_row_once(kw):
  """The gradient of cross_entropy over class indices is softmax minus the one-hot, elementwise: after the forward's
  row statistics, no kernel reduces over the classes again (through log_softmax, the backward summed each row of the
  one-hot gradient: a pass over the LM head's 50304-wide rows that took 13 ms on an H100)."""
  from lazygrad.codegen.schedule import partition
  from lazygrad.ir.node import grad_origin
  n, c = 64, 4096
  rng = np.random.default_rng(0)
  x = Tensor(rng.standard_normal((n, c)).astype(np.float32), requires_grad=True)
  y = rng.integers(0, c, n); y[:4] = 2
  w = rng.random(c).astype(np.float32)
  args = dict(kw, weight=Tensor(w)) if kw.get("weight") else kw
  loss = x.cross_entropy(Tensor(y), **args)
  loss.backward()
  over_classes = [g for g in partition([loss.node, x.grad.node]) if g.axes and g.full[-1] == c and len(g.full) - 1 in g.axes]
  assert over_classes and not [g for g in over_classes if any(r in grad_origin for r in g.roots)]
  targs = dict(kw, weight=torch.tensor(w)) if kw.get("weight") else kw
  tx = torch.tensor(x.numpy(), requires_grad=True)
  tl = torch.nn.functional.cross_entropy(tx, torch.tensor(y), **targs)
  tl.backward()
  np.testing.assert_allclose(loss.numpy(), tl.item(), rtol=1e-5)
  np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_float32_matmul_copies_an_n_major_right_operand_k_major_for_tf32(monkeypatch):
  """Where tf32 tensor cores read K-major operands only (Hopper), x @ W with W stored (in, out) copies W K-major
  first (one CONTIGUOUS of W.T); nn.Linear's x @ W.T, a small W, exact float32 ('highest') and devices without the
  need copy nothing. Values and gradients are unchanged."""
  import dataclasses
  from lazygrad.ir.node import toposort
  from lazygrad.ir.ops import Op
  from lazygrad.runtime.device import canonical_name
  dev = get_device(canonical_name(None))   # the device under test
  monkeypatch.setattr(dev, "lowering", dataclasses.replace(dev.lowering, float32_k_major=True))
  rng = np.random.default_rng(0)
  x, w = rng.standard_normal((8, 256)).astype(np.float32), rng.standard_normal((256, 512)).astype(np.float32)
  def copies(f, precision="high"):
    lazygrad.set_float32_matmul_precision(precision)
    try:
      lw, tw = Tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
      out, want = f(Tensor(x), lw), f(torch.tensor(x), tw)
      found = [n.shape for n in toposort([out.node]) if n.op is Op.CONTIGUOUS]
      (out * out).sum().backward(); (want * want).sum().backward()
      np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-4, atol=1e-3)
      np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-2)
      return found
    finally: lazygrad.set_float32_matmul_precision("highest")
  assert copies(lambda a, b: a @ b) == [(512, 256)]
  assert copies(lambda a, b: a @ b, "highest") == []
  assert copies(lambda a, b: a @ b.T.contiguous().T) == [(512, 256)]   # the user's copy: K-major, no second one
  assert copies(lambda a, b: a[:, :16] @ b[:16, :16]) == []          # small


@hsettings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), st.integers(1, 70), st.sampled_from(["x @ w", "x @ w.T", "x.T @ w"]),
       st.sampled_from([(16, 16, 16), (16, 64, 16), (32, 32, 16)]), st.sampled_from([None, 8, 16]),
       st.sampled_from([None, 3]), st.booleans(), st.booleans())
def test_tiled_matmuls_with_epilogues_match_numpy(m, n, k, layout, blocks, columns, programs, descriptors, bias):
  """A matmul (+ bias, relu, float16 cast) under any of the GPU's ways of cutting it up — blocks that overhang each
  edge, persistent programs, column sub-tiles of the epilogue, tensor-descriptor loads and stores (where the views
  allow them) — computes what numpy does. The numpy interpreter runs the uops the Triton renderer would render."""
  from lazygrad.runtime import autotune
  lowering = LoweringOptions(whole=False, dot_blocks=blocks, persistent_programs=programs, epilogue_columns=columns,
                             tensor_descriptors=descriptors)
  dev = get_device("numpy")
  rng = np.random.default_rng(m * 10000 + n * 100 + k)
  x = rng.standard_normal((k, m) if layout.startswith("x.T") else (m, k)).astype(np.float32)
  w = rng.standard_normal((n, k) if layout.endswith("w.T") else (k, n)).astype(np.float32)
  c = rng.standard_normal(n).astype(np.float32)
  run = lambda a, b: eval(layout, {"x": a, "w": b})
  want = run(x, w) + (c if bias else 0)
  want = np.maximum(want, 0).astype(np.float16)
  orig_lowering, orig_chosen = dev.lowering, autotune.chosen
  try:
    dev.lowering = lowering
    autotune.chosen = lambda kern, d, precision: dataclasses.replace(choose_tiling(kern, d.lowering),
                                                                     descriptors=descriptors)
    t = lambda v: Tensor(v, device="numpy")
    out = run(t(x), t(w)) + (t(c) if bias else 0)
    got = out.relu().cast("float16").numpy()
  finally: dev.lowering, autotune.chosen = orig_lowering, orig_chosen
  np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=2e-3, atol=2e-3)
