"""The numpy device: buffers are flat numpy arrays and kernels run by interpreting their uops on whole tiles.

Index tiles stay in closed affine form (base + sum(stride * arange)) until an op needs the numbers, so a load through
any strided view is one zero-copy strided array, and a kernel over a whole iteration space is a handful of numpy calls.
This is also the reference every other device is checked against."""
from __future__ import annotations
import math
import numpy as np
from ..dtypes import DType
from ..helpers import counters, timed
from ..ir.alu import exec_alu
from ..ir.ops import Op
from ..codegen.uops import U, UOp, Program
from ..codegen.linearize import LoweringOptions, Tiling, linearize


class Affine:
  """An integer tile `base + sum(strides[a] * arange(shape[a]))` kept symbolic."""
  __slots__ = ("base", "strides", "shape")
  def __init__(self, base, strides, shape): self.base, self.strides, self.shape = base, strides, shape

  def materialize(self) -> np.ndarray:
    out = np.asarray(self.base, dtype=np.int64).reshape((1,) * len(self.shape))
    for a, (st, s) in enumerate(zip(self.strides, self.shape)):
      if st and s > 1: out = out + np.arange(s, dtype=np.int64).reshape([s if d == a else 1 for d in range(len(self.shape))]) * st
    return np.broadcast_to(out, self.shape)

  def add(self, other):
    if isinstance(other, Affine):
      shape = tuple(max(a, b) for a, b in zip(self.shape, other.shape))
      return Affine(self.base + other.base, tuple(a + b for a, b in zip(self.strides, other.strides)), shape)
    return Affine(self.base + int(other), self.strides, self.shape)

  def mul(self, k: int): return Affine(self.base * k, tuple(s * k for s in self.strides), self.shape)


def _strided(data: np.ndarray, idx: Affine) -> np.ndarray:
  """The elements `idx` addresses, as a view of `data` (the ndarray constructor: far cheaper than as_strided)."""
  return np.ndarray(idx.shape, data.dtype, buffer=data, offset=idx.base * data.itemsize,
                    strides=tuple(st * data.itemsize for st in idx.strides))


def _dense(x): return x.materialize() if isinstance(x, Affine) else x
def _is_int_scalar(x): return isinstance(x, (int, np.integer))

def _alu(op: Op, dtype: DType, srcs, spare=()):
  """One ALU uop. Index tiles stay affine through + and *; `spare` holds temporaries that die here, one of
  which may receive the result (no allocation)."""
  if op is Op.ADD and any(isinstance(x, Affine) for x in srcs) and \
     all(isinstance(x, Affine) or _is_int_scalar(x) for x in srcs):
    a, b = srcs if isinstance(srcs[0], Affine) else srcs[::-1]
    return a.add(b)
  if op is Op.MUL and isinstance(srcs[0], Affine) and _is_int_scalar(srcs[1]): return srcs[0].mul(int(srcs[1]))
  args = [_dense(s) for s in srcs]
  if spare:
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    for t in spare:
      if t.dtype == dtype.np and t.shape == shape:
        out = exec_alu(op, dtype, args, out=t)
        if out is not None: return out
  return exec_alu(op, dtype, args)


_SCANS = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "logaddexp": np.logaddexp}
_REDUCES = {Op.REDUCE_SUM: np.sum, Op.REDUCE_MAX: np.max, Op.REDUCE_PROD: np.prod}


def _scan(u: UOp, s: list) -> np.ndarray:
  """A SCAN uop: the ufunc's accumulation along the axis, the carry (if any) combined into every element."""
  fn = _SCANS[u.arg[0]]
  out = fn.accumulate(_dense(s[0]), axis=u.arg[1], dtype=u.dtype.np)
  return fn(s[1], out) if len(s) > 1 else out


def _sort(u: UOp, x: np.ndarray) -> np.ndarray:
  """A SORT uop: x's first n along `axis` in stable sorted order, then the rest, as values or as the lanes they were
  at (the order of the Triton renderer's sorting network: integer keys, NaN above every number, -0.0 as 0.0)."""
  axis, descending, n, part = u.arg
  if u.srcs[0].dtype.is_float:
    wide = np.float64 if x.dtype == np.float64 else np.float32
    v = x.astype(wide)
    v = np.where(np.isnan(v), wide(np.nan), np.where(v == 0, wide(0), v))
    bits = v.view(np.int64 if wide is np.float64 else np.int32).astype(np.int64)
    key = bits ^ ((bits >> 63) & np.iinfo(np.int64).max) if wide is np.float64 else \
      bits ^ ((bits >> 31) & np.iinfo(np.int32).max)
  else: key = x.astype(np.int64)
  if descending: key = ~key
  lane = np.arange(x.shape[axis]).reshape([-1 if d == axis else 1 for d in range(x.ndim)])
  key = np.where(lane < n, key, np.iinfo(np.int64).max)
  order = np.argsort(key, axis=axis, kind="stable")
  return np.take_along_axis(x, order, axis) if part == "values" else order.astype(u.dtype.np, copy=False)


def _blas_ready(x: np.ndarray) -> np.ndarray:
  """The same memory with plain strides: np.matmul is slower on views that only look contiguous (measured)."""
  if x.flags.c_contiguous: return np.ascontiguousarray(x)
  return np.asfortranarray(x) if x.flags.f_contiguous else x


def _dot(a, b, acc, dtype: DType, shape: tuple):
  """One np.matmul of (.., i, k) and (.., k, j) tiles into a fresh array (+ acc)."""
  out = np.empty(shape, dtype.np)
  np.matmul(_blas_ready(np.asarray(a, dtype.np)), _blas_ready(np.asarray(b, dtype.np)), out=out)
  if acc is not None: out += acc
  return out


class NumpyDevice:
  name = "numpy"
  # a kernel is a few numpy calls over whole tiles; past 16M elements it is tiled so that temporaries stay small
  # (a sum of 2**31 uint8 would otherwise hold a 16 GB int64 copy)
  lowering = LoweringOptions(whole=True, max_whole=1 << 24, max_tile=1 << 22, max_reduce_block=1 << 22,
                             max_elementwise_tile=1 << 22, max_sort=None)

  def alloc(self, dtype: DType, size: int): return np.empty(size, dtype=dtype.np)
  def view(self, arena, offset: int, dtype: DType, size: int):
    """`size` elements of `dtype` at byte `offset` of a uint8 arena."""
    return arena[offset:offset + size * dtype.itemsize].view(dtype.np)
  def from_numpy(self, arr: np.ndarray): return np.ascontiguousarray(arr).reshape(-1)
  def from_torch(self, t, dtype: DType):
    """A copy of a torch tensor's values (a bfloat16 one through float32: numpy cannot take torch's bfloat16)."""
    t = t.detach().cpu()
    arr = t.float().numpy() if dtype.name == "bfloat16" else t.numpy()   # shares t's memory: copied next
    return self.from_numpy(np.array(arr, dtype=dtype.np, order="C"))
  def to_numpy(self, buf): return buf.data
  def write(self, buf, arr: np.ndarray): buf.data[...] = arr.reshape(-1)
  def copy(self, dst: np.ndarray, src: np.ndarray): dst[...] = src

  def compile(self, kernel, tiling: Tiling | None = None, precision: str = "ieee") -> "Interpreter":
    """The interpreter of `kernel` lowered with `tiling` (numpy's contractions are exact: `precision` is unused)."""
    counters.lowerings += 1
    with timed("lower"): return Interpreter(linearize(kernel, self.lowering, tiling))

  def synchronize(self): pass
  can_capture = False   # no graphs of launches: a jit replays them from Python


class Interpreter:
  """Runs a Program's uops over numpy tiles, program by program."""
  source = None

  def __init__(self, prog: Program):
    self.prog = prog
    index = {u: i for i, u in enumerate(prog.uops)}
    self.srcs = [tuple(index[x] for x in u.srcs) for u in prog.uops]
    # a temporary whose last use is an ALU in the same loop body can hold that ALU's result
    region, loops, last_use = [], [], {}
    for i, u in enumerate(prog.uops):
      if u.op is U.ENDRANGE: loops.pop()
      region.append(loops[-1] if loops else -1)
      if u.op is U.RANGE: loops.append(i)
      for j in self.srcs[i]: last_use[j] = i
    # uops that read no buffer and no program or loop index are the same every run: evaluated once, here
    static: dict[int, object] = {}
    with np.errstate(all="ignore"):
      for i, u in enumerate(prog.uops):
        if u.op in (U.CONST, U.ARANGE, U.PARAM) or \
           (u.op in (U.ALU, U.BROADCAST, U.RESHAPE) and all(j in static for j in self.srcs[i])):
          static[i] = self._static_value(u, [static[j] for j in self.srcs[i]])
    self.static = [i in static for i in range(len(prog.uops))]
    self.template = [static.get(i) for i in range(len(prog.uops))]
    # values computed into new memory at run time (a RESHAPE of one is the same memory)
    fresh = set()
    for i, u in enumerate(prog.uops):
      if i in static: continue
      if u.op in (U.ALU, U.REDUCE, U.DOT, U.SCAN, U.SORT) or (u.op is U.RESHAPE and self.srcs[i][0] in fresh):
        fresh.add(i)
    self.dies_here = [tuple(j for j in dict.fromkeys(self.srcs[i]) if last_use[j] == i and region[j] == region[i]
                            and j in fresh) for i in range(len(prog.uops))]
    # temporaries whose memory nothing else can see after their last use (not viewed, stored or accumulated)
    self.recycle = [tuple(j for j in self.dies_here[i] if prog.uops[j].op is not U.RESHAPE) if
                    prog.uops[i].op in (U.ALU, U.REDUCE, U.DOT) else () for i in range(len(prog.uops))]
    self.pool: dict[tuple, list] = {}   # (dtype, shape) -> free temporaries, kept across runs (no page faults)
    self.loop_end = {}
    stack = []
    for i, u in enumerate(prog.uops):
      if u.op is U.RANGE: stack.append(i)
      elif u.op is U.ENDRANGE: self.loop_end[stack.pop()] = i

  @staticmethod
  def _static_value(u: UOp, s: list):
    if u.op is U.ARANGE: return Affine(0, tuple(1 if d == u.arg else 0 for d in range(len(u.shape))), u.shape)
    if u.op is U.CONST: return u.dtype.np(u.arg)
    if u.op is U.PARAM: return u.arg
    if u.op is U.ALU: return _alu(u.arg, u.dtype, s)
    if u.op is U.BROADCAST: return np.broadcast_to(_dense(s[0]), u.shape)
    return np.reshape(_dense(s[0]), u.shape)

  def __call__(self, bufs: list, scalars=()):
    for b in bufs: b.ensure()
    for i in self.prog.kernel.scattered if self.prog.kernel is not None else (): bufs[i].data[...] = 0
    n_out = self.prog.kernel.n_out if self.prog.kernel is not None else 1
    # loads are views: where a kernel with several outputs updates memory it reads, they must be copies, or an
    # output stored later would see what an earlier store wrote
    written = {id(b) for b in bufs[:n_out]} if n_out > 1 else set()
    copied = {i for i in range(n_out, len(bufs)) if id(bufs[i]) in written}
    with np.errstate(all="ignore"):
      for pid in range(self.prog.grid): self._run_program(pid, bufs, scalars, copied)

  def _run_program(self, pid: int, bufs, scalars, copied: set):
    uops, srcidx, static = self.prog.uops, self.srcs, self.static
    vals: list = list(self.template)
    loops = []   # (range uop position, its end)
    pc = 0
    while pc < len(uops):
      if static[pc]: pc += 1; continue
      u = uops[pc]
      s = [vals[i] for i in srcidx[pc]]
      op = u.op
      if op is U.ALU:
        spare = [v for v in (vals[j] for j in self.dies_here[pc]) if isinstance(v, np.ndarray) and v.flags.owndata
                 and v.flags.writeable]
        pooled = self.pool.get((u.dtype.np, u.shape))
        if pooled: spare.append(pooled[-1])
        out = vals[pc] = _alu(u.arg, u.dtype, s, spare)
        if pooled and out is pooled[-1]: pooled.pop()
        for j in self.recycle[pc]:
          v = vals[j]
          if isinstance(v, np.ndarray) and v is not out and v.flags.owndata and v.flags.writeable and v.ndim:
            self.pool.setdefault((v.dtype.type, v.shape), []).append(v)
      elif op is U.LOAD:
        vals[pc] = self._load(bufs[u.srcs[0].arg].data, u, s)
        if u.srcs[0].arg in copied: vals[pc] = np.array(vals[pc])
      elif op is U.TILE_LOAD: vals[pc] = self._tile_load(bufs[u.srcs[0].arg].data, u.arg, int(s[1]), int(s[2]))
      elif op is U.TILE_STORE: self._tile_store(bufs[u.srcs[0].arg].data, u.arg, int(s[1]), int(s[2]), _dense(s[3]))
      elif op is U.ARANGE: vals[pc] = Affine(0, tuple(1 if d == u.arg else 0 for d in range(len(u.shape))), u.shape)
      elif op is U.CONST: vals[pc] = u.dtype.np(u.arg)
      elif op is U.PARAM: vals[pc] = u.arg
      elif op is U.SCALAR: vals[pc] = u.dtype.np(scalars[u.arg])
      elif op is U.PROGRAM_ID: vals[pc] = pid
      elif op is U.REDUCE:
        vals[pc] = _REDUCES[u.arg[0]](_dense(s[0]), axis=u.arg[1], keepdims=True).astype(u.dtype.np, copy=False)
      elif op is U.SCAN: vals[pc] = _scan(u, s)
      elif op is U.SORT: vals[pc] = _sort(u, _dense(s[0]))
      elif op is U.DOT: vals[pc] = _dot(_dense(s[0]), _dense(s[1]), s[2] if len(s) > 2 else None, u.dtype, u.shape)
      elif op is U.RESHAPE: vals[pc] = np.reshape(s[0], u.shape)
      elif op is U.SPLIT: vals[pc] = np.split(_dense(s[0]), 2, axis=u.arg[0])[u.arg[1]]
      elif op is U.STORE: self._store(bufs[u.srcs[0].arg], u, s, adopt=self.src_dies(pc, 2))
      elif op is U.ACC: vals[pc] = np.full(u.shape, u.arg, dtype=u.dtype.np)
      elif op is U.ACC_UPDATE: vals[srcidx[pc][0]] = np.broadcast_to(s[1], u.shape)
      elif op is U.BROADCAST: vals[pc] = np.broadcast_to(_dense(s[0]), u.shape)
      elif op is U.RANGE:
        lo, hi = (int(s[0]), int(s[1])) if s else (0, u.arg)
        if lo >= hi: pc = self.loop_end[pc] + 1; continue
        loops.append((pc, hi, int(s[2]) if len(s) == 3 else 1)); vals[pc] = lo
      elif op is U.ENDRANGE:
        start, hi, step = loops[-1]
        vals[start] += step
        if vals[start] < hi: pc = start + 1; continue
        loops.pop()
      pc += 1

  @staticmethod
  def _load(data: np.ndarray, u: UOp, s):
    idx = s[1]
    mask = s[2] if len(s) > 2 else None
    if isinstance(idx, Affine) and mask is None:
      if 0 in idx.shape: return np.empty(idx.shape, data.dtype)
      view = _strided(data, idx)
      view.flags.writeable = False
      return view
    idx = _dense(idx)
    if mask is None: return data[idx]
    mask = np.broadcast_to(_dense(mask), np.broadcast_shapes(np.shape(idx), np.shape(mask)))
    idx = np.broadcast_to(idx, mask.shape)
    if data.size == 0: return np.zeros(mask.shape, data.dtype)
    return np.where(mask, data[np.where(mask, idx, 0)], data.dtype.type(0))

  @staticmethod
  def _tile_load(data: np.ndarray, d, row: int, col: int) -> np.ndarray:
    """The block of the matrix `d` (a TileDesc) at (row, col), zero past its edges (as a TMA copy fills them)."""
    r, c = np.arange(row, row + d.block[0])[:, None], np.arange(col, col + d.block[1])[None, :]
    inside = (r < d.shape[0]) & (c < d.shape[1])
    tile = np.where(inside, data[np.where(inside, d.offset + r * d.stride + c, 0)], data.dtype.type(0))
    return tile.T if d.transposed else tile

  @staticmethod
  def _tile_store(data: np.ndarray, d, row: int, col: int, tile: np.ndarray):
    """Write `tile` as the block of the matrix `d` (a TileDesc) at (row, col), but what lies past its edges."""
    tile = tile.T if d.transposed else tile
    rows, cols = min(d.block[0], d.shape[0] - row), min(d.block[1], d.shape[1] - col)
    if rows > 0 and cols > 0:
      data[d.offset + np.arange(row, row + rows)[:, None] * d.stride + np.arange(col, col + cols)[None, :]] = \
        tile[:rows, :cols]

  def src_dies(self, pc: int, k: int) -> bool:
    """Is source k of uop pc a temporary used for the last time there?"""
    return self.srcs[pc][k] in self.dies_here[pc]

  @staticmethod
  def _store(buf, u: UOp, s, adopt: bool):
    data, idx, value = buf.data, s[1], s[2]
    mask = s[3] if len(s) > 3 else None
    if u.arg == "add":   # a scatter: lanes that name one address all add into it
      idx, value = np.broadcast_arrays(_dense(idx), value)
      keep = np.broadcast_to(_dense(mask), idx.shape) if mask is not None else np.ones(idx.shape, bool)
      np.add.at(data, idx[keep], value[keep].astype(data.dtype, copy=False))
      return
    if isinstance(idx, Affine) and mask is None:
      if 0 in idx.shape: return
      contiguous = idx.base == 0 and math.prod(idx.shape) == data.size and all(
        st == math.prod(idx.shape[a + 1:]) or sz == 1 for a, (st, sz) in enumerate(zip(idx.strides, idx.shape)))
      if adopt and contiguous and not buf.planned and isinstance(value, np.ndarray) and value.shape == idx.shape and \
         value.dtype == data.dtype and value.flags.c_contiguous and value.flags.writeable:
        buf.data = value.reshape(-1)   # adopt the freshly computed array: no copy
        return
      view = _strided(data, idx)
      view[...] = value
      return
    idx = _dense(idx)
    shape = np.broadcast_shapes(np.shape(idx), np.shape(value), np.shape(mask) if mask is not None else ())
    idx, value = np.broadcast_to(idx, shape), np.broadcast_to(value, shape)
    if mask is not None:
      m = np.broadcast_to(_dense(mask), shape)
      data[idx[m]] = value[m]
    else: data[idx] = value
