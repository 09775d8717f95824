"""Per-shape tuning of contraction kernels, on a device that can time its kernels (a GPU; LAZYGRAD_AUTOTUNE=0 turns
it off). At the first launch of a contraction kernel, each tiling `codegen.linearize.dot_tilings` offers (tile
shape, warps, pipeline stages) runs a few times on the kernel's own buffers, and the fastest is kept: in memory and
in the disk cache (`tuned/`, keyed by the kernel text, the device, its GPU and the float32 precision), so a later
process compiles and launches the chosen one at once. A kernel that reads memory it writes (an in-place update) is
not timed: running it again would change its result. The candidates of a new schedule compile with its other
kernels, in parallel (`realize._precompile`)."""
from __future__ import annotations
import hashlib, json, weakref
from ..helpers import settings
from ..codegen.linearize import Tiling, dot_tilings
from . import disk_cache

_chosen: dict[str, Tiling] = {}
_of_kernel: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # kernel -> {(device, precision): Tiling}
REPS = 10   # timed runs per candidate, back to back (after one untimed: its first launch loads the program)


def _key(kernel, device, precision: str) -> str:
  return hashlib.sha256(f"{disk_cache.version()}\n{device.name}\n{device.model}\n{device.lowering}\n{precision}\n"
                        f"{kernel.text}".encode()).hexdigest()[:32]


def _path(key: str): return disk_cache.ROOT / "tuned" / f"{key}.json"


def candidates(kernel, device) -> list[Tiling]:
  """The tilings to time for `kernel` on `device` ([] where it is not tuned)."""
  if not settings.AUTOTUNE or not getattr(device, "can_time", False): return []
  tilings = dot_tilings(kernel, device.lowering)
  return tilings if len(tilings) > 1 else []


def chosen(kernel, device, precision: str) -> Tiling | None:
  """The tiling chosen for `kernel` earlier, in this process or one before it (disk cache); None if it is not tuned
  (yet). Asked at every launch outside a jit replay, so answered from a per-kernel memo after the first time."""
  memo, at = _of_kernel.setdefault(kernel, {}), (device.name, precision)
  if at in memo: return memo[at]
  if not candidates(kernel, device):
    memo[at] = None   # never tuned: the default tiling
    return None
  key = _key(kernel, device, precision)
  if (hit := _chosen.get(key)) is None:
    try:
      saved = json.loads(disk_cache.read(_path(key)))
      hit = _chosen[key] = Tiling(tuple(saved["blocks"]), saved["num_warps"], saved["num_stages"],
                                  saved.get("descriptors", False))
    except (OSError, ValueError, KeyError, TypeError): return None   # none yet, or an entry cut short: tune again
  memo[at] = hit
  return hit


def pending(kernel, device, precision: str) -> list[Tiling]:
  """The tilings still to time for `kernel` on `device`: [] once chosen, or where it is not tuned."""
  if chosen(kernel, device, precision) is not None or (device.name, precision) in _of_kernel[kernel]: return []
  return candidates(kernel, device)


def tune(kernel, device, precision: str, programs: dict, launch_with) -> Tiling:
  """Time each candidate program (`programs`: tiling -> program; `launch_with(prg)` runs one on the kernel's
  buffers), keep the fastest and return it. DEBUG=1 prints the times."""
  times = {}
  for tiling, prg in programs.items():
    try: times[tiling] = device.time(lambda prg=prg: launch_with(prg), REPS)
    except Exception:   # a candidate Triton cannot build here (shared memory, registers): not a choice
      if not times and tiling is next(iter(programs)): raise   # the default fails: report it as any kernel would
  best = min(times, key=times.get)
  _keep(kernel, device, precision, best)
  record = {"kernel": kernel.name, "blocks": list(best.blocks), "num_warps": best.num_warps,
            "num_stages": best.num_stages, "descriptors": best.descriptors, "ms": {str(t): ms for t, ms in times.items()}}
  try: disk_cache.write(_path(_key(kernel, device, precision)), json.dumps(record).encode())
  except OSError: pass   # an unwritable cache: the next process tunes again (realize warns about the cache once)
  if settings.DEBUG >= 1:
    default = next(iter(programs))
    print(f"autotune {kernel.name}: {len(times)} tilings, best {best.blocks} warps {best.num_warps} stages "
          f"{best.num_stages}{' descriptors' if best.descriptors else ''} {times[best]:.3f} ms (default "
          f"{times[default]:.3f} ms)")
  return best


def untimed(kernel, device, precision: str) -> None:
  """Keep the default for a kernel that cannot be timed on its buffers (it updates memory it reads), for this process
  only: a later process may meet it where it can be timed."""
  _keep(kernel, device, precision, dot_tilings(kernel, device.lowering)[0])


def _keep(kernel, device, precision: str, tiling: Tiling):
  _chosen[_key(kernel, device, precision)] = tiling
  _of_kernel.setdefault(kernel, {})[(device.name, precision)] = tiling
