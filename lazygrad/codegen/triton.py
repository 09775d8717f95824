"""Render block uops as the source of one `@triton.jit` function: one line per uop, each with a comment naming the
op and the kernel AST node it computes (`# add %7`). The source is readable on its own and is also the cache key of
the compiled kernel, so it holds no user lines: two programs that share a kernel share its source, and each is shown
its own lines when the source is printed (`ScheduleItem.annotated`).

Input: a verified `Program`. Output: Python source defining the kernel and GRID, NUM_WARPS, NUM_STAGES. Contract:
every uop becomes `tl.*` code with the semantics `ir/alu.py` gives it (the numpy reference), so check mode can
compare the two."""
from __future__ import annotations
import math
import numpy as np
from ..dtypes import DType
from ..ir.ops import Op
from .uops import U, UOp, Program
from .renderer import register_renderer

def tl_dtype(dt: DType) -> str:
  """Triton's name of a dtype: lazygrad's names are Triton's, but for bool."""
  return "tl.int1" if dt.is_bool else f"tl.{dt.name}"

_BINARY = {Op.ADD: "+", Op.SUB: "-", Op.MUL: "*", Op.DIV: "/", Op.IDIV: "//", Op.MOD: "%", Op.CMPLT: "<",
           Op.CMPEQ: "==", Op.CMPNE: "!=", Op.AND: "&", Op.OR: "|", Op.XOR: "^"}
_UNARY = {Op.EXP: "tl.exp({})", Op.EXP2: "tl.math.exp2({})", Op.LOG: "tl.log({})", Op.SIN: "tl.sin({})",
          Op.SQRT: "tl.sqrt_rn({})", Op.NEG: "-{}", Op.RECIP: "1.0 / {}", Op.NOT: "{} == 0",
          Op.TRUNC: "tl.where({0} < 0, tl.ceil({0}), tl.floor({0}))"}

PRELUDE = '''import triton
import triton.language as tl
'''

# Helpers a kernel's source starts with when it uses them.
# libdevice, for what Triton has no exact operator for (its float `%` on the GPU is not fmod: 1e10 % 3 gave 256 on an
# H200 with triton 3.6, libdevice.fmod 1); this name works from triton 3.6 on, mapped to CUDA's library when compiled.
LIBDEVICE = '''from triton.language.extra import libdevice
'''

# Triton's CPU interpreter truncates float32 -> bfloat16; the GPU rounds to nearest even. Under the interpreter the
# rounding is spelled out so both give the same bits.
ROUND_BF16 = '''

@triton.jit
def _round_bf16(x):
  bits = x.to(tl.uint32, bitcast=True)
  bits = bits + 0x7FFF + ((bits >> 16) & 1)
  return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
'''

# On the GPU Triton's float32 `/` is an approximate division (1e10 // 3 came out an ulp off on an H200) and tl.exp,
# tl.log and tl.sin are the approximate hardware instructions (17 ulps off in sigmoid's tail; sin has no range
# reduction for large arguments). PyTorch's are IEEE division and CUDA's accurate math library: so are these.
DIV_RN = '''

@triton.jit
def _div(x, y):
  x, y = tl.broadcast(x, y)
  return tl.math.div_rn(x, y)
'''
_ACCURATE = {Op.EXP: "exp", Op.LOG: "log", Op.SIN: "sin"}

# The interpreter cannot call libdevice: float64 pow from exp2/log2 (rounded to float32 it is correctly rounded
# but for rare ties, like libdevice's float64 pow on the GPU), with C's special cases spelled out.
POW_INTERP = '''

@triton.jit
def _pow(x, y):
  x, y = tl.broadcast(x, y)   # no scalars: the interpreter types a scalar's comparison like its operands
  out = tl.exp2(y * tl.log2(tl.abs(x)))
  y_int = tl.floor(y) == y
  y_odd = y_int & (tl.floor(y * 0.5) != y * 0.5)
  out = tl.where((x.to(tl.int64, bitcast=True) < 0) & y_odd, -out, out)
  out = tl.where((x < 0) & (x > -float('inf')) & (y_int == 0), float('nan'), out)
  return tl.where((y == 0) | (x == 1) | ((x == -1) & (tl.abs(y) == float('inf'))), 1.0, out)
'''


# The combine function of a float max reduction that keeps NaN, as torch's does (tl.max drops it).
MAX_NAN = '''

@triton.jit
def _max_nan(a, b):
  return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)
'''


# A product reduction's combine function (Triton has tl.cumprod but no product reduction).
MUL = '''

@triton.jit
def _mul(a, b):
  return a * b
'''

# log(exp(a) + exp(b)), as torch's logcumsumexp combines: equal infinities stay as they are, NaN stays NaN.
LOGADDEXP = '''

@triton.jit
def _logaddexp(a, b):
  hi = tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)
  lo = tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)
  return tl.where((hi == lo) & (tl.abs(hi) == float('inf')), hi, hi + {log1p_exp})
'''

# Sorting: each element gets an integer key in the sort's order (a float's bits, negative ones counted down; one NaN
# above +inf; -0.0 as 0.0), then a bitonic sorting network orders the (key, lane) pairs of each row, so equal keys
# keep their order (a stable sort), and carries the values' bits along. A lane's partner in a step is the other
# element of its pair: the pair's sum less itself (exact in two's complement, also where the sum wraps or is taken
# wider; tl.sum, unlike xor_sum, is fast in the interpreter).
SORT = '''

@triton.jit
def _sort_key(x, INT: tl.constexpr, TOP: tl.constexpr, LOW: tl.constexpr):
  bits = tl.where(x != x, float('nan'), tl.where(x == 0, 0.0, x)).to(INT, bitcast=True)
  return bits ^ ((bits >> TOP) & LOW)


@triton.jit
def _partner(x, j: tl.constexpr):
  pairs = tl.reshape(x, [x.numel // (2 << j), 2, 1 << j])
  return tl.reshape(tl.sum(pairs, 1, keep_dims=True) - pairs, x.shape).to(x.dtype)


@triton.jit
def _sort(key, lane, bits, LOG_N: tl.constexpr):
  idx = tl.broadcast_to(lane, key.shape)
  for s in tl.static_range(1, LOG_N + 1):
    for j in tl.static_range(s - 1, -1, -1):   # pairs 2**j lanes apart
      other_key, other_idx, other_bits = _partner(key, j), _partner(idx, j), _partner(bits, j)
      greater = (key > other_key) | ((key == other_key) & (idx > other_idx))
      swap = greater == (((lane >> j) & 1) == ((lane >> s) & 1))   # the lane keeps the smaller of its pair?
      key, idx, bits = tl.where(swap, other_key, key), tl.where(swap, other_idx, idx), tl.where(swap, other_bits, bits)
  return idx, bits
'''


def _literal(v, dtype: DType) -> str:
  if dtype.is_bool: return "True" if v else "False"
  if dtype.is_float:
    v = float(np.asarray(v, dtype.np))   # a half constant is its rounded value, written as a weakly typed literal
    text = repr(v) if math.isfinite(v) else ("float('nan')" if math.isnan(v) else f"{'-' if v < 0 else ''}float('inf')")
    return text if dtype.name != "float64" else f"tl.full((), {text}, tl.float64)"
  return str(int(v)) if dtype.name == "int32" else f"tl.full((), {int(v)}, {tl_dtype(dtype)})"


def _index_expr(shape: tuple, axis: int) -> str:
  """[None, :, None] style expansion of a 1-d arange into a tile of `shape`."""
  if len(shape) == 1: return ""
  return "[" + ", ".join(":" if d == axis else "None" for d in range(len(shape))) + "]"


class _Renderer:
  def __init__(self, prog: Program, fp32_precision: str, interpreter: bool):
    self.prog, self.precision, self.interpreter = prog, fp32_precision, interpreter
    self.names: dict[int, str] = {}
    self.lines: list[str] = []
    self.helpers: dict[str, None] = {}   # prelude snippets the kernel uses, in first-use order
    self.descriptors: dict[tuple, str] = {}   # (slot, TileDesc) -> the name of its tensor descriptor
    self.indent = 1

  def name(self, u: UOp) -> str: return self.names[id(u)]

  def emit(self, u: UOp, name: str | None, expr: str):
    comment = ""
    if u.ast is not None:   # the AST node it computes; the user's lines are attached when the source is shown
      what = u.arg.name if isinstance(u.arg, Op) else u.op.name
      comment = f"  # {what.lower()} %{u.ast}"
    self.lines.append("  " * self.indent + (f"{name} = {expr}" if name else expr) + comment)
    if name: self.names[id(u)] = name

  def render(self) -> str:
    p = self.prog
    params = [u for u in p.uops if u.op is U.PARAM]
    for u in params: self.names[id(u)] = f"b{u.arg}"
    args = [self.names[id(u)] for u in params] + [f"s{i}" for i in range(len(p.kernel.scalars) if p.kernel else 0)]
    head = f"@triton.jit\ndef {p.name}({', '.join(args)}):"
    for i, u in enumerate(p.uops): self.uop(i, u)
    # made once, before any loop: making one writes it to global scratch memory (see TritonDevice)
    made = [f"  {name} = tl.make_tensor_descriptor(b{slot} + {d.offset}, shape={list(d.shape)}, strides=[{d.stride}, "
            f"1], block_shape={list(d.block)})" for (slot, d), name in self.descriptors.items()]
    self.lines = made + self.lines
    meta = f"\nGRID = {p.grid}\nNUM_WARPS = {p.tiling.num_warps}\nNUM_STAGES = {p.tiling.num_stages}\n"
    helpers = sorted(self.helpers, key=lambda h: not h.startswith("from"))   # imports first (a stable sort)
    return PRELUDE + "".join(helpers) + "\n\n" + head + "\n" + "\n".join(self.lines) + "\n" + meta

  def helper(self, snippet: str, call: str) -> str:
    self.helpers[snippet] = None
    return call

  def uop(self, i: int, u: UOp):
    s = [self.names.get(id(x)) for x in u.srcs]
    idt = tl_dtype(u.dtype) if u.dtype is not None else None
    if u.op is U.PARAM: return
    if u.op is U.SCALAR: self.names[id(u)] = f"s{u.arg}"; return
    if u.op is U.CONST: self.names[id(u)] = _literal(u.arg, u.dtype); return
    if u.op is U.PROGRAM_ID:
      self.emit(u, "pid", "tl.program_id(0)" + (".to(tl.int64)" if u.dtype.name == "int64" else ""))
    elif u.op is U.ARANGE:
      cast = ".to(tl.int64)" if u.dtype.name == "int64" else ""
      self.emit(u, f"ar{i}", f"tl.arange(0, {u.shape[u.arg]}){cast}{_index_expr(u.shape, u.arg)}")
    elif u.op is U.ALU:
      expr = self.alu(u, s)
      if self.interpreter and u.dtype.is_bool and not u.shape:
        # the interpreter types a comparison's result like its operands, so a scalar one (a row bound from the
        # program id) broadcast into a tile becomes an int tile, which tl.load/tl.store reject as a mask and
        # store as ints: select between int1 constants instead
        expr = f"tl.where({expr}, True, False)"
      self.emit(u, f"x{i}", expr)
    elif u.op is U.LOAD:
      mask = f", mask={s[2]}, other={'False' if u.dtype.is_bool else '0.0' if u.dtype.is_float else '0'}" \
        if len(s) > 2 else ""
      self.emit(u, f"x{i}", f"tl.load({s[0]} + {s[1]}{mask})")
    elif u.op in (U.TILE_LOAD, U.TILE_STORE):
      d = self.descriptors.setdefault((u.srcs[0].arg, u.arg), f"desc{len(self.descriptors)}")
      t = ".T" if u.arg.transposed else ""
      if u.op is U.TILE_LOAD: self.emit(u, f"x{i}", f"{d}.load([{s[1]}, {s[2]}]){t}")
      else: self.emit(u, None, f"{d}.store([{s[1]}, {s[2]}], {s[3]}{t})")
    elif u.op is U.STORE:
      mask = f", mask={s[3]}" if len(s) > 3 else ""
      if u.arg == "add": self.emit(u, None, f"tl.atomic_add({s[0]} + {s[1]}, {s[2]}{mask}, sem='relaxed')")
      else: self.emit(u, None, f"tl.store({s[0]} + {s[1]}, {s[2]}{mask})")
    elif u.op is U.BROADCAST:
      src = u.srcs[0]
      self.emit(u, f"x{i}", f"tl.full({list(u.shape)}, {src.arg}, {tl_dtype(src.dtype)})" if src.op is U.CONST
                else f"tl.zeros({list(u.shape)}, {tl_dtype(src.dtype)}) + {s[0]}" if src.op is U.SCALAR   # not a tensor
                else f"tl.broadcast_to({s[0]}, {list(u.shape)})")
    elif u.op is U.REDUCE:
      op, axes = u.arg
      # tl.max drops NaN; torch's max returns it: on the GPU one pass whose combine keeps it; the interpreter runs a
      # custom combine element by element in Python, so there a second reduction finds the NaNs
      keep_nan = op is Op.REDUCE_MAX and u.dtype.is_float
      expr = s[0]
      for a in sorted(axes, reverse=True):
        if op is Op.REDUCE_SUM: expr = f"tl.sum({expr}, axis={a}, keep_dims=True)"
        elif op is Op.REDUCE_PROD: expr = self.helper(MUL, f"tl.reduce({expr}, {a}, _mul, keep_dims=True)")
        elif keep_nan and not self.interpreter:
          expr = self.helper(MAX_NAN, f"tl.reduce({expr}, {a}, _max_nan, keep_dims=True)")
        else: expr = f"tl.max({expr}, axis={a}, keep_dims=True)"
      if keep_nan and self.interpreter:
        nans = f"({s[0]} != {s[0]}).to(tl.int32)"
        for a in sorted(axes, reverse=True): nans = f"tl.max({nans}, axis={a}, keep_dims=True)"
        expr = f"tl.where({nans} > 0, float('nan'), {expr})"
      self.emit(u, f"x{i}", expr)
    elif u.op is U.SCAN: self.emit(u, f"x{i}", self.scan(u, s))
    elif u.op is U.SORT: self.emit(u, f"x{i}", self.sort(u, s[0]))
    elif u.op is U.DOT: self.emit(u, f"x{i}", self.dot(u, s))
    elif u.op is U.RESHAPE: self.emit(u, f"x{i}", f"tl.reshape({s[0]}, {list(u.shape)})")
    elif u.op is U.SPLIT:
      # tl.split halves a last axis of size 2: the halves along `axis` become that axis
      axis, part = u.arg
      shape = list(u.srcs[0].shape)
      pairs = shape[:axis] + [2, shape[axis] // 2] + shape[axis + 1:]
      order = [d for d in range(len(pairs)) if d != axis] + [axis]
      self.emit(u, f"x{i}", f"tl.split(tl.permute(tl.reshape({s[0]}, {pairs}), {order}))[{part}]")
    elif u.op is U.ACC: self.emit(u, f"acc{i}", f"tl.full({list(u.shape)}, {_literal(u.arg, u.dtype)}, {idt})")
    elif u.op is U.ACC_UPDATE: self.lines.append("  " * self.indent + f"{s[0]} = {s[1]}")
    elif u.op is U.RANGE:
      # a stepped loop is a persistent kernel's over its tiles: flattened with the loops inside, Triton pipelines the
      # next tile's loads under this one's products
      self.emit(u, None, f"for r{i} in tl.range({s[0]}, {s[1]}, {s[2]}, flatten=True):" if len(s) == 3 else
                f"for r{i} in range({s[0]}, {s[1]}):" if s else f"for r{i} in range(0, {u.arg}):")
      self.names[id(u)] = f"r{i}"
      self.indent += 1
    elif u.op is U.ENDRANGE: self.indent -= 1
    else: raise NotImplementedError(f"triton renderer: no rendering for uop {u.op}")

  def alu(self, u: UOp, s: list[str]) -> str:
    op = u.arg
    if op not in (Op.CAST, Op.WHERE) and any(x.dtype.name in ("float16", "bfloat16") for x in u.srcs):
      # half-precision math in float32, rounded once per op (what the numpy reference does)
      s = [f"{n}.to(tl.float32)" if x.dtype.name in ("float16", "bfloat16") and x.op not in (U.CONST, U.SCALAR) else n
           for n, x in zip(s, u.srcs)]
      expr = self._alu(op, u, s)
      if u.dtype.name == "bfloat16": return self.to_bf16(f"({expr})")
      return f"({expr}).to(tl.float16)" if u.dtype.name == "float16" else expr
    return self._alu(op, u, s)

  def _alu(self, op: Op, u: UOp, s: list[str]) -> str:
    if op is Op.POW:
      # in float64: libdevice's float32 pow flushes denormals and missed the correctly rounded float32 result for 39%
      # of random inputs on an H200 (torch's CUDA pow: 6%, by an ulp); float64 pow rounded to float32 missed none
      x, y = (self.operand(v, n, "float64") for v, n in zip(u.srcs, s))
      expr = self.helper(POW_INTERP, f"_pow({x}, {y})") if self.interpreter else \
        self.helper(LIBDEVICE, f"libdevice.pow({x}, {y})")
      return expr if u.dtype.name == "float64" else f"{expr}.to(tl.float32)"
    if op is Op.MOD and u.dtype.is_float and not self.interpreter:   # the interpreter's float % is numpy's fmod
      dt = "float64" if u.dtype.name == "float64" else "float32"
      x, y = (self.operand(v, n, dt) for v, n in zip(u.srcs, s))
      return self.helper(LIBDEVICE, f"libdevice.fmod({x}, {y})")
    if not self.interpreter and u.dtype.name in ("float32", "float16", "bfloat16"):   # computed in float32
      if op in (Op.DIV, Op.RECIP) or (op is Op.IDIV and u.dtype.is_float):
        x, y = ("tl.cast(1.0, tl.float32)", s[0]) if op is Op.RECIP else \
          (self.operand(v, n, "float32") for v, n in zip(u.srcs, s))
        return self.helper(DIV_RN, f"_div({x}, {y})")
      if op in _ACCURATE: return self.helper(LIBDEVICE, f"libdevice.{_ACCURATE[op]}({self.operand(u.srcs[0], s[0], 'float32')})")
    if op in _BINARY:
      if op is Op.IDIV and u.dtype.is_float: return f"{s[0]} / {s[1]}"
      return f"{s[0]} {_BINARY[op]} {s[1]}"
    if op in _UNARY: return _UNARY[op].format(s[0])
    if op is Op.MAX: return f"tl.maximum({s[0]}, {s[1]}, propagate_nan=tl.PropagateNan.ALL)"
    if op is Op.WHERE: return f"tl.where({s[0]}, {s[1]}, {s[2]})"
    if op is Op.CAST:
      src = u.srcs[0].dtype
      if self.interpreter and u.srcs[0].op is U.SCALAR:   # a scalar argument is a Python float there: no .to()
        s = [f"tl.full((), {s[0]}, {tl_dtype(src)})"]
      if u.dtype.is_bool: return f"{s[0]} != 0"
      if src.is_float and u.dtype.is_int and u.dtype.kind == 'u':   # float -> uint8 wraps like torch via int32
        return f"{s[0]}.to(tl.int32).to({tl_dtype(u.dtype)})"
      if u.dtype.name == "bfloat16": return self.to_bf16(f"{s[0]}.to(tl.float32)")
      if src.name == "bfloat16" and u.dtype.name != "float32": return f"{s[0]}.to(tl.float32).to({tl_dtype(u.dtype)})"
      return f"{s[0]}.to({tl_dtype(u.dtype)})"
    raise NotImplementedError(f"triton renderer: no rendering for {op}")

  def operand(self, x: UOp, name: str, dtype: str) -> str:
    """`name` as a tensor of `dtype`, for a function call (a literal is not a tensor)."""
    return f"tl.cast({name}, tl.{dtype})" if x.op is U.CONST or x.dtype.name != dtype else name

  def to_bf16(self, f32_expr: str) -> str:
    return self.helper(ROUND_BF16, f"_round_bf16({f32_expr})") if self.interpreter else f"{f32_expr}.to(tl.bfloat16)"

  def scan(self, u: UOp, s: list[str]) -> str:
    """An inclusive scan along one axis, the carry (if any) combined in after."""
    op, axis = u.arg
    if op == "sum": expr, combine = f"tl.cumsum({s[0]}, axis={axis})", "{} + {}"
    elif op == "prod": expr, combine = f"tl.cumprod({s[0]}, axis={axis})", "{} * {}"
    elif op == "max":
      expr = f"tl.associative_scan({s[0]}, {axis}, {self.helper(MAX_NAN, '_max_nan')})"
      combine = "tl.maximum({}, {}, propagate_nan=tl.PropagateNan.ALL)"
    else:   # logaddexp; the GPU's exp and log are approximate: the accurate library's there
      log1p_exp = "tl.log(1 + tl.exp(lo - hi))" if self.interpreter else \
        self.helper(LIBDEVICE, "libdevice.log1p(libdevice.exp(lo - hi))")
      fn = self.helper(LOGADDEXP.format(log1p_exp=log1p_exp), "_logaddexp")
      expr, combine = f"tl.associative_scan({s[0]}, {axis}, {fn})", fn + "({}, {})"
    return combine.format(s[1], expr) if len(s) > 1 else expr

  def sort(self, u: UOp, x: str) -> str:
    """A row in sorted order (its values, or the lanes they were at): integer keys (see SORT), flipped for a
    descending sort, the largest for the lanes past the row's end; a float's bits carried as an integer's."""
    axis, descending, n, part = u.arg
    src, size = u.srcs[0].dtype, u.shape[axis]
    width = 64 if src.itemsize == 8 else 32
    if src.is_float:   # a half's key: its float32 value's
      wide = x if src.itemsize >= 4 else f"{x}.to(tl.float32)"
      key = f"_sort_key({wide}, tl.int{width}, {width - 1}, {(1 << (width - 1)) - 1})"
    else: key = f"{x}.to(tl.int{width})"
    if descending: key = f"~{key}"
    lane = f"tl.arange(0, {size}){_index_expr(u.shape, axis)}"
    if n < size: key = f"tl.where({lane} < {n}, {key}, {(1 << (width - 1)) - 1})"
    bits = f"{x}.to(tl.int{8 * src.itemsize}, bitcast=True)" if src.is_float else x
    expr = self.helper(SORT, f"_sort({key}, {lane}, {bits}, {size.bit_length() - 1})")
    if part == "indices": return f"{expr}[0]" if u.dtype.name == "int32" else f"{expr}[0].to({tl_dtype(u.dtype)})"
    return f"{expr}[1].to({tl_dtype(src)}, bitcast=True)" if src.is_float else f"{expr}[1]"

  def dot(self, u: UOp, s: list[str]) -> str:
    a = u.srcs[0]
    if self.interpreter and a.dtype.name == "bfloat16":   # the interpreter's dot cannot take bfloat16 bits
      s = [f"{x}.to(tl.float32)" for x in s[:2]] + s[2:]
    prec = f", input_precision='{self.precision}'" if a.dtype.name == "float32" else ""
    acc = f", {s[2]}" if len(s) > 2 else ""
    return f"tl.dot({s[0]}, {s[1]}{acc}{prec}, out_dtype={tl_dtype(u.dtype)})"


def render(prog: Program, fp32_precision: str = "tf32", interpreter: bool = False) -> str:
  """Triton source for `prog`. `fp32_precision`: 'tf32' (tensor cores) or 'ieee' (exact float32) for DOTs;
  `interpreter`: the source is for Triton's CPU interpreter."""
  return _Renderer(prog, fp32_precision, interpreter).render()


class TritonRenderer:
  """The `Renderer` for CUDA GPUs ('triton') and for Triton's CPU interpreter ('triton-interp')."""
  def __init__(self, name: str, interpreter: bool): self.name, self.interpreter = name, interpreter
  def render(self, prog: Program, precision: str = "ieee") -> str: return render(prog, precision, self.interpreter)


register_renderer(TritonRenderer("triton", False))
register_renderer(TritonRenderer("triton-interp", True))
