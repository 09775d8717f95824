"""Drawings of the IRs (lazygrad.debug): golden DOT text, backward colouring, kernel clusters, the schedule's
bipartite graph, kernel ASTs, SVG through graphviz and the DOT fallback without it, networkx export."""
import shutil, sys, warnings
from pathlib import Path
import numpy as np
import pytest
import lazygrad
from lazygrad import Tensor
from lazygrad.codegen.schedule import schedule
from lazygrad.debug import draw, draw_graph, draw_schedule, draw_kernel, to_networkx
from lazygrad.debug.draw import graph_picture, schedule_picture, kernel_picture, FORWARD, BACKWARD, REALIZED
from lazygrad.ir.node import grad_origin, toposort
from lazygrad.ir.ops import Op

GOLDEN = Path(__file__).parent / "golden"

# the fixed program, compiled under its own file name so that its user lines do not move with this file
MLP = """
x = Tensor(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
w1 = Tensor(np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5), requires_grad=True)
w2 = Tensor(np.linspace(-1, 1, 10, dtype=np.float32).reshape(5, 2), requires_grad=True)
loss = ((x @ w1).relu() @ w2).sum()
loss.backward()
"""


def mlp() -> dict:
  scope = {"Tensor": Tensor, "np": np}
  exec(compile(MLP, "mlp.py", "exec"), scope)
  return scope


def golden(name: str, text: str):
  path = GOLDEN / name
  if not path.exists(): path.write_text(text)
  assert text == path.read_text(), f"{name} changed (delete it to write it anew, then review the diff)"


def test_mlp_drawings_are_golden():
  p = mlp()
  outs = (p["loss"], p["w1"].grad, p["w2"].grad)
  golden("draw_mlp_graph.dot", graph_picture(*outs).dot())
  golden("draw_mlp_schedule.dot", schedule_picture(*outs).dot())
  assert graph_picture(*outs).dot() == graph_picture(*outs).dot()


def test_backward_nodes_are_marked_with_what_they_differentiate():
  p = mlp()
  loss, forward = p["loss"], toposort([p["loss"].node])
  assert not any(n in grad_origin for n in forward)
  pic = graph_picture(loss, p["w1"].grad, p["w2"].grad)
  fwd_ids = {f"n{i}" for i in range(len(forward))}   # the forward graph is drawn first, in the same order
  for i, (label, attrs, data) in pic.nodes.items():
    if data["realized"]: assert attrs["fillcolor"] == REALIZED
    elif i in fwd_ids: assert attrs["fillcolor"] == FORWARD and not data["backward"]
    else:
      assert attrs["fillcolor"] == BACKWARD and data["backward"] and "grad of " in label
      assert data["grad_of"] in fwd_ids   # every gradient node names a forward node of this graph
  grads = [data for data in (d for _, _, d in pic.nodes.values()) if data["backward"]]
  assert {pic.nodes[d["grad_of"]][2]["op"] for d in grads} >= {"MUL", "MAX", "REDUCE_SUM", "EXPAND", "PERMUTE"}


def test_gradient_of_a_product_points_at_the_product():
  x, w = Tensor(np.ones((3,), np.float32), requires_grad=True), Tensor(np.full((3,), 2.0, np.float32))
  prod = x * w
  prod.sum().backward()
  assert grad_origin[x.grad.node].op in (Op.MUL, Op.EXPAND)
  below = [n for n in toposort([x.grad.node]) if n in grad_origin]
  assert any(grad_origin[n] is prod.node for n in below)


def test_each_kernel_is_a_cluster_of_the_nodes_it_computes():
  x = Tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32))
  y = (x * 2).softmax(-1)
  pic = graph_picture(y)
  assert len([c for c in pic.clusters.values() if c]) == len(schedule([y.node])) == 1
  (name, members), = pic.clusters.items()
  assert name.startswith("k0 ")
  computed = {i for i, (_, _, d) in pic.nodes.items() if not d["realized"]}
  assert set(members) == computed - {i for i, (_, _, d) in pic.nodes.items() if len(d["kernels"]) != 1}
  # two kernels: each stored node sits in its own kernel's cluster
  p = mlp()
  pic = graph_picture(p["loss"], p["w1"].grad, p["w2"].grad)
  items = schedule([p["loss"].node, p["w1"].grad.node, p["w2"].grad.node])
  assert len(pic.clusters) == len(items)
  where = {i: k for k, ids in enumerate(pic.clusters.values()) for i in ids}
  for i, (_, attrs, d) in pic.nodes.items():
    if d["stored"] is not None: assert where[i] == d["kernels"][0] and attrs["penwidth"] == "2"
    if len(d["kernels"]) > 1: assert i not in where and "inline in" in pic.nodes[i][0]   # recomputed in each


def test_schedule_is_a_bipartite_graph_of_kernels_and_buffers():
  p = mlp()
  outs = [p["loss"].node, p["w1"].grad.node, p["w2"].grad.node]
  items = schedule(outs)
  pic = schedule_picture(*outs)
  kernels = [i for i, (_, _, d) in pic.nodes.items() if d["kind"] == "kernel"]
  assert [pic.nodes[k][2]["name"] for k in kernels] == [it.kernel.name for it in items]
  buffers = {id(n.buffer) if n.realized else id(n) for it in items for n in it.inputs + it.outputs}
  assert len(pic.nodes) == len(items) + len(buffers)
  for k, it in zip(kernels, items):
    reads = [e for e in pic.edges if e[1] == k]
    writes = [e for e in pic.edges if e[0] == k]
    assert len(reads) == len(it.inputs) and len(writes) == len(it.outputs)
    assert all(pic.nodes[b][2]["kind"] == "buffer" for b, _, _, _ in reads)
    assert all(r in pic.nodes[k][0] for r in it.reasons)
  label, _, data = pic.nodes[next(b for b in pic.nodes if b.startswith("b"))]
  assert f"{data['nbytes']} bytes" in label and data["dtype"] in label


def test_an_in_place_update_reads_and_writes_one_buffer():
  w = Tensor(np.ones((4,), np.float32))
  w.assign(w * 0.5 + 1)
  pic = schedule_picture(w)
  (b, _, _, read), = [e for e in pic.edges if e[3]["access"] == "read"]
  (_, b2, _, write), = [e for e in pic.edges if e[3]["access"] == "write"]
  assert b == b2 and pic.nodes[b][2]["realized"]


def test_kernel_ast_has_one_node_per_ast_node():
  x = Tensor(np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32))
  kernel = schedule([x.softmax(-1).node])[0].kernel
  pic = kernel_picture(kernel)
  assert len(pic.nodes) == len(kernel.nodes)
  assert len(pic.edges) == sum(len(n.srcs) for n in kernel.nodes)
  for i, n in enumerate(kernel.nodes): assert pic.nodes[f"n{i}"][0].startswith(f"%{i} {n.op.name}")
  assert pic.caption.startswith(f"kernel {kernel.name}") and "bufs: b0:" in pic.caption
  dot = pic.dot()
  assert dot.count("->") == len(pic.edges) and "REDUCE_MAX" in dot and "STORE" in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")
def test_svg_when_dot_is_present(tmp_path):
  p = mlp()
  svg = draw_graph(p["loss"], p["w1"].grad)
  assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "grad of MUL" in svg
  assert draw_schedule(p["loss"], path=tmp_path / "s.dot") == str(tmp_path / "s.svg")   # named for what it holds
  assert "<svg" in (tmp_path / "s.svg").read_text()
  assert "<svg" in draw_kernel(schedule([p["loss"].node])[0].kernel)


def test_dot_source_and_one_warning_without_dot(tmp_path, monkeypatch):
  monkeypatch.setattr(draw.shutil, "which", lambda name: None)
  monkeypatch.setattr(draw, "_warned_no_dot", False)
  x = Tensor(np.ones((2, 3), np.float32))
  y = (x + 1).sum(0)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    text = draw_graph(y)
    path = draw_schedule(y, path=tmp_path / "sched.svg")
    draw_kernel(schedule([y.node])[0].kernel)
  assert text == graph_picture(y).dot()
  assert path == str(tmp_path / "sched.dot") and Path(path).read_text() == schedule_picture(y).dot()
  assert len(caught) == 1 and "`dot` program is not on PATH" in str(caught[0].message)
  assert "install graphviz" in str(caught[0].message)
  np.testing.assert_allclose(y.numpy(), [4, 4, 4])   # drawing changed nothing


def test_to_networkx_counts():
  nx = pytest.importorskip("networkx")
  p = mlp()
  outs = [p["loss"].node, p["w1"].grad.node, p["w2"].grad.node]
  g = to_networkx(*outs)
  order = toposort(outs)
  assert isinstance(g, nx.MultiDiGraph) and g.number_of_nodes() == len(order)
  assert g.number_of_edges() == sum(len(n.srcs) for n in order if not n.realized)
  assert nx.is_directed_acyclic_graph(g)
  assert sum(d["backward"] for _, d in g.nodes(data=True)) == sum(n in grad_origin for n in order)
  s = to_networkx(*outs, schedule=True)
  items = schedule(outs)
  kernels = [k for k, d in s.nodes(data=True) if d["kind"] == "kernel"]
  assert len(kernels) == len(items)
  assert s.number_of_edges() == sum(len(it.inputs) + len(it.outputs) for it in items)
  assert nx.is_bipartite(s.to_undirected())
  k = to_networkx(items[0].kernel)
  assert k.number_of_nodes() == len(items[0].kernel.nodes)


def test_to_networkx_names_the_extra_when_networkx_is_missing(monkeypatch):
  monkeypatch.setitem(sys.modules, "networkx", None)
  with pytest.raises(ImportError, match=r"pip install 'lazygrad\[graph\]'"):
    to_networkx(Tensor(np.ones(2, np.float32)) + 1)


def test_index_checks_are_drawn_with_their_flag_kernel():
  table = Tensor(np.arange(12, dtype=np.float32).reshape(6, 2))
  rows = table[Tensor(np.array([0, 5, 2]))] * 2
  pic = graph_picture(rows)
  flags = [i for i, (_, _, d) in pic.nodes.items() if d["op"] == "CHECK"]
  assert flags and all(len(pic.nodes[i][2]["kernels"]) == 1 for i in flags)
  assert len(pic.clusters) == len(schedule_picture(rows).nodes) - sum(
    1 for _, _, d in schedule_picture(rows).nodes.values() if d["kind"] == "buffer")
  lazygrad.realize(rows)
  np.testing.assert_allclose(rows.numpy(), np.arange(12, dtype=np.float32).reshape(6, 2)[[0, 5, 2]] * 2)
