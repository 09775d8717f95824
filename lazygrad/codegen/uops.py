"""Block-level uops: a flat SSA list where every value is a tile (an n-d block) or a scalar.

Each uop maps one-to-one onto a `tl.*` call and onto a numpy call. A tile's rank is the kernel's number of axes;
axes a value does not vary along have size 1 and broadcast."""
from __future__ import annotations
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any
from ..dtypes import DType
from ..ir.ops import Op


class U(Enum):
  PARAM = auto()        # buffer pointer, arg: slot
  SCALAR = auto()       # scalar argument, arg: its number
  PROGRAM_ID = auto()   # scalar program index
  CONST = auto()        # scalar, arg: value
  ARANGE = auto()       # tile 0..block-1 along one axis, arg: axis
  LOAD = auto()         # srcs: param, index[, mask]
  STORE = auto()        # srcs: param, index, value[, mask]
  RANGE = auto()        # loop start: scalar counter 0..arg-1
  ENDRANGE = auto()     # srcs: range
  ACC = auto()          # accumulator tile, arg: initial value
  ACC_UPDATE = auto()   # srcs: acc, new value (assigns; later uses of acc see it)
  REDUCE = auto()       # arg: (Op.REDUCE_SUM|REDUCE_MAX, axes); keeps reduced axes with size 1
  BROADCAST = auto()    # tile broadcast to `shape`
  DOT = auto()          # srcs: a (.., i, k), b (.., k, j)[, acc (.., i, j)]: matrix product (+ acc), batched
  RESHAPE = auto()      # the same elements as a tile of `shape`
  ALU = auto()          # arg: Op (ADD, MUL, CMPLT, WHERE, CAST, ...)

  def __repr__(self): return self.name


@dataclass(eq=False)
class UOp:
  op: U
  dtype: DType | None
  srcs: tuple = ()
  arg: Any = None
  shape: tuple = ()          # tile shape; () for scalars
  locs: tuple = field(default=())


@dataclass
class Program:
  """A lowered kernel: uops plus the launch grid (number of programs) and the tile shape of its axes."""
  name: str
  uops: list[UOp]
  grid: int
  blocks: tuple
  kernel: Any = None

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
