"""The memory planner: where the intermediate buffers of a schedule (or of a captured jit step) live.

Input: one `Lifetime` per buffer — the position of the first launch that writes it, of the last that reads it, and
its size. Output: a `MemoryPlan` — an offset per buffer in one arena, and the arena's size, the planned peak.

Design: a static arena, not size-class pools. A schedule, and a captured step, is a fixed sequence of launches known
before the first one runs, so every lifetime is known and the placement can be computed once (and cached with the
schedule) instead of negotiated at run time. Buffers are placed largest first, each at the lowest offset where it
overlaps no placed buffer that is live at the same time ("greedy by size", as TFLite and XLA place activations):
the big activations pack first, small ones fill the gaps. Offsets are multiples of `ALIGN` bytes, so every view of
the arena is aligned for vector loads of any dtype. Two buffers share memory only if the last reader of one runs
strictly before the writer of the other: a kernel that read one and wrote the other in another layout could
overwrite tiles it has not read yet.

What may be planned is decided by the realize engine: nodes a schedule stores only for its own kernels. Never its
targets, in-place updates (they write memory a tensor owns), or nodes a live tensor holds. A planned node is not
realized after its schedule (its memory is reused): a later graph that reads it computes it again."""
from __future__ import annotations
import bisect
from dataclasses import dataclass
from ..helpers import InvalidIR

ALIGN = 256   # bytes


@dataclass(frozen=True)
class Lifetime:
  """A buffer live from launch `first` (its writer) to launch `last` (its last reader; `first` if none), `nbytes`."""
  first: int
  last: int
  nbytes: int


@dataclass(frozen=True)
class MemoryPlan:
  """`offsets[i]`: where buffer i of `lifetimes` starts in the arena; `size`: the arena's bytes (the planned peak);
  `unplanned`: the bytes the same buffers take each in memory of its own."""
  lifetimes: tuple[Lifetime, ...]
  offsets: tuple[int, ...]
  size: int

  @property
  def unplanned(self) -> int: return sum(_aligned(t.nbytes) for t in self.lifetimes)

  @property
  def floor(self) -> int:
    """The most bytes live at one launch: no placement needs less."""
    deltas: dict[int, int] = {}
    for t in self.lifetimes:
      deltas[t.first] = deltas.get(t.first, 0) + _aligned(t.nbytes)
      deltas[t.last + 1] = deltas.get(t.last + 1, 0) - _aligned(t.nbytes)
    live = peak = 0
    for launch in sorted(deltas):
      live += deltas[launch]
      peak = max(peak, live)
    return peak

  def verify(self):
    """Raise InvalidIR if two buffers live at the same time overlap in the arena, or one leaves it."""
    spans = sorted(zip(self.lifetimes, self.offsets), key=lambda x: x[1])
    for i, (a, oa) in enumerate(spans):
      if oa % ALIGN or oa + a.nbytes > self.size: raise InvalidIR(f"memory plan: buffer at {oa} leaves the arena")
      for b, ob in spans[i + 1:]:
        if ob >= oa + a.nbytes: break
        if a.first <= b.last and b.first <= a.last:
          raise InvalidIR(f"memory plan: buffers live over launches {a.first}-{a.last} and {b.first}-{b.last} "
                          f"overlap in memory at {oa} (+{a.nbytes}) and {ob} (+{b.nbytes})")

  def text(self) -> str:
    """One line: the planned peak, against the most live at once and one allocation per buffer."""
    return (f"{len(self.lifetimes)} intermediate buffers in {_size(self.size)} (live at once: at most "
            f"{_size(self.floor)}; one each: {_size(self.unplanned)}; saved {_size(self.unplanned - self.size)})")


def plan(lifetimes: list[Lifetime]) -> MemoryPlan:
  """Place `lifetimes` in one arena, largest first, each at the lowest aligned offset free over its lifetime."""
  placed: list[tuple[int, int, Lifetime]] = []   # (offset, end, lifetime), kept sorted by offset
  offsets = [0] * len(lifetimes)
  for i in sorted(range(len(lifetimes)), key=lambda i: (-lifetimes[i].nbytes, lifetimes[i].first)):
    t, size, offset = lifetimes[i], _aligned(lifetimes[i].nbytes), 0
    for start, end, other in placed:   # by offset: the first gap between live neighbours that fits
      if other.first <= t.last and t.first <= other.last:
        if offset + size <= start: break
        offset = max(offset, end)
    offsets[i] = offset
    bisect.insort(placed, (offset, offset + size, t), key=lambda p: p[0])
  return MemoryPlan(tuple(lifetimes), tuple(offsets), max((end for _, end, _ in placed), default=0))


def _aligned(nbytes: int) -> int: return -(-nbytes // ALIGN) * ALIGN


def _size(nbytes: int) -> str:
  for unit in ("B", "KiB", "MiB"):
    if nbytes < 1024: return f"{nbytes:.4g} {unit}"
    nbytes /= 1024
  return f"{nbytes:.4g} GiB"
