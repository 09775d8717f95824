"""lazygrad's disk cache, LAZYGRAD_CACHE (default ~/.cache/lazygrad): what a second process reuses instead of making
again — schedules (`realize.get_schedule`) and rendered kernel sources (`triton_device`). Entries are keyed by what
determines them and by the version of the code that makes them (`VERSION`, a digest of lazygrad's sources, so a
changed compiler never reads stale entries). Each is written whole or not at all (a temporary file renamed into
place) and ends with a checksum of its contents: an entry cut short or altered is made again, never used. Two
processes filling the cache at once each write whole files; the last rename wins."""
from __future__ import annotations
import functools, hashlib, os, threading
from pathlib import Path

ROOT = Path(os.environ.get("LAZYGRAD_CACHE", Path.home() / ".cache" / "lazygrad"))
SEAL = b"\n# lazygrad sha256 "   # then the checksum of what comes before it: the last line of a whole entry
                                  # (a comment, so a sealed Python source is still Python)


@functools.cache
def version(folder: str = "") -> str:
  """A digest of every source file of the lazygrad package, or of one of its folders (e.g. "codegen")."""
  root = Path(__file__).parents[1] / folder
  return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(root.rglob("*.py")))).hexdigest()[:16]


def sealed(data: bytes) -> bytes:
  """`data` followed by its checksum line."""
  return data + SEAL + hashlib.sha256(data).hexdigest().encode() + b"\n"


def write(path: Path, data: bytes):
  """Store `data` at `path` with its checksum, atomically (raises OSError if the folder cannot be written)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")   # one per writer, threads included
  tmp.write_bytes(sealed(data))
  os.replace(tmp, path)


def read(path: Path) -> bytes:
  """The data stored at `path`; raises FileNotFoundError if there is none, ValueError if it is cut short or
  altered."""
  raw = path.read_bytes()
  data, seal, _ = raw.rpartition(SEAL)
  if not seal or sealed(data) != raw:
    raise ValueError(f"{path}: no valid checksum (cut short or altered)")
  return data
