"""The primitive operations of the lazy graph, grouped by how the compiler treats them."""
from enum import IntEnum, auto


class Op(IntEnum):   # an int enum: hashing is C-speed (the scheduler hashes ops millions of times)
  # sources (IOTA: a 1-d integer tensor whose element i is i, an arange without host data)
  BUFFER = auto(); CONST = auto(); IOTA = auto()
  # unary ALU
  NEG = auto(); RECIP = auto(); SQRT = auto(); EXP = auto(); LOG = auto(); SIN = auto(); TRUNC = auto(); NOT = auto()
  # binary ALU
  ADD = auto(); SUB = auto(); MUL = auto(); DIV = auto(); IDIV = auto(); MOD = auto(); MAX = auto(); POW = auto()
  CMPLT = auto(); CMPEQ = auto(); CMPNE = auto(); AND = auto(); OR = auto(); XOR = auto()
  # ternary ALU
  WHERE = auto()
  CAST = auto()
  # reductions over axes (keepdim: reduced axes become 1)
  REDUCE_SUM = auto(); REDUCE_MAX = auto()
  # movement: free, they become views
  RESHAPE = auto(); PERMUTE = auto(); EXPAND = auto(); PAD = auto(); SHRINK = auto(); FLIP = auto()
  # materialization
  CONTIGUOUS = auto(); ASSIGN = auto()
  # identity for the compiler, a wall for gradients
  DETACH = auto()
  # identity for the compiler and for gradients; srcs[1] is an int64 scalar that must be INT64_MIN (checked after the
  # schedule runs), else arg = (error class name, message with {} for it) is raised: index and divisor checks
  CHECK = auto()
  # out[j.., r..] = x[index[j..], r..]: rows of a materialized tensor picked by an integer tensor (embeddings)
  GATHER = auto()
  # the source's value on another device (arg: that device's name): the one op whose source is on another device
  COPY = auto()

  def __repr__(self): return self.name


UNARY = {Op.NEG, Op.RECIP, Op.SQRT, Op.EXP, Op.LOG, Op.SIN, Op.TRUNC, Op.NOT}
BINARY = {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.IDIV, Op.MOD, Op.MAX, Op.POW, Op.CMPLT, Op.CMPEQ, Op.CMPNE, Op.AND, Op.OR,
          Op.XOR}
ALU = UNARY | BINARY | {Op.WHERE, Op.CAST}
COMPARE = {Op.CMPLT, Op.CMPEQ, Op.CMPNE}
REDUCE = {Op.REDUCE_SUM, Op.REDUCE_MAX}
MOVEMENT = {Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.PAD, Op.SHRINK, Op.FLIP}
