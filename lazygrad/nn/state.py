"""safetensors files, read and written here (the format is a length-prefixed JSON header and raw little-endian
data). Writes are atomic: the file appears whole under its name or not at all."""
from __future__ import annotations
import glob, json, math, os, re, struct
from pathlib import Path
import numpy as np
from ..dtypes import to_dtype
from ..tensor import Tensor

_CODES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64", "int8": "I8", "int16": "I16",
          "int32": "I32", "int64": "I64", "uint8": "U8", "uint16": "U16", "uint32": "U32", "uint64": "U64",
          "bool": "BOOL"}
_NAMES = {v: k for k, v in _CODES.items()}
# safetensors codes that other writers use and lazygrad has no dtype for
_UNSUPPORTED = ("F8_E4M3", "F8_E5M2", "F8_E8M0", "C64")


class SafetensorsError(ValueError):
  """A file that is not a well-formed safetensors file (or uses a dtype lazygrad lacks)."""


def _remove_stale_temporaries(path: Path):
  """Delete `path`'s temporaries (name.tmp<pid>) left by writers that were killed: their process is gone."""
  for tmp in path.parent.glob(glob.escape(path.name) + ".tmp*"):
    m = re.fullmatch(re.escape(path.name) + r"\.tmp(\d+)", tmp.name)
    if m is None or int(m[1]) == os.getpid(): continue
    try: os.kill(int(m[1]), 0)
    except ProcessLookupError: tmp.unlink(missing_ok=True)
    except (PermissionError, OverflowError): pass     # alive under another user, or not a pid: leave it


def save_safetensors(tensors: dict, path, metadata: dict | None = None):
  """Write {name: Tensor or ndarray} to `path` atomically (temporary file, fsync, rename)."""
  arrays = {k: (v.numpy() if isinstance(v, Tensor) else np.asarray(v)) for k, v in tensors.items()}
  header, offset = {}, 0
  for name, a in arrays.items():
    dt = to_dtype(a.dtype).name
    header[name] = {"dtype": _CODES[dt], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
    offset += a.nbytes
  if metadata: header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
  raw = json.dumps(header, separators=(",", ":")).encode()
  raw += b" " * (-len(raw) % 8)
  path = Path(path)
  _remove_stale_temporaries(path)
  tmp = path.with_name(path.name + f".tmp{os.getpid()}")
  try:
    with open(tmp, "wb") as f:
      f.write(struct.pack("<Q", len(raw)) + raw)
      for a in arrays.values(): f.write(np.ascontiguousarray(a).tobytes())
      f.flush(); os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:     # KeyboardInterrupt included: a failed write leaves no temporary behind
    tmp.unlink(missing_ok=True)
    raise


def _entry(path, name: str, info, n_data: int) -> tuple:
  """(dtype, shape, lo, hi) of one header entry, checked against the data section's n_data bytes."""
  def bad(what): return SafetensorsError(f"{path}: tensor {name!r}: {what}")
  if not isinstance(info, dict): raise bad(f"header entry is {type(info).__name__}, not an object")
  missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
  if missing: raise bad(f"header entry lacks {', '.join(missing)}")
  code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
  if not isinstance(code, str) or code not in _NAMES:
    kind = "a dtype lazygrad does not support" if code in _UNSUPPORTED else "an unknown dtype"
    raise bad(f"dtype {code!r} is {kind}; supported: {', '.join(_NAMES)}")
  dt = to_dtype(_NAMES[code])
  if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
    raise bad(f"shape {shape!r} is not a list of non-negative integers")
  if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
          and 0 <= offsets[0] <= offsets[1]):
    raise bad(f"data_offsets {offsets!r} are not [begin, end] with 0 <= begin <= end")
  lo, hi = offsets
  if hi - lo != math.prod(shape) * dt.itemsize:
    raise bad(f"data_offsets {offsets!r} span {hi - lo} bytes, but shape {shape} of {code} needs "
              f"{math.prod(shape) * dt.itemsize}")
  if hi > n_data: raise bad(f"data ends at byte {hi} of the data section, which has only {n_data} (truncated file?)")
  return dt, shape, lo, hi


def load_safetensors(path, device: str | None = None) -> tuple[dict[str, Tensor], dict]:
  """({name: Tensor}, metadata) from a safetensors file; SafetensorsError if it is malformed."""
  data = Path(path).read_bytes()
  if len(data) < 8: raise SafetensorsError(f"{path}: {len(data)} bytes, shorter than the 8-byte header length")
  (n,) = struct.unpack("<Q", data[:8])
  if 8 + n > len(data):
    raise SafetensorsError(f"{path}: header length {n} goes beyond the file's {len(data)} bytes (truncated or "
                           "not a safetensors file)")
  try: header = json.loads(data[8:8 + n])
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise SafetensorsError(f"{path}: header is not valid JSON ({e})") from None
  if not isinstance(header, dict): raise SafetensorsError(f"{path}: header is {type(header).__name__}, not an object")
  meta = header.pop("__metadata__", {})
  if not isinstance(meta, dict): raise SafetensorsError(f"{path}: __metadata__ is {type(meta).__name__}, not an object")
  out = {}
  for name, info in header.items():
    dt, shape, lo, hi = _entry(path, name, info, len(data) - 8 - n)
    arr = np.frombuffer(data[8 + n + lo: 8 + n + hi], dtype=dt.np).reshape(shape)
    out[name] = Tensor(arr, dtype=dt, device=device)
  return out, meta
