"""Schedule: lazy graph -> kernel ASTs, in two printable steps.

`partition(targets)` finds every node that must exist in memory, each with its reason (a target, `contiguous()`,
an in-place update, a reduction that cannot fuse where it is used, one two kernels need, a computed matmul
operand), and groups them into kernels. Each stored node's fusion analysis pulls in everything below it up to
stored or realized nodes: elementwise chains fuse, movement ops become views, and reductions fuse when their result
is used
  - element by element after them (a matmul followed by a bias and relu: the post-reduce part of the kernel), or
  - broadcast back over the very axes they reduced (softmax, layernorm).
Groups that share an iteration space then merge into one kernel with several outputs: a producer into a consumer
that reads it only where it is computed (layernorm storing its mean and rstd for the backward, an optimizer updating
a parameter and its moments), and siblings that read the same input (the column sums of a backward).
Kernels are then ordered (data and in-place dependencies; an update of a buffer waits only for the updates of it that
may write the same elements); small kernels that share no data wait and run side by side as the parts of one
combined kernel (the second passes of every bias gradient, the casts of every weight).
`build_kernel(group)` builds the group's kernel AST: one store per output, loads shared, outputs that other outputs
read used as values. A `COPY` is a boundary: its source is stored on its own device and the copy is an item of its
own, no kernel, which the runtime runs. Every kernel's nodes are on one device. Contract (checked by
`Kernel.verify`): each kernel reads only realized nodes and outputs of kernels before it; an in-place output reads
its own memory only at the element it writes."""
from __future__ import annotations
import functools, keyword, re
from dataclasses import dataclass, field
from typing import Sequence
from ..dtypes import bool_, float32
from ..helpers import prod, fmt_loc, strides_for
from ..ir.node import LazyNode, toposort, grad_origin
from ..ir.ops import Op, ALU, REDUCE, MOVEMENT
from ..ir.view import ShapeTracker, view_of
from ..ir.graph import evaluate, rewrite, toposort as toposort_nodes
from .kernel import K, KNode, Kernel, BufSpec, Access, Gather, contraction_axes, rebased


@dataclass
class ScheduleItem:
  """A kernel computing `outputs` from `inputs`; with no kernel, a copy of inputs[0] to outputs[0]'s device."""
  kernel: Kernel | None
  outputs: list[LazyNode]
  inputs: list[LazyNode]
  scalars: list[LazyNode] = field(default_factory=list)   # the CONST nodes whose values the kernel takes as arguments
  reasons: list[str] = field(default_factory=list)        # why each output is stored (DEBUG=2)
  origins: Sequence = ()   # per node of kernel.nodes: the lazy nodes it computes (indexable, list of nodes)
  offsets: tuple = ()      # per buffer slot, the element the kernel's addresses count from (`kernel.rebased`)

  def lines(self, ast_indices) -> str:
    """The user lines (file:line) that the given nodes of the kernel (indices in `kernel.nodes`) compute, in the
    graph being run."""
    return ", ".join(dict.fromkeys(fmt_loc(o.loc) for i in ast_indices for o in self.origins[i])) or "?"

  def annotated(self, source: str) -> str:
    """Rendered source with each `# op %i` comment followed by the user lines AST node i computes here."""
    return re.sub(r"(#\s+\w+) %(\d+)$", lambda m: f"{m.group(1)} @ {self.lines([int(m.group(2))])}", source,
                  flags=re.MULTILINE)


def is_parameter(n: LazyNode) -> bool:
  """A constant passed to its kernel as an argument, not written into it: a new value (a changing learning rate,
  a scale) then reuses the compiled kernel. Only float32: Triton types a float argument as float32, so one in a
  float16 or float64 expression would change its type; integer and bool constants rarely change, and literals let
  the compiler simplify."""
  return n.op is Op.CONST and n.dtype == float32


def _strip1(shape): return tuple(s for s in shape if s != 1)


def _gather_index_path(n: LazyNode) -> tuple:
  """Movement ops (outermost first) that show a GATHER's index tensor in the GATHER's output shape."""
  idx = n.srcs[1]
  return ((Op.EXPAND, n.shape), (Op.RESHAPE, idx.shape + (1,) * (len(n.shape) - len(idx.shape))))
def _table_memory(x: LazyNode) -> tuple[LazyNode, tuple] | None:
  """Where a gather reads the rows of its table `x` from: a realized node, or one `x` is a view of whose rows lie
  in it one after another (an embedding whose weight is a part of an optimizer's flat buffer), with the movement ops
  from it to `x` (outermost first); None where the table must be stored first."""
  n, path = x, ()
  while not n.realized and (n.op in MOVEMENT or n.op is Op.DETACH):
    path, n = path + ((n.op, n.arg),), n.srcs[0]
  if not n.realized: return None
  view = view_of(n.shape, path).views
  rows = len(view) == 1 and view[0].mask is None and view[0].strides == strides_for(x.shape)
  return (n, path) if rows else None


def _base(n: LazyNode) -> LazyNode:
  """What a materialized node's kernel computes: the value under a contiguous() or an assign()."""
  if n.realized: return n
  return n.srcs[0] if n.op in (Op.CONTIGUOUS, Op.COPY) else n.srcs[1] if n.op is Op.ASSIGN else n


def _region(n: LazyNode) -> tuple:
  """Movement ops (outermost first) from an assign's target to the part of it the value overwrites; () for all."""
  return n.arg or () if n.op is Op.ASSIGN else ()


class _KernelBuilder:
  """Builds the AST of the kernel rooted at `root`; records reductions it could not fuse in `unfusable`."""

  def __init__(self, root: LazyNode, materialized: set):
    self.root, self.materialized = root, materialized
    self.inputs: dict[int, tuple[int, LazyNode]] = {}
    self.scalars: dict[int, tuple[int, LazyNode]] = {}
    self.unfusable: dict[LazyNode, str] = {}   # -> why it cannot be computed inline
    self.origin: dict[KNode, list[LazyNode]] = {}   # the lazy nodes each AST node computes
    self.fused: set[LazyNode] = set()
    self.full, self.axes, self.has_top = self._space()

  def _space(self) -> tuple:
    """The iteration space, its reduce axes (fixed by the first reduction) and whether one is at the top."""
    top = self._top_level_reduce()
    return (_base(self.root).shape, None, False) if top is None else (top.srcs[0].shape, top.arg, True)

  def _top_level_reduce(self):
    """The reduction the kernel is built around, if any: the first of the root's size reachable from the root through
    elementwise ops and movement ops that keep its elements in order (a matmul's rows seen as batch x time; a
    weight's gradient transposed twice on its way back to the weight) — unless the root also reduces that
    reduction's result again (a softmax of a matmul reduces the matmul's output rows, which the matmul's iteration
    space cannot hold: the kernel is then built around the softmax, and the matmul stored)."""
    stack, seen, top = [(_base(self.root), ())], set(), None
    while stack and top is None:
      n, path = stack.pop()
      if (id(n), path) in seen or self._is_leaf(n): continue
      seen.add((id(n), path))
      if n.op in REDUCE:
        in_order = view_of(n.shape, ((Op.RESHAPE, n.shape),) + path) == ShapeTracker.from_shape(n.shape)
        if n.numel == _base(self.root).numel and in_order: top = n
      elif n.op in MOVEMENT: stack.append((n.srcs[0], path + ((n.op, n.arg),)))
      elif n.op in ALU or n.op in (Op.DETACH, Op.CHECK): stack.extend((s, path) for s in reversed(n.srcs))
    return None if top is None or self._reduced_again(top) else top

  def _reduced_again(self, top: LazyNode) -> bool:
    """Does another reduction between the root and `top` read `top`'s result?"""
    def below(n): return () if self._is_leaf(n) or n is top else n.srcs
    region = toposort_nodes([_base(self.root)], below)
    reads_top: set[int] = {id(top)}
    for n in region:   # sources first: whether each node's value depends on top
      if n is not top and any(id(s) in reads_top for s in below(n)): reads_top.add(id(n))
    return any(n.op in REDUCE and n is not top and id(n) in reads_top for n in region)

  def _is_leaf(self, n): return n.realized or (id(n) in self.materialized and n is not self.root)

  def shared_key(self) -> tuple | None:
    """Nodes whose builders give one key are parts of one kernel template, computed by one kernel (None: none)."""
    return None

  @property
  def out_shape(self) -> tuple:
    return tuple(1 if i in (self.axes or ()) else s for i, s in enumerate(self.full))

  def build(self) -> tuple[KNode, tuple]:
    # with a top-level reduction the root is computed in its output space (the full space, reduce axes size 1)
    path = ((Op.RESHAPE, self.out_shape),) if self.has_top else ()
    value = self._visit(_base(self.root), path, "O" if self.has_top else "F")
    for r in self.fused:
      for b in self._contraction_operands(r) or ():
        if not self._is_leaf(b) and b.op not in (Op.BUFFER, Op.CONST, Op.IOTA, Op.GATHER):
          # a DOT reloads each operand tile once per tile of the other side: computing it inline repeats the work
          self.unfusable.setdefault(b, "a computed operand of a matmul")
      for c in self._narrowed_operands(r):
        self.unfusable.setdefault(c, "a matmul operand narrowed to half precision: every tile reads half the bytes")
    store_st = view_of(self.root.shape, path + _region(self.root))
    return self._note(KNode(K.STORE, self.root.dtype, (value,), Access(0, store_st)), self.root), store_st

  def _contraction_operands(self, r: LazyNode) -> list[LazyNode] | None:
    """The two operands of a contraction (a sum of a product of two broadcast operands, i.e. a matmul), else None."""
    src = r.srcs[0]
    if r.op is not Op.REDUCE_SUM or src.op is not Op.MUL: return None
    bases = []
    for s in src.srcs:
      seen_expand = False
      while not self._is_leaf(s) and (s.op in MOVEMENT or s.op is Op.CAST):
        seen_expand |= s.op is Op.EXPAND
        s = s.srcs[0]
      if not seen_expand: return None   # an elementwise product summed, not a contraction
      bases.append(s)
    return bases

  def _narrowed_operands(self, r: LazyNode) -> list[LazyNode]:
    """The narrowing float casts (float32 -> bfloat16 under autocast) between a contraction and its large stored
    operands (a float32 weight, a float32 gradient): stored, the DOT's tiles load half the bytes and convert none."""
    if self._contraction_operands(r) is None: return []
    out = []
    for s in r.srcs[0].srcs:
      while not self._is_leaf(s) and (s.op in MOVEMENT or s.op is Op.CAST):
        if s.op is Op.CAST and s.dtype.is_float and s.dtype.itemsize < s.srcs[0].dtype.itemsize:
          base = s.srcs[0]
          while not self._is_leaf(base) and base.op in MOVEMENT: base = base.srcs[0]
          if self._is_leaf(base) and base.numel >= MIN_STORED_RECOMPUTE: out.append(s)
          break
        s = s.srcs[0]
    return out

  @functools.cached_property
  def load_views(self) -> dict[int, set]:
    """(view, gather) of each load, by input slot."""
    out: dict[int, set] = {slot: set() for slot, _ in self.inputs.values()}
    for k in self.ast[0].walk():
      if k.op is K.LOAD: out[k.arg.slot].add((k.arg.view, k.arg.gather))
    return out

  @property
  def contraction(self) -> bool: return any(self._contraction_operands(r) is not None for r in self.fused)

  def _visit(self, node: LazyNode, path: tuple, region: str) -> KNode:
    """AST of `node` seen through `path`; an explicit stack so chains of any length work."""
    memo: dict = {}
    out = evaluate((node, path, region), lambda it: self._children(*it), lambda it, srcs: self._make(*it, srcs), memo,
                   key=lambda it: (id(it[0]), it[1], it[2]))
    self.visited = {k[0] for k in memo}
    return out

  def _children(self, n: LazyNode, path, region):
    if self._is_leaf(n) or n.op in (Op.CONST, Op.BUFFER, Op.IOTA): return []
    if n.op in MOVEMENT: return [(n.srcs[0], path + ((n.op, n.arg),), region)]
    if n.op in (Op.DETACH, Op.CHECK): return [(n.srcs[0], path, region)]
    if n.op in REDUCE:
      return [(n.srcs[0], (), "F")] if self._fuses(n, path, region) else []
    if n.op in (Op.CONTIGUOUS, Op.ASSIGN): return []   # materialized below the root
    if n.op is Op.GATHER: return [(n.srcs[1], path + _gather_index_path(n), region)]
    return [(s, path, region) for s in n.srcs]

  def _fuses(self, r: LazyNode, path, region) -> bool:
    if r in self.fused: return True
    if r in self.unfusable: return False
    st = view_of(r.shape, path)
    ok = r.srcs[0].shape == self.full and (self.axes is None or r.arg == self.axes)
    if ok and region == "O": ok = st == ShapeTracker.from_shape(r.shape)
    elif ok:   # broadcast back over the reduced axes: the elementwise work around it runs on its programs
      ok = st == ShapeTracker.from_shape(r.shape).expand(self.full)
      if ok and not spreads(self.full, r.arg):
        self.unfusable[r] = "a reduction with too few rows to carry elementwise work"
        return False
    if ok: self.axes = r.arg; self.fused.add(r)
    else: self.unfusable[r] = "a reduction used in another iteration space"
    return ok

  def _load(self, n: LazyNode, path, gather: Gather | None = None, index: KNode | None = None) -> KNode:
    slot, _ = self.inputs.setdefault(id(n), (len(self.inputs) + 1, n))
    return self._note(KNode(K.LOAD, n.dtype, (index,) if index is not None else (),
                            Access(slot, view_of(n.shape, path), gather)), n)

  def _note(self, k: KNode, n: LazyNode) -> KNode:
    """Record that AST node `k` computes lazy node `n` (its user line, at run time)."""
    self.origin.setdefault(k, []).append(n)
    return k

  def _make(self, n: LazyNode, path, region, srcs) -> KNode:
    if self._is_leaf(n) or n.op in (Op.BUFFER, Op.CONTIGUOUS, Op.ASSIGN) or (n.op in REDUCE and not srcs):
      return self._load(n, path)
    if n.op in MOVEMENT or n.op in (Op.DETACH, Op.CHECK): return srcs[0]
    if n.op is Op.GATHER:   # row 0 of x, seen as the output, moved to row `index` at run time
      x = n.srcs[0]
      x_path = path + ((Op.EXPAND, n.shape), (Op.RESHAPE, (1,) * len(n.srcs[1].shape) + x.shape[1:]),
                       (Op.SHRINK, ((0, 1),) + tuple((0, s) for s in x.shape[1:])))
      memory, to_x = (x, ()) if self._is_leaf(x) else _table_memory(x)
      out = self._load(memory, x_path + to_x, Gather(prod(x.shape[1:]), x.shape[0]), srcs[0])
    elif is_parameter(n):
      slot, _ = self.scalars.setdefault(id(n), (len(self.scalars), n))
      out = KNode(K.SCALAR, n.dtype, (), slot)
    elif n.op is Op.CONST: out = KNode(K.CONST, n.dtype, (), n.arg)
    elif n.op is Op.IOTA: out = KNode(K.INDEX, n.dtype, (), view_of(n.shape, path))
    elif n.op in REDUCE and self._contraction_operands(n) is not None and srcs[0].op is Op.MUL:
      out = KNode(K.DOT, n.dtype, srcs[0].srcs, self.axes)   # the one place a contraction is recognized
    elif n.op in REDUCE: out = KNode(n.op, n.dtype, tuple(srcs), self.axes)
    else: out = KNode(n.op, n.dtype, tuple(srcs), n.arg)
    if any(op is Op.PAD for op, _ in path):
      # a padded view of a computed value: outside the pad the value is 0, whatever the op makes of 0
      st = view_of(n.shape, path)
      if any(v.mask is not None for v in st.views):
        valid = KNode(K.VALID, bool_, (), st)
        out = KNode(Op.WHERE, n.dtype, (valid, out, KNode(K.CONST, n.dtype, (), False if n.dtype.is_bool else 0)),
                    None)
    return self._note(out, n)


class _AttentionBuilder(_KernelBuilder):
  """The kernel of an ATTENTION node (a kernel template, lowered by linearize's attention rule). Its space is
  (n, i, j, d, e): the leading dims flattened, query, key, q/k feature, v feature. Each source is loaded into it
  through a view, with the elementwise work above its stored inputs fused as in any kernel (the casts of q, k, v
  under autocast); a reduction below a source is stored."""
  ROLES = {"q": (1, 3), "k": (2, 3), "v": (2, 4), "do": (1, 4), "lse": (1,), "out": (1, 4), "delta": (1,),
           "mask": (1, 2)}

  def _space(self) -> tuple:
    q, v = self.root.srcs[0], self.root.srcs[2]
    return (prod(q.shape[:-2]),) + q.shape[-2:-1] + v.shape[-2:-1] + q.shape[-1:] + v.shape[-1:], None, False

  def _embedding(self, shape: tuple, axes: tuple) -> tuple:
    """The movement path that shows a tensor of `shape` (leading dims, then `axes` of the space) in the space."""
    five = tuple(s if a == 0 or a in axes else 1 for a, s in enumerate(self.full))
    return ((Op.EXPAND, self.full), (Op.RESHAPE, five))

  def shared_key(self) -> tuple:
    n = self.root
    return (Op.ATTENTION, tuple(id(s) for s in n.srcs), n.arg.scale, n.arg.causal, n.arg.query_major)

  def build(self) -> tuple[KNode, tuple]:
    a = self.root.arg
    names = ["q", "k", "v"] + (["do", "lse", "out" if a.query_major else "delta"] if a.backward else []) + \
      (["mask"] if a.masked else [])
    values, visited = [], set()
    for name, src in zip(names, self.root.srcs):
      values.append(self._visit(src, self._embedding(src.shape, self.ROLES[name]), "F"))
      visited |= self.visited
    self.visited = visited
    part_axes = {"out": (1, 4), "lse": (1,), "dq": (1, 3), "delta": (1,), "dk": (2, 3), "dv": (2, 4)}[a.part]
    store_st = view_of(self.root.shape, self._embedding(self.root.shape, part_axes)[1:])
    value = self._note(KNode(K.ATTENTION, self.root.dtype, tuple(values), a), self.root)
    return self._note(KNode(K.STORE, self.root.dtype, (value,), Access(0, store_st)), self.root), store_st


class _ScatterBuilder(_KernelBuilder):
  """The kernel of a SCATTER_ADD: its space is the value's (rows picked, row length); each element is added into the
  output row its index names, through a store that moves by index * row length (a gather's load, reversed)."""

  def _space(self) -> tuple: return self.root.srcs[1].shape, None, False

  def build(self) -> tuple[KNode, tuple]:
    index, value = self.root.srcs
    picks, rest = self.full[0], self.full[1:]
    v = self._visit(value, (), "F")
    visited = self.visited
    i = self._visit(index, ((Op.EXPAND, self.full), (Op.RESHAPE, (picks,) + (1,) * len(rest))), "F")
    self.visited |= visited
    store_st = view_of(self.root.shape, ((Op.EXPAND, self.full), (Op.SHRINK, ((0, 1),) + tuple((0, s) for s in rest))))
    access = Access(0, store_st, Gather(prod(rest), self.root.shape[0]))
    return self._note(KNode(K.STORE, self.root.dtype, (v, i), access), self.root), store_st


class _AxisBuilder(_KernelBuilder):
  """The kernel of a SCAN or SORT node: its space is its source's, with the scanned (sorted) axis the one reduce
  axis, which canonicalization puts last. Elementwise work above its stored inputs fuses in; a reduction below its
  source is stored. A sort's values and indices are parts of one kernel."""

  def _space(self) -> tuple: return self.root.srcs[0].shape, (self.root.arg.axis,), False

  def _fuses(self, r: LazyNode, path, region) -> bool:
    self.unfusable.setdefault(r, "a reduction under a scan or sort")
    return False

  def shared_key(self) -> tuple | None:
    n = self.root
    return (Op.SORT, id(n.srcs[0]), n.arg.axis, n.arg.descending) if n.op is Op.SORT else None

  def build(self) -> tuple[KNode, tuple]:
    value = self._visit(self.root.srcs[0], (), "F")
    op = K.SCAN if self.root.op is Op.SCAN else K.SORT
    node = self._note(KNode(op, self.root.dtype, (value,), self.root.arg), self.root)
    store_st = view_of(self.root.shape, ())
    return self._note(KNode(K.STORE, self.root.dtype, (node,), Access(0, store_st)), self.root), store_st


def _canonicalize(stores: list[KNode], full: tuple, axes, memo: dict) -> tuple[list[KNode], tuple, int]:
  """Move reduce axes last, drop size-1 axes, merge axes that every view walks contiguously (`memo` receives what
  each node became)."""
  axes = tuple(axes or ())
  order = [i for i in range(len(full)) if i not in axes] + list(axes)
  shape = [full[i] for i in order]
  kinds = ["r" if i in axes else "o" for i in order]
  nodes = toposort_nodes(stores)
  sts = [n.view.permute(order) for n in nodes if n.op in (K.LOAD, K.STORE, K.VALID, K.INDEX)]
  # groups of adjacent axes that merge
  groups: list[list[int]] = []
  for a in range(len(shape)):
    if shape[a] == 1: continue
    if groups and kinds[groups[-1][-1]] == kinds[a] and all(_mergeable(st, groups[-1][-1], a) for st in sts):
      groups[-1].append(a)
    else: groups.append([a])
  new_shape = tuple(prod(shape[a] for a in g) for g in groups)
  n_reduce = sum(1 for g in groups if kinds[g[0]] == "r")

  def remap(st: ShapeTracker) -> ShapeTracker:
    st = st.permute(order)
    return st.reshape(tuple(prod(st.shape[a] for a in g) for g in groups))

  reduce_axes = tuple(range(len(new_shape) - n_reduce, len(new_shape)))

  def moved(n: KNode, srcs: tuple) -> KNode:
    if n.op in (K.LOAD, K.STORE): arg = n.arg._replace(view=remap(n.arg.view))
    elif n.op in (K.VALID, K.INDEX): arg = remap(n.arg)
    elif n.op in REDUCE: arg = reduce_axes
    elif n.op in (K.SCAN, K.SORT): arg = n.arg._replace(axis=reduce_axes[0])
    elif n.op is K.DOT:
      if (arg := contraction_axes(srcs, new_shape, n_reduce)) is None:   # its layout is no matrix product after all
        return KNode(Op.REDUCE_SUM, n.dtype, (KNode(Op.MUL, n.dtype, srcs, None),), reduce_axes)
    else: arg = n.arg
    return KNode(n.op, n.dtype, srcs, arg)
  return rewrite(stores, moved, memo), new_shape, n_reduce


def _mergeable(st: ShapeTracker, a: int, b: int) -> bool:
  v = st.views[-1]
  if v.shape[a] == 1 and v.shape[b] == 1: return True
  if v.mask is not None and (v.mask[a] != (0, v.shape[a]) or v.mask[b] != (0, v.shape[b])): return False
  return v.strides[a] == v.strides[b] * v.shape[b]


# lazygrad functions that build no computation of their own: views, casts, constants, the gradient's seed
_PLUMBING = {"init", "reshape", "view", "permute", "transpose", "T", "mT", "expand", "expand_as", "squeeze",
             "unsqueeze", "flatten", "unflatten", "contiguous", "detach", "cast", "float", "half", "bfloat16", "to",
             "type", "full", "zeros", "ones", "full_like", "zeros_like", "ones_like", "getitem", "setitem", "clone",
             "assign", "copy_", "backward", "gradient", "realize", "_fresh"}


def _word(n: LazyNode) -> str | None:
  """What a lazy node's kernel is named after: the lazygrad function it was made by (the forward function's, with
  `_grad`, for a node of the backward pass), unless that is plumbing."""
  fwd = grad_origin.get(n)
  api = (fwd if fwd is not None else n).loc[2] if len(n.loc) > 2 else ""
  cls, _, fn = api.rpartition(".")
  word = re.sub(r"\W", "", fn if cls == "Tensor" else (cls or fn).lower()).strip("_")   # <lambda> -> lambda
  if not word or word in _PLUMBING: return None
  return word + "_grad" if fwd is not None else word


def _kernel_name(stores: list[KNode], shape, origin: dict) -> str:
  """`linear_gelu_64x3072x768`: the functions whose work the kernel does (its ALU ops, reductions and contractions;
  at most two, in order), then its iteration space; structural (`r_sum_...`, `e_...`) where no function names it."""
  plumbing = (K.LOAD, K.STORE, K.CONST, K.SCALAR, K.VALID, K.INDEX)
  computed = [k for k in toposort_nodes(stores) if k.op not in plumbing]
  words = list(dict.fromkeys(w for k in computed for n in origin.get(k, ()) if (w := _word(n))))
  if not words:
    ops = list(dict.fromkeys("dot" if n.op is K.DOT else n.op.name[7:].lower() for n in toposort_nodes(stores)
                             if n.op in REDUCE or n.op is K.DOT))
    words = ["r_" + "_".join(ops) if ops else "e"]
  name = "_".join(words[:2]) + ("_" + "x".join(map(str, shape)) if shape else "")
  return name + "_" if keyword.iskeyword(name) else name   # it names a Python function (and, or, not)


# ---------------------------------------------------------------------------------------------------- partition
@dataclass(eq=False)
class Group:
  """The nodes one kernel computes and stores, each with the reason it must be stored (shown at DEBUG=2), and the
  fusion analysis of each (what it computes inline, what it loads). All share one iteration space: `full`, with
  `axes` reduced (None: no reduction)."""
  roots: list[LazyNode]
  reasons: list[str]
  builders: list[_KernelBuilder]
  _loads: dict | None = None
  _buffers: set | None = None
  parts: list["Group"] = field(default_factory=list)   # a combined kernel's groups (`combined`); roots are theirs

  @property
  def full(self) -> tuple: return self.builders[0].full
  @property
  def axes(self): return next((b.axes for b in self.builders if b.axes is not None), None)
  @property
  def contraction(self) -> bool: return any(b.contraction for b in self.builders)
  @property
  def copy(self) -> bool: return self.roots[0].op is Op.COPY
  @property
  def template(self) -> bool: return isinstance(self.builders[0], _AttentionBuilder)
  @property
  def alone(self) -> bool:
    """Its kernel takes no other group's work: a template, a scatter (whose store adds into memory), a scan or a
    sort."""
    return isinstance(self.builders[0], (_AttentionBuilder, _ScatterBuilder, _AxisBuilder))

  def loads(self) -> dict[int, LazyNode]:
    if self._loads is None: self._loads = {i: n for b in self.builders for i, (_, n) in b.inputs.items()}
    return self._loads

  def computes(self) -> set[int]:
    """The nodes (by id) its kernel computes: its outputs and what it computes inline for them; not what it loads
    (realized nodes, other kernels' outputs)."""
    return {id(n) for n in self.roots} | {i for b in self.builders for i in b.visited if i not in b.inputs}

  def buffers(self) -> set[int]:
    """The memory it writes and reads (by buffer key)."""
    if self._buffers is None:
      self._buffers = {id(n) for n in self.roots} | {buffer_key(n) for n in self.loads().values()}
    return self._buffers

  def absorb(self, other: "Group"):
    """Take in `other`'s outputs, which come first (a producer's before its consumer's)."""
    self.roots, self.reasons, self.builders = other.roots + self.roots, other.reasons + self.reasons, \
      other.builders + self.builders
    self._loads = self._buffers = None

  @staticmethod
  def combined(parts: list["Group"]) -> "Group":
    """Groups that share no data run as the parts of one kernel, each over its own iteration space."""
    if len(parts) == 1: return parts[0]
    return Group([n for g in parts for n in g.roots], [w for g in parts for w in g.reasons],
                 [b for g in parts for b in g.builders], parts=parts)

  def __str__(self):
    if self.parts: return "combined: " + "; ".join(map(str, self.parts))
    outs = ", ".join(f"{n.op.name.lower()} {n.dtype.name}{list(n.shape)} ({why})" for n, why in zip(self.roots, self.reasons))
    return f"group space={list(self.full)} reduce={list(self.axes or [])}: {outs}"


def partition(targets: list[LazyNode]) -> list[Group]:
  """Cut the graph below `targets` into groups, one per kernel, in an order that respects data and in-place
  dependencies. First every node that must be stored is found, with its reason; then groups that can share one
  iteration space merge (a producer into the consumer that reads it element by element, and siblings that read
  the same input), so one kernel stores several outputs."""
  order = toposort(targets)
  pos = {id(n): i for i, n in enumerate(order)}
  reasons: dict[int, str] = {}
  for n in order:
    if n.realized: continue
    if n.op is Op.CONTIGUOUS: reasons.setdefault(id(n), "contiguous()")
    if n.op is Op.ASSIGN:
      reasons.setdefault(id(n), "in-place update")
      if not n.srcs[0].realized: reasons.setdefault(id(n.srcs[0]), "updated in place later")
    if n.op is Op.GATHER and _table_memory(n.srcs[0]) is None:
      reasons.setdefault(id(n.srcs[0]), "table of a gather")
    if n.op is Op.ATTENTION: reasons.setdefault(id(n), "fused attention (a kernel template)")
    if n.op is Op.SCATTER_ADD: reasons.setdefault(id(n), "a scatter-add (it adds into memory)")
    if n.op is Op.SCAN: reasons.setdefault(id(n), "a scan (its kernel walks each row in order)")
    if n.op is Op.SORT: reasons.setdefault(id(n), "a sort (its kernel holds each row whole)")
    if n.op is Op.COPY:
      reasons.setdefault(id(n), f"a copy from {n.srcs[0].device}")
      if not n.srcs[0].realized: reasons.setdefault(id(n.srcs[0]), f"copied to {n.device}")
  for n in targets:
    if not n.realized: reasons[id(n)] = "target"
  narrowed = _narrowing_casts(order)
  stored_as = lambda r: id(narrowed.get(id(r), r))   # a value narrowed on its one way out is stored narrowed
  builders: dict[int, _KernelBuilder] = {}
  new, found, pruned = set(reasons), set(), False
  while True:   # building a kernel may find values it cannot compute inline: they are stored too, then rebuilt
    owners: dict[int, int] = {}
    extra: dict[int, str] = {}
    for n in order:
      if id(n) not in reasons: continue
      if id(n) in builders and id(n) not in new and not (builders[id(n)].visited & new):
        b = builders[id(n)]   # nothing it reads was newly stored: the kernel stands
      else: b = _build(n, set(reasons))
      if n.op is Op.ASSIGN and _reads_target_elsewhere(b, n):
        extra.setdefault(id(n.srcs[1]), "an in-place update reads its own target elsewhere")
      builders[id(n)] = b
      for r, why in b.unfusable.items(): extra.setdefault(stored_as(r), why)
      for r in b.fused:
        if owners.setdefault(id(r), id(n)) != id(n): extra.setdefault(stored_as(r), "a reduction two kernels need")
    found |= set(extra)
    if recomputed := {i: why for i, why in _recomputed(order, builders, reasons).items() if i not in reasons}:
      # stored first: what else must be stored is found again with these in memory
      extra = {id(narrowed[i]) if i in narrowed else i: why for i, why in recomputed.items()}
    new = set(extra) - set(reasons)
    if not new and not pruned:   # once: values stored for a kernel that, as it turned out, reads a value above them
      pruned, new = True, _needless(found & set(reasons), reasons, builders, stored_as)
      for i in new: del reasons[i]
    elif new:
      for i in new: reasons[i] = extra[i]
    if not new: break
  roots = sorted((order[pos[i]] for i in reasons), key=lambda n: pos[id(n)])
  return _merged([Group([n], [reasons[id(n)]], [builders[id(n)]]) for n in roots])


def _needless(candidates: set[int], reasons: dict, builders: dict, stored_as) -> set[int]:
  """Values stored because a kernel could not compute them inline that no kernel of the final partition needs
  stored: every kernel that reads one would fuse it (at most one of them), none would refuse it. The kernel that
  refused it read it on its way to a value that was stored later (a backward matmul that reads GELU's gradient, which
  reads the matmul before it: once that gradient is stored, the matmul's product is fused into its epilogue)."""
  out = set()
  for i in candidates:
    trial, fusers = set(reasons) - {i}, 0
    for j, b in builders.items():
      if j == i or j not in reasons or i not in b.inputs: continue
      again = _build(b.root, trial)
      if any(stored_as(r) == i for r in again.unfusable): break
      fusers += any(stored_as(r) == i for r in again.fused)
    else:
      if fusers <= 1: out.add(i)
  return out


MIN_STORED_RECOMPUTE = 1 << 16   # smaller values (row statistics) cost less to recompute than a kernel launch


def _recomputed(order: list[LazyNode], builders: dict, stored: dict) -> dict[int, str]:
  """Elementwise values that cost more to compute inline in every kernel that reads them than to store once. A value
  R kernels compute, each reading K large inputs (at least a quarter of its size), costs R·K reads inline and K + 1
  + R stored: stored when (R - 1)(K - 1) > 2 (and it is not small). Without this a chain like a residual stream (x + f(x) + g(..) ...) is
  recomputed from its start in every kernel that reads it, at a cost that grows with its length."""
  computed_by: dict[int, int] = {}
  for b in builders.values():
    for i in b.visited:
      if i not in b.inputs: computed_by[i] = computed_by.get(i, 0) + 1
  leaves: dict[int, frozenset] = {}   # the stored or realized nodes (or reductions) each value reads: (id, size)
  out = {}
  for n in order:
    if n.realized or id(n) in stored or n.op in REDUCE:   # a reduction reads its inputs once, in its own kernel
      leaves[id(n)] = frozenset({(id(n), n.numel)})
      continue
    leaves[id(n)] = frozenset().union(*(leaves[id(s)] for s in n.srcs))
    r = computed_by.get(id(n), 0)
    if n.op in ALU and r > 1 and n.numel >= MIN_STORED_RECOMPUTE:
      k = sum(1 for _, size in leaves[id(n)] if 4 * size >= n.numel)
      if (r - 1) * (k - 1) > 2:   # stored: values above it read it, not its inputs
        out[id(n)] = f"computed by {r} kernels, reading {k} large inputs each time"
        leaves[id(n)] = frozenset({(id(n), n.numel)})
  return out


def _narrowing_casts(order: list[LazyNode]) -> dict[int, LazyNode]:
  """Nodes whose one use is a cast to a narrower float, maybe after reshapes and elementwise ops that are each
  their input's one use (a float32 matmul result, plus its bias, cast to bfloat16 under autocast), mapped to that
  cast: where such a node must be stored, the cast is stored instead (the ops between run in the producing kernel),
  in half the memory, with the same values its readers see."""
  users: dict[int, list[LazyNode]] = {}
  for n in order:
    for s in dict.fromkeys(n.srcs, None): users.setdefault(id(s), []).append(n)
  out = {}
  for n in reversed(order):   # users first: a node's chain continues its one user's
    if not n.dtype.is_float or len(us := users.get(id(n), [])) != 1: continue
    u = us[0]
    if u.op is Op.CAST and u.dtype.is_float and u.dtype.itemsize < n.dtype.itemsize: out[id(n)] = u
    elif (u.op is Op.RESHAPE or (u.op in ALU and u.dtype == n.dtype)) and id(u) in out: out[id(n)] = out[id(u)]
  return out


def _versions_below(n: LazyNode) -> list[LazyNode]:
  """The versions of a buffer an assign's target chain holds below `n` (not `n` itself): the assigns of this schedule
  and the value first stored there, not yet realized."""
  out = []
  while n.op is Op.ASSIGN and not n.realized and not (n := n.srcs[0]).realized: out.append(n)
  return out


def _written_span(n: LazyNode) -> tuple[int, int] | None:
  """The lowest and highest elements of its buffer an assign may write (None: none)."""
  return view_of(n.shape, _region(n)).bounds()


def _overlap(a: tuple | None, b: tuple | None) -> bool:
  return a is not None and b is not None and a[0] <= b[1] and b[0] <= a[1]


def buffer_key(n: LazyNode) -> int:
  """Nodes with the same key live in the same memory: a realized node's buffer, an assign's target buffer."""
  if n.realized: return id(n.buffer)
  return id(written_buffer(n)) if n.op is Op.ASSIGN else id(n)


class _GroupGraph:
  """Groups with their data and in-place ordering edges, merged in place as fusion proceeds."""

  def __init__(self, groups: list[Group]):
    self.groups = {i: g for i, g in enumerate(groups)}
    self.succ: dict[int, set[int]] = {i: set() for i in self.groups}
    owner = {id(n): i for i, g in self.groups.items() for n in g.roots}
    readers: dict[int, set[int]] = {}
    for i, g in self.groups.items():
      for n in g.loads().values():
        if id(n) in owner and owner[id(n)] != i: self.succ[owner[id(n)]].add(i)
        readers.setdefault(id(n), set()).add(i)
        if n.realized: readers.setdefault(id(n.buffer), set()).add(i)
    for i, g in self.groups.items():
      for n in g.loads().values():   # a reader of memory after the updates of it below what it reads, all of them
        for m in _versions_below(n): self.succ[owner.get(id(m), i)].add(i)
      for n in g.roots:
        if n.op is not Op.ASSIGN: continue
        # after every reader of the memory it overwrites (any version of it), and after the writes of it below that
        # may reach the elements it writes: updates of disjoint parts of one buffer (each parameter's gradient in an
        # optimizer's flat buffer) need no order among them
        below = _versions_below(n)
        for r in readers.get(id(written_buffer(n)), set()).union(*(readers.get(id(m), ()) for m in below)):
          self.succ[r].add(i)
        for m in below:
          if m.op is not Op.ASSIGN or _overlap(_written_span(m), _written_span(n)): self.succ[owner.get(id(m), i)].add(i)
    for i in self.groups: self.succ[i].discard(i)
    self.pred: dict[int, set[int]] = {i: set() for i in self.groups}
    for i, ss in self.succ.items():
      for j in ss: self.pred[j].add(i)

  def reaches(self, a: int, b: int, direct_ok: bool) -> bool:
    """Is there a path a -> .. -> b (with `direct_ok`, the edge a -> b itself does not count)?"""
    stack = [s for s in self.succ[a] if not (direct_ok and s == b)]
    seen = set(stack)
    while stack:
      x = stack.pop()
      if x == b: return True
      for s in self.succ[x]:
        if s not in seen: seen.add(s); stack.append(s)
    return False

  def merge(self, a: int, b: int):
    """Fold group a into group b."""
    self.groups[b].absorb(self.groups.pop(a))
    for s in self.succ.pop(a):
      self.pred[s].discard(a)
      if s != b: self.succ[b].add(s); self.pred[s].add(b)
    for p in self.pred.pop(a):
      self.succ[p].discard(a)
      if p != b: self.succ[p].add(b); self.pred[b].add(p)

  def ordered(self) -> list[Group]:
    """Topological order; among the groups ready, the one that frees the most memory (the intermediates it is the
    last to read), then the earliest. Without the first rule a backward pass ran every weight gradient's matmul at
    its end (the optimizer is their only reader), keeping each layer's activations and output gradients alive."""
    indeg = {i: len(self.pred[i]) for i in self.groups}
    readers: dict[int, int] = {}
    for g in self.groups.values():
      for n in g.loads().values():
        if not n.realized: readers[id(n)] = readers.get(id(n), 0) + 1
    def freed(i: int) -> int:
      return sum(n.numel * n.dtype.itemsize for n in self.groups[i].loads().values()
                 if not n.realized and readers[id(n)] == 1)
    def done(i: int):
      for n in self.groups[i].loads().values():
        if not n.realized: readers[id(n)] -= 1
      for s in self.succ[i]:
        indeg[s] -= 1
        if indeg[s] == 0: ready.add(s)
    ready = {i for i, d in indeg.items() if d == 0}
    out, held, emitted = [], {}, 0
    while ready or held:
      if not ready:   # nothing else can run: the groups held back run now, side by side
        for pool in held.values():
          out += [Group.combined(parts) for parts in _batches([self.groups[i] for i in pool])]
          for i in pool: done(i)
          emitted += len(pool)
        held = {}
        continue
      i = max(ready, key=lambda j: (freed(j), -j))
      ready.remove(i)
      if _holdable(self.groups[i]):
        held.setdefault(self.groups[i].roots[0].device, []).append(i)
        continue
      g = self.groups[i]
      # ready groups with small results come with it: of the same iteration space, in its kernel (a LayerNorm's
      # weight-gradient partial sums and the next bias gradient's, over the rows of gradients the same LayerNorm
      # backward made); else beside it, as the parts of one kernel (a bias gradient's partial sums beside a LayerNorm
      # backward). Moved earlier, a small result holds little memory longer, and its inputs are freed sooner
      came = [j for j in sorted(ready) if _small_result(self.groups[j]) and not _holdable(self.groups[j])]
      alongside = [j for j in came if _side_by_side(g, self.groups[j])]
      beside = [j for j in came if j not in alongside and _beside(g, self.groups[j])]
      emitted += 1 + len(alongside) + len(beside)
      done(i)
      for j in alongside + beside:
        ready.remove(j)
        done(j)
      for j in alongside: g.absorb(self.groups[j])
      out += [Group.combined(parts) for parts in _chunks([g] + [self.groups[j] for j in beside])]
    if emitted < len(self.groups):
      o = next(n for i in self.groups if indeg[i] for n in self.groups[i].roots if n.op is Op.ASSIGN)
      raise RuntimeError(f"assign at {fmt_loc(o.loc)}: one computation needs both the old and the new value of the "
                         "tensor updated in place there. Fix: clone() the old value before the update")
    return out


MAX_PARTS = 16            # groups one combined kernel runs: each adds its code to one Triton function's compile
MAX_COMBINED_BUFFERS = 48  # and the buffers it reads and writes: each is an argument of the launch
MAX_HELD_INPUT = 1 << 20   # bytes: a group that reads no larger intermediate may wait to run with others


def _batches(groups: list[Group]) -> list[list[Group]]:
  """Groups cut into the parts of combined kernels of at most MAX_PARTS parts and MAX_COMBINED_BUFFERS buffers.
  Groups whose kernels are the same code on other memory (a bias gradient's second pass in every layer) go together,
  so that the combined kernels repeat too and compile once; the one left over of each kind, all together."""
  kinds: dict[str, list[Group]] = {}
  for g in groups: kinds.setdefault(build_kernel(g).kernel.text, []).append(g)
  out, rest = [], []
  for same in kinds.values():
    out += _chunks(same)
    if len(out[-1]) == 1: rest += out.pop()
  return out + (_chunks(rest) if rest else [])


def _chunks(groups: list[Group]) -> list[list[Group]]:
  out, bufs = [], set()
  for g in groups:
    if not out or len(out[-1]) == MAX_PARTS or len(bufs | g.buffers()) > MAX_COMBINED_BUFFERS:
      out.append([])
      bufs = set()
    out[-1].append(g)
    bufs |= g.buffers()
  return out


def _small_result(g: Group) -> bool: return sum(n.numel * n.dtype.itemsize for n in g.roots) <= MAX_HELD_INPUT


def _beside(g: Group, other: Group) -> bool:
  """May `other`, ready when `g` runs, run beside it as a part of its kernel? Neither is a matmul (tuned on its own),
  a template, a scatter, a scan, a sort or a copy."""
  plain = lambda x: not (x.copy or x.alone or x.contraction) and prod(x.full) > 0
  return plain(g) and plain(other) and not g.parts


def _holdable(g: Group) -> bool:
  """May the group wait, to run as a part of a combined kernel with other groups that are ready when nothing else
  is (a bias gradient's second pass, a weight's cast to bfloat16)? Waiting keeps its inputs in memory: only small
  ones, or realized ones. Not a matmul (tuned on its own), a template, a scatter, a scan or a sort, or a copy."""
  if g.copy or g.alone or g.contraction or prod(g.full) == 0: return False
  own = {id(n) for n in g.roots}   # what one member reads of another is computed inline, not loaded
  return all(n.realized or id(n) in own or n.numel * n.dtype.itemsize <= MAX_HELD_INPUT for n in g.loads().values())


MIN_ROWS = 2048   # output rows a reduction needs to take in elementwise work: a few rows per program, 512+ programs


def spreads(full: tuple, axes: tuple) -> bool:
  """May elementwise work over `full` run inside a reduction over `axes`? It then runs on the reduction's programs:
  fine for many rows reduced along the innermost axes (softmax, layernorm), a few rows per program; but a reduction
  down columns (a bias gradient: 3072 sums over 16384 rows) or into a few totals has few programs, each walking a
  long way, and would put a large computation on them. Small spaces keep no GPU busy either way."""
  if prod(full) <= 1 << 16: return True
  kept = [i for i, s in enumerate(full) if s != 1]
  reduced = [i for i in kept if i in axes]
  innermost = reduced == kept[len(kept) - len(reduced):]
  return innermost and prod(s for i, s in enumerate(full) if i not in axes) >= MIN_ROWS


def _same_space(a: Group, b: Group) -> bool:
  if a.full != b.full or a.contraction or b.contraction or a.copy or b.copy or a.alone or b.alone: return False
  if a.axes is None and b.axes is None: return True
  if a.axes is None or b.axes is None: return spreads(a.full, a.axes or b.axes)
  return a.axes == b.axes


def _substitutable(producer: Group, consumer: Group) -> bool:
  """Does `consumer` read every output of `producer` only at the element it is computed (or broadcast back along
  the reduced axes)? Then it can use the values instead of loading them."""
  stores = {id(n): b.ast[1] for n, b in zip(producer.roots, producer.builders)}
  full = consumer.full
  for b in consumer.builders:
    for i, (slot, _) in b.inputs.items():
      if (store := stores.get(i)) is None: continue
      for st, gather in b.load_views[slot]:
        if gather is not None or not (st == store or (st.shape == full and st == store.expand(full))): return False
  return True


def _in_place_safe(groups: list[Group]) -> bool:
  """In one kernel an in-place update may read the memory it writes only at the element it writes, and its target
  is not another output (two stores to one address, in no defined order)."""
  if not any(n.op is Op.ASSIGN for g in groups for n in g.roots): return True
  roots = {id(n) for g in groups for n in g.roots}
  if any(n.op is Op.ASSIGN and id(n.srcs[0]) in roots for g in groups for n in g.roots): return False
  written = {buffer_key(n): b.ast[1] for g in groups for n, b in zip(g.roots, g.builders) if n.op is Op.ASSIGN}
  for g in groups:
    for b in g.builders:
      for slot, n in b.inputs.values():
        if (store := written.get(buffer_key(n))) is not None and any(st != store for st, _ in b.load_views[slot]):
          return False
  return True


def _merged(groups: list[Group]) -> list[Group]:
  """Merge groups that share an iteration space: producer into consumer, then siblings reading the same input."""
  graph = _GroupGraph(groups)
  for c in sorted(graph.groups):
    merged, refused = True, set()
    while merged:   # a merge brings the producer's producers in reach
      merged = False
      for p in sorted(graph.pred[c] - refused, reverse=True):
        refused.add(p)
        gp, gc = graph.groups[p], graph.groups[c]
        if _same_space(gp, gc) and any(id(n) in gc.loads() for n in gp.roots) and _small_enough(gp, gc) and \
           _substitutable(gp, gc) and _in_place_safe([gp, gc]) and not graph.reaches(p, c, True):
          graph.merge(p, c)
          merged = True
          break
  # the parts of a template one kernel computes together: attention's out and lse, dk and dv; a sort's values, indices
  parts: dict[tuple, int] = {}
  for i in sorted(graph.groups):
    if (key := graph.groups[i].builders[0].shared_key()) is None: continue
    if (head := parts.get(key)) is not None and not graph.reaches(head, i, False) and not graph.reaches(i, head, False):
      graph.merge(head, i)
    parts[key] = i
  readers: dict[int, list[int]] = {}
  for i, g in graph.groups.items():   # an input worth sharing is streamed, not a broadcast scalar or row statistic
    for n in g.loads().values():
      if 2 * prod(n.shape) >= prod(g.full): readers.setdefault(buffer_key(n), []).append(i)
  for ids in readers.values():
    head = None
    for b in dict.fromkeys(ids):
      if b not in graph.groups: continue
      if head is not None and head in graph.groups and _siblings(graph, head, b): graph.merge(head, b)
      head = b
  return graph.ordered()


def _siblings(graph: _GroupGraph, a: int, b: int) -> bool:
  """May two groups reading the same input become one kernel? See `_side_by_side`; and neither needs the other."""
  return _side_by_side(graph.groups[a], graph.groups[b]) and not graph.reaches(a, b, False) and \
    not graph.reaches(b, a, False)


def _side_by_side(a: Group, b: Group) -> bool:
  """May two groups that do not need each other be one kernel? Both reduce the same axes (or neither does) of one
  iteration space, and together they are small enough."""
  return (a.axes is None) == (b.axes is None) and _same_space(a, b) and _small_enough(a, b) and _in_place_safe([a, b])


MAX_BUFFERS, MAX_OUTPUTS = 12, 8


def _small_enough(a: Group, b: Group) -> bool:
  """Each buffer of a kernel is a tile in flight (registers) and an argument: a merge may bring together up to
  MAX_BUFFERS, or add at most two to what the larger group reads already; and store at most MAX_OUTPUTS."""
  if len(a.roots) + len(b.roots) > MAX_OUTPUTS: return False
  na, nb = len(a.buffers()), len(b.buffers())
  return len(a.buffers() | b.buffers()) <= max(MAX_BUFFERS, na + 2, nb + 2)


def build_kernel(group: Group) -> ScheduleItem:
  """The kernel AST of a group: one store per output, shared loads, and each output the group's other members
  read computed inline instead of loaded; canonicalized (reduce axes last, contiguous axes merged)."""
  outputs = group.roots
  if group.copy: return ScheduleItem(None, outputs, [outputs[0].srcs[0]], [], group.reasons)
  out_slot = {id(n): i for i, n in enumerate(outputs)}
  inputs: dict[int, tuple[int, LazyNode]] = {}
  scalars: dict[int, tuple[int, LazyNode]] = {}
  origin: dict[KNode, list] = {}
  parts = [_part_stores(g, out_slot, inputs, scalars, origin) for g in group.parts or [group]]
  in_nodes = [node for _, node in sorted(inputs.values(), key=lambda t: t[0])]
  sc_nodes = [node for _, node in sorted(scalars.values(), key=lambda t: t[0])]
  bufs = tuple(BufSpec(n.dtype, prod(n.shape)) for n in outputs + in_nodes)
  kernels = [Kernel(name, shape, n_reduce, bufs, len(outputs), tuple(stores), tuple(s.dtype for s in sc_nodes))
             for name, shape, n_reduce, stores in parts]
  if len(kernels) == 1: kernel = kernels[0]
  else:
    stores = tuple(st for k in kernels for st in k.stores)
    name = f"{_kernel_name(list(stores), (), origin)}_{len(kernels)}parts"
    kernel = Kernel(name, (), 0, bufs, len(outputs), stores, kernels[0].scalars, tuple(kernels))
  origins = [list({id(o): o for o in origin.get(k, ())}.values()) for k in kernel.nodes]
  kernel, offsets = rebased(kernel)   # the same nodes in the same order: origins stay valid
  return ScheduleItem(kernel, outputs, in_nodes, sc_nodes, group.reasons, origins, offsets)


def _part_stores(group: Group, out_slot: dict, inputs: dict, scalars: dict, origin: dict) -> tuple:
  """(name, shape, n_reduce, stores) of a group's kernel, its buffers numbered by `out_slot` and `inputs` and its
  scalars by `scalars` (shared by a combined kernel's parts, which add to them); `origin` receives the lazy nodes
  each AST node computes."""
  outputs = group.roots
  values: dict[int, KNode] = {}   # outputs rewritten so far (producers come first in a group)
  stores, renumbered_origin = [], {}
  for n, b in zip(outputs, group.builders):
    slot_of = {slot: node for slot, node in b.inputs.values()}
    scalar_of = {i: node for i, node in b.scalars.values()}
    def renumbered(k: KNode, srcs: tuple, n=n, slot_of=slot_of, scalar_of=scalar_of) -> KNode:
      if k.op is K.LOAD and id(node := slot_of[k.arg.slot]) in values and k.arg.gather is None:
        return values[id(node)]   # another output of this kernel, at the element it is computed
      if k.op is K.LOAD: arg = k.arg._replace(slot=inputs.setdefault(id(node), (len(out_slot) + len(inputs), node))[0])
      elif k.op is K.SCALAR: arg = scalars.setdefault(id(scalar_of[k.arg]), (len(scalars), scalar_of[k.arg]))[0]
      elif k.op is K.STORE: arg = k.arg._replace(slot=out_slot[id(n)])
      else: arg = k.arg
      return KNode(k.op, k.dtype, srcs, arg)
    memo: dict = {}
    stores += rewrite([b.ast[0]], renumbered, memo)
    values[id(n)] = stores[-1].srcs[0]
    for k, nodes in b.origin.items():
      if id(k) in memo: renumbered_origin.setdefault(memo[id(k)], []).extend(nodes)
  if group.template:   # its axes have roles: not canonicalized
    memo, shape, n_reduce = {id(k): k for k in renumbered_origin}, group.full, 0
  else:
    memo = {}
    stores, shape, n_reduce = _canonicalize(stores, group.full, group.axes, memo)
  mine: dict[KNode, list] = {}
  for k, nodes in renumbered_origin.items(): mine.setdefault(memo[id(k)], []).extend(nodes)
  for k, nodes in mine.items(): origin.setdefault(k, []).extend(nodes)
  name = "attention_" + "_".join(n.arg.part for n in outputs) + "_" + "x".join(map(str, shape)) if group.template \
    else _kernel_name(stores, shape, mine)
  return name, shape, n_reduce, stores


def schedule_text(items: list[ScheduleItem], order: list[LazyNode]) -> str:
  """The schedule as text: kernels (and copies) in order, each with the buffers it writes, why each is stored, and
  the buffers it reads; nodes are named by their position in `order`, as `ir.node.graph_text` names them."""
  names = {id(n): f"%{i}" for i, n in enumerate(order)}
  def buf(n: LazyNode) -> str:
    return f"{names.get(id(n), '%?')} {n.dtype.short}[{','.join(map(str, n.shape))}] {_size(prod(n.shape) * n.dtype.itemsize)}"
  lines = [f"schedule: {len(items)} item{'s' if len(items) != 1 else ''}"]
  for i, it in enumerate(items):
    what = it.kernel.name if it.kernel is not None else f"copy {it.inputs[0].device} -> {it.outputs[0].device}"
    lines.append(f"  {i:3d} {what}")
    lines += [f"        writes {buf(n)} ({why})" for n, why in zip(it.outputs, it.reasons)]
    if it.inputs: lines.append("        reads  " + ", ".join(buf(n) for n in it.inputs))
  return "\n".join(lines)


def _size(nbytes: int) -> str:
  if nbytes < 1024: return f"{nbytes} B"
  return f"{nbytes / 1024:.4g} KiB" if nbytes < 1 << 20 else f"{nbytes / (1 << 20):.4g} MiB"


def schedule(targets: list[LazyNode]) -> list[ScheduleItem]:
  """Ordered kernels that compute `targets` (and any node they must store on the way)."""
  return [build_kernel(g) for g in partition(targets)]


def _build(n: LazyNode, materialized: set) -> _KernelBuilder:
  kind = {Op.ATTENTION: _AttentionBuilder, Op.SCATTER_ADD: _ScatterBuilder, Op.SCAN: _AxisBuilder,
          Op.SORT: _AxisBuilder}.get(n.op) if not n.realized else None
  b = (kind or _KernelBuilder)(n, materialized)
  b.ast = b.build()
  return b


def _reads_target_elsewhere(b: _KernelBuilder, assign: LazyNode) -> bool:
  """An in-place kernel may read the buffer it writes only at the element it writes."""
  store, store_st = b.ast
  slot = b.inputs.get(id(assign.srcs[0]), (None,))[0]
  return any(k.op is K.LOAD and k.arg.slot == slot and k.arg.view != store_st for k in store.walk())


def written_buffer(n: LazyNode):
  """The buffer an assign writes: its target's, below any assigns in the same schedule."""
  while not n.realized: n = n.srcs[0]
  return n.buffer
