"""The primitive operations of the lazy graph, grouped by how the compiler treats them."""
import math
from enum import IntEnum, auto
from typing import NamedTuple
from ..dtypes import DType, min_value


class Op(IntEnum):   # an int enum: hashing is C-speed (the scheduler hashes ops millions of times)
  # sources (IOTA: a 1-d integer tensor whose element i is i, an arange without host data)
  BUFFER = auto(); CONST = auto(); IOTA = auto()
  # unary ALU
  NEG = auto(); RECIP = auto(); SQRT = auto(); EXP = auto(); LOG = auto(); SIN = auto(); TRUNC = auto(); NOT = auto()
  EXP2 = auto()   # 2**x, the device's fast approximation where it has one (flash attention's softmax, in base 2)
  # binary ALU
  ADD = auto(); SUB = auto(); MUL = auto(); DIV = auto(); IDIV = auto(); MOD = auto(); MAX = auto(); POW = auto()
  CMPLT = auto(); CMPEQ = auto(); CMPNE = auto(); AND = auto(); OR = auto(); XOR = auto()
  # ternary ALU
  WHERE = auto()
  CAST = auto()
  # reductions over axes (keepdim: reduced axes become 1)
  REDUCE_SUM = auto(); REDUCE_MAX = auto(); REDUCE_PROD = auto()
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
  # out[i, r..] = the sum of value[j, r..] over the j with index[j] == i, 0 where none (srcs: index [J], value [J, r..];
  # arg: the rows of out): a gather's gradient, accumulated in memory instead of a one-hot contraction over every row
  SCATTER_ADD = auto()
  # fused scaled-dot-product attention, one kernel template (arg: `Attention`): where a composition of the other
  # primitives would hold the T x T score matrix in memory, this computes it tile by tile and keeps only O(T) per row
  ATTENTION = auto()
  # the inclusive scan of the source along one axis (arg: `Scan`): a composition would sum O(n^2) terms per row
  SCAN = auto()
  # the source sorted along one axis, stably (arg: `Sort`: its values, or their positions in the source)
  SORT = auto()

  def __repr__(self): return self.name


UNARY = {Op.NEG, Op.RECIP, Op.SQRT, Op.EXP, Op.EXP2, Op.LOG, Op.SIN, Op.TRUNC, Op.NOT}
BINARY = {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.IDIV, Op.MOD, Op.MAX, Op.POW, Op.CMPLT, Op.CMPEQ, Op.CMPNE, Op.AND, Op.OR,
          Op.XOR}
ALU = UNARY | BINARY | {Op.WHERE, Op.CAST}
COMPARE = {Op.CMPLT, Op.CMPEQ, Op.CMPNE}
REDUCE = {Op.REDUCE_SUM, Op.REDUCE_MAX, Op.REDUCE_PROD}
MOVEMENT = {Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.PAD, Op.SHRINK, Op.FLIP}


ATTENTION_PARTS = ("out", "lse", "dq", "delta", "dk", "dv")


class Attention(NamedTuple):
  """What one ATTENTION node is. Its sources are q [*, Tq, D], k [*, Tk, D], v [*, Tk, Dv] (one leading shape `*`),
  then for a gradient part dO [*, Tq, Dv] (the gradient of `out`), lse [*, Tq] and, for 'dq' and 'delta', `out`
  [*, Tq, Dv] itself, for 'dk' and 'dv' delta [*, Tq], then, if `masked`, the mask [*, Tq, Tk] (bool: True keeps;
  float: added to the scores).
  `part`: 'out' = softmax(q k^T scale + mask) v, zero on a row that keeps no key (as torch's); 'lse' = the rows'
  log-sum-exp of those scores (float32; +inf on a row that keeps no key, so exp(score - lse) is 0 there); 'dq',
  'dk', 'dv' = the gradients of `out`; 'delta' = rowsum(dO * out) (float32), which the dq kernel computes for its
  own rows anyway and stores for the key-major kernel. `causal`: query i keeps keys j <= i (top-left aligned, as
  torch's)."""
  part: str
  scale: float
  causal: bool
  masked: bool

  @property
  def backward(self) -> bool: return self.part in ("dq", "delta", "dk", "dv")
  @property
  def query_major(self) -> bool:
    """Its kernel walks the keys for a block of queries ('out', 'lse', 'dq', 'delta'), not the queries for a block of
    keys."""
    return self.part in ("out", "lse", "dq", "delta")


# each scan op and its identity, what it combines with any value to give that value back (None: the dtype's smallest)
SCAN_OPS = {"sum": 0, "prod": 1, "max": None, "logaddexp": -math.inf}


def scan_identity(op: str, dtype: DType):
  """The identity of a scan's (or a reduction's) `op` in `dtype`."""
  ident = SCAN_OPS[op]
  return min_value(dtype) if ident is None else ident


class Scan(NamedTuple):
  """What one SCAN node is: element i along `axis` combines elements 0..i of the source by `op` (one of SCAN_OPS;
  'max' keeps NaN, as torch.cummax; 'logaddexp' is log(exp(a) + exp(b)), float only). Same shape and dtype as its
  source."""
  op: str
  axis: int


class Sort(NamedTuple):
  """What one SORT node is: its source sorted along `axis`, ascending or `descending`, stably (equal elements keep
  their order; NaN is larger than every number, -0.0 equals 0.0, as torch.sort). `part`: 'values' (the source's
  dtype) or 'indices' (int64: where each value was along `axis`)."""
  axis: int
  descending: bool
  part: str
