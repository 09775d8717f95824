"""Drawings of the IRs with graphviz, and their export to networkx.

Each drawing is first a `Picture` (nodes, edges, clusters, each with the data behind it), then DOT text, then SVG
when graphviz's `dot` program is on PATH; without it the DOT source is returned (written as `.dot`) and a warning
says once what could not be made. The same pictures are what `to_networkx` exports, so a drawing and an analysis
see one graph. Node ids are positions in a topological order, so equal programs give equal text."""
from __future__ import annotations
import os, shutil, subprocess, warnings
from dataclasses import dataclass, field
from ..helpers import fmt_loc, prod
from ..ir.node import LazyNode, toposort, grad_origin
from ..ir.ops import Op, REDUCE
from ..codegen.kernel import K, Kernel, arg_text
from ..codegen.schedule import partition, build_kernel, buffer_key

FORWARD, BACKWARD, REALIZED = "#dbe9f6", "#fddcb5", "#d9d9d9"   # fill colours
MEMORY, REDUCTION, CONSTANT = "#d5ecd4", "#f6d2d2", "#eeeeee"   # kernel AST: loads and stores, reductions, constants


@dataclass
class Picture:
  """A graph to draw: `nodes` maps an id to (label, DOT attributes, data), `edges` are (src, dst, DOT attributes,
  data),
  `clusters` maps a cluster's label to the ids inside it (drawn in that order; empty ones are not drawn), `caption`
  is printed above the graph."""
  title: str
  caption: str = ""
  nodes: dict[str, tuple[str, dict, dict]] = field(default_factory=dict)
  edges: list[tuple[str, str, dict, dict]] = field(default_factory=list)
  clusters: dict[str, list[str]] = field(default_factory=dict)

  def dot(self) -> str:
    """The DOT source."""
    lines = [f"digraph {_q(self.title)} {{", "  node [shape=box, style=\"rounded,filled\", fillcolor=white, "
             "fontname=Helvetica, fontsize=10];",
             "  edge [fontname=Helvetica, fontsize=8, labelfontsize=8, labeldistance=1.6, arrowsize=0.6];",
             # dot's network simplex, unbounded, takes minutes on a few hundred kernels; edge labels (virtual nodes)
             # too, so edges carry head and tail labels, which are placed after the layout
             "  nslimit=2; nslimit1=2;"]
    if self.caption: lines.append(f"  labelloc=t; labeljust=l; fontname=Helvetica; fontsize=10; "
                                  f"label={_q(self.caption)};")
    def node(i, ind):
      label, attrs, _ = self.nodes[i]
      lines.append(f"{ind}{i} [{_attrs(dict(label=label, **attrs))}];")
    inside = {i for ids in self.clusters.values() for i in ids}
    for c, (label, ids) in enumerate((label, ids) for label, ids in self.clusters.items() if ids):
      lines += [f"  subgraph cluster_{c} {{", f"    label={_q(label)}; style=\"rounded,dashed\"; fontname=Helvetica;"
                " fontsize=10;"]
      for i in ids: node(i, "    ")
      lines.append("  }")
    for i in self.nodes:
      if i not in inside: node(i, "  ")
    lines += [f"  {a} -> {b}" + (f" [{_attrs(attrs)}]" if attrs else "") + ";" for a, b, attrs, _ in self.edges]
    return "\n".join(lines + ["}"]) + "\n"


def _q(s: str) -> str:
  return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(attrs: dict) -> str: return ", ".join(f"{k}={_q(v)}" for k, v in attrs.items())


def _operands(srcs, ids: dict, dst: str) -> list:
  """Edges from each source to `dst`; with several sources each is numbered at its head (WHERE's 0 is the
  condition)."""
  return [(ids[id(s)], dst, {"headlabel": str(j)} if len(srcs) > 1 else {}, {"operand": j}) for j, s in enumerate(srcs)]


# ---------------------------------------------------------------------------------------------- the lazy graph
def _nodes(items) -> list[LazyNode]:
  """Lazy nodes of tensors (their current node) or of nodes, in order, each once."""
  return list({id(n): n for n in (x if isinstance(x, LazyNode) else x.node for x in items)}.values())


def _targets(roots: list[LazyNode]) -> list[LazyNode]:
  """What realizing `roots` computes: the unrealized ones and, as the realize engine adds them, the flags of the
  index and divisor checks below them."""
  targets = {id(n): n for n in roots if not n.realized}
  for n in toposort(list(targets.values())):
    if n.op is Op.CHECK and not n.srcs[1].realized: targets.setdefault(id(n.srcs[1]), n.srcs[1])
  return list(targets.values())


def _arg(n: LazyNode) -> str:
  text = "" if n.arg is None else str(n.arg)
  return text if len(text) <= 32 else text[:31] + "…"


def graph_picture(*tensors) -> Picture:
  """The lazy graph below `tensors` (Tensors or LazyNodes): realized nodes are leaves; each node is in the cluster
  of the kernel that computes it, or outside the clusters when several kernels compute it inline."""
  roots = _nodes(tensors)
  order = toposort(roots)
  groups = partition(_targets(roots))
  pic, kernels = Picture("lazy graph"), {}
  clusters = [pic.clusters.setdefault(f"k{k} {build_kernel(g).kernel.name}", []) for k, g in enumerate(groups)]
  for k, g in enumerate(groups):
    for i in g.computes(): kernels.setdefault(i, []).append(k)
  stored = {id(n): why for g in groups for n, why in zip(g.roots, g.reasons)}
  ids = {id(n): f"n{i}" for i, n in enumerate(order)}
  for n in order:
    i, origin, ks = ids[id(n)], grad_origin.get(n), kernels.get(id(n), [])
    data = {"node": n, "op": "BUFFER" if n.realized else n.op.name, "dtype": n.dtype.name, "shape": n.shape,
            "loc": fmt_loc(n.loc), "realized": n.realized, "backward": origin is not None,
            "grad_of": ids.get(id(origin)) if origin is not None else None, "kernels": ks, "stored": stored.get(id(n))}
    head = "BUFFER" if n.realized else f"{n.op.name} {_arg(n)}".rstrip()
    lines = [head, f"{n.dtype.name}{list(n.shape)}", data["loc"]]
    if origin is not None: lines.append(f"grad of {origin.op.name} @ {fmt_loc(origin.loc)}")
    if len(ks) > 1: lines.append("inline in " + ", ".join(f"k{k}" for k in ks))
    attrs = {"fillcolor": REALIZED if n.realized else BACKWARD if origin is not None else FORWARD}
    if n.realized: attrs["shape"] = "cylinder"
    if id(n) in stored: attrs.update(penwidth="2", tooltip=f"stored: {stored[id(n)]}")
    if len(ks) > 1: attrs["style"] = "rounded,filled,dashed"
    pic.nodes[i] = ("\n".join(lines), attrs, data)
    if len(ks) == 1: clusters[ks[0]].append(i)
    if not n.realized: pic.edges += _operands(n.srcs, ids, i)
  return pic


# ------------------------------------------------------------------------------------------------- the schedule
def schedule_picture(*tensors, items=None) -> Picture:
  """The schedule that realizes `tensors` (or the schedule `items` given): kernels (with what each stores and why) and
  copies, and the buffers they read and write, as a bipartite graph; edge labels are the kernel's buffer slots (b0..
  in its text form)."""
  if items is None: items = [build_kernel(g) for g in partition(_targets(_nodes(tensors)))]
  pic, bufs = Picture("schedule"), {}
  def buffer(n: LazyNode) -> str:
    key = buffer_key(n)
    if key not in bufs:
      bufs[key] = b = f"b{len(bufs)}"
      nbytes = n.buffer.nbytes if n.realized else prod(n.shape) * n.dtype.itemsize
      data = {"kind": "buffer", "dtype": n.dtype.name, "shape": n.shape, "nbytes": nbytes, "loc": fmt_loc(n.loc),
              "realized": n.realized}
      attrs = {"shape": "cylinder", "fillcolor": REALIZED if n.realized else "white"}
      pic.nodes[b] = (f"{n.dtype.name}{list(n.shape)}\n{nbytes} bytes\n{data['loc']}", attrs, data)
    return bufs[key]
  for k, it in enumerate(items):
    kid, ins = f"k{k}", [buffer(n) for n in it.inputs]
    stores = [f"{n.dtype.name}{list(n.shape)}: {why}" for n, why in zip(it.outputs, it.reasons)]
    name = it.kernel.name if it.kernel is not None else f"copy {it.inputs[0].device} -> {it.outputs[0].device}"
    data = {"kind": "kernel", "name": name, "reasons": list(it.reasons),
            "text": it.kernel.text if it.kernel is not None else ""}
    backward = all(n in grad_origin for n in it.outputs)   # it computes gradients only
    pic.nodes[kid] = (f"{kid} {name}\n" + "\n".join(stores), {"fillcolor": BACKWARD if backward else FORWARD}, data)
    slot = len(it.outputs)
    pic.edges += [(b, kid, {"headlabel": f"b{slot + j}"}, {"access": "read", "slot": slot + j})
                  for j, b in enumerate(ins)]
    pic.edges += [(kid, buffer(n), {"taillabel": f"b{j}", "penwidth": "1.5"}, {"access": "write", "slot": j})
                  for j, n in enumerate(it.outputs)]
  return pic


# ---------------------------------------------------------------------------------------------- the kernel AST
def kernel_picture(kernel: Kernel) -> Picture:
  """A kernel's AST as a DAG: node `n{i}` is `%i` of the kernel's text form."""
  pic = Picture(f"kernel {kernel.name}", "\n".join(x.strip() for x in kernel.header))
  ids = {id(n): f"n{i}" for i, n in enumerate(kernel.nodes)}
  for i, n in enumerate(kernel.nodes):
    arg = arg_text(n)
    colour = MEMORY if n.op in (K.LOAD, K.STORE) else REDUCTION if n.op in REDUCE or n.op is K.DOT else \
      CONSTANT if n.op in (K.CONST, K.SCALAR) else "white"
    data = {"op": n.op.name, "dtype": n.dtype.name, "arg": arg}   # no user lines: an AST is shared across graphs
    pic.nodes[ids[id(n)]] = ("\n".join(x for x in (f"%{i} {n.op.name} {n.dtype.name}", arg) if x),
                             {"fillcolor": colour}, data)
    pic.edges += _operands(n.srcs, ids, ids[id(n)])
  return pic


# -------------------------------------------------------------------------------------------------- the output
_warned_no_dot = False


def svg(dot: str) -> str | None:
  """DOT source rendered to SVG by graphviz's `dot`, or None (with a warning, once per process without `dot`)."""
  global _warned_no_dot
  if (exe := shutil.which("dot")) is None:
    if not _warned_no_dot:
      _warned_no_dot = True
      warnings.warn("lazygrad.debug: graphviz's `dot` program is not on PATH, so drawings are DOT source (.dot "
                    "files), not SVG. Install graphviz (apt-get install graphviz, brew install graphviz or conda "
                    "install graphviz) for SVG, or render a .dot file with `dot -Tsvg file.dot -o file.svg`.",
                    RuntimeWarning, stacklevel=4)
    return None
  run = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True)
  if run.returncode == 0: return run.stdout
  warnings.warn(f"lazygrad.debug: `dot -Tsvg` failed, so this drawing is DOT source: {run.stderr.strip()}",
                RuntimeWarning, stacklevel=4)
  return None


def render(pic: Picture, path=None) -> str:
  """SVG of `pic` when graphviz's `dot` is on PATH, else its DOT source (with a warning, once per process). With
  `path`, the file is written instead, with the suffix of what it holds (`.svg` or `.dot`), and its path returned."""
  text = pic.dot()
  drawn = svg(text)
  text, suffix = (text, ".dot") if drawn is None else (drawn, ".svg")
  if path is None: return text
  base, ext = os.path.splitext(os.fspath(path))
  path = (base if ext in (".svg", ".dot") else os.fspath(path)) + suffix
  with open(path, "w") as f: f.write(text)
  return path


def draw_graph(*tensors, path=None) -> str:
  """Draw the lazy graph below `tensors` (Tensors or LazyNodes): one box per node (op, dtype[shape], user line),
  forward and backward nodes in distinct colours (a backward node names the forward op it differentiates),
  realized buffers as grey cylinders, stored nodes with a thick border, and the nodes each kernel computes in a
  cluster named after the kernel. Returns SVG, or DOT source without graphviz; with `path`, the file's path."""
  return render(graph_picture(*tensors), path)


def draw_schedule(*tensors, path=None) -> str:
  """Draw the schedule that realizes `tensors`: kernels (name, what each stores and why) and buffers (dtype,
  shape, bytes), with an edge per read and per write. Returns as `draw_graph`."""
  return render(schedule_picture(*tensors), path)


def draw_kernel(kernel: Kernel, path=None) -> str:
  """Draw a kernel AST (a `codegen.kernel.Kernel`, e.g. a schedule item's `.kernel`) as a DAG, node `%i` of its
  text form as `%i`. Returns as `draw_graph`."""
  return render(kernel_picture(kernel), path)


def to_networkx(*tensors, schedule: bool = False):
  """A `networkx.MultiDiGraph` of the lazy graph below `tensors` (or, with `schedule`, of the schedule that realizes
  them; or of the AST of a single `Kernel` given), with the drawing's ids as nodes and its data as attributes:
  lazy nodes carry `node` (the LazyNode), `op`, `dtype`, `shape`, `loc`, `realized`, `backward`, `grad_of`,
  `kernels`, `stored`; schedule nodes `kind` ("kernel" or "buffer") and edges `access` ("read" or "write")."""
  try: import networkx as nx
  except ImportError as e:
    raise ImportError("lazygrad.debug.to_networkx needs networkx: pip install 'lazygrad[graph]'") from e
  if len(tensors) == 1 and isinstance(tensors[0], Kernel): pic = kernel_picture(tensors[0])
  else: pic = schedule_picture(*tensors) if schedule else graph_picture(*tensors)
  g = nx.MultiDiGraph(name=pic.title)   # multi: x * x has two operand edges from x
  for i, (label, _, data) in pic.nodes.items(): g.add_node(i, label=label, **data)
  for a, b, _, data in pic.edges: g.add_edge(a, b, **data)
  return g
