"""Symbolic integer index math: affine sums of variables, floor-divisions and modulos, simplified with bounds.

A view turns per-axis index variables into a buffer index and a validity condition; these expressions are what the
linearizer lowers to index arithmetic on tiles. Keeping them affine where possible is what lets the numpy
interpreter load a whole tile as one strided view, and what keeps the rendered Triton index math short."""
from __future__ import annotations
from dataclasses import dataclass
import math


@dataclass(frozen=True)
class Var:
  """The index along axis `axis` of an iteration space, in [lo, hi]."""
  axis: int
  lo: int
  hi: int      # inclusive
  def __repr__(self): return f"i{self.axis}"


@dataclass(frozen=True)
class Div:
  x: "Lin"
  d: int
  def __repr__(self): return f"(({self.x})//{self.d})"


@dataclass(frozen=True)
class Mod:
  x: "Lin"
  d: int
  def __repr__(self): return f"(({self.x})%{self.d})"


@dataclass(frozen=True)
class Lin:
  """sum(coef * atom) + const, terms sorted by repr so equal expressions compare equal."""
  terms: tuple = ()
  const: int = 0

  @staticmethod
  def of(x) -> "Lin":
    if isinstance(x, Lin): return x
    if isinstance(x, int): return Lin((), x)
    return Lin(((x, 1),), 0)

  def __add__(self, other) -> "Lin":
    other = Lin.of(other)
    acc: dict = dict(self.terms)
    for a, c in other.terms: acc[a] = acc.get(a, 0) + c
    return Lin(tuple(sorted(((a, c) for a, c in acc.items() if c != 0), key=lambda t: repr(t[0]))),
               self.const + other.const)
  __radd__ = __add__

  def __mul__(self, k: int) -> "Lin":
    if k == 0: return Lin()
    return Lin(tuple((a, c * k) for a, c in self.terms), self.const * k)

  def __floordiv__(self, d: int) -> "Lin":
    if d == 1: return self
    q, r = self._split(d)
    lo, hi = r.bounds()
    if lo // d == hi // d: return q + lo // d
    if (f := r._factor(d)) is not None: return q + f[0] // (d // f[2])
    return q + Lin.of(Div(r, d))

  def __mod__(self, d: int) -> "Lin":
    if d == 1: return Lin()
    _, r = self._split(d)
    lo, hi = r.bounds()
    if lo // d == hi // d: return r + (-(lo // d) * d)
    if (f := r._factor(d)) is not None: return (f[0] % (d // f[2])) * f[2] + f[1]
    return Lin.of(Mod(r, d))

  def _factor(self, d: int):
    """(big, small, g) with self == big*g + small, 0 <= small < g and g dividing d, or None.
    Then self//d == big//(d/g): this undoes the flatten-unflatten index math of a reshape."""
    for g in sorted({math.gcd(c, d) for _, c in self.terms} - {1, d}, reverse=True):
      big = Lin(tuple((a, c // g) for a, c in self.terms if c % g == 0), self.const // g)
      small = Lin(tuple((a, c) for a, c in self.terms if c % g), self.const % g)
      lo, hi = small.bounds()
      if lo >= 0 and hi < g: return big, small, g
    return None

  def _split(self, d: int) -> tuple["Lin", "Lin"]:
    """self == d*q + r with the coefficients of r in [0, d)."""
    q = Lin(tuple((a, c // d) for a, c in self.terms if c // d), self.const // d)
    r = Lin(tuple((a, c % d) for a, c in self.terms if c % d), self.const % d)
    return q, r

  def bounds(self) -> tuple[int, int]:
    lo = hi = self.const
    for a, c in self.terms:
      alo, ahi = atom_bounds(a)
      lo, hi = lo + min(c * alo, c * ahi), hi + max(c * alo, c * ahi)
    return lo, hi

  def vars(self) -> set:
    out = set()
    for a, _ in self.terms: out |= {a} if isinstance(a, Var) else a.x.vars()
    return out

  def __repr__(self):
    parts = [f"{a}" if c == 1 else f"{a}*{c}" for a, c in self.terms]
    if self.const or not parts: parts.append(str(self.const))
    return "+".join(parts).replace("+-", "-")


def atom_bounds(a) -> tuple[int, int]:
  if isinstance(a, Var): return a.lo, a.hi
  lo, hi = a.x.bounds()
  if isinstance(a, Div): return lo // a.d, hi // a.d
  return (lo % a.d, hi % a.d) if lo // a.d == hi // a.d else (0, a.d - 1)


@dataclass(frozen=True)
class Cond:
  """lo <= x < hi; a None bound is not checked."""
  x: Lin
  lo: int | None
  hi: int | None
  def __repr__(self): return ("" if self.lo is None else f"{self.lo}<=") + f"{self.x}" + ("" if self.hi is None else f"<{self.hi}")


def in_range(x: Lin, lo: int, hi: int) -> list[Cond] | None:
  """Conditions for lo <= x < hi after simplification: [] when always true, None when never true."""
  xlo, xhi = x.bounds()
  if xlo >= hi or xhi < lo or lo >= hi: return None
  if xlo >= lo and xhi < hi: return []
  return [Cond(x, lo if xlo < lo else None, hi if xhi >= hi else None)]
