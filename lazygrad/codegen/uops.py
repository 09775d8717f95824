"""Block-level uops: a flat SSA list where every value is a tile (an n-d block) or a scalar.

Each uop maps one-to-one onto a `tl.*` call and onto a numpy call. A tile's rank is the kernel's number of axes;
axes a value does not vary along have size 1 and broadcast. Contract (`Program.verify`): SSA order, loops nest,
accumulators are updated in place, memory is reached only through parameters, ALU tiles broadcast."""
from __future__ import annotations
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any, NamedTuple
from ..dtypes import DType
from ..helpers import InvalidIR
from ..ir.ops import Op


class U(Enum):
  PARAM = auto()        # buffer pointer, arg: slot
  SCALAR = auto()       # scalar argument, arg: its number
  PROGRAM_ID = auto()   # scalar program index
  CONST = auto()        # scalar, arg: value
  ARANGE = auto()       # tile 0..block-1 along one axis, arg: axis
  LOAD = auto()         # srcs: param, index[, mask]
  TILE_LOAD = auto()    # srcs: param, row, col (scalars): the block of a strided matrix at (row, col), zero past its
                        # edges; arg: TileDesc (a TMA load through a tensor descriptor on Hopper)
  STORE = auto()        # srcs: param, index, value[, mask]; arg "add": add into memory (atomically: lanes may collide)
  TILE_STORE = auto()   # srcs: param, row, col (scalars), value: the value as the block of a strided matrix at (row,
                        # col), what lies past its edges dropped; arg: TileDesc (a TMA store on Hopper)
  RANGE = auto()        # loop start: scalar counter 0..arg-1, or lo..hi-1 given srcs (lo, hi) with 0 <= lo, hi <= arg,
                        # in steps of srcs[2] given (lo, hi, step): a persistent kernel's loop over its output tiles
  ENDRANGE = auto()     # srcs: range
  ACC = auto()          # accumulator tile, arg: initial value
  ACC_UPDATE = auto()   # srcs: acc, new value (assigns; later uses of acc see it)
  REDUCE = auto()       # arg: (Op.REDUCE_SUM|REDUCE_MAX|REDUCE_PROD, axes); keeps reduced axes with size 1
  SCAN = auto()         # srcs: x[, carry]; arg: (op, axis): the inclusive scan of x along axis (ops.Scan's op), the
                        # carry (size 1 along axis) combined into every element first
  SORT = auto()         # srcs: x; arg: (axis, descending, n, part): x's first n along axis in stable sorted order,
                        # part 'values' (then the rest of the lanes) or 'indices' (the lanes they were at)
  BROADCAST = auto()    # tile broadcast to `shape`
  DOT = auto()          # srcs: a (.., i, k), b (.., k, j)[, acc (.., i, j)]: matrix product (+ acc), batched
  RESHAPE = auto()      # the same elements as a tile of `shape`
  SPLIT = auto()        # srcs: x; arg: (axis, part): x's first (part 0) or second (part 1) half along axis (tl.split)
  ALU = auto()          # arg: Op (ADD, MUL, CMPLT, WHERE, CAST, ...)

  def __repr__(self): return self.name


class TileDesc(NamedTuple):
  """A strided matrix in a buffer, read or written in blocks: `shape` (rows, cols), row stride `stride` (columns are
  contiguous), from element `offset`, in blocks of `block` (rows, cols); `transposed`: the tile is the block's
  transpose (the operand's axes run the other way round in memory)."""
  shape: tuple
  stride: int
  offset: int
  block: tuple
  transposed: bool


@dataclass(eq=False)
class UOp:
  op: U
  dtype: DType | None
  srcs: tuple = ()
  arg: Any = None
  shape: tuple = ()          # tile shape; () for scalars
  ast: int | None = None     # the node of the kernel AST (its index in Kernel.nodes) this uop computes


@dataclass
class Program:
  """A lowered kernel: uops plus the launch grid (number of programs) and the tiling they were lowered for."""
  name: str
  uops: list[UOp]
  grid: int
  tiling: Any
  kernel: Any = None

  @property
  def blocks(self) -> tuple: return tuple(self.tiling.blocks)

  def verify(self):
    """Check the uops' contract: SSA order, loops that nest, accumulators updated in place, buffer access through
    parameters, ALU tiles that broadcast; raises InvalidIR naming the program and the uop."""
    seen, loops, scope = set(), [], {}   # scope: the loops open where each value is defined
    def fail(i, msg): raise InvalidIR(f"program {self.name}: uop %{i}: {msg}\n{self.text}")
    for i, u in enumerate(self.uops):
      if any(id(s) not in seen for s in u.srcs): fail(i, "reads a value defined after it")
      if any(scope[id(s)] != tuple(id(x) for x in loops[:len(scope[id(s)])]) for s in u.srcs):
        fail(i, "reads a value of a loop that is closed (only accumulators carry values out of a loop)")
      scope[id(u)] = tuple(id(x) for x in loops)
      if u.op is U.RANGE: loops.append(u)
      if u.op is U.ENDRANGE and (not loops or loops.pop() is not u.srcs[0]): fail(i, "closes a loop that is not open")
      if u.op is U.ACC_UPDATE and u.srcs[0].op is not U.ACC: fail(i, "updates something that is not an accumulator")
      if u.op in (U.LOAD, U.TILE_LOAD, U.STORE, U.TILE_STORE) and u.srcs[0].op is not U.PARAM:
        fail(i, "accesses memory not through a parameter")
      tile = u.shape if u.op is U.TILE_LOAD else u.srcs[3].shape if u.op is U.TILE_STORE else None
      if tile is not None and tile != (u.arg.block[::-1] if u.arg.transposed else u.arg.block):
        fail(i, f"a tile of {tile} is no block {u.arg.block} {'(transposed) ' if u.arg.transposed else ''}of its "
                "descriptor")
      if u.op is U.SPLIT and (u.srcs[0].shape[u.arg[0]] % 2 or
                              u.shape != tuple(x // 2 if d == u.arg[0] else x for d, x in enumerate(u.srcs[0].shape))):
        fail(i, f"is no half of a tile {u.srcs[0].shape} along axis {u.arg[0]}")
      if u.op is U.ALU and any(s.shape and len(s.shape) != len(u.shape) or
                               any(a not in (1, b) for a, b in zip(s.shape, u.shape)) for s in u.srcs):
        fail(i, f"tiles {[s.shape for s in u.srcs]} do not broadcast to {u.shape}")
      seen.add(id(u))
    if loops: fail(len(self.uops), "a loop is never closed")

  @property
  def text(self) -> str:
    names = {u: f"%{i}" for i, u in enumerate(self.uops)}
    lines, depth = [f"program {self.name} grid={self.grid} blocks={list(self.blocks)}"], 1
    for i, u in enumerate(self.uops):
      if u.op is U.ENDRANGE: depth -= 1
      arg = u.arg.name if isinstance(u.arg, Op) else "" if u.arg is None else repr(u.arg) if u.op is U.CONST else \
        str(u.arg).replace("REDUCE_", "")
      dt = u.dtype.name if u.dtype is not None else ""
      shape = f"[{','.join(map(str, u.shape))}]" if u.shape else ""
      parts = [f"%{i} = {u.op.name}", arg, dt + shape, " ".join(names[s] for s in u.srcs)]
      lines.append("  " * depth + " ".join(p for p in parts if p))
      if u.op is U.RANGE: depth += 1
    return "\n".join(lines)
