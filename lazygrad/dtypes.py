"""Data types and PyTorch's type-promotion rules."""
from __future__ import annotations
from dataclasses import dataclass
import numpy as np
import ml_dtypes

_pybool = bool   # this module also exports `bool` (the dtype), as torch does


@dataclass(frozen=True, eq=False)   # one object per dtype: compared and hashed by identity (every node key holds one)
class DType:
  name: str
  itemsize: int
  kind: str        # 'b' bool, 'u' unsigned int, 'i' signed int, 'f' float
  rank: int        # promotion order inside a kind
  np: type

  def __repr__(self): return f"lazygrad.{self.name}"
  def __reduce__(self): return to_dtype, (self.name,)   # a copy or an unpickled one is the same object
  @property
  def short(self) -> str:
    """The name the IR text forms print: f32, bf16, i64, u8, bool."""
    return "bool" if self.is_bool else "bf16" if self.name == "bfloat16" else f"{self.kind}{self.itemsize * 8}"
  @property
  def is_float(self): return self.kind == 'f'
  @property
  def is_int(self): return self.kind in 'iu'
  @property
  def is_bool(self): return self.kind == 'b'


bool_ = DType("bool", 1, 'b', 0, np.bool_)
uint8 = DType("uint8", 1, 'u', 1, np.uint8)
uint16 = DType("uint16", 2, 'u', 2, np.uint16)
uint32 = DType("uint32", 4, 'u', 3, np.uint32)
uint64 = DType("uint64", 8, 'u', 4, np.uint64)
int8 = DType("int8", 1, 'i', 1, np.int8)
int16 = DType("int16", 2, 'i', 2, np.int16)
int32 = DType("int32", 4, 'i', 3, np.int32)
int64 = DType("int64", 8, 'i', 4, np.int64)
float16 = DType("float16", 2, 'f', 1, np.float16)
bfloat16 = DType("bfloat16", 2, 'f', 1, ml_dtypes.bfloat16)
float32 = DType("float32", 4, 'f', 2, np.float32)
float64 = DType("float64", 8, 'f', 3, np.float64)
ALL = (bool_, uint8, uint16, uint32, uint64, int8, int16, int32, int64, float16, bfloat16, float32, float64)
SIGNED = {d.rank: d for d in ALL if d.kind == 'i'}
default_float, default_int = float32, int64

_BY_NAME = {d.name: d for d in ALL} | {"bool_": bool_, "half": float16, "float": float32, "long": int64, "int": int32,
                                      "short": int16, "double": float64}
_KIND_ORDER = {'b': 0, 'u': 1, 'i': 1, 'f': 2}


def to_dtype(x) -> DType:
  """Accept a DType, a name ('float32'), a numpy dtype, a python type or a torch dtype."""
  if isinstance(x, DType): return x
  if x is float: return default_float
  if x is int: return default_int
  if x is _pybool: return bool_
  if isinstance(x, str): name = x
  elif hasattr(x, "is_floating_point") or type(x).__module__ == "torch": name = str(x).replace("torch.", "")
  else: name = np.dtype(x).name
  if name not in _BY_NAME: raise TypeError(f"lazygrad has no dtype {x!r}; use one of {', '.join(d.name for d in ALL)}")
  return _BY_NAME[name]


def from_numpy(npdtype) -> DType:
  return float32 if np.dtype(npdtype) == np.float64 else to_dtype(np.dtype(npdtype))


def promote(a: DType, b: DType) -> DType:
  """torch.promote_types for the dtypes lazygrad has. As in torch, uint16, uint32 and uint64 promote with floats
  (and themselves) only: with another integer or bool there is no common type (a TypeError)."""
  if a == b: return a
  ka, kb = _KIND_ORDER[a.kind], _KIND_ORDER[b.kind]
  if max(ka, kb) < 2 and any(d.kind == 'u' and d.rank > 1 for d in (a, b)):
    raise TypeError(f"no common dtype for {a.name} and {b.name} (as in PyTorch, {a.name if a.kind == 'u' else b.name} "
                    "promotes with floats only); cast one of them first")
  if ka != kb: return a if ka > kb else b
  if a.kind == 'f' and a.rank == b.rank: return float32      # float16 with bfloat16
  if a.kind != b.kind:   # uint8 with a signed int: the signed one, at least int16
    return SIGNED[max(2, a.rank if a.kind == 'i' else b.rank)]
  return a if a.rank > b.rank else b


def kind_order(d: DType) -> int: return _KIND_ORDER[d.kind]


def scalar_kind(x) -> str:
  return 'b' if isinstance(x, (_pybool, np.bool_)) else 'i' if isinstance(x, (int, np.integer)) else 'f'


def promote_scalar(t: DType, x) -> DType:
  """A Python scalar is 'weak': it only moves the tensor to a higher kind (int tensor * 1.5 -> float32)."""
  k = scalar_kind(x)
  if _KIND_ORDER[k] <= _KIND_ORDER[t.kind]: return t
  return default_float if k == 'f' else default_int


def wrap_int(v: int, d: DType) -> int:
  """An integer scalar as integer dtype d holds it: two's complement wraparound, as torch's scalar arithmetic does."""
  bits = 8 * d.itemsize
  v &= (1 << bits) - 1
  return v - (1 << bits) if d.kind == 'i' and v >> (bits - 1) else v


def min_value(d: DType):
  return False if d.is_bool else np.iinfo(d.np).min if d.is_int else -float("inf")


bool = bool_   # noqa: A001  lazygrad.dtypes.bool, like torch.bool
