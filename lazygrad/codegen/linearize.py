"""Linearizer: kernel AST -> block-level uops, for a given tiling.

Output axes are split into blocks; one program computes one block of every output (the grid is the number of
blocks, its index decomposed per axis). Reduce axes are either one whole tile, or walked by loops: one loop per
level of reductions (reductions that need no other reduction first share the first loop, a reduction of a value
that needs them the next, as the row sum of exp(x - max) needs the row max), each with its accumulators, and a last
loop for the outputs that vary along the reduce axes (softmax's probabilities). A sum of a product whose operands
vary along different output axes becomes a DOT.

Input: a verified `Kernel` and a `Tiling` (block sizes per axis; `choose_tiling` gives a device's default). Output: a
`Program` (uops and the launch grid), checked by `Program.verify` under LAZYGRAD_VERIFY."""
from __future__ import annotations
from dataclasses import dataclass
import functools, math
import numpy as np
from ..dtypes import DType, bool_, int32, int64, float32, float64
from ..helpers import prod, exact, settings
from ..ir.alu import exec_alu
from ..ir.ops import Op, REDUCE, scan_identity
from ..ir.symbolic import Lin, Var, Div, Cond
from ..ir.view import ShapeTracker
from ..ir.graph import evaluate, toposort
from .kernel import K, KNode, Kernel, axis_vars, varying_axes
from .uops import U, UOp, Program, TileDesc


LOG2E = 1 / math.log(2)


@dataclass(frozen=True)
class LoweringOptions:
  """How a device wants kernels tiled. `whole`: one tile spans the iteration space (numpy), unless it holds more
  than `max_whole` elements and is not a contraction (whose tiles are its operands). Otherwise blocks are powers of
  two with at most `max_tile` elements (`max_elementwise_tile` without reductions), and `dot_blocks` (m, n, k) for
  contractions. A kernel that uses its reductions over their own axes again (softmax, layernorm) keeps those axes
  in one tile up to `max_whole_row` elements, so it reads the row once; longer rows loop once per level of
  reductions."""
  whole: bool = True
  max_whole: int | None = None
  max_tile: int = 4096
  max_elementwise_tile: int = 1024   # a kernel without reductions: more per program only adds registers (spills)
  max_reduce_block: int = 1024
  max_whole_row: int = 8192
  dot_blocks: tuple = (128, 128, 64)   # (m, n, k) for 2-byte operands; k shrinks for wider ones
  min_dot_block: int = 16          # tl.dot needs at least 16 along each axis
  column_block: int = 64           # block of the contiguous output axis of a column reduction
  dot_float64: bool = True         # Triton 3.6 cannot compile float64 tl.dot (MMA "largeK" assertion)
  # the longest row a program sorts (in one tile; None: any): Triton 3.6 took 19 s to compile a 4096-lane sort on an
  # H200 and over 100 s for 8192 lanes
  max_sort: int | None = 4096
  # tf32 tensor cores read both operands K-major (Hopper's wgmma): a float32 matmul's N-major right operand is then
  # copied K-major when the graph is built (Tensor.matmul). An H100's tf32 tiles ran at 0.25-0.45x cuBLAS from an
  # N-major operand, 0.73-1.0x K-major (bench/NOTES.md)
  float32_k_major: bool = False
  # a matmul of more output tiles than this runs on this many programs (the device's SMs), each looping over tiles: a
  # persistent kernel, whose loads pipeline across tiles. A minimal Triton matmul on an H100 at GPT-2's shapes went
  # from 0.76-0.83x cuBLAS to 0.87-0.92x (bench/NOTES.md). None: a program per tile
  persistent_programs: int | None = None
  # a contraction's epilogue (what follows its K loop: casts, bias, activation, stores) runs on sub-tiles of at most
  # this many output columns, halves of the accumulator (None: on the whole tile). Its store converts the MMA layout
  # of the accumulator through shared memory, a smaller one per sub-tile: an H200's 128 x 256 tiles of GPT-2's
  # matmuls ran 1-6% faster with 128 (bench/NOTES.md)
  epilogue_columns: int | None = None
  # the device reads and writes tiles through tensor descriptors (TMA: one instruction a tile, no address arithmetic,
  # lanes past the edges zero-filled or dropped by the copy engine), where a tiling asks for them (`Tiling.descriptors`)
  tensor_descriptors: bool = False


@dataclass(frozen=True)
class Tiling:
  """How one kernel is cut up: a block size per axis, and for Triton the warps of a program and the pipeline stages
  of its loops. An explicit input of lowering and part of every program cache key, so a tuner can try several."""
  blocks: tuple
  num_warps: int = 1
  num_stages: int = 1
  # a persistent matmul's operand and output tiles read and written through tensor descriptors, where the device
  # takes them: on an H100 the LM head went from 0.89x cuBLAS to 1.02x, other shapes gained or lost a few percent
  # (bench/NOTES.md), so it is a tuner's choice. Only persistent: a descriptor is made once a program
  descriptors: bool = False


@functools.lru_cache(maxsize=4096)   # a kernel of a cached schedule asks again at every realize
def choose_tiling(k: Kernel, opts: LoweringOptions) -> Tiling:
  """The default tiling: the blocks `opts` gives this kernel, warps by tile size, 3 stages when it loops. A combined
  kernel's parts keep their own blocks; it takes the most warps any part wants and no pipelining (the loop a part
  runs in is not one to pipeline)."""
  if k.parts: return Tiling((), max(choose_tiling(p, opts).num_warps for p in k.parts), 1)
  if (a := attention_of(k)) is not None: return _attention_tiling(k, a, opts)
  blocks = _axis_blocks(k, opts) if axis_kernel(k) else choose_blocks(k, opts)
  tile = prod(blocks)
  loops = any(blocks[a] < k.shape[a] for a in range(len(k.shape) - k.n_reduce, len(k.shape)))
  return Tiling(blocks, 8 if tile >= 8192 else 4 if tile >= 1024 else 2 if tile >= 256 else 1, 3 if loops else 1)


def axis_kernel(k: Kernel) -> bool:
  """Is it the kernel of a scan or a sort (along its last axis; see _AxisLinearizer)?"""
  return k.stores[0].srcs[0].op in (K.SCAN, K.SORT)


def _axis_blocks(k: Kernel, opts: LoweringOptions) -> tuple:
  """A scan's or sort's blocks: a sort's rows whole (padded to a power of two), a scan's in blocks of up to
  max_reduce_block; as many rows as fit a tile. A sort longer than `max_sort` is refused."""
  n, sort = k.shape[-1], k.stores[0].srcs[0].op is K.SORT
  if sort and opts.max_sort is not None and n > opts.max_sort:
    raise ValueError(f"sort: rows of {n} elements are longer than the {opts.max_sort} this device sorts in one "
                     "program. Fix: sort on the numpy device, or sort shorter rows")
  if opts.whole and (opts.max_whole is None or prod(k.shape) <= opts.max_whole): return tuple(k.shape)
  blocks = [1] * len(k.shape)
  blocks[-1] = _next_pow2(n) if sort else min(_next_pow2(n), opts.max_reduce_block)
  budget = max(1, opts.max_tile // blocks[-1])
  for a in range(len(k.shape) - 2, -1, -1):   # rows, innermost axis first
    blocks[a] = min(_next_pow2(k.shape[a]), budget)
    budget = max(1, budget // blocks[a])
  return tuple(blocks)


# a matrix product's program order (see _Linearizer.define_grouped): groups of GROUP_ROWS row blocks, where a row
# holds at least GROUP_MIN_COLUMNS column blocks (on an H100, grouping 24 blocks of 128 columns lost 3-5%)
GROUP_ROWS, GROUP_MIN_COLUMNS = 8, 64


def _next_pow2(x: int) -> int: return 1 << max(0, (x - 1).bit_length())


def element_stores(k: Kernel) -> list[KNode]:
  """Stores of values that vary along the reduce axes (written once per element, after every reduction)."""
  return [s for s in k.stores if k.n_reduce and any(n != 1 for n in s.view.shape[-k.n_reduce:])]


def reduction_levels(k: Kernel) -> list[list[KNode]]:
  """The kernel's reductions by level: level 0 needs no other reduction, level i+1 needs one of level i."""
  level: dict[KNode, int] = {}
  for r in k.reduces:   # sources first
    level[r] = max((level[q] + 1 for s in r.srcs for q in s.walk() if q in level), default=0)
  return [[r for r in level if level[r] == i] for i in range(max(level.values(), default=-1) + 1)]


def reuses_reductions(k: Kernel) -> bool:
  """Does the kernel use a reduction over its own axes again (broadcast back, or inside another reduction)?"""
  return bool(element_stores(k)) or len(reduction_levels(k)) > 1


def choose_blocks(k: Kernel, opts: LoweringOptions) -> tuple:
  if opts.whole and (opts.max_whole is None or prod(k.shape) <= opts.max_whole or _dot_parts_of(k, opts) is not None):
    return tuple(k.shape)
  n_out = len(k.shape) - k.n_reduce
  blocks = [1] * len(k.shape)
  whole_red = reuses_reductions(k) and \
    prod(_next_pow2(s) for s in k.shape[n_out:]) <= max(opts.max_whole_row, opts.max_reduce_block)
  budget = opts.max_tile if k.n_reduce else min(opts.max_tile, opts.max_elementwise_tile)
  c = _stride1_axis(k)
  if k.n_reduce and not whole_red and c is not None and c < n_out:
    # a sum down columns: memory is contiguous along an output axis, so that axis gets a wide block first
    # (coalesced loads), and the reduce axes what is left of the tile
    blocks[c] = min(_next_pow2(k.shape[c]), opts.column_block, budget)
    budget = max(1, budget // blocks[c])
  for a in range(len(k.shape) - 1, n_out - 1, -1):   # reduce axes, innermost first
    b = _next_pow2(k.shape[a]) if whole_red else min(_next_pow2(k.shape[a]), opts.max_reduce_block, budget)
    blocks[a], budget = b, max(1, budget // b)
  if (parts := _dot_parts_of(k, opts)) is not None and not whole_red:
    return _dot_blocks(k, opts, tuple(blocks), opts.dot_blocks)
  for a in range(n_out - 1, -1, -1):                  # output axes, innermost first
    if blocks[a] > 1: continue
    b = min(_next_pow2(k.shape[a]), budget)
    blocks[a], budget = b, max(1, budget // b)
  return tuple(blocks)


def _dot_blocks(k: Kernel, opts: LoweringOptions, blocks: tuple, want: tuple) -> tuple:
  """`blocks` with the contraction's (m, n, k) axes cut by `want` (its k for 2-byte operands: halved for 4-byte ones,
  quartered for 8), clamped to the axes' sizes and to tl.dot's smallest block."""
  a, _, axes = _dot_parts_of(k, opts)
  out = list(blocks)
  wm, wn, wk = want
  wk = max(opts.min_dot_block, wk * 2 // a.dtype.itemsize)   # 64 for 2-byte operands, 32 for 4, 16 for 8
  for axis, w in zip(axes, (wm, wn, wk)): out[axis] = max(opts.min_dot_block, min(w, _next_pow2(k.shape[axis])))
  return tuple(out)


# the contraction tilings a tuner tries, (m, n, k for 2-byte operands, warps, stages): the default first, then wider
# and narrower tiles with deeper pipelines (a long k, a thin matrix, float32 operands that fill shared memory sooner)
DOT_CANDIDATES = ((128, 128, 64, 8, 3), (128, 256, 64, 8, 3), (128, 256, 64, 8, 4), (256, 128, 64, 8, 3),
                  (128, 128, 64, 4, 4), (64, 128, 64, 4, 4), (128, 64, 64, 4, 4), (64, 64, 64, 4, 5))


DESCRIBED_CANDIDATES = 4   # of those, the first ones are tried again with tensor descriptors (on a device with them)


def dot_tilings(k: Kernel, opts: LoweringOptions) -> list[Tiling]:
  """The tilings worth timing for a contraction kernel (its default first; distinct after clamping to its shape), or
  [] for any other kernel: what `runtime.autotune` chooses from."""
  if k.parts: return []
  default = choose_tiling(k, opts)
  if _dot_parts_of(k, opts) is None or axis_kernel(k) or default.blocks != _dot_blocks(k, opts, default.blocks,
                                                                                       opts.dot_blocks):
    return []
  out = {default: None}
  for bm, bn, bk, warps, stages in DOT_CANDIDATES:
    out.setdefault(Tiling(_dot_blocks(k, opts, default.blocks, (bm, bn, bk)), warps, stages), None)
  if opts.tensor_descriptors:
    for bm, bn, bk, warps, stages in DOT_CANDIDATES[:DESCRIBED_CANDIDATES]:
      blocks = _dot_blocks(k, opts, default.blocks, (bm, bn, bk))
      if _persistent(k, opts, blocks): out.setdefault(Tiling(blocks, warps, stages, True), None)   # (see Tiling)
  return list(out)


def _stride1_axis(k: Kernel) -> int | None:
  """The kernel axis along which the largest input is contiguous in memory."""
  best, size = None, -1
  for n in k.nodes:
    if n.op is K.LOAD and len(n.view.views) == 1 and k.bufs[n.arg.slot].size > size:
      v = n.view.views[0]
      axes = [a for a, (st, s) in enumerate(zip(v.strides, v.shape)) if st == 1 and s > 1]
      if axes: best, size = axes[0], k.bufs[n.arg.slot].size
  return best


def _strip_upcast(n: KNode) -> KNode:
  return n.srcs[0] if n.op is Op.CAST and n.dtype == float32 and n.srcs[0].dtype.is_float else n


def _dot_parts(r: KNode, opts: LoweringOptions):
  """(a, b, (m, n, k)) for a DOT this device lowers as one (operands in their stored precision), else None."""
  if r.op is not K.DOT or (r.dtype.itemsize == 8 and not opts.dot_float64): return None
  return _strip_upcast(r.srcs[0]), _strip_upcast(r.srcs[1]), r.arg


def _dot_parts_of(k: Kernel, opts: LoweringOptions):
  """The contraction of a kernel whose only reduction is one."""
  parts = [_dot_parts(r, opts) for r in k.reduces]
  return parts[0] if len(parts) == 1 else None


PERSISTENT_MAX_K = 4096


def output_tiles(k: Kernel, blocks: tuple) -> int:
  """How many blocks of `blocks` cover the kernel's output axes: its programs, one a tile (unless persistent)."""
  return math.prod(math.ceil(k.shape[a] / blocks[a]) for a in range(len(k.shape) - k.n_reduce))


def _persistent(k: Kernel, opts: LoweringOptions, blocks: tuple) -> bool:
  """Do the programs of this tiling loop over output tiles? Where the device asks for it, the tiles outnumber its
  programs and the loop pays."""
  p = opts.persistent_programs
  return p is not None and output_tiles(k, blocks) > p and _persistent_pays(k, opts)


def _persistent_pays(k: Kernel, opts: LoweringOptions) -> bool:
  """Does a matmul gain from a persistent loop over its tiles? It overlaps one tile's epilogue and the next one's
  first loads, which matters where the sum is short (K up to PERSISTENT_MAX_K); on an H100 it lost where the epilogue
  loads a tile of the output's size (a residual to add, GELU's input for its gradient: 271 -> 381 us), which then
  competes with the operands' pipeline, and gained nothing on K = 16384 or 50304 (bench/NOTES.md)."""
  if (parts := _dot_parts_of(k, opts)) is None or k.shape[parts[2].k] > PERSISTENT_MAX_K: return False
  m, n, kk = parts[2]
  return not any(x.op is K.LOAD and {m, n} <= (axes := varying_axes(x)) and kk not in axes for x in k.nodes)


def _reduce_op(r: KNode) -> Op: return Op.REDUCE_SUM if r.op is K.DOT else r.op


# each reduction's combining ALU op, and the scan op of the same identity (what the lanes past a row's end hold)
_COMBINE = {Op.REDUCE_SUM: (Op.ADD, "sum"), Op.REDUCE_PROD: (Op.MUL, "prod"), Op.REDUCE_MAX: (Op.MAX, "max")}


def _broadcast(*shapes) -> tuple:
  shapes = [s for s in shapes if s]
  if not shapes: return ()
  return tuple(max(d) for d in zip(*shapes))


class _Linearizer:
  """Emits uops for one kernel. Values live in a *space*: the kernel axes a tile spans, in tile order. Most of the
  kernel is in the full space (every axis, size 1 where a value does not vary); the operands of a DOT are built
  in their own 2-d spaces, (m, k) and (k, n), which is the layout tl.dot and np.matmul take."""

  def __init__(self, k: Kernel, blocks: tuple, index_dtype: DType, opts: LoweringOptions, descriptors: bool = False):
    self.k, self.blocks, self.idt, self.opts = k, blocks, index_dtype, opts
    self.grid_blocks = blocks                  # the tiling's blocks (`blocks` is the current tile: an epilogue's
                                               # sub-tile is narrower)
    self.descriptors = descriptors and opts.tensor_descriptors   # matmul tiles through tensor descriptors
    self.rank, self.n_out = len(k.shape), len(k.shape) - k.n_reduce
    self.full = tuple(range(self.rank))
    self.space = self.full
    self.uops: list[UOp] = []
    self.scopes: list[dict] = [{}]
    self.base: dict[int, UOp | None] = {}      # scalar start of the current block of each axis
    self.axis_memo: dict = {}                  # (space, axis) -> index tile; (space, axis, 'mask') -> bounds
    self.memo: dict = {}                       # (space, KNode) -> uop
    self.ast_index = {n: i for i, n in enumerate(k.nodes)}
    self.wide_loads = False                    # loads span the whole tile (see partial)
    self.persistent = False                    # programs loop over output tiles (see lower)

  # --- emission helpers
  def emit(self, op: U, dtype, srcs=(), arg=None, shape=None, ast: KNode | None = None) -> UOp:
    if op is U.ALU and all(s.op is U.CONST for s in srcs):   # constant folding, with the primitives' semantics
      value = exec_alu(arg, dtype, [np.asarray(s.arg, s.dtype.np) for s in srcs])
      return self.const(np.asarray(value).item(), dtype)
    if shape is None: shape = _broadcast(*(s.shape for s in srcs))
    pure = op in (U.CONST, U.SCALAR, U.ARANGE, U.ALU, U.PARAM, U.PROGRAM_ID, U.LOAD, U.REDUCE, U.DOT, U.BROADCAST,
                  U.RESHAPE, U.SPLIT, U.SORT)
    key = (op, dtype, tuple(id(s) for s in srcs), exact(arg), shape)
    if pure:
      for scope in reversed(self.scopes):
        if key in scope: return scope[key]
    u = UOp(op, dtype, tuple(srcs), arg, shape, self.ast_index.get(ast))
    self.uops.append(u)
    if pure: self.scopes[-1][key] = u
    return u

  def const(self, v, dtype: DType) -> UOp: return self.emit(U.CONST, dtype, (), v, ())
  def alu(self, op: Op, dtype: DType, *srcs) -> UOp: return self.emit(U.ALU, dtype, srcs, op, None)

  def in_space(self, space: tuple, fn):
    prev, self.space = self.space, space
    try: return fn()
    finally: self.space = prev

  def space_shape(self, space: tuple) -> tuple: return tuple(self.blocks[a] for a in space)

  def lin(self, x: Lin) -> UOp:
    acc = None
    for atom, coef in x.terms:
      t = self.atom(atom)
      if coef != 1: t = self.alu(Op.MUL, self.idt, t, self.const(coef, self.idt))
      acc = t if acc is None else self.alu(Op.ADD, self.idt, acc, t)
    if acc is None: return self.const(x.const, self.idt)
    return self.alu(Op.ADD, self.idt, acc, self.const(x.const, self.idt)) if x.const else acc

  def atom(self, a) -> UOp:
    if isinstance(a, Var): return self.axis_index(a.axis)
    return self.alu(Op.IDIV if isinstance(a, Div) else Op.MOD, self.idt, self.lin(a.x), self.const(a.d, self.idt))

  def cond(self, c: Cond) -> UOp:
    x, parts = self.lin(c.x), []
    if c.lo is not None: parts.append(self.alu(Op.CMPLT, bool_, self.const(c.lo - 1, self.idt), x))
    if c.hi is not None: parts.append(self.alu(Op.CMPLT, bool_, x, self.const(c.hi, self.idt)))
    return self.all_of(parts)

  def all_of(self, masks) -> UOp | None:
    out = None
    for m in masks:
      if m is not None: out = m if out is None else self.alu(Op.AND, bool_, out, m)
    return out

  # --- axes
  def define_axes(self, axes, counter: UOp | None) -> int:
    """Block starts of `axes`: the block index, decomposed from `counter` (last axis fastest), times the block."""
    nblocks = {a: math.ceil(self.k.shape[a] / self.blocks[a]) for a in axes}
    stride = 1
    for a in reversed(axes):
      base = None
      if nblocks[a] > 1:
        q = counter if stride == 1 else self.alu(Op.IDIV, self.idt, counter, self.const(stride, self.idt))
        bi = q if stride * nblocks[a] == prod(nblocks.values()) else \
          self.alu(Op.MOD, self.idt, q, self.const(nblocks[a], self.idt))
        base = bi if self.blocks[a] == 1 else self.alu(Op.MUL, self.idt, bi, self.const(self.blocks[a], self.idt))
        stride *= nblocks[a]
      self.base[a] = base
    self.axis_memo = {key: v for key, v in self.axis_memo.items() if key[1] not in axes}
    return prod(nblocks.values())

  def define_grouped(self, axes, pid: UOp | None) -> bool:
    """A matrix product's programs in grouped order: consecutive programs take GROUP_ROWS row blocks by a run of
    column blocks, so the operand tiles they share are still in L2 (row-major order streams all of the right operand
    again for every row block: the 50304-wide LM head's 77 MB, 128 times). False if the kernel is no such product."""
    parts = _dot_parts_of(self.k, self.opts)
    many = [a for a in axes if math.ceil(self.k.shape[a] / self.blocks[a]) > 1]
    if pid is None or parts is None or sorted(many) != sorted(parts[2][:2]): return False
    rows, cols = sorted(many)
    n_rows, n_cols = (math.ceil(self.k.shape[a] / self.blocks[a]) for a in (rows, cols))
    if n_cols < GROUP_MIN_COLUMNS: return False   # a few column blocks stay in L2 in row-major order
    c = lambda v: self.const(v, self.idt)
    op = lambda o, x, y: self.alu(o, self.idt, x, y)
    group = op(Op.IDIV, pid, c(GROUP_ROWS * n_cols))
    first = op(Op.MUL, group, c(GROUP_ROWS))
    left = op(Op.SUB, c(n_rows), first)
    size = self.alu(Op.WHERE, self.idt, op(Op.CMPLT, left, c(GROUP_ROWS)), left, c(GROUP_ROWS))
    within = op(Op.MOD, pid, c(GROUP_ROWS * n_cols))
    row, col = op(Op.ADD, first, op(Op.MOD, within, size)), op(Op.IDIV, within, size)
    for a in axes: self.base[a] = None
    self.base[rows], self.base[cols] = op(Op.MUL, row, c(self.blocks[rows])), op(Op.MUL, col, c(self.blocks[cols]))
    self.axis_memo = {key: v for key, v in self.axis_memo.items() if key[1] not in axes}
    return True

  def axis_index(self, a: int) -> UOp:
    """Index tile of kernel axis `a` in the current space: block start + arange."""
    key = (self.space, a)
    if key not in self.axis_memo:
      base, blk = self.base[a], self.blocks[a]
      if blk > 1:
        pos = self.space.index(a)
        shape = tuple(blk if x == a else 1 for x in self.space)
        ar = self.emit(U.ARANGE, self.idt, (), pos, shape)
        idx = ar if base is None else self.alu(Op.ADD, self.idt, base, ar)
      else: idx = base if base is not None else self.const(0, self.idt)
      self.axis_memo[key] = idx
    return self.axis_memo[key]

  def bounds_mask(self, axes) -> UOp | None:
    """Lanes inside the iteration space, for the axes whose blocks overhang it."""
    masks = []
    for a in sorted(axes):
      if self.grid_blocks[a] * math.ceil(self.k.shape[a] / self.grid_blocks[a]) > self.k.shape[a]:
        masks.append(self.alu(Op.CMPLT, bool_, self.axis_index(a), self.const(self.k.shape[a], self.idt)))
    return self.all_of(masks)

  # --- AST nodes
  def access(self, st: ShapeTracker) -> tuple[Lin, list[Cond] | None, set]:
    idx, conds = st.index(axis_vars(st.shape))
    used = {v.axis for v in idx.vars() | {v for c in (conds or []) for v in c.x.vars()}}
    return idx, conds, used

  def value(self, root: KNode) -> UOp:
    """Uops for `root` in the current space; a REDUCE lowers its own source (maybe as a DOT)."""
    sp = self.space
    return evaluate(root, lambda n: () if n.op in REDUCE or n.op is K.DOT else n.srcs, self.node, self.memo,
                    key=lambda n: (sp, n))

  def node(self, n: KNode, srcs: list[UOp]) -> UOp:
    if n.op is K.CONST: return self.const(n.arg, n.dtype)
    if n.op is K.SCALAR: return self.emit(U.SCALAR, n.dtype, (), n.arg, ())
    if n.op is K.LOAD:
      slot, st, gather = n.arg.slot, n.view, n.arg.gather
      idx, conds, used = self.access(st)
      if conds is None: return self.const(False if n.dtype.is_bool else 0, n.dtype)
      masks = [self.bounds_mask(used)] + [self.cond(c) for c in conds]
      index = self.lin(idx)
      if gather is not None: index = self.gathered(index, srcs[0], gather, masks)
      mask = self.all_of(masks)
      tile = self.space_shape(self.space) if self.wide_loads else None
      srcs = (self.params[slot], self.address(index, mask, tile=tile)) + ((mask,) if mask is not None else ())
      return self.emit(U.LOAD, n.dtype, srcs, None, None, n)
    if n.op is K.VALID:
      _, conds, _ = self.access(n.arg)
      if conds is None: return self.const(False, bool_)
      return self.all_of([self.cond(c) for c in conds]) or self.const(True, bool_)
    if n.op is K.INDEX:   # the element's position in the IOTA: its address, had it a buffer (0 where padded)
      idx, conds, _ = self.access(n.arg)
      if conds is None: return self.const(0, n.dtype)
      v = self.lin(idx)
      if v.dtype != n.dtype: v = self.alu(Op.CAST, n.dtype, v)
      mask = self.all_of([self.cond(c) for c in conds])
      return v if mask is None else self.alu(Op.WHERE, n.dtype, mask, v, self.const(0, n.dtype))
    if n.op in REDUCE or n.op is K.DOT:
      if self.dot_parts(n) is not None: return self.to_full(self.dot(n, None), n)
      return self.partial(n)
    return self.emit(U.ALU, n.dtype, tuple(srcs), n.op, None, n)

  def gathered(self, index: UOp, row: UOp, gather, masks: list) -> UOp:
    """`index` moved to row `row` (a loaded index tile) of a gather's load or a scatter's store; a row outside the
    tensor reads or writes nothing (its condition is appended to `masks`)."""
    stride, rows = gather
    row = row if row.dtype == self.idt else self.alu(Op.CAST, self.idt, row)
    masks += [self.alu(Op.CMPLT, bool_, self.const(-1, self.idt), row),
              self.alu(Op.CMPLT, bool_, row, self.const(rows, self.idt))]
    return self.alu(Op.ADD, self.idt, index, self.alu(Op.MUL, self.idt, row, self.const(stride, self.idt)))

  def address(self, index: UOp, *tiles, tile: tuple | None = None) -> UOp:
    """The index tile, broadcast to cover the mask (and stored value, or the whole `tile`): one address per lane."""
    full = _broadcast(index.shape, *(t.shape for t in tiles if t is not None), *([tile] if tile else [])) or \
      (1,) * len(self.space)
    return index if index.shape == full else self.emit(U.BROADCAST, index.dtype, (index,), None, full)

  def reduce_axes(self): return tuple(range(self.n_out, self.rank))

  def dot_parts(self, r: KNode): return _dot_parts(r, self.opts)

  def dot_space(self, r: KNode) -> tuple:
    _, _, (m, n, kk) = self.dot_parts(r)
    batch = [x for x in range(self.n_out) if x not in (m, n) and self.blocks[x] > 1]
    return tuple(batch + sorted((m, n)))

  def dot(self, r: KNode, acc: UOp | None) -> UOp:
    """A contraction as DOT(left (.., i, k), right (.., k, j)) [+ acc], i before j in kernel order."""
    a, b, (m, n, kk) = self.dot_parts(r)
    space = self.dot_space(r)
    (x, i), (y, j) = ((a, m), (b, n)) if m < n else ((b, n), (a, m))
    batch = list(space[:-2])
    left_space, right_space = tuple(batch + [i, kk]), tuple(batch + [kk, j])
    def operand(node, sp):
      def build():
        if (t := self.described(node, sp)) is not None: return t
        v = self.value(node)
        if (mask := self.bounds_mask([kk])) is not None:   # lanes past the end of k contribute nothing
          v = self.alu(Op.WHERE, v.dtype, mask, v, self.const(0, v.dtype))
        if v.shape != self.space_shape(sp): v = self.emit(U.BROADCAST, v.dtype, (v,), None, self.space_shape(sp))
        return v
      return self.in_space(sp, build)
    srcs = (operand(x, left_space), operand(y, right_space)) + ((acc,) if acc is not None else ())
    return self.emit(U.DOT, r.dtype, srcs, None, self.space_shape(space), r)

  def block_of(self, view: ShapeTracker, dtype: DType, sp: tuple) -> tuple[TileDesc, list[UOp]] | None:
    """The tile of the two kernel axes `sp` as one block of a tensor descriptor (TMA), with the block's (row, col)
    start, where the tiling asks for descriptors and the program loops over output tiles, and `view` is one strided
    matrix over those axes (broadcast along the others), contiguous along one, its rows and first element 16-byte
    aligned (buffers start aligned: `kernel.rebased`). None: accessed element by element."""
    if not (self.descriptors and self.persistent) or len(sp) != 2 or self.idt.itemsize != 4 or len(view.views) != 1 \
       or dtype.is_bool:   # Triton's bool pointers have no byte size to describe
      return None
    v, size = view.views[0], dtype.itemsize
    if v.mask is not None or any(s and n > 1 for a, (s, n) in enumerate(zip(v.strides, v.shape)) if a not in sp):
      return None
    rows, cols = sp
    outer, inner = (rows, cols) if v.strides[cols] == 1 else (cols, rows) if v.strides[rows] == 1 else (None, None)
    if outer is None or v.strides[outer] <= 0 or (v.strides[outer] * size) % 16 or (v.offset * size) % 16 or \
       self.blocks[inner] * size < 16 or max(self.blocks[outer], self.blocks[inner]) > 256:
      return None
    desc = TileDesc((self.k.shape[outer], self.k.shape[inner]), v.strides[outer], v.offset,
                    (self.blocks[outer], self.blocks[inner]), inner == rows)
    return desc, [self.base[a] if self.base[a] is not None else self.const(0, self.idt) for a in (outer, inner)]

  def described(self, node: KNode, sp: tuple) -> UOp | None:
    """A DOT operand's tile read as one block of a tensor descriptor (`block_of`), else None."""
    if node.op is not K.LOAD or node.arg.gather is not None: return None
    if (found := self.block_of(node.view, node.dtype, sp)) is None: return None
    desc, at = found
    return self.emit(U.TILE_LOAD, node.dtype, (self.params[node.arg.slot], *at), desc, self.space_shape(sp), node)

  def store_described(self, store: KNode, value: UOp) -> bool:
    """Store a contraction's output tile (the epilogue's value, after its K loop) as one block of a tensor descriptor
    (`block_of`): one copy a tile, what lies past the edges dropped by the copy engine. False: not such a block."""
    parts = _dot_parts_of(self.k, self.opts)
    if parts is None or store.arg.gather is not None or self.space != self.full: return False
    sp = tuple(sorted(parts[2][:2]))
    if value.shape != tuple(self.blocks[a] if a in sp else 1 for a in self.full): return False   # not one per lane
    if (found := self.block_of(store.view, value.dtype, sp)) is None: return False
    desc, at = found
    tile = self.emit(U.RESHAPE, value.dtype, (value,), None, self.space_shape(sp))
    self.emit(U.TILE_STORE, None, (self.params[store.arg.slot], *at, tile), desc, None, store)
    return True

  def to_full(self, v: UOp, r: KNode) -> UOp:
    """A DOT result (or accumulator) in the full space: the same elements, size 1 on the other axes."""
    space = self.dot_space(r)
    shape = tuple(self.blocks[a] if a in space else 1 for a in self.full)
    return self.emit(U.RESHAPE, v.dtype, (v,), None, shape)

  def partial(self, r: KNode) -> UOp:
    """One tile's worth of (non-DOT) reduction `r`: the whole reduction, or one step of the loop."""
    red_axes, op = self.reduce_axes(), _reduce_op(r)
    # Triton gives a tile the thread layout of the loads it comes from. A reduction none of whose loads varies along
    # the reduce axes (a row sum of a one-hot: iota compared with a column of indices) would take the layout of a
    # (rows, 1) load, its threads spread over the few rows: each row computed many times over, each thread walking
    # the whole row (an H100 took 9 ms for 16384 rows of 50304; bench/NOTES.md). Its loads then span the tile.
    self.wide_loads = not self._anchored(r)
    try: x = self.value(r.srcs[0]) if r.op is not K.DOT else self.alu(Op.MUL, r.dtype, *(self.value(s) for s in r.srcs))
    finally: self.wide_loads = False
    if (mask := self.bounds_mask(red_axes)) is not None:
      x = self.alu(Op.WHERE, x.dtype, mask, x, self.const(scan_identity(_COMBINE[op][1], r.dtype), x.dtype))
    if op is not Op.REDUCE_MAX and (not x.shape or any(x.shape[a] < self.blocks[a] for a in red_axes)):
      # a value constant along a summed (multiplied) axis still counts once per element
      full = tuple(self.blocks[d] if d in red_axes else (x.shape[d] if x.shape else 1) for d in range(self.rank))
      x = self.emit(U.BROADCAST, x.dtype, (x,), None, full)
    axes = tuple(a for a in red_axes if x.shape and x.shape[a] > 1)
    if not axes: return x
    shape = tuple(1 if d in axes else s for d, s in enumerate(x.shape))
    return self.emit(U.REDUCE, r.dtype, (x,), (op, axes), shape, r)

  def _anchored(self, r: KNode) -> bool:
    """Does a load of reduction `r` (not of a reduction below it) vary along a reduce axis this tile spans?"""
    tiled = {a for a in self.reduce_axes() if self.blocks[a] > 1}
    seen, stack = set(), list(r.srcs)
    while stack:
      n = stack.pop()
      if n in seen: continue
      seen.add(n)
      if n.op is K.LOAD and self.access(n.view)[2] & tiled: return True
      if n.op not in REDUCE and n.op is not K.DOT: stack.extend(n.srcs)
    return not tiled

  def loop(self, n_iter: int, body, axes=None, bounds=()):
    """Emit `body` inside a loop over the blocks of `axes` (default: the reduce axes), from block bounds[0] to
    bounds[1] if given (scalar uops), else over all n_iter: values computed inside stay inside."""
    rng = self.emit(U.RANGE, self.idt, tuple(bounds), n_iter, ())
    self.scopes.append({})
    outer_memo, outer_axes = self.memo, dict(self.axis_memo)
    self.memo = dict(outer_memo)
    self.define_axes(list(self.reduce_axes() if axes is None else axes), rng)
    body()
    self.emit(U.ENDRANGE, None, (rng,), None, ())
    self.scopes.pop()
    self.memo, self.axis_memo = outer_memo, outer_axes

  def accumulate(self, reduces: list[KNode], n_iter: int):
    """Reductions of one level, accumulated over a loop; afterwards their values are the accumulators."""
    accs = {}
    for r in reduces:
      if self.dot_parts(r) is not None:
        accs[r] = self.emit(U.ACC, r.dtype, (), 0, self.space_shape(self.dot_space(r)))
      else:
        shape = tuple(1 if d >= self.n_out else self.blocks[d] for d in range(self.rank))
        accs[r] = self.emit(U.ACC, r.dtype, (), scan_identity(_COMBINE[_reduce_op(r)][1], r.dtype), shape)
    def body():
      for r, acc in accs.items():
        if self.dot_parts(r) is not None: new = self.dot(r, acc)
        else: new = self.alu(_COMBINE[_reduce_op(r)][0], r.dtype, acc, self.partial(r))
        self.emit(U.ACC_UPDATE, r.dtype, (acc, new), None, acc.shape)
    self.loop(n_iter, body)
    for r, acc in accs.items():
      self.memo[(self.full, r)] = self.to_full(acc, r) if self.dot_parts(r) is not None else acc
    return accs

  def in_column_chunks(self, acc: UOp, r: KNode, emit):
    """`emit` the epilogue of contraction `r` (accumulated in `acc`) once per sub-tile of at most
    `epilogue_columns` of its output columns (the DOT's last axis), each seeing its SPLIT half of the accumulator
    and its columns' indices; on the whole tile where there is no such limit, the tile is no wider, or a store does
    not vary along the columns (it would store once per sub-tile)."""
    col, limit = self.dot_space(r)[-1], self.opts.epilogue_columns
    if limit is None or self.blocks[col] <= limit or \
       any(col not in self.access(st.view)[2] or st.arg.gather is not None for st in self.k.stores):
      return emit()
    memo, axis_memo, blocks, base = self.memo, self.axis_memo, self.blocks, self.base[col]
    def chunk(part: UOp, start: UOp | None, width: int):
      if width > limit and width % 2 == 0:
        for half in (0, 1):
          offset = self.const(half * width // 2, self.idt)
          chunk(self.emit(U.SPLIT, part.dtype, (part,), (len(part.shape) - 1, half),
                          part.shape[:-1] + (width // 2,)),
                offset if start is None else self.alu(Op.ADD, self.idt, start, offset) if half else start, width // 2)
        return
      self.blocks = tuple(width if a == col else b for a, b in enumerate(blocks))
      self.base[col] = start
      self.axis_memo = {key: v for key, v in axis_memo.items() if key[1] != col}
      self.memo = {**memo, (self.full, r): self.to_full(part, r)}
      emit()
    chunk(acc, base, blocks[col])
    self.memo, self.axis_memo, self.blocks, self.base[col] = memo, axis_memo, blocks, base

  def store(self, stores: list[KNode], values: list[UOp] | None = None, covered=None):
    """Every value first, then the stores: an in-place output never changes memory another output still reads.
    Lanes outside the iteration space along `covered` (default: the output axes) or the view's axes are masked."""
    out_axes = set(range(self.n_out)) if covered is None else covered
    values = values or [self.value(st.srcs[0]) for st in stores]
    for store, value in zip(stores, values):
      if self.store_described(store, value): continue
      slot, st, gather = store.arg.slot, store.view, store.arg.gather
      idx, conds, used = self.access(st)
      masks = [self.bounds_mask(used | out_axes)] + [self.cond(c) for c in conds or []]
      index = self.lin(idx)
      if gather is not None: index = self.gathered(index, self.value(store.srcs[1]), gather, masks)
      mask = self.all_of(masks)
      srcs = (self.params[slot], self.address(index, mask, value), value) + ((mask,) if mask is not None else ())
      self.emit(U.STORE, None, srcs, "add" if gather is not None else None, None, store)   # a scatter adds

  def lower(self) -> tuple[list[UOp], int]:
    k = self.k
    self.params = {i: self.emit(U.PARAM, b.dtype, (), i, ()) for i, b in enumerate(k.bufs)}
    out_axes = list(range(self.n_out))
    n_prog = output_tiles(k, self.blocks)
    pid = self.emit(U.PROGRAM_ID, self.idt, (), 0, ()) if n_prog > 1 else None
    programs, tiles = n_prog, None
    if _persistent(k, self.opts, self.blocks):
      p = self.opts.persistent_programs
      # persistent: program pid takes tiles pid, pid + p, ... (a loop the renderer asks Triton to flatten with the
      # loops inside it, so one tile's loads start while the last one's products finish)
      programs, self.persistent = p, True
      tiles = pid = self.emit(U.RANGE, self.idt, (pid, self.const(n_prog, self.idt), self.const(p, self.idt)), n_prog)
    if not self.define_grouped(out_axes, pid): self.define_axes(out_axes, pid)
    n_iter = math.prod(math.ceil(k.shape[a] / self.blocks[a]) for a in self.reduce_axes())
    if n_iter > 1:
      accs = {}
      for level in reduction_levels(k): accs.update(self.accumulate(level, n_iter))
      elements = element_stores(k)
      if elements: self.loop(n_iter, lambda: self.store(elements))
      epilogue = lambda: self.store([st for st in k.stores if st not in elements])
      if _dot_parts_of(k, self.opts) is not None and not elements:   # one reduction, the DOT
        ((r, acc),) = accs.items()
        self.in_column_chunks(acc, r, epilogue)
      else: epilogue()
    else:
      self.define_axes(list(self.reduce_axes()), None)
      self.store(list(k.stores))
    if tiles is not None: self.emit(U.ENDRANGE, None, (tiles,))
    return _dead_code_eliminated(self.uops), programs


def _dead_code_eliminated(uops: list[UOp]) -> list[UOp]:
  """The uops that stores, loops and accumulator updates need, in their order."""
  live = {id(u) for u in toposort([u for u in uops if u.op in (U.STORE, U.TILE_STORE, U.ACC_UPDATE, U.RANGE, U.ENDRANGE,
                                                                   U.PARAM)])}
  return [u for u in uops if id(u) in live]


def attention_of(k: Kernel):
  """The `Attention` arg of a fused-attention kernel (one of its parts), else None."""
  v = k.stores[0].srcs[0]
  return v.arg if v.op is K.ATTENTION else None


def _attention_tiling(k: Kernel, a, opts: LoweringOptions) -> Tiling:
  """A program takes a block of queries (query-major parts) or of keys and loops over the other side. Whole-tile
  devices (numpy) take every batch row and the whole program side at once, and the loop side in chunks that keep a
  score tile near 4M elements; Triton takes one batch row, flash-attention's blocks, and the feature axes whole."""
  n, tq, tk, d, e = k.shape
  own, other = (1, 2) if a.query_major else (2, 1)
  blocks = list(k.shape)
  if opts.whole:
    blocks[other] = min(k.shape[other], max(16, (1 << 22) // max(1, n * k.shape[own])))
    return Tiling(tuple(blocks))
  fit = lambda x, want: max(opts.min_dot_block, min(want, _next_pow2(x)))
  wide = k.bufs[-1].dtype.itemsize > 2 or k.stores[0].srcs[0].srcs[0].dtype.itemsize > 2   # float32 tiles: halve
  # swept on an H100 at GPT-2's shapes (B16 H12 T1024 D64 causal bf16, bench/NOTES.md): 64 queries a program in
  # the forward and dq, 128 keys in dk/dv, 3 pipeline stages
  want_own, want_other = (64, 64) if a.part in ("out", "lse") else (64, 32) if a.query_major else (128, 32)
  if wide: want_other //= 2
  blocks = [1, 0, 0, fit(d, 1 << 30), fit(e, 1 << 30)]
  blocks[own], blocks[other] = fit(k.shape[own], want_own), fit(k.shape[other], want_other)
  warps = 8 if blocks[own] * max(blocks[3], blocks[4]) >= 128 * 128 else 4
  return Tiling(tuple(blocks), warps, 3)


class _AttentionLinearizer(_Linearizer):
  """Fused attention's lowering rule (`Op.ATTENTION`, a kernel template), flash-attention style. The kernel's space is
  (n, i, j, d, e): batch, query, key, q/k feature, v feature. A program takes one block of batch x queries ('out',
  'lse', 'dq') or of batch x keys ('dk', 'dv') and loops over the other side in blocks; every value is a tile of a
  2-d space (3-d with the batch axis, where its block is > 1): scores in (i, j) (their transpose, (j, i), in the
  key-major kernel), operands in (i, d), (d, j), (j, e) and so on, the layouts DOT takes. The forward keeps a running
  max m, sum l and output per query row (online softmax: each key block rescales them by exp(m_old - m_new)); the
  backward recomputes each probability tile from the scores and the rows' log-sum-exp. float32 scores are kept in
  base 2 (the scale carries log2(e)), so each probability is one EXP2, the device's fast exponential, as flash
  attention does. A causal kernel loops only over the blocks that hold an unmasked element."""
  N, I, J, D, E = range(5)

  def lower(self) -> tuple[list[UOp], int]:
    k, N, I, J, D, E = self.k, *range(5)
    node = k.stores[0].srcs[0]
    a = self.attn = node.arg
    self.at = node
    self.params = {i: self.emit(U.PARAM, b.dtype, (), i, ()) for i, b in enumerate(k.bufs)}
    own, other = (I, J) if a.query_major else (J, I)
    n_prog = math.ceil(k.shape[N] / self.blocks[N]) * math.ceil(k.shape[own] / self.blocks[own])
    self.define_axes([N, own], self.emit(U.PROGRAM_ID, self.idt, (), 0, ()) if n_prog > 1 else None)
    self.define_axes([D, E], None)
    self.bat = (N,) if self.blocks[N] > 1 else ()
    self.acc_dtype = float64 if node.srcs[0].dtype == float64 else float32
    # float32 scores in base 2 (exp2 is the fast exponential); float64 ones stay in base e, exact
    self.unit, self.exp = (LOG2E, Op.EXP2) if self.acc_dtype == float32 else (1.0, Op.EXP)
    n_iter = math.ceil(k.shape[other] / self.blocks[other])
    parts = {st.srcs[0].arg.part: st for st in k.stores}
    # the program's own side is loaded once, before the loop (the loop finds these tiles by the values' memo)
    hoisted = {"out": [("q", (I, D))], "lse": [("q", (I, D))], "dq": [("q", (I, D)), ("do", (I, E))],
               "delta": [("q", (I, D)), ("do", (I, E))], "dk": [("k", (J, D)), ("v", (J, E))],
               "dv": [("k", (J, D)), ("v", (J, E))]}[a.part]
    for name, axes in hoisted: self.tile(name, self.sp(*axes))
    if a.backward and a.query_major: self.row("lse", self.sp(I, J))
    self.delta = None
    if a.part in ("out", "lse"): values = self.forward(n_iter, parts)
    elif a.query_major: values = self.grad_q(n_iter, parts)
    else: values = self.grad_kv(n_iter, parts)
    for part, (space, value) in values.items():
      if part in parts:
        st = parts[part]
        if value.dtype != st.dtype: value = self.alu(Op.CAST, st.dtype, value)
        # the program's own axes mask its block, even where a store's view is size 1 there (tq = 1)
        self.in_space(space, lambda: self.store([st], [value], {N, own}))
    return _dead_code_eliminated(self.uops), n_prog

  def sp(self, *axes) -> tuple: return self.bat + axes

  def src(self, name: str) -> KNode | None:
    s, a = self.at.srcs, self.attn
    at = {"q": 0, "k": 1, "v": 2, "do": 3, "lse": 4, "out": 5, "delta": 5}
    if name == "mask": return s[-1] if a.masked else None
    return s[at[name]]

  def tile(self, name: str, space: tuple) -> UOp:
    """A source as a tile of `space`, zero outside the iteration space (a contraction sums over the padding)."""
    def build():
      n = self.src(name)
      v = self.value(n)
      loaded = n.op is K.LOAD or (n.op is Op.CAST and n.srcs[0].op is K.LOAD)
      if not loaded and (mask := self.bounds_mask(space)) is not None:
        v = self.alu(Op.WHERE, v.dtype, mask, v, self.const(0, v.dtype))
      want = self.space_shape(space)
      return v if v.shape == want else self.emit(U.BROADCAST, v.dtype, (v,), None, want)
    return self.in_space(space, build)

  def matmul(self, x: UOp, y: UOp, acc: UOp | None = None) -> UOp:
    """x (.., i, k) @ y (.., k, j) [+ acc] in the accumulator dtype; float64 where the device has no float64 DOT is
    a broadcast product summed over k."""
    shape = x.shape[:-1] + y.shape[-1:]
    if x.dtype == float64 and not self.opts.dot_float64:
      prod_ = self.alu(Op.MUL, float64, self.emit(U.RESHAPE, float64, (x,), None, x.shape + (1,)),
                       self.emit(U.RESHAPE, float64, (y,), None, y.shape[:-2] + (1,) + y.shape[-2:]))
      r = self.emit(U.REDUCE, float64, (prod_,), (Op.REDUCE_SUM, (len(shape) - 1,)),
                    prod_.shape[:-2] + (1,) + prod_.shape[-1:])
      out = self.emit(U.RESHAPE, float64, (r,), None, shape)
      return out if acc is None else self.alu(Op.ADD, float64, acc, out)
    return self.emit(U.DOT, self.acc_dtype, (x, y) + ((acc,) if acc is not None else ()), None, shape, self.at)

  def add_product(self, acc: UOp, x: UOp, y: UOp):
    """acc += x @ y, x rounded to y's dtype first (probabilities in bf16 against bf16 values, as flash attention)."""
    x = x if x.dtype == y.dtype or y.dtype == acc.dtype else self.alu(Op.CAST, y.dtype, x)
    self.emit(U.ACC_UPDATE, acc.dtype, (acc, self.matmul(x, y, acc)), None, acc.shape)

  def softmax_grad(self, p: UOp, dp: UOp, space: tuple) -> UOp:
    """dS = P * (dP - delta): the scores' gradient from the probabilities' (delta = rowsum(dO * out): the query-major
    kernel's own, the key-major kernel's loaded)."""
    delta = self.delta if self.delta is not None else self.row("delta", space)
    return self.alu(Op.MUL, p.dtype, p, self.alu(Op.SUB, p.dtype, dp, delta))

  def scores(self, space: tuple, masked: bool) -> UOp:
    """(q k^T * scale (+ a float mask)) * unit, the scores in the kernel's base, as a tile of `space` ((i, j) or
    (j, i)); if `masked`, -inf where a query does not attend to a key (masked, causal, or outside the iteration space)."""
    I, J, D = self.I, self.J, self.D
    transposed = space[-2] == J
    def build():
      if transposed: s = self.matmul(self.tile("k", self.sp(J, D)), self.tile("q", self.sp(D, I)))
      else: s = self.matmul(self.tile("q", self.sp(I, D)), self.tile("k", self.sp(D, J)))
      dt = s.dtype
      s = self.alu(Op.MUL, dt, s, self.const(self.attn.scale * self.unit, dt))
      if not masked: return s
      valid = [self.bounds_mask([I, J])]
      if self.attn.causal:   # key j <= query i
        valid.append(self.alu(Op.CMPLT, bool_, self.axis_index(J), self.alu(Op.ADD, self.idt, self.axis_index(I),
                                                                             self.const(1, self.idt))))
      if (m := self.src("mask")) is not None:
        mv = self.value(m)
        if m.dtype.is_bool: valid.append(mv)
        else: s = self.alu(Op.ADD, dt, s, self.alu(Op.MUL, dt, mv if mv.dtype == dt else self.alu(Op.CAST, dt, mv),
                                                   self.const(self.unit, dt)))
      if (ok := self.all_of(valid)) is not None: s = self.alu(Op.WHERE, dt, ok, s, self.const(-math.inf, dt))
      return s
    return self.in_space(space, build)

  def row(self, name: str, space: tuple) -> UOp:
    """A per-query float32 row (lse, delta) as a tile of `space`, 1 along the key axis."""
    return self.in_space(space, lambda: self.value(self.src(name)))

  def walk(self, n_iter: int, body):
    """Loop `body(masked)` over the other side's blocks, in segments: blocks that need no mask (inside both lengths,
    wholly visible under the causal mask, no mask tensor) run the body without one, the rest with it; a causal
    kernel skips the blocks it cannot see (keys after the program's last query, queries before its first key)."""
    I, J, a = self.I, self.J, self.attn
    c = lambda v: self.const(v, self.idt)
    op = lambda o, x, y: self.alu(o, self.idt, x, y)
    lo_of = lambda x, y: self.alu(Op.WHERE, self.idt, op(Op.CMPLT, x, y), x, y)
    hi_of = lambda x, y: self.alu(Op.WHERE, self.idt, op(Op.CMPLT, x, y), y, x)
    masked_input = a.masked
    if a.query_major:
      bi, bj, start = self.blocks[I], self.blocks[J], self.base[I] if self.base[I] is not None else c(0)
      hi = lo_of(c(n_iter), op(Op.IDIV, op(Op.ADD, start, c(bi + bj - 1)), c(bj))) if a.causal else c(n_iter)
      free = c(0) if masked_input else c(self.k.shape[J] // bj)
      if a.causal: free = lo_of(free, op(Op.IDIV, start, c(bj)))
      segments = [(c(0), free, False), (free, hi, True)]
    else:
      bi, bj, start = self.blocks[I], self.blocks[J], self.base[J] if self.base[J] is not None else c(0)
      lo, hi = (op(Op.IDIV, start, c(bi)) if a.causal else c(0)), c(n_iter)
      first = lo_of(hi, hi_of(lo, op(Op.IDIV, op(Op.ADD, start, c(bj + bi - 2)), c(bi)))) if a.causal else lo
      last = first if masked_input else hi_of(first, c(self.k.shape[I] // bi))
      segments = [(lo, first, True), (first, last, False), (last, hi, True)]
    for lo, hi, masked in segments:
      if lo.op is U.CONST and hi.op is U.CONST and lo.arg >= hi.arg: continue
      bounds = () if lo.op is U.CONST and hi.op is U.CONST and (lo.arg, hi.arg) == (0, n_iter) else (lo, hi)
      self.loop(n_iter, lambda: body(masked), [J if a.query_major else I], bounds)

  def forward(self, n_iter: int, parts: dict) -> dict:
    I, J, E = self.I, self.J, self.E
    f, rows = self.acc_dtype, self.space_shape(self.sp(I, J))[:-1] + (1,)
    m = self.emit(U.ACC, f, (), -math.inf, rows)
    l = self.emit(U.ACC, f, (), 0, rows)
    o = self.emit(U.ACC, f, (), 0, self.space_shape(self.sp(I, E))) if "out" in parts else None
    last = len(rows) - 1
    def body(masked):
      s = self.scores(self.sp(I, J), masked)
      m_new = self.alu(Op.MAX, f, m, self.emit(U.REDUCE, f, (s,), (Op.REDUCE_MAX, (last,)), rows, self.at))
      # a row with no key yet keeps m = -inf; shifting by 0 instead gives p = 0 there, not exp(-inf + inf) = nan
      shift = self.alu(Op.WHERE, f, self.alu(Op.CMPEQ, bool_, m_new, self.const(-math.inf, f)), self.const(0, f), m_new)
      p = self.alu(self.exp, f, self.alu(Op.SUB, f, s, shift))
      alpha = self.alu(self.exp, f, self.alu(Op.SUB, f, m, shift))
      self.emit(U.ACC_UPDATE, f, (l, self.alu(Op.ADD, f, self.alu(Op.MUL, f, l, alpha),
                                              self.emit(U.REDUCE, f, (p,), (Op.REDUCE_SUM, (last,)), rows, self.at))),
                None, rows)
      if o is not None:
        v = self.tile("v", self.sp(J, E))
        pv = p if v.dtype == f else self.alu(Op.CAST, v.dtype, p)
        self.emit(U.ACC_UPDATE, f, (o, self.matmul(pv, v, self.alu(Op.MUL, f, o, alpha))), None, o.shape)   # rescaled
      self.emit(U.ACC_UPDATE, f, (m, m_new), None, rows)
    self.walk(n_iter, body)
    empty = self.alu(Op.CMPEQ, bool_, l, self.const(0, f))
    lse = self.alu(Op.ADD, f, self.alu(Op.MUL, f, m, self.const(1 / self.unit, f)), self.alu(Op.LOG, f, l))   # base e
    out = {"lse": (self.sp(I, J), self.alu(Op.WHERE, f, empty, self.const(math.inf, f), lse))}
    if o is not None:
      out["out"] = (self.sp(I, E), self.alu(Op.WHERE, f, empty, self.const(0, f), self.alu(Op.DIV, f, o, l)))
    return out

  def probabilities(self, space: tuple, masked: bool) -> UOp:
    """The probability tile exp(score - lse) of `space` ((i, j), or (j, i) transposed); 0 where not attended."""
    s = self.scores(space, masked)
    lse = self.alu(Op.MUL, s.dtype, self.row("lse", space), self.const(self.unit, s.dtype))   # in the base of s
    return self.alu(self.exp, s.dtype, self.alu(Op.SUB, s.dtype, s, lse))

  def grad_q(self, n_iter: int, parts: dict) -> dict:
    I, J, D, E = self.I, self.J, self.D, self.E
    f = self.acc_dtype
    # delta = rowsum(dO * out) for the program's rows, from tiles it loads once: a (.., i, 1) tile, as a row is
    up = lambda x: x if x.dtype == f else self.alu(Op.CAST, f, x)
    prod_ = self.alu(Op.MUL, f, up(self.tile("do", self.sp(I, E))), up(self.tile("out", self.sp(I, E))))
    last = len(prod_.shape) - 1
    self.delta = self.emit(U.REDUCE, f, (prod_,), (Op.REDUCE_SUM, (last,)), prod_.shape[:-1] + (1,), self.at)
    out = {"delta": (self.sp(I, J), self.delta)}
    if "dq" not in parts: return out
    dq = self.emit(U.ACC, f, (), 0, self.space_shape(self.sp(I, D)))
    def body(masked):
      p = self.probabilities(self.sp(I, J), masked)
      dp = self.matmul(self.tile("do", self.sp(I, E)), self.tile("v", self.sp(E, J)))
      self.add_product(dq, self.softmax_grad(p, dp, self.sp(I, J)), self.tile("k", self.sp(J, D)))
    self.walk(n_iter, body)
    return {**out, "dq": (self.sp(I, D), self.alu(Op.MUL, f, dq, self.const(self.attn.scale, f)))}

  def grad_kv(self, n_iter: int, parts: dict) -> dict:
    I, J, D, E = self.I, self.J, self.D, self.E
    f = self.acc_dtype
    dk = self.emit(U.ACC, f, (), 0, self.space_shape(self.sp(J, D))) if "dk" in parts else None
    dv = self.emit(U.ACC, f, (), 0, self.space_shape(self.sp(J, E))) if "dv" in parts else None
    def body(masked):
      pt = self.probabilities(self.sp(J, I), masked)
      if dv is not None: self.add_product(dv, pt, self.tile("do", self.sp(I, E)))
      if dk is not None:
        dpt = self.matmul(self.tile("v", self.sp(J, E)), self.tile("do", self.sp(E, I)))
        self.add_product(dk, self.softmax_grad(pt, dpt, self.sp(J, I)), self.tile("q", self.sp(I, D)))
    self.walk(n_iter, body)
    out = {}
    if dk is not None: out["dk"] = (self.sp(J, D), self.alu(Op.MUL, f, dk, self.const(self.attn.scale, f)))
    if dv is not None: out["dv"] = (self.sp(J, E), dv)
    return out


class _AxisLinearizer(_Linearizer):
  """The lowering rule of scans and sorts (`K.SCAN`, `K.SORT`, kernel templates along the last axis): a program per
  block of rows. A sort holds its rows whole in one tile, which a SORT uop orders (its values, or where they were).
  A scan walks its rows in blocks (one block where they fit): each block's SCAN starts from the running total of the
  blocks before it (an accumulator), which then takes the block's last lane (the lanes past the row's end hold the
  identity, so the last lane is the row's total so far)."""

  def lower(self) -> tuple[list[UOp], int]:
    k, last = self.k, self.rank - 1
    self.params = {i: self.emit(U.PARAM, b.dtype, (), i, ()) for i, b in enumerate(k.bufs)}
    out_axes = list(range(self.n_out))
    n_prog = output_tiles(k, self.blocks)
    self.define_axes(out_axes, self.emit(U.PROGRAM_ID, self.idt, (), 0, ()) if n_prog > 1 else None)
    n_iter = math.ceil(k.shape[last] / self.blocks[last])
    self.carry: dict[KNode, UOp] = {}
    if n_iter == 1:
      self.define_axes([last], None)
      self.store(list(k.stores))
    else:   # a scan (a sort's tile holds its rows whole)
      rows = tuple(1 if a == last else self.blocks[a] for a in self.full)
      for st in k.stores:
        scan = st.srcs[0]
        self.carry[scan] = self.emit(U.ACC, scan.dtype, (), scan_identity(scan.arg.op, scan.dtype), rows)
      self.loop(n_iter, lambda: self.store(list(k.stores)))
    return _dead_code_eliminated(self.uops), n_prog

  def whole(self, x: UOp) -> UOp:
    """x as a tile of the whole block (a scan or sort fills every lane)."""
    full = self.space_shape(self.full)
    return x if x.shape == full else self.emit(U.BROADCAST, x.dtype, (x,), None, full)

  def node(self, n: KNode, srcs: list[UOp]) -> UOp:
    if n.op is K.SCAN: return self.scan(n, srcs[0])
    if n.op is K.SORT: return self.sort(n, srcs[0])
    return super().node(n, srcs)

  def scan(self, n: KNode, x: UOp) -> UOp:
    last, ident = self.rank - 1, scan_identity(n.arg.op, n.dtype)
    if (mask := self.bounds_mask([last])) is not None:
      x = self.alu(Op.WHERE, x.dtype, mask, x, self.const(ident, x.dtype))
    carry = self.carry.get(n)
    out = self.emit(U.SCAN, n.dtype, (self.whole(x),) + ((carry,) if carry is not None else ()), (n.arg.op, last),
                    self.space_shape(self.full), n)
    if carry is not None:   # the block's last lane carries on
      shape = tuple(self.blocks[a] if a == last else 1 for a in self.full)
      is_last = self.alu(Op.CMPEQ, bool_, self.emit(U.ARANGE, self.idt, (), last, shape),
                         self.const(self.blocks[last] - 1, self.idt))
      picked = self.alu(Op.WHERE, n.dtype, is_last, out, self.const(0, n.dtype))
      self.emit(U.ACC_UPDATE, n.dtype, (carry, self.emit(U.REDUCE, n.dtype, (picked,), (Op.REDUCE_SUM, (last,)),
                                                          carry.shape)), None, carry.shape)
    return out

  def sort(self, n: KNode, x: UOp) -> UOp:
    last, x, (_, descending, part) = self.rank - 1, self.whole(x), n.arg
    arg = (last, descending, self.k.shape[last], part)
    out = self.emit(U.SORT, x.dtype if part == "values" else self.idt, (x,), arg, x.shape, n)
    return out if out.dtype == n.dtype else self.alu(Op.CAST, n.dtype, out)


def linearize(k: Kernel, opts: LoweringOptions = LoweringOptions(), tiling: Tiling | None = None) -> Program:
  """Lower a kernel AST to block uops, cut up by `tiling` (default: the one `opts` chooses)."""
  if k.parts: return _combined(k, [linearize(p, opts) for p in k.parts], tiling or choose_tiling(k, opts))
  tiling = tiling or choose_tiling(k, opts)
  sizes = [b.size for b in k.bufs] + [prod(n.arg.views[0].shape) for n in k.nodes if n.op is K.INDEX]
  index_dtype = int64 if max(sizes) >= 2**31 else int32
  lowering = _AttentionLinearizer if attention_of(k) is not None else _AxisLinearizer if axis_kernel(k) else \
    _Linearizer
  uops, grid = lowering(k, tuple(tiling.blocks), index_dtype, opts, tiling.descriptors).lower()
  prog = Program(k.name, uops, grid, tiling, k)
  if settings.VERIFY: prog.verify()
  return prog


def _combined(k: Kernel, progs: list[Program], tiling: Tiling) -> Program:
  """One program for a combined kernel's parts, lowered each on its own: part i owns the next `progs[i].grid`
  programs of the launch, from `lo`; its program index is pid - lo, and it runs inside a loop from max(pid - lo, 0)
  to min(pid - lo + 1, grid): once in the programs it owns, not at all in the others."""
  index = {n: i for i, n in enumerate(k.nodes)}
  uops = [UOp(U.PARAM, b.dtype, (), i, ()) for i, b in enumerate(k.bufs)]
  pid = UOp(U.PROGRAM_ID, int32, (), 0, ())
  uops.append(pid)
  def emit(op, dtype, srcs=(), arg=None) -> UOp:
    uops.append(u := UOp(op, dtype, tuple(srcs), arg, ()))
    return u
  lo = 0
  for p in progs:
    const = lambda v: emit(U.CONST, int32, (), v)
    local = emit(U.ALU, int32, (pid, const(lo)), Op.SUB)
    after = emit(U.ALU, int32, (local, const(1)), Op.ADD)
    start = emit(U.ALU, int32, (local, const(0)), Op.MAX)
    stop = emit(U.ALU, int32, (emit(U.ALU, bool_, (after, const(p.grid)), Op.CMPLT), after, const(p.grid)), Op.WHERE)
    loop = emit(U.RANGE, int32, (start, stop), p.grid)
    mapped = {id(u): uops[u.arg] for u in p.uops if u.op is U.PARAM}
    for u in p.uops:
      if u.op is U.PARAM: continue
      if u.op is U.PROGRAM_ID:
        mapped[id(u)] = local if u.dtype == int32 else emit(U.ALU, u.dtype, (local,), Op.CAST)
        continue
      uops.append(new := UOp(u.op, u.dtype, tuple(mapped[id(s)] for s in u.srcs), u.arg, u.shape,
                             None if u.ast is None else index[p.kernel.nodes[u.ast]]))
      mapped[id(u)] = new
    emit(U.ENDRANGE, None, (loop,))
    lo += p.grid
  prog = Program(k.name, uops, lo, tiling, k)
  if settings.VERIFY: prog.verify()
  return prog
