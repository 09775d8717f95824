"""Schedule: cut the lazy graph into kernels.

Every node that must exist in memory (the targets, `contiguous()`, reductions that cannot fuse) roots one kernel.
A kernel pulls in everything below its root up to realized nodes: elementwise chains fuse, movement ops become views,
and reductions fuse when their result is used
  - element by element after them (a matmul followed by a bias and relu: the post-reduce part of the kernel), or
  - broadcast back over the very axes they reduced (softmax, layernorm: the reduce axes then sit in one tile).
A reduction that does not fit either pattern, or that two kernels need, is realized as a kernel of its own."""
from __future__ import annotations
from dataclasses import dataclass, field
from ..dtypes import bool_, float32
from ..helpers import prod, fmt_loc
from ..ir.node import LazyNode, toposort
from ..ir.ops import Op, ALU, REDUCE, MOVEMENT
from ..ir.view import ShapeTracker, view_of
from .kernel import K, KNode, Kernel, BufSpec


@dataclass
class ScheduleItem:
  kernel: Kernel
  outputs: list[LazyNode]
  inputs: list[LazyNode]
  scalars: list[LazyNode] = field(default_factory=list)   # the CONST nodes whose values the kernel takes as arguments


def is_parameter(n: LazyNode) -> bool:
  """A constant passed to its kernel as an argument, not written into it: a new value (a changing learning rate,
  a scale) then reuses the compiled kernel. Only float32: Triton types a float argument as float32, so one in a
  float16 or float64 expression would change its type; integer and bool constants rarely change, and literals let
  the compiler simplify."""
  return n.op is Op.CONST and n.dtype == float32


@dataclass(frozen=True)
class ScheduleOptions:
  max_fused_row: int | None = None   # most elements a broadcast-back reduction may span (None: no limit)


def _strip1(shape): return tuple(s for s in shape if s != 1)


def _gather_index_path(n: LazyNode) -> tuple:
  """Movement ops (outermost first) that show a GATHER's index tensor in the GATHER's output shape."""
  idx = n.srcs[1]
  return ((Op.EXPAND, n.shape), (Op.RESHAPE, idx.shape + (1,) * (len(n.shape) - len(idx.shape))))
def _base(n: LazyNode) -> LazyNode:
  """What a materialized node's kernel computes: the value under a contiguous() or an assign()."""
  if n.realized: return n
  return n.srcs[0] if n.op is Op.CONTIGUOUS else n.srcs[1] if n.op is Op.ASSIGN else n


def _region(n: LazyNode) -> tuple:
  """Movement ops (outermost first) from an assign's target to the part of it the value overwrites; () for all."""
  return n.arg or () if n.op is Op.ASSIGN else ()


class _KernelBuilder:
  """Builds the AST of the kernel rooted at `root`; records reductions it could not fuse in `unfusable`."""

  def __init__(self, root: LazyNode, materialized: set, opts: ScheduleOptions, use_top: bool = True):
    self.root, self.materialized, self.opts = root, materialized, opts
    self.inputs: dict[int, tuple[int, LazyNode]] = {}
    self.scalars: dict[int, tuple[int, LazyNode]] = {}
    self.unfusable: set[LazyNode] = set()
    self.fused: set[LazyNode] = set()
    self.full, self.axes = _base(root).shape, None   # iteration space and reduce axes, fixed by the first reduction
    top = self._top_level_reduce() if use_top else None
    self.has_top = top is not None
    if top is not None: self.full, self.axes = top.srcs[0].shape, top.arg

  def _top_level_reduce(self):
    """First reduction reachable from the root through elementwise ops and size-1 reshapes only."""
    stack, seen = [_base(self.root)], set()
    while stack:
      n = stack.pop()
      if id(n) in seen or self._is_leaf(n): continue
      seen.add(id(n))
      if n.op in REDUCE:
        if _strip1(n.shape) == _strip1(_base(self.root).shape): return n
      elif n.op in ALU or n.op in (Op.DETACH, Op.CHECK) or (n.op is Op.RESHAPE and _strip1(n.shape) == _strip1(n.srcs[0].shape)):
        stack.extend(reversed(n.srcs))
    return None

  def _is_leaf(self, n): return n.realized or (id(n) in self.materialized and n is not self.root)

  @property
  def out_shape(self) -> tuple:
    return tuple(1 if i in (self.axes or ()) else s for i, s in enumerate(self.full))

  def build(self) -> tuple[KNode, tuple]:
    # with a top-level reduction the root is computed in its output space (the full space, reduce axes size 1)
    path = ((Op.RESHAPE, self.out_shape),) if self.has_top else ()
    value = self._visit(_base(self.root), path, "O" if self.has_top else "F")
    for r in self.fused: self.unfusable |= self._computed_contraction_operands(r)
    store_st = view_of(self.root.shape, path + _region(self.root))
    return KNode(K.STORE, self.root.dtype, (value,), (0, store_st), (self.root.loc,)), store_st

  def _computed_contraction_operands(self, r: LazyNode) -> set:
    """Computed values feeding a contraction (a sum of a product of two broadcast operands, i.e. a matmul).
    A DOT reloads each operand tile once per tile of the other side, so computing an operand inside it would
    repeat that work many times over: such operands are stored once instead."""
    src = r.srcs[0]
    if r.op is not Op.REDUCE_SUM or src.op is not Op.MUL: return set()
    bases = []
    for s in src.srcs:
      seen_expand = False
      while not self._is_leaf(s) and (s.op in MOVEMENT or s.op is Op.CAST):
        seen_expand |= s.op is Op.EXPAND
        s = s.srcs[0]
      if not seen_expand: return set()   # an elementwise product summed, not a contraction
      bases.append(s)
    return {b for b in bases if not self._is_leaf(b) and b.op not in (Op.BUFFER, Op.CONST, Op.IOTA, Op.GATHER)}

  def _visit(self, node: LazyNode, path: tuple, region: str) -> KNode:
    """AST of `node` seen through `path`; an explicit stack so chains of any length work."""
    memo: dict = {}
    stack = [(node, path, region, False)]
    while stack:
      n, p, r, ready = stack.pop()
      key = (id(n), p, r)
      if key in memo: continue
      kids = self._children(n, p, r)
      if not ready and any((id(c[0]), c[1], c[2]) not in memo for c in kids):
        stack.append((n, p, r, True))
        stack.extend((c[0], c[1], c[2], False) for c in kids)
        continue
      memo[key] = self._make(n, p, r, [memo[(id(c[0]), c[1], c[2])] for c in kids])
    self.visited = {k[0] for k in memo}
    return memo[(id(node), path, region)]

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
    elif ok:   # broadcast back over the reduced axes: they must fit in one tile
      ok = st == ShapeTracker.from_shape(r.shape).expand(self.full) and (
        self.opts.max_fused_row is None or prod(self.full[a] for a in r.arg) <= self.opts.max_fused_row)
    if ok: self.axes = r.arg; self.fused.add(r)
    else: self.unfusable.add(r)
    return ok

  def _load(self, n: LazyNode, path, gather=None, index: KNode | None = None) -> KNode:
    slot, _ = self.inputs.setdefault(id(n), (len(self.inputs) + 1, n))
    return KNode(K.LOAD, n.dtype, (index,) if index is not None else (), (slot, view_of(n.shape, path), gather), (n.loc,))

  def _make(self, n: LazyNode, path, region, srcs) -> KNode:
    if self._is_leaf(n) or n.op in (Op.BUFFER, Op.CONTIGUOUS, Op.ASSIGN) or (n.op in REDUCE and not srcs):
      return self._load(n, path)
    if n.op in MOVEMENT or n.op in (Op.DETACH, Op.CHECK): return srcs[0]
    if n.op is Op.GATHER:   # row 0 of x, seen as the output, moved to row `index` at run time
      x = n.srcs[0]
      x_path = path + ((Op.EXPAND, n.shape), (Op.RESHAPE, (1,) * len(n.srcs[1].shape) + x.shape[1:]),
                       (Op.SHRINK, ((0, 1),) + tuple((0, s) for s in x.shape[1:])))
      out = self._load(x, x_path, (prod(x.shape[1:]), x.shape[0]), srcs[0])
    elif is_parameter(n):
      slot, _ = self.scalars.setdefault(id(n), (len(self.scalars), n))
      out = KNode(K.SCALAR, n.dtype, (), slot, (n.loc,))
    elif n.op is Op.CONST: out = KNode(K.CONST, n.dtype, (), n.arg, (n.loc,))
    elif n.op is Op.IOTA: out = KNode(K.INDEX, n.dtype, (), view_of(n.shape, path), (n.loc,))
    elif n.op in REDUCE: out = KNode(n.op, n.dtype, tuple(srcs), self.axes, (n.loc,))
    else: out = KNode(n.op, n.dtype, tuple(srcs), n.arg, (n.loc,))
    if any(op is Op.PAD for op, _ in path):
      # a padded view of a computed value: outside the pad the value is 0, whatever the op makes of 0
      st = view_of(n.shape, path)
      if any(v.mask is not None for v in st.views):
        valid = KNode(K.VALID, bool_, (), st)
        out = KNode(Op.WHERE, n.dtype, (valid, out, KNode(K.CONST, n.dtype, (), False if n.dtype.is_bool else 0)),
                    None, (n.loc,))
    return out


def _canonicalize(store: KNode, full: tuple, axes) -> tuple[KNode, tuple, int]:
  """Move reduce axes last, drop size-1 axes, merge axes that every view walks contiguously."""
  axes = tuple(axes or ())
  order = [i for i in range(len(full)) if i not in axes] + list(axes)
  shape = [full[i] for i in order]
  kinds = ["r" if i in axes else "o" for i in order]
  sts = [(n.arg if n.op in (K.VALID, K.INDEX) else n.arg[1]).permute(order) for n in store.walk()
         if n.op in (K.LOAD, K.STORE, K.VALID, K.INDEX)]
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

  memo: dict = {}
  for n in store.walk():
    srcs = tuple(memo[s] for s in n.srcs)
    if n.op is K.LOAD: arg = (n.arg[0], remap(n.arg[1]), n.arg[2])
    elif n.op is K.STORE: arg = (n.arg[0], remap(n.arg[1]))
    elif n.op in (K.VALID, K.INDEX): arg = remap(n.arg)
    elif n.op in REDUCE: arg = tuple(range(len(new_shape) - n_reduce, len(new_shape)))
    else: arg = n.arg
    memo[n] = KNode(n.op, n.dtype, srcs, arg, n.locs)
  return memo[store], new_shape, n_reduce


def _mergeable(st: ShapeTracker, a: int, b: int) -> bool:
  v = st.views[-1]
  if v.shape[a] == 1 and v.shape[b] == 1: return True
  if v.mask is not None and (v.mask[a] != (0, v.shape[a]) or v.mask[b] != (0, v.shape[b])): return False
  return v.strides[a] == v.strides[b] * v.shape[b]


def _kernel_name(store: KNode, shape, n_reduce) -> str:
  ops = []
  for n in store.walk():
    if n.op in REDUCE and (name := n.op.name[7:].lower()) not in ops: ops.append(name)
  return ("r_" + "_".join(ops) if ops else "e") + "_" + "_".join(map(str, shape))


def schedule(targets: list[LazyNode], opts: ScheduleOptions = ScheduleOptions()) -> list[ScheduleItem]:
  """Ordered kernels that compute `targets` (and any node they must materialize on the way)."""
  order = toposort(targets)
  pos = {id(n): i for i, n in enumerate(order)}
  materialized = {id(n) for n in targets if not n.realized} | \
                 {id(n) for n in order if n.op in (Op.CONTIGUOUS, Op.ASSIGN) and not n.realized} | \
                 {id(n.srcs[0]) for n in order if n.op in (Op.ASSIGN, Op.GATHER) and not n.realized and not n.srcs[0].realized}
  builders: dict[int, _KernelBuilder] = {}
  new = set(materialized)
  while True:
    owners: dict[int, int] = {}
    extra: set[int] = set()
    for n in order:
      if id(n) not in materialized: continue
      if id(n) in builders and id(n) not in new and not (builders[id(n)].visited & new):
        b = builders[id(n)]   # nothing it reads was newly materialized: the kernel stands
      else: b = _build(n, materialized, opts)
      if n.op is Op.ASSIGN and _reads_target_elsewhere(b, n): extra.add(id(n.srcs[1]))
      builders[id(n)] = b
      extra |= {id(r) for r in b.unfusable}
      for r in b.fused:
        if owners.setdefault(id(r), id(n)) != id(n): extra.add(id(r))   # two kernels need it: store it once
    new = extra - materialized
    if not new: break
    materialized |= new
  items = []
  for n in sorted((order[pos[i]] for i in materialized), key=lambda n: pos[id(n)]):
    b = builders[id(n)]
    store, _ = b.ast
    inputs = [node for _, node in sorted(b.inputs.values(), key=lambda t: t[0])]
    scalars = [node for _, node in sorted(b.scalars.values(), key=lambda t: t[0])]
    ast, shape, n_reduce = _canonicalize(store, b.full, b.axes)
    bufs = (BufSpec(n.dtype, prod(n.shape)),) + tuple(BufSpec(i.dtype, prod(i.shape)) for i in inputs)
    kernel = Kernel(_kernel_name(ast, shape, n_reduce), shape, n_reduce, bufs, 1, (ast,), tuple(s.dtype for s in scalars))
    items.append(ScheduleItem(kernel, [n], inputs, scalars))
  return _order_assigns(items)


def _build(n: LazyNode, materialized: set, opts: ScheduleOptions) -> _KernelBuilder:
  b = _KernelBuilder(n, materialized, opts)
  b.ast = b.build()
  if b.has_top and b.unfusable and _base(n).op not in REDUCE:
    # a reduction feeding the root element by element may still be the wrong one to build the kernel around
    # (softmax of a matmul): keep whichever choice leaves fewer reductions to materialize
    alt = _KernelBuilder(n, materialized, opts, use_top=False)
    alt.ast = alt.build()
    if len(alt.unfusable) < len(b.unfusable): b = alt
  return b


def _reads_target_elsewhere(b: _KernelBuilder, assign: LazyNode) -> bool:
  """An in-place kernel may read the buffer it writes only at the element it writes."""
  store, store_st = b.ast
  slot = b.inputs.get(id(assign.srcs[0]), (None,))[0]
  return any(k.op is K.LOAD and k.arg[0] == slot and k.arg[1] != store_st for k in store.walk())


def written_buffer(n: LazyNode):
  """The buffer an assign writes: its target's, below any assigns in the same schedule."""
  while not n.realized: n = n.srcs[0]
  return n.buffer


def _order_assigns(items: list[ScheduleItem]) -> list[ScheduleItem]:
  """Topological order in which an assign's kernel runs after every kernel that reads the old contents of its
  buffer, through the target node or any other realized node on the same buffer."""
  if not any(o.op is Op.ASSIGN for it in items for o in it.outputs): return items
  producer = {id(o): i for i, it in enumerate(items) for o in it.outputs}
  readers: dict[int, set[int]] = {}
  for j, it in enumerate(items):
    for x in it.inputs:
      readers.setdefault(id(x), set()).add(j)
      if x.realized: readers.setdefault(id(x.buffer), set()).add(j)
  deps = [{producer[id(x)] for x in it.inputs if id(x) in producer} for it in items]
  for i, it in enumerate(items):
    for o in it.outputs:
      if o.op is Op.ASSIGN:
        deps[i] |= (readers.get(id(o.srcs[0]), set()) | readers.get(id(written_buffer(o)), set())) - {i}
  done, out, pending = set(), [], list(range(len(items)))
  while pending:   # stable: earliest ready item first
    ready = next((i for i in pending if deps[i] <= done), None)
    if ready is None:
      o = next(o for i in pending for o in items[i].outputs if o.op is Op.ASSIGN)
      raise RuntimeError(f"assign at {fmt_loc(o.loc)}: one computation needs both the old and the new value of the "
                         "tensor updated in place there. Fix: clone() the old value before the update")
    pending.remove(ready); done.add(ready); out.append(items[ready])
  return out
